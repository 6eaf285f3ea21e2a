"""Checks for lectures 03 (U-Net in Keras) and 04 (U-Net in PyTorch).

Each check runs the student's code on small known cases and compares with the
course's reference implementation (:mod:`course_utils.keras.unet`,
:mod:`course_utils.torch.unet`): output shapes, parameter counts, logits (no
final activation), and for the PyTorch training epoch the behaviour of a
correct loop (loss falls, parameters change, gradients do not accumulate, the
model is left in training mode).

TensorFlow/PyTorch are imported inside the checks, never at import time.
"""

from __future__ import annotations

import math

from ._common import check, fail, function_name, not_written, passed

__all__ = [
    "check_conv_block",
    "check_unet",
    "check_keras_conv_block",
    "check_keras_unet",
    "check_torch_conv_block",
    "check_torch_unet",
    "check_torch_train_one_epoch",
    "check_train_one_epoch",
    "check_score_above_baseline",
]

_FRAMEWORKS = ("keras", "torch")

# Small configurations: (input height, width, channels, num_classes, base_filters, depth, batch_norm)
_UNET_CASES = (
    (32, 32, 1, 2, 4, 2, True),
    (32, 48, 3, 3, 4, 3, False),
    (16, 16, 1, 2, 2, 1, True),
)


def _framework(framework: str) -> str:
    name = str(framework).lower()
    aliases = {"keras": "keras", "tensorflow": "keras", "tf": "keras", "torch": "torch", "pytorch": "torch"}
    if name not in aliases:
        raise ValueError(f"framework must be 'keras' or 'torch', got {framework!r}.")
    return aliases[name]


def _call(what: str, fn, *args, _hint: str = "", **kwargs):
    """Call student code; turn an exception into one CheckFailed sentence."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        raise  # the @check wrapper names the student's function
    except Exception as error:  # noqa: BLE001 - any error of the student's code is reported
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        extra = _error_hint(error, _hint) if _hint else ""
        fail(f"{what} raised {type(error).__name__}: {message[:300]}{extra or ': run it on a small example and fix that error first'}.")


def _param_hint(got: int, expected: int, batch_norm: bool) -> str:
    hints = ["3x3 kernels", "filters doubling per level (base_filters * 2**(level-1), bottleneck base_filters * 2**depth)"]
    if batch_norm:
        hints.append("use_bias=False/bias=False in convolutions followed by batch norm")
    else:
        hints.append("no batch norm layers when batch_norm=False")
    return f"got {got:,} trainable parameters but expected {expected:,}: check " + ", ".join(hints) + "."


def _skip_params(base_filters: int, depth: int) -> int:
    """Parameters a U-Net without skip connections lacks: each decoder's first 3x3 conv reads f, not 2f, channels."""
    return sum(9 * (base_filters * 2 ** (level - 1)) ** 2 for level in range(1, depth + 1))


def _head_hint(y, class_axis: int, spatial_axes: tuple, batch_axis: int = 0, shifted=None):
    """Name a final activation that makes the output not logits, or None (NumPy array y)."""
    import numpy as np

    if y.shape[class_axis] > 1 and np.allclose(y.sum(axis=class_axis), 1.0, atol=1e-4) and y.min() >= 0:
        return ("outputs probabilities (they sum to 1 over the classes): remove the final softmax and return "
                "logits; the cross-entropy loss applies the softmax itself (from_logits=True / nn.CrossEntropyLoss)")
    for axis, what in [(a, "a spatial axis (height or width)") for a in spatial_axes] + [(batch_axis, "the batch axis")]:
        if np.allclose(y.sum(axis=axis), 1.0, atol=1e-4) and y.min() >= 0:
            return (f"ends with a softmax over {what}: a softmax belongs on the class axis, and the model should "
                    "return logits anyway (remove the final activation; the loss applies the softmax)")
    if shifted is not None and shifted.min() >= 0 and shifted.max() <= 1:  # +20 on the head's bias, still in [0, 1]
        return ("ends with a sigmoid (all outputs lie in [0, 1]): return logits; with softmax cross-entropy a sigmoid "
                "head squashes the logits and the loss can barely move them (remove the final activation)")
    return None


