"""The course's weight initialisation for PyTorch: He (Kaiming) uniform, biases zero.

Every conv, transposed conv and classifier layer of the course's models
(U-Net, FCN, DeepLab) starts from the same distribution in both frameworks:

- weights ~ U(-b, b) with ``b = sqrt(6 / fan_in)`` (std ``sqrt(2 / fan_in)``), He et al. 2015's
  choice for ReLU networks: it keeps the variance of the activations roughly constant from layer
  to layer, so a deep ReLU network neither fades to zero nor blows up at the start;
- biases 0.

``torch.nn.init.kaiming_uniform_(w, nonlinearity="relu")`` here and Keras' ``"he_uniform"``
(:data:`course_utils.keras.init.HE_INIT`) are the same distribution. ``fan_in`` follows each
framework's own convention, and the two agree: ``in * kh * kw`` for a conv, and
``out * kh * kw`` for a transposed conv (torch's weight is (in, out, kh, kw) and reads dim 1;
Keras' kernel is (kh, kw, out, in) and reads axis -2).

Why not PyTorch's default? ``nn.Conv2d`` draws ``kaiming_uniform_(a=sqrt(5))`` (std
``sqrt(1 / (3 fan_in))``, 2.4x smaller than He) and a non-zero uniform bias; Keras' default
``glorot_uniform`` uses ``fan_in + fan_out``. Left at their defaults, the "same" network starts
from two different families of weights in the two frameworks.

Layers whose initialisation is part of the architecture (FCN's transposed convs that start as
bilinear interpolation) are marked with ``layer.course_fixed_init = True`` and left alone.
BatchNorm / GroupNorm keep gamma 1 and beta 0 (both frameworks' default).
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["he_init_", "weight_stds", "HE_INIT_LAYERS"]

#: The module types :func:`he_init_` initialises.
HE_INIT_LAYERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
                  nn.Linear)


def he_init_(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """He-uniform weights and zero biases for every conv, transposed conv and linear layer inside ``module``.

    In place; returns ``module`` (so ``model = he_init_(MyNet())`` works). Submodules marked
    ``course_fixed_init = True`` (e.g. FCN's bilinear upsampling) are skipped. Draws from
    torch's global generator (seed it with ``course_utils.env.seed_everything``) unless
    ``generator`` is given.

    Example: a hand-written twin in a lecture, initialised like the course's models::

        model = he_init_(MyDeepLab(...))
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"he_init_ needs a torch.nn.Module, got {type(module).__name__}: pass the model itself.")
    with torch.no_grad():
        for sub in module.modules():
            if not isinstance(sub, HE_INIT_LAYERS) or getattr(sub, "course_fixed_init", False):
                continue
            fan_in = nn.init._calculate_fan_in_and_fan_out(sub.weight)[0]
            bound = math.sqrt(6.0 / fan_in)  # = kaiming_uniform_(nonlinearity="relu")
            sub.weight.uniform_(-bound, bound, generator=generator)
            if sub.bias is not None:
                sub.bias.zero_()
    return module


def weight_stds(module: nn.Module) -> dict:
    """``{Keras layer name: (std of the weight, He std sqrt(2 / fan_in))}`` for each conv / linear layer.

    Named by the port naming rule (torch ``enc1.conv1`` -> ``"enc1_conv1"``), so the dict compares
    directly with :func:`course_utils.keras.init.weight_stds` of the Keras twin.
    """
    stds = {}
    for path, sub in module.named_modules():
        if isinstance(sub, HE_INIT_LAYERS):
            fan_in = nn.init._calculate_fan_in_and_fan_out(sub.weight)[0]
            stds[path.replace(".", "_")] = (float(sub.weight.detach().float().std(unbiased=False)),
                                            math.sqrt(2.0 / fan_in))
    return stds
