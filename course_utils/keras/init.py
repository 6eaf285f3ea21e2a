"""The course's weight initialisation for Keras 3: He (Kaiming) uniform, biases zero.

Every conv, transposed conv and classifier layer of the course's models
(U-Net, FCN, DeepLab) is built with ``kernel_initializer=HE_INIT`` (and Keras'
default zero bias), the same distribution as :func:`course_utils.torch.init.he_init_`:

- weights ~ U(-b, b) with ``b = sqrt(6 / fan_in)`` (std ``sqrt(2 / fan_in)``), He et al. 2015's
  choice for ReLU networks: it keeps the variance of the activations roughly constant from layer
  to layer;
- biases 0.

Keras' ``"he_uniform"`` and torch's ``kaiming_uniform_(nonlinearity="relu")`` are the same
distribution, with the same ``fan_in`` in both frameworks (``kh * kw * in`` for a conv,
``kh * kw * out`` for a transposed conv). Note ``"he_normal"`` would NOT match torch's
``kaiming_normal_``: Keras truncates its normal at 2 std (and rescales it), torch does not.
Keras' own default, ``"glorot_uniform"``, uses ``fan_in + fan_out`` and differs from torch's
default, which is why the course sets the initialiser explicitly in both.

Use it in a hand-written Keras twin: ``layers.Conv2D(64, 3, kernel_initializer=HE_INIT)``, or
re-initialise a built model with :func:`he_init`.
"""

from __future__ import annotations

import keras
import numpy as np

__all__ = ["HE_INIT", "he_init", "weight_stds"]

#: The course's kernel initializer for conv / transposed conv / classifier layers (biases: Keras' zeros).
HE_INIT = "he_uniform"


_KINDS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Conv2DTranspose,
          keras.layers.Dense)


def _fixed(layer) -> bool:
    """True for a layer whose initialisation is part of the architecture (e.g. FCN's bilinear upsampling)."""
    initializer = getattr(layer, "kernel_initializer", None)
    return bool(getattr(layer, "course_fixed_init", False)) or type(initializer).__name__ == "BilinearInitializer"


def he_init(model, seed: int | None = None):
    """Re-draw every Conv / Conv-transpose / Dense kernel of ``model`` from He uniform and zero its biases.

    In place; returns ``model``. Layers built with another explicit initializer that is part of the
    architecture (FCN's bilinear upsampling, ``course_fixed_init``) are skipped. ``seed`` makes the
    draw reproducible (None: NumPy's global generator, seeded by ``course_utils.env.seed_everything``).
    """
    if not hasattr(model, "layers"):
        raise TypeError(f"he_init needs a built keras.Model, got {type(model).__name__}.")
    rng = np.random.default_rng(seed) if seed is not None else np.random
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if not isinstance(layer, _KINDS) or _fixed(layer):
            continue
        kernel = layer.kernel
        shape = tuple(kernel.shape)
        fan_in = int(np.prod(shape[:-1]))  # Keras' rule: all axes but the last (transposed: kh * kw * out)
        bound = np.sqrt(6.0 / fan_in)
        kernel.assign(rng.uniform(-bound, bound, shape).astype(kernel.dtype))
        if getattr(layer, "use_bias", False) and layer.bias is not None:
            layer.bias.assign(np.zeros(tuple(layer.bias.shape), dtype=layer.bias.dtype))
    return model


def weight_stds(model) -> dict:
    """``{layer name: (std of the kernel, He std sqrt(2 / fan_in))}`` for each conv / dense layer of ``model``.

    Compares directly with :func:`course_utils.torch.init.weight_stds` of the PyTorch twin (same names
    by the port naming rule).
    """
    stds = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, _KINDS):
            kernel = np.asarray(layer.kernel.numpy())
            stds[layer.name] = (float(kernel.std()), float(np.sqrt(2.0 / np.prod(kernel.shape[:-1]))))
    return stds