def _shape_hint(got, height, width, h_axis, w_axis, num_classes, c_axis, framework):
    """The mistake behind a U-Net output of the wrong shape."""
    cat = "axis=-1 (channels)" if framework == "keras" else "dim=1 (channels)"
    if len(got) == 4 and got[h_axis] > height and got[w_axis] == width:
        return f"the skip connection is concatenated along the height axis: concatenate on {cat}"
    if len(got) == 4 and got[w_axis] > width and got[h_axis] == height:
        return f"the skip connection is concatenated along the width axis: concatenate on {cat}"
    if len(got) == 4 and got[h_axis] < height and got[w_axis] < width:
        return ("the output is smaller than the input: use padding='same' (padding=1 in PyTorch) in every 3x3 conv; "
                "padding='valid' loses 2 pixels per conv")
    if len(got) == 4 and got[c_axis] != num_classes:
        return ("the last layer must be a 1x1 Conv2D with num_classes filters" if framework == "keras"
                else "the last layer must be a 1x1 nn.Conv2d with num_classes output channels")
    return "the decoder must upsample once per encoder level (depth times) so the output is as large as the input"


def _error_hint(error: Exception, framework: str) -> str:
    """A hint for errors the typical U-Net mistakes raise while the model is built or run."""
    text = str(error)
    if "Concatenate" in text or "matching shapes" in text or "Sizes of tensors must match" in text:
        sizes = _mismatched_sizes(text)
        ratio = max(sizes) // min(sizes) if sizes and min(sizes) > 0 and max(sizes) % min(sizes) == 0 else 0
        if ratio >= 2 and ratio & (ratio - 1) == 0:  # a power of 2: whole levels apart, not lost borders
            return (f" - the upsampled map and the skip it is joined with have sizes {min(sizes)} and {max(sizes)} "
                    "(a factor of 2 per level): the skips are taken in the wrong order. The deepest decoder level "
                    "takes the LAST encoder output: go through the skips in reverse (reversed(skips) / skips.pop())")
        return (" - the upsampled map and its skip connection differ in size: use padding='same' (padding=1) in "
                "every 3x3 conv so each level keeps its size, and concatenate on the channel axis")
    if "channels" in text and framework == "torch":
        return (" - a conv got the wrong number of channels: concatenate the skip along dim=1 (channels; dim 0 is "
                "the batch, 2 and 3 are height and width), and give the decoder's first conv 2*f input channels")
    return ""


def _mismatched_sizes(text: str) -> tuple[int, int] | None:
    """The two spatial sizes a failed concatenation reports (Keras or PyTorch message), or None."""
    import re

    match = re.search(r"Expected size (\d+) but got size (\d+)", text)
    if match:
        return int(match.group(1)), int(match.group(2))
    shapes = re.findall(r"\(None, (\d+), (\d+), \d+\)", text)
    if len(shapes) >= 2:
        (h1, w1), (h2, w2) = shapes[:2]
        pairs = [(int(a), int(b)) for a, b in ((h1, h2), (w1, w2)) if a != b]
        return pairs[0] if pairs else None
    return None


def _keras_adds_skips(model) -> bool:
    """True when a Keras model joins maps with Add and never concatenates (skips added, not concatenated)."""
    names = [type(op).__name__ for op in getattr(model, "operations", getattr(model, "layers", []))]
    return "Add" in names and "Concatenate" not in names


def _torch_adds_skips(model, x) -> bool:
    """True when a torch model's forward adds two same-shape 4-D maps and never calls torch.cat."""
    import torch
    from torch.overrides import TorchFunctionMode

    seen = {"cat": False, "add": False}

    class Spy(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "")
            if name in ("cat", "concat", "concatenate", "stack"):
                seen["cat"] = True
            if name in ("add", "__add__", "__radd__", "__iadd__", "add_") and len(args) >= 2 and all(
                    torch.is_tensor(a) and a.ndim == 4 for a in args[:2]) and args[0].shape == args[1].shape:
                seen["add"] = True
            return func(*args, **(kwargs or {}))

    try:
        with torch.no_grad(), Spy():
            model(x)
    except Exception:  # noqa: BLE001 - no diagnosis then
        return False
    return seen["add"] and not seen["cat"]


