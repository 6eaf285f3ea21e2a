"""Multiply-add (MAC) counting per image, for the comparison table of lecture 07.

One multiply-add = one multiplication followed by one addition (``a += w * x``);
"FLOPs" are often quoted as 2 x MACs. Only the layers that dominate the cost
are counted: convolutions, transposed convolutions and dense/linear layers
(BatchNorm, ReLU, pooling and resizing are a few operations per pixel and
left out, as usual).

Hand formulas (framework-free):

- :func:`conv2d_macs`: ``H_out * W_out * C_out * (C_in / groups) * k_h * k_w``
- :func:`conv_transpose2d_macs`: ``H_in * W_in * C_in * (C_out / groups) * k_h * k_w``
  (every input pixel is spread over a k x k patch of every output channel)
- :func:`linear_macs`: ``in_features * out_features`` (per position)

Counters: :func:`count_macs_torch` (forward hooks on ``nn.Conv2d``,
``nn.ConvTranspose2d``, ``nn.Linear``) and :func:`count_macs_keras` (the
layers' known output shapes of a functional model with a fixed input size).
Neither framework is imported at module level.
"""

from __future__ import annotations

import math

__all__ = [
    "conv2d_macs",
    "conv_transpose2d_macs",
    "linear_macs",
    "count_macs_torch",
    "count_macs_keras",
    "format_count",
]


def conv2d_macs(h_out: int, w_out: int, c_in: int, c_out: int, kernel, groups: int = 1) -> int:
    """Multiply-adds of one Conv2d application (one image); dilation and stride do not change the formula."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    return int(h_out * w_out * c_out * (c_in // groups) * kh * kw)


def conv_transpose2d_macs(h_in: int, w_in: int, c_in: int, c_out: int, kernel, groups: int = 1) -> int:
    """Multiply-adds of one ConvTranspose2d application (one image), counted on the input grid."""
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else tuple(kernel)
    return int(h_in * w_in * c_in * (c_out // groups) * kh * kw)


def linear_macs(in_features: int, out_features: int, positions: int = 1) -> int:
    """Multiply-adds of a dense layer applied at ``positions`` positions."""
    return int(in_features * out_features * positions)


def count_macs_torch(model, input_shape) -> int:
    """Multiply-adds per image of a torch model for one input of ``input_shape`` = (C, H, W).

    Runs one forward pass (eval mode, no gradients, batch of 1, on the model's
    device) with forward hooks on every Conv2d, ConvTranspose2d and Linear.
    The model's train/eval mode is restored.
    """
    import torch
    from torch import nn

    if len(tuple(input_shape)) != 3:
        raise ValueError(f"input_shape must be (C, H, W) without the batch axis, got {tuple(input_shape)}.")
    total = [0]

    def hook(module, inputs, output):
        x = inputs[0]
        if isinstance(module, nn.ConvTranspose2d):
            total[0] += conv_transpose2d_macs(
                x.shape[2], x.shape[3], module.in_channels, module.out_channels, module.kernel_size, module.groups
            )
        elif isinstance(module, nn.Conv2d):
            total[0] += conv2d_macs(
                output.shape[2], output.shape[3], module.in_channels, module.out_channels,
                module.kernel_size, module.groups,
            )
        elif isinstance(module, nn.Linear):
            positions = math.prod(output.shape[1:-1]) if output.ndim > 2 else 1
            total[0] += linear_macs(module.in_features, module.out_features, positions)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]
    parameter = next(iter(model.parameters()), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *tuple(input_shape)), device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return int(total[0])


def count_macs_keras(model) -> int:
    """Multiply-adds per image of a Keras functional model built with a fixed input size.

    Reads each Conv2D / Conv2DTranspose / DepthwiseConv2D / Dense layer's input
    and output shapes (nested models included).
    """
    import keras

    def layer_macs(layer) -> int:
        if isinstance(layer, keras.Model):
            return sum(layer_macs(inner) for inner in layer.layers)
        if not isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.DepthwiseConv2D,
                                  keras.layers.Dense)):
            return 0
        in_shape = tuple(layer.input.shape)
        out_shape = tuple(layer.output.shape)
        if any(d is None for d in in_shape[1:] + out_shape[1:]):
            raise ValueError(
                f"layer {layer.name!r} has an unknown size {out_shape}: build the model with a fixed "
                "input_shape, e.g. (64, 64, 3), to count multiply-adds."
            )
        if isinstance(layer, keras.layers.Conv2DTranspose):
            return conv_transpose2d_macs(in_shape[1], in_shape[2], in_shape[3], out_shape[3], layer.kernel_size)
        if isinstance(layer, keras.layers.DepthwiseConv2D):
            return int(out_shape[1] * out_shape[2] * out_shape[3] * math.prod(layer.kernel_size))
        if isinstance(layer, keras.layers.Conv2D):
            return conv2d_macs(out_shape[1], out_shape[2], in_shape[3], out_shape[3], layer.kernel_size,
                               getattr(layer, "groups", 1))
        positions = math.prod(out_shape[1:-1]) if len(out_shape) > 2 else 1
        return linear_macs(in_shape[-1], out_shape[-1], positions)

    return int(sum(layer_macs(layer) for layer in model.layers))


def format_count(n: float) -> str:
    """``1234567`` -> ``"1.23 M"`` (k, M, G)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:.0f}"
