"""Copy weights from a Keras model into the PyTorch twin and compare their outputs.

The course's PORT NAMING RULE: every weighted Keras layer is named like the
PyTorch module's dotted path from ``named_modules()`` with "." replaced by "_"
(torch ``enc1.conv1`` <-> Keras ``enc1_conv1``). :func:`keras_to_torch` pairs the
layers by that rule and converts each weight's layout:

=======================  ==========================  ==============================
Keras layer              Keras weight layout          PyTorch module / layout
=======================  ==========================  ==============================
Conv2D                   kernel (h, w, in, out)      Conv2d weight (out, in, h, w)
Conv2DTranspose          kernel (h, w, out, in)      ConvTranspose2d (in, out, h, w)
DepthwiseConv2D          kernel (h, w, in, mult)     Conv2d(groups=in) (in*mult, 1, h, w)
Dense                    kernel (in, out)            Linear weight (out, in)
BatchNormalization       gamma, beta,                BatchNorm2d/1d weight, bias,
                         moving_mean/variance        running_mean/var
=======================  ==========================  ==============================

Both frameworks compute cross-correlations (no kernel flip), also in the
transposed convolution; this is verified numerically in ``tests/test_port.py``.

This module imports neither framework at import time.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np

__all__ = ["keras_to_torch", "max_abs_logit_difference", "exact_float32", "keras_name", "keras_weighted_layers"]


def keras_name(torch_path: str) -> str:
    """Keras layer name for a torch module path: ``"enc1.conv1"`` -> ``"enc1_conv1"``."""
    return torch_path.replace(".", "_")


def _to_numpy(variable) -> np.ndarray:
    if hasattr(variable, "numpy"):  # keras.Variable (avoids a NumPy-2 deprecation warning in convert_to_numpy)
        return np.asarray(variable.numpy())
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable))


def keras_weighted_layers(keras_model) -> dict:
    """All layers with weights inside ``keras_model`` (nested layers too), by name."""
    found = {}
    for layer in keras_model._flatten_layers(include_self=False, recursive=True):
        if layer.weights and not hasattr(layer, "layers"):  # skip nested models themselves
            found.setdefault(layer.name, layer)
    return found


def _torch_weighted_modules(torch_model) -> dict:
    found = {}
    for path, module in torch_model.named_modules():
        has_params = any(True for _ in module.parameters(recurse=False))
        has_stats = getattr(module, "running_mean", None) is not None
        if path and (has_params or has_stats):
            found[path] = module
    return found


def _pairs(value, n=2):
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _conv_geometry_problems(name, layer, module, kernel_hw):
    """Stride/dilation/padding mismatches between a Keras conv and a torch conv."""
    problems = []
    strides = _pairs(layer.strides)
    dilation = _pairs(layer.dilation_rate)
    if strides != _pairs(module.stride):
        problems.append(f"{name}: strides differ (Keras {strides}, torch {_pairs(module.stride)})")
    if dilation != _pairs(module.dilation):
        problems.append(f"{name}: dilation differs (Keras {dilation}, torch {_pairs(module.dilation)})")
    padding = module.padding
    if isinstance(padding, str):
        if padding != layer.padding:
            problems.append(f'{name}: padding differs (Keras "{layer.padding}", torch "{padding}")')
        return problems
    padding = _pairs(padding)
    if layer.padding == "valid" and any(padding):
        problems.append(f'{name}: Keras uses padding="valid" but torch pads by {padding}; use padding=0')
    elif layer.padding == "same":
        for k, s, d, p in zip(kernel_hw, strides, dilation, padding):
            extent = d * (k - 1) + 1
            if s == 1 and extent % 2 == 1 and p != (extent - 1) // 2:
                problems.append(
                    f'{name}: Keras padding="same" needs torch padding={(extent - 1) // 2}, got {padding}'
                )
                break
            if s > 1 and (extent - s) > 0 and (extent - s) % 2 == 1:
                warnings.warn(
                    f'{name}: Keras padding="same" with stride {s} pads asymmetrically (more at the '
                    "bottom/right) while torch pads symmetrically, so outputs may be shifted; check "
                    "them with max_abs_logit_difference.",
                    stacklevel=4,
                )
                break
    return problems


def _converted(name, layer, module):
    """(list of (torch tensor, numpy array)), problems) for one Keras/torch pair."""
    import keras
    from torch import nn

    problems, copies = [], []

    def expect(tensor, array, what):
        if tuple(tensor.shape) != tuple(array.shape):
            problems.append(
                f"{name}: {what} has shape {tuple(array.shape)} after conversion from Keras "
                f"but torch expects {tuple(tensor.shape)}"
            )
        else:
            copies.append((tensor, array))

    def bias(use_bias):
        has_torch_bias = getattr(module, "bias", None) is not None
        if use_bias and has_torch_bias:
            expect(module.bias, _to_numpy(layer.bias), "bias")
        elif use_bias != has_torch_bias:
            problems.append(
                f"{name}: bias in Keras={bool(use_bias)} but in torch={has_torch_bias}; "
                "use use_bias=False / bias=False on both (e.g. conv before BatchNorm) or on neither"
            )

    if isinstance(layer, keras.layers.Conv2DTranspose):
        if not isinstance(module, nn.ConvTranspose2d):
            problems.append(f"{name}: Keras Conv2DTranspose but torch {type(module).__name__}")
            return copies, problems
        kernel = _to_numpy(layer.kernel)  # (h, w, out, in)
        problems += _conv_geometry_problems(name, layer, module, kernel.shape[:2])
        expect(module.weight, kernel.transpose(3, 2, 0, 1), "kernel")  # (in, out, h, w)
        bias(layer.use_bias)
    elif isinstance(layer, keras.layers.DepthwiseConv2D):
        if not isinstance(module, nn.Conv2d) or module.groups != module.in_channels:
            problems.append(f"{name}: Keras DepthwiseConv2D but torch module is not Conv2d(groups=in_channels)")
            return copies, problems
        kernel = _to_numpy(layer.kernel)  # (h, w, in, mult)
        problems += _conv_geometry_problems(name, layer, module, kernel.shape[:2])
        h, w, cin, mult = kernel.shape
        expect(module.weight, kernel.reshape(h, w, cin * mult).transpose(2, 0, 1)[:, None], "kernel")
        bias(layer.use_bias)
    elif isinstance(layer, keras.layers.Conv2D):
        if not isinstance(module, nn.Conv2d) or isinstance(module, nn.ConvTranspose2d):
            problems.append(f"{name}: Keras Conv2D but torch {type(module).__name__}")
            return copies, problems
        if module.groups != 1 or getattr(layer, "groups", 1) != 1:
            if module.groups != getattr(layer, "groups", 1):
                problems.append(f"{name}: groups differ (Keras {layer.groups}, torch {module.groups})")
                return copies, problems
        kernel = _to_numpy(layer.kernel)  # (h, w, in/groups, out)
        problems += _conv_geometry_problems(name, layer, module, kernel.shape[:2])
        expect(module.weight, kernel.transpose(3, 2, 0, 1), "kernel")  # (out, in, h, w)
        bias(layer.use_bias)
    elif isinstance(layer, keras.layers.Dense):
        if not isinstance(module, nn.Linear):
            problems.append(f"{name}: Keras Dense but torch {type(module).__name__}")
            return copies, problems
        expect(module.weight, _to_numpy(layer.kernel).T, "kernel")  # (out, in)
        bias(layer.use_bias)
    elif isinstance(layer, keras.layers.BatchNormalization):
        if not isinstance(module, nn.modules.batchnorm._BatchNorm):
            problems.append(f"{name}: Keras BatchNormalization but torch {type(module).__name__}")
            return copies, problems
        if abs(float(layer.epsilon) - float(module.eps)) > 1e-12:
            problems.append(
                f"{name}: epsilon differs (Keras {layer.epsilon}, torch {module.eps}); use "
                "BatchNormalization(epsilon=1e-5, momentum=0.9) in Keras to match torch's defaults"
            )
        if layer.scale and module.weight is not None:
            expect(module.weight, _to_numpy(layer.gamma), "gamma")
        elif bool(layer.scale) != (module.weight is not None):
            problems.append(f"{name}: scale (gamma) in Keras={layer.scale}, affine in torch={module.affine}")
        if layer.center and module.bias is not None:
            expect(module.bias, _to_numpy(layer.beta), "beta")
        elif bool(layer.center) != (module.bias is not None):
            problems.append(f"{name}: center (beta) in Keras={layer.center}, affine in torch={module.affine}")
        if module.running_mean is None:
            problems.append(f"{name}: torch BatchNorm has track_running_stats=False; Keras always tracks them")
        else:
            expect(module.running_mean, _to_numpy(layer.moving_mean), "moving_mean")
            expect(module.running_var, _to_numpy(layer.moving_variance), "moving_variance")
    else:
        problems.append(
            f"{name}: Keras layer type {type(layer).__name__} is not supported by keras_to_torch "
            "(Conv2D, Conv2DTranspose, DepthwiseConv2D, Dense, BatchNormalization are)"
        )
    return copies, problems


def keras_to_torch(keras_model, torch_model, verbose: bool = False):
    """Copy all weights of ``keras_model`` into ``torch_model`` (in place) and return ``torch_model``.

    Layers are paired by the port naming rule (torch ``a.b`` <-> Keras ``a_b``).
    Nothing is copied unless every pair matches: a ValueError lists each torch
    module without a Keras twin, each weighted Keras layer without a torch twin,
    and each shape/type/configuration mismatch.

    Args:
        keras_model: a built keras.Model (e.g. ``build_unet(...)``).
        torch_model: the torch.nn.Module twin (e.g. ``UNet(...)`` with the same configuration).
        verbose: print one line per copied layer.
    """
    import torch

    keras_layers = keras_weighted_layers(keras_model)
    torch_modules = _torch_weighted_modules(torch_model)
    problems, copies, used = [], [], set()
    for path, module in torch_modules.items():
        name = keras_name(path)
        layer = keras_layers.get(name)
        if layer is None:
            problems.append(
                f"torch module '{path}' ({type(module).__name__}) has no Keras layer named '{name}'"
            )
            continue
        used.add(name)
        pair_copies, pair_problems = _converted(name, layer, module)
        copies += pair_copies
        problems += pair_problems
    for name, layer in keras_layers.items():
        if name not in used:
            problems.append(
                f"Keras layer '{name}' ({type(layer).__name__}) has weights but no torch module "
                f"named '{name.replace('_', '.')}' (or similar)"
            )
    if problems:
        raise ValueError(
            "Cannot copy the Keras weights into the torch model; give every weighted layer the same "
            "name in both (torch path with '.' -> '_') and the same configuration:\n  - "
            + "\n  - ".join(problems)
        )
    with torch.no_grad():
        for tensor, array in copies:
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(array)).to(tensor.dtype))
    if verbose:
        for path in torch_modules:
            print(f"copied {keras_name(path)} -> {path}")
    return torch_model


@contextlib.contextmanager
def exact_float32():
    """Switch off TensorFloat-32 in PyTorch and TensorFlow (those already imported) inside the ``with`` block.

    Ampere and newer GPUs (A100, L4, H100) multiply float32 matrices and
    convolutions with 10-bit mantissas by default (TF32): differences of 1e-3
    between two correct models then look like porting errors. Cross-device and
    Keras-vs-PyTorch checks run inside this block; the previous settings are
    restored afterwards. No effect on a CPU or a T4.
    """
    import sys

    restore = []
    if "torch" in sys.modules:
        import torch

        flags = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False

        def restore_torch():
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = flags

        restore.append(restore_torch)
    if "tensorflow" in sys.modules:
        import tensorflow as tf

        enabled = tf.config.experimental.tensor_float_32_execution_enabled()
        tf.config.experimental.enable_tensor_float_32_execution(False)
        restore.append(lambda: tf.config.experimental.enable_tensor_float_32_execution(enabled))
    try:
        yield
    finally:
        for undo in restore:
            undo()


def max_abs_logit_difference(keras_model, torch_model, images_nhwc) -> float:
    """Largest absolute difference between the two models' outputs on ``images_nhwc``.

    Args:
        keras_model: keras.Model taking (N, H, W, C).
        torch_model: torch.nn.Module taking (N, C, H, W); run in eval mode (its
            previous mode is restored afterwards) on its own device.
        images_nhwc: NumPy array (N, H, W, C), float32.

    Returns:
        float: ``max |keras(x) - torch(x)|`` after bringing the torch output to NHWC
        (outputs of rank 4 are transposed, others compared as they are).
    """
    import keras
    import torch

    images = np.asarray(images_nhwc, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(
            f"images_nhwc must be a batch (N, H, W, C), got shape {images.shape}: "
            "add the batch axis with images[None]."
        )
    if images.shape[1] in (1, 2, 3, 4) and images.shape[-1] not in (1, 2, 3, 4):
        raise ValueError(
            f"images_nhwc has shape {images.shape}, which looks channels-first (N, C, H, W); this function takes "
            "NumPy/Keras order (N, H, W, C) and transposes for PyTorch itself: pass images.transpose(0, 2, 3, 1)."
        )
    with exact_float32():
        keras_out = np.asarray(keras.ops.convert_to_numpy(keras_model(images, training=False)))
        torch_out = _torch_outputs(torch_model, images)
    if torch_out.ndim == 4:
        torch_out = torch_out.transpose(0, 2, 3, 1)
    if torch_out.shape != keras_out.shape:
        raise ValueError(
            f"The outputs differ in shape: Keras {keras_out.shape}, torch (as NHWC) {torch_out.shape}; "
            "build both models with the same configuration."
        )
    return float(np.max(np.abs(keras_out.astype(np.float64) - torch_out.astype(np.float64))))


def _torch_outputs(torch_model, images: np.ndarray) -> np.ndarray:
    """The torch model's float32 outputs for NHWC images, in eval mode, on the model's device."""
    import torch

    was_training = torch_model.training
    parameter = next(iter(torch_model.parameters()), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    torch_model.eval()
    try:
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).to(device)
            torch_out = torch_model(x).float().cpu().numpy()
    finally:
        torch_model.train(was_training)
    return torch_out