def _keras_shifted(model, x, num_classes):
    """The model's output with +20 added to the bias of its 1x1 head (logits move by 20; a sigmoid cannot)."""
    import keras
    import numpy as np

    heads = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)
             and layer.filters == num_classes and layer.use_bias]
    if not heads:
        return None
    bias = heads[-1].bias
    old = np.asarray(bias.numpy()).copy()
    bias.assign(old + 20.0)
    try:
        return np.asarray(model(x, training=False))
    finally:
        bias.assign(old)


def _torch_shifted(model, x, num_classes):
    """Like :func:`_keras_shifted` for a torch model (B, C, H, W)."""
    import torch
    from torch import nn

    heads = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.out_channels == num_classes
             and m.bias is not None]
    if not heads:
        return None
    with torch.no_grad():
        heads[-1].bias += 20.0
        try:
            return model(x).detach().numpy()
        finally:
            heads[-1].bias -= 20.0


# ----------------------------------------------------------------------------- dispatch
@check
def check_conv_block(fn_or_layer, framework: str) -> None:
    """Check a double-conv block: ``check_conv_block(conv_block, "keras")`` or ``(DoubleConv, "torch")``.

    Keras: ``fn(x, filters, batch_norm, name)`` -> tensor (like
    :func:`course_utils.keras.unet.conv_block`). PyTorch: a module class
    ``Block(in_channels, out_channels, batch_norm=True)`` (like
    :class:`course_utils.torch.unet.DoubleConv`).
    """
    if _framework(framework) == "keras":
        return check_keras_conv_block(fn_or_layer)
    return check_torch_conv_block(fn_or_layer)


@check
def check_unet(build_fn_or_class, framework: str) -> None:
    """Check a U-Net: ``check_unet(build_unet, "keras")`` or ``check_unet(UNet, "torch")``."""
    if _framework(framework) == "keras":
        return check_keras_unet(build_fn_or_class)
    return check_torch_unet(build_fn_or_class)


@check
def check_train_one_epoch(fn) -> None:
    """Check a PyTorch ``train_one_epoch(model, loader, loss_fn, optimizer, device)`` (see the torch variant)."""
    return check_torch_train_one_epoch(fn)


# ----------------------------------------------------------------------------- Keras
def _keras_count(model) -> int:
    import numpy as np

    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))


@check
def check_keras_conv_block(conv_block) -> None:
    """Check ``conv_block(x, filters, batch_norm, name)``: two 3x3 'same' convs (+BN) + ReLU.

    Compares output shape, parameter count and layer names with
    :func:`course_utils.keras.unet.conv_block`, and checks that the output is
    non-negative (it ends with a ReLU).
    """
    import keras
    import numpy as np

    from course_utils.keras.unet import conv_block as reference

    for height, width, channels, filters, batch_norm in ((16, 16, 3, 8, True), (8, 12, 1, 4, False)):
        inputs = keras.Input((height, width, channels))
        outputs = _call("conv_block(x, filters, batch_norm, name)", conv_block, inputs, filters, batch_norm, "enc1")
        if outputs is None:
            fail("conv_block returned None: return the output tensor of the last layer.")
        shape = tuple(outputs.shape)
        expected_shape = (None, height, width, filters)
        if shape != expected_shape:
            hint = (
                "use padding='same' so 3x3 convolutions keep height and width"
                if shape[1:3] != (height, width)
                else f"both convolutions need {filters} filters"
            )
            fail(f"conv_block on input {(None, height, width, channels)} with filters={filters} returned shape {shape} but expected {expected_shape}: {hint}.")
        model = keras.Model(inputs, outputs)
        ref_inputs = keras.Input((height, width, channels))
        ref_model = keras.Model(ref_inputs, reference(ref_inputs, filters, batch_norm, "enc1"))
        got, expected = _keras_count(model), _keras_count(ref_model)
        if got != expected:
            fail(f"conv_block(filters={filters}, batch_norm={batch_norm}) " + _param_hint(got, expected, batch_norm))
        bn_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
        if batch_norm and len(bn_layers) != 2:
            fail(f"conv_block with batch_norm=True has {len(bn_layers)} BatchNormalization layers but needs 2: one after each convolution, before its ReLU.")
        x = np.random.default_rng(0).normal(size=(2, height, width, channels)).astype("float32")
        y = np.asarray(model(x, training=False))
        if y.min() < 0:
            fail("conv_block's output has negative values: end the block with a ReLU (conv -> [batch norm] -> ReLU, twice).")
        names = {layer.name for layer in model.layers}
        missing = [n for n in ("enc1_conv1", "enc1_conv2") if n not in names]
        if missing:
            fail(f"conv_block(..., name='enc1') has no layers named {missing}: name the convolutions f'{{name}}_conv1' and f'{{name}}_conv2' (the port to PyTorch copies weights by name).")
    passed("conv_block: shapes, parameter counts (with and without batch norm), ReLU output and layer names are right.")


@check
def check_keras_unet(build_unet) -> None:
    """Check ``build_unet(input_shape, num_classes, base_filters, depth, batch_norm)`` -> keras.Model.

    For several small configurations: output shape (B, H, W, num_classes),
    parameter count equal to :func:`course_utils.keras.unet.build_unet`, and
    logits (no softmax/sigmoid at the end).
    """
    import keras
    import numpy as np

    from course_utils.keras.unet import build_unet as reference

    for height, width, channels, num_classes, base_filters, depth, batch_norm in _UNET_CASES:
        config = dict(num_classes=num_classes, base_filters=base_filters, depth=depth, batch_norm=batch_norm)
        described = f"build_unet(input_shape={(height, width, channels)}, " + ", ".join(f"{k}={v}" for k, v in config.items()) + ")"
        # positional, in the exercise's order: a student may name the parameters differently
        model = _call(described, build_unet, (height, width, channels), num_classes, base_filters, depth, batch_norm,
                      _hint="keras")
        if not isinstance(model, keras.Model):
            fail(f"{described} returned {type(model).__name__}, not a keras.Model: end with return keras.Model(inputs, outputs).")
        x = np.random.default_rng(0).random((2, height, width, channels)).astype("float32")
        y = np.asarray(_call(f"calling the model from {described}", model, x, training=False))
        expected_shape = (2, height, width, num_classes)
        if y.shape != expected_shape:
            hint = _shape_hint(y.shape, height, width, 1, 2, num_classes, -1, "keras")
            fail(f"{described} maps {x.shape} to {y.shape} but expected {expected_shape}: {hint}.")
        if not np.all(np.isfinite(y)):
            fail(f"{described} produced NaN or infinite outputs: check the layers between input and head.")
        head = _head_hint(y, -1, (1, 2), shifted=_keras_shifted(model, x, num_classes))
        if head:
            fail(f"{described} {head}.")
        got = _keras_count(model)
        expected = _keras_count(reference(input_shape=(height, width, channels), **config))
        if got == expected - _skip_params(base_filters, depth) and _keras_adds_skips(model):
            fail(f"{described} adds the skip connections instead of concatenating them (x + skip keeps f channels, "
                 f"so the decoder's convs have {expected - got:,} fewer parameters than the course's U-Net): use "
                 "layers.Concatenate(axis=-1)([upsampled, skip]) so the decoder sees both maps side by side, "
                 "2f channels; skips added, not concatenated, mix the encoder's detail into the upsampled features.")
        if got == expected - _skip_params(base_filters, depth):
            fail(f"{described} has no skip connections ({got:,} parameters, {expected - got:,} fewer than the "
                 "course's U-Net): concatenate each decoder level's upsampled map with the encoder map of the same "
                 "size (layers.Concatenate(axis=-1)) before its conv block; without them fine detail is lost.")
        if got != expected:
            fail(f"{described}: " + _param_hint(got, expected, batch_norm))
    passed("build_unet: output shapes, logits and parameter counts match the course's U-Net for depths 1-3, with and without batch norm.")


# ----------------------------------------------------------------------------- PyTorch
def _torch_count(module) -> int:
    return int(sum(p.numel() for p in module.parameters() if p.requires_grad))


@check
def check_torch_conv_block(block_class) -> None:
    """Check a module class ``Block(in_channels, out_channels, batch_norm=True)``.

    Compares output shape, parameter count and BatchNorm use with
    :class:`course_utils.torch.unet.DoubleConv`, and checks the output is
    non-negative (it ends with a ReLU).
    """
    import torch
    from torch import nn

    from course_utils.torch.unet import DoubleConv

    torch.manual_seed(0)
    for in_channels, out_channels, batch_norm, size in ((3, 8, True, (16, 16)), (1, 4, False, (8, 12))):
        described = f"{getattr(block_class, '__name__', 'block')}({in_channels}, {out_channels}, batch_norm={batch_norm})"
        block = _call(described, block_class, in_channels, out_channels, batch_norm)
        if not isinstance(block, nn.Module):
            fail(f"{described} is a {type(block).__name__}, not an nn.Module: subclass nn.Module and call super().__init__() first.")
        x = torch.randn(2, in_channels, *size)
        with torch.no_grad():
            y = _call(f"{described}(x)", block, x)
        expected_shape = (2, out_channels, *size)
        if not torch.is_tensor(y) or tuple(y.shape) != expected_shape:
            got_shape = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
            hint = (
                "use padding=1 so 3x3 convolutions keep height and width"
                if torch.is_tensor(y) and tuple(y.shape[2:]) != size
                else "return the output of the second ReLU with out_channels channels"
            )
            fail(f"{described} maps {tuple(x.shape)} to {got_shape} but expected {expected_shape}: {hint}.")
        got, expected = _torch_count(block), _torch_count(DoubleConv(in_channels, out_channels, batch_norm))
        if got != expected:
            fail(f"{described} " + _param_hint(got, expected, batch_norm))
        n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in block.modules())
        if batch_norm and n_bn != 2:
            fail(f"{described} has {n_bn} nn.BatchNorm2d modules but needs 2: one after each convolution, before its ReLU.")
        if not batch_norm and n_bn:
            fail(f"{described} has BatchNorm2d modules although batch_norm=False: use nn.Identity() (or nothing) in their place.")
        if float(y.min()) < 0:
            fail(f"{described} returns negative values: end the block with a ReLU (conv -> [batch norm] -> ReLU, twice).")
    passed("conv block: shapes, parameter counts (with and without batch norm) and ReLU output are right.")


@check
def check_torch_unet(unet_class) -> None:
    """Check ``UNet(in_channels, num_classes, base_filters, depth, batch_norm)`` (an nn.Module class).

    For several small configurations: output shape (B, num_classes, H, W),
    parameter count equal to :class:`course_utils.torch.unet.UNet` (and so to
    the Keras U-Net), and logits (no softmax/sigmoid at the end).
    """
    import torch
    from torch import nn

    from course_utils.torch.unet import UNet as reference

    torch.manual_seed(0)
    for height, width, channels, num_classes, base_filters, depth, batch_norm in _UNET_CASES:
        config = dict(in_channels=channels, num_classes=num_classes, base_filters=base_filters, depth=depth, batch_norm=batch_norm)
        described = f"{getattr(unet_class, '__name__', 'UNet')}(" + ", ".join(f"{k}={v}" for k, v in config.items()) + ")"
        model = _call(described, unet_class, channels, num_classes, base_filters, depth, batch_norm, _hint="torch")
        if not isinstance(model, nn.Module):
            fail(f"{described} is a {type(model).__name__}, not an nn.Module: subclass nn.Module and call super().__init__() first.")
        model.eval()
        x = torch.rand(2, channels, height, width)
        with torch.no_grad():
            y = _call(f"{described} on input {tuple(x.shape)}", model, x, _hint="torch")
        expected_shape = (2, num_classes, height, width)
        if not torch.is_tensor(y) or tuple(y.shape) != expected_shape:
            got_shape = tuple(y.shape) if torch.is_tensor(y) else type(y).__name__
            if torch.is_tensor(y) and y.ndim == 4 and tuple(y.shape[1:3]) == (height, width) and y.shape[3] == num_classes:
                hint = ("the output is channels-last (B, H, W, C, the Keras/NHWC layout): PyTorch models return "
                        "(B, C, H, W) (NCHW), so do not permute the logits")
            elif torch.is_tensor(y):
                hint = _shape_hint(tuple(y.shape), height, width, 2, 3, num_classes, 1, "torch")
            else:
                hint = "return the logits tensor"
            fail(f"{described} maps {tuple(x.shape)} to {got_shape} but expected {expected_shape}: {hint}.")
        if not torch.isfinite(y).all():
            fail(f"{described} produced NaN or infinite outputs: check the layers between input and head.")
        head = _head_hint(y.detach().numpy(), 1, (2, 3), shifted=_torch_shifted(model, x, num_classes))
        if head:
            fail(f"{described} {head}.")
        got, expected = _torch_count(model), _torch_count(reference(**config))
        if got == expected - _skip_params(base_filters, depth) and _torch_adds_skips(model, x):
            fail(f"{described} adds the skip connections instead of concatenating them (x + skip keeps f channels, "
                 f"so the decoder's convs have {expected - got:,} fewer parameters than the course's U-Net): use "
                 "torch.cat([upsampled, skip], dim=1) and give the decoder block 2*f input channels; skips added, "
                 "not concatenated, mix the encoder's detail into the upsampled features.")
        if got == expected - _skip_params(base_filters, depth):
            fail(f"{described} has no skip connections ({got:,} parameters, {expected - got:,} fewer than the "
                 "course's U-Net): torch.cat each decoder level's upsampled map with the encoder map of the same "
                 "size along dim=1 before its conv block; without them fine detail is lost.")
        if got != expected:
            fail(f"{described}: " + _param_hint(got, expected, batch_norm))
    passed("UNet: output shapes, logits and parameter counts match the course's U-Net for depths 1-3, with and without batch norm.")


@check
def check_torch_train_one_epoch(train_one_epoch) -> None:
    """Check ``train_one_epoch(model, loader, loss_fn, optimizer, device)`` -> mean loss (float).

    On a tiny model and a real ``DataLoader`` (so ``len(loader)`` and ``len(loader.dataset)`` both work;
    the mean over batches and the sample-weighted mean agree, all batches being equal in size; the batches
    differ, so the last batch's loss is not the mean): the model ends in training mode,
    gradients are reset every batch (with ``optimizer.zero_grad()``), the
    optimizer steps, parameters change, the returned value is the mean batch
    loss, and the loss falls over a few epochs.
    """
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    device = torch.device("cpu")
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(4, 1, 8, 8, generator=generator)
    masks = (images[:, 0] > 0.5).long()

    def tiny_model():
        torch.manual_seed(0)
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))

    class SpySGD(torch.optim.SGD):
        """SGD that remembers the gradients it was asked to apply."""

        def __init__(self, params, lr):
            super().__init__(params, lr=lr)
            self.seen = []

        def step(self, closure=None):
            grads = [None if p.grad is None else p.grad.detach().clone() for g in self.param_groups for p in g["params"]]
            self.seen.append(grads)
            return super().step(closure)

    loss_fn = nn.CrossEntropyLoss()
    # 1) learning rate 0: the same batch three times must give three identical gradients.
    model = tiny_model()
    model.eval()  # a correct epoch switches to training mode itself
    optimizer = SpySGD(model.parameters(), lr=0.0)
    # a real DataLoader (len(loader) batches, len(loader.dataset) samples): batches A, B, A. The first and the
    # third are equal (their gradients must be too), and the mean loss differs from the last batch's loss.
    other_images = torch.rand(4, 1, 8, 8, generator=generator)
    other_masks = (other_images[:, 0] > 0.3).long()
    repeated = TensorDataset(torch.cat([images, other_images, images]), torch.cat([masks, other_masks, masks]))
    loader = DataLoader(repeated, batch_size=len(images), shuffle=False)
    with torch.no_grad():
        batch_losses = [float(loss_fn(model(images), masks)), float(loss_fn(model(other_images), other_masks))]
        batch_losses.append(batch_losses[0])
    expected_loss = sum(batch_losses) / len(batch_losses)
    result = _call("train_one_epoch(model, loader, loss_fn, optimizer, device)", train_one_epoch, model, loader, loss_fn, optimizer, device)
    if not model.training:
        fail("after train_one_epoch the model is in eval mode: call model.train() at the start of the epoch, never "
             "model.eval() during training (eval mode freezes batch-norm statistics and switches dropout off).")
    if len(optimizer.seen) != len(loader):
        fail(f"optimizer.step() ran {len(optimizer.seen)} times for {len(loader)} batches: call it once per batch, after loss.backward().")
    first = optimizer.seen[0]
    if any(g is None for g in first) or all(float(g.abs().sum()) == 0 for g in first):
        fail("the gradients were empty or zero when optimizer.step() ran: call loss.backward() before optimizer.step(), and optimizer.zero_grad() before the backward pass, not between backward and step.")
    last = optimizer.seen[-1]
    if any(g is None for g in last) or not all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(first, last)):
        ratio = float(last[0].abs().sum() / first[0].abs().sum()) if last[0] is not None else float("nan")
        fail(f"the gradient of the third batch is {ratio:.1f}x that of the first although the two batches are equal, so gradients accumulate: call optimizer.zero_grad() at the start of every batch.")
    if torch.is_tensor(result):
        if result.numel() != 1:
            fail(f"train_one_epoch returned a tensor of shape {tuple(result.shape)}: return the mean loss as a Python float (loss.item() accumulated over batches).")
        if result.requires_grad:
            fail("train_one_epoch returned a tensor that still holds the graph: return a Python float (use loss.item() when summing the batch losses).")
        result = float(result)
    if not isinstance(result, (int, float)) or isinstance(result, bool):
        fail(f"train_one_epoch returned {type(result).__name__}: return the mean training loss of the epoch as a float.")
    if not math.isclose(result, expected_loss, rel_tol=1e-3, abs_tol=1e-5):
        if math.isclose(result, len(loader) * expected_loss, rel_tol=1e-3):
            hint = "return the mean over batches, not the sum"
        elif math.isclose(result, batch_losses[-1], rel_tol=1e-3, abs_tol=1e-5):
            hint = ("that is the LAST batch's loss: collect loss.item() of every batch (losses.append(...) inside "
                    "the loop) and return their mean")
        else:
            hint = "return the mean of the batch losses (sum of loss.item() divided by the number of batches)"
        fail(f"train_one_epoch returned {result:.4f} but the three batches' losses were "
             f"{', '.join(f'{v:.4f}' for v in batch_losses)} (mean {expected_loss:.4f}; the learning rate was 0): "
             f"{hint}.")

    # 2) a real learning rate: parameters change and the loss falls over a few epochs.
    model = tiny_model()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = DataLoader(TensorDataset(images, masks), batch_size=2, shuffle=False)
    losses = [float(_call("train_one_epoch", train_one_epoch, model, loader, loss_fn, optimizer, device)) for _ in range(5)]
    if all(torch.equal(a, b) for a, b in zip(before, model.parameters())):
        fail("the model's parameters did not change: call optimizer.step() after loss.backward() for every batch.")
    if not losses[-1] < losses[0]:
        fail(f"the loss did not fall over 5 epochs ({losses[0]:.4f} -> {losses[-1]:.4f}): check the order zero_grad, forward, loss, backward, step.")
    passed(f"train_one_epoch: train mode, zero_grad per batch, one step per batch, mean loss returned, loss falls ({losses[0]:.3f} -> {losses[-1]:.3f}).")


@check
def check_score_above_baseline(score, baseline, what: str = "membrane Dice", baseline_name: str = "all membrane") -> None:
    """Check that a trained model's ``score`` (a float in [0, 1], higher is better) beats a trivial baseline's.

    Used after the training runs of lectures 03/04: ``checks.check_score_above_baseline(dice, all_membrane)``.
    """
    try:
        value, floor = float(score), float(baseline)
    except (TypeError, ValueError):
        fail(f"the {what} must be one number, got {type(score).__name__}: take the class's entry, e.g. "
             "metrics.dice_per_class(...)[1].")
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        fail(f"the {what} is {value}, not a score in [0, 1]: compare integer masks of class indices (the argmax of "
             "the logits), not logits or probabilities.")
    if value <= floor:
        fail(f"your model's {what} {value:.3f} is not above the '{baseline_name}' baseline {floor:.3f}: it has "
             "learned less than a constant guess. Check that train_one_epoch's loss falls from epoch to epoch and "
             "that the predictions are class indices (argmax over the class axis).")
    passed(f"{what} {value:.3f}, above the '{baseline_name}' baseline {floor:.3f}.")
