"""Checks for lecture 07 (FCN and DeepLab): the student's ASPP module.

``check_keras_aspp(ASPP)`` takes a Keras building block used like the course's
``course_utils.keras.deeplab.ASPP``: ``ASPP(filters, atrous_rates, name="aspp")(x)``.
``check_torch_aspp(ASPP)`` takes an ``nn.Module`` class used like
``course_utils.torch.deeplab.ASPP``: ``ASPP(in_channels, out_channels, atrous_rates)``.

Both compare with the course's ASPP of the same configuration: output shape,
parameter count (1x1 branch, one 3x3 atrous branch per rate, image pooling
branch, 1x1 projection; all conv-BN-ReLU without conv bias), the dilation
rates of the 3x3 convolutions, the projection's input width (= number of
branches x filters), a finite forward pass, and (PyTorch) that the image
pooling branch makes every output pixel see the whole image.
Frameworks are imported only inside the checks.
"""

from __future__ import annotations

import numpy as np

from ._common import check, fail, function_name, not_written, passed

__all__ = ["check_keras_aspp", "check_torch_aspp", "check_fcn_fusion"]

_IN, _FILTERS, _RATES, _SIZE = 8, 6, (1, 2, 3), 16


def _equal_note(dilations) -> str:
    if len(dilations) > 1 and len(set(dilations)) == 1:
        return f" (all equal: every branch sees the same {2 * dilations[0] + 1}x{2 * dilations[0] + 1} context)"
    return ""


def _join_hint(text: str, framework: str) -> str:
    """Why the branches could not be concatenated (from the framework's message), or ''."""
    import re

    if not ("Concatenate" in text or "matching shapes" in text or "Sizes of tensors must match" in text):
        return ""
    sizes = [int(v) for v in re.findall(r"Expected size (\d+) but got size (\d+)", text)[0]] if framework == "torch" \
        and re.search(r"Expected size (\d+) but got size (\d+)", text) else \
        [int(v) for pair in re.findall(r"\(None, (\d+), (\d+), \d+\)", text) for v in pair]
    if 1 in sizes and any(v > 1 for v in sizes):
        how = ("layers.UpSampling2D(size=(H, W)) or keras.ops.broadcast_to/resize"
               if framework == "keras" else "F.interpolate(pooled, size=x.shape[-2:]) or .expand(-1, -1, H, W)")
        return (f"the image-pooling branch is still 1x1 when the branches are concatenated: upsample the pooled "
                f"branch back to the feature size ({how}) before joining it with the others")
    same = "padding='same'" if framework == "keras" else "padding=dilation (the 'same' padding)"
    return (f"the branches have different sizes ({', '.join(map(str, sorted(set(sizes))))}): give every 3x3 atrous "
            f"conv {same} so each branch keeps H and W")


def _branches_hint(got: int, expected: int) -> str:
    return (
        f"it has {got} trainable parameters but the course's ASPP of the same configuration has {expected}: "
        "use one 1x1 branch, one 3x3 branch per atrous rate and an image-pooling branch (each conv without "
        "bias + BatchNorm + ReLU), then a 1x1 projection (conv without bias + BatchNorm + ReLU)"
    )


@check
def check_keras_aspp(build_fn) -> None:
    """Check a Keras ASPP building block: ``build_fn(filters, atrous_rates, name="aspp")(x)`` -> (B, H, W, filters)."""
    import keras

    from ..keras.deeplab import ASPP as ReferenceASPP

    inputs = keras.Input((_SIZE, _SIZE, _IN))
    try:
        outputs = build_fn(_FILTERS, _RATES, name="aspp")(inputs)
    except NotImplementedError:
        raise not_written(function_name(build_fn, "ASPP")) from None
    except Exception as error:  # noqa: BLE001
        hint = _join_hint(str(error), "keras")
        if hint:
            fail(f"ASPP({_FILTERS}, {_RATES}, name='aspp')(x) could not concatenate its branches: {hint}.")
        fail(f"ASPP({_FILTERS}, {_RATES}, name='aspp')(x) raised {type(error).__name__}: {error} - "
             "create the layers in __init__ and apply them to x in __call__.")
    shape = tuple(outputs.shape)
    if shape[1:] != (_SIZE, _SIZE, _FILTERS):
        fail(f"ASPP({_FILTERS}, {_RATES}) on a (B, {_SIZE}, {_SIZE}, {_IN}) input returned shape {shape} but "
             f"expected (None, {_SIZE}, {_SIZE}, {_FILTERS}): keep padding='same' in every branch and project "
             f"the concatenation to `filters` channels with a 1x1 conv.")
    model = keras.Model(inputs, outputs)
    ref_in = keras.Input((_SIZE, _SIZE, _IN))
    reference = keras.Model(ref_in, ReferenceASPP(_FILTERS, _RATES, name="ref")(ref_in))
    got = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    expected = int(sum(np.prod(w.shape) for w in reference.trainable_weights))

    convs = [layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, keras.layers.Conv2D)]
    dilations = sorted(tuple(layer.dilation_rate)[0] for layer in convs if tuple(layer.kernel_size) == (3, 3))
    if dilations != sorted(_RATES):
        fail(f"the 3x3 convolutions of ASPP({_FILTERS}, {list(_RATES)}) have dilation rates {dilations}"
             f"{_equal_note(dilations)} but expected {sorted(_RATES)}: give the i-th 3x3 branch "
             "dilation_rate=atrous_rates[i], so that the branches see context at different scales.")
    widths = sorted(int(layer.kernel.shape[-2]) for layer in convs) or [0]
    branches = len(_RATES) + 2
    if widths[-1] != branches * _FILTERS:
        fail(f"no convolution takes the {branches * _FILTERS} concatenated channels ({branches} branches x "
             f"{_FILTERS} filters; widest input seen: {widths[-1]}): concatenate the 1x1, the {len(_RATES)} "
             "atrous and the image-pooling branches on the channel axis before the 1x1 projection.")
    if got != expected:
        fail(_branches_hint(got, expected) + ".")
    x = np.random.default_rng(0).random((2, _SIZE, _SIZE, _IN)).astype("float32")
    y = np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))
    if not np.all(np.isfinite(y)):
        fail("the ASPP output contains NaN or inf on random input: check the image-pooling branch and the BatchNorms.")
    passed(f"Keras ASPP: output shape, {got} parameters, dilation rates {list(_RATES)}, "
           f"{branches} branches concatenated and a finite forward pass match the course's ASPP.")


@check
def check_torch_aspp(module_class) -> None:
    """Check a torch ASPP class: ``module_class(in_channels, out_channels, atrous_rates)``, (B, C, H, W) -> (B, out, H, W)."""
    import torch
    from torch import nn

    from ..torch.deeplab import ASPP as ReferenceASPP

    try:
        module = module_class(_IN, _FILTERS, _RATES)
        module.eval()
        x = torch.rand(2, _IN, _SIZE, _SIZE, generator=torch.Generator().manual_seed(0), requires_grad=True)
        y = module(x)
    except NotImplementedError:
        raise not_written(function_name(module_class, "ASPP")) from None
    except Exception as error:  # noqa: BLE001
        hint = _join_hint(str(error), "torch")
        if hint:
            fail(f"ASPP({_IN}, {_FILTERS}, {_RATES}): torch.cat got branches of different sizes "
                 f"({str(error)[:100]}): {hint}.")
        fail(f"ASPP({_IN}, {_FILTERS}, {_RATES}) on a (2, {_IN}, {_SIZE}, {_SIZE}) input raised "
             f"{type(error).__name__}: {error} - build the branches in __init__ and use them in forward.")
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != (2, _FILTERS, _SIZE, _SIZE):
        fail(f"ASPP({_IN}, {_FILTERS}, {_RATES}) returned "
             f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__} but expected a tensor of "
             f"shape (2, {_FILTERS}, {_SIZE}, {_SIZE}): use padding=dilation for the 3x3 branches, upsample the "
             "pooled branch to the feature size and project to out_channels with a 1x1 conv.")
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    dilations = sorted(m.dilation[0] for m in convs if tuple(m.kernel_size) == (3, 3))
    if dilations != sorted(_RATES):
        fail(f"the 3x3 convolutions of ASPP({_IN}, {_FILTERS}, {list(_RATES)}) have dilations {dilations}"
             f"{_equal_note(dilations)} but expected {sorted(_RATES)}: give the i-th 3x3 branch "
             "dilation=atrous_rates[i] (and padding=dilation), so that the branches see context at different scales.")
    branches = len(_RATES) + 2
    widths = sorted(m.in_channels for m in convs) or [0]
    if widths[-1] != branches * _FILTERS:
        fail(f"no convolution takes the {branches * _FILTERS} concatenated channels ({branches} branches x "
             f"{_FILTERS} filters; widest input seen: {widths[-1]}): torch.cat the 1x1, the {len(_RATES)} "
             "atrous and the image-pooling branches along dim 1 before the 1x1 projection.")
    got = sum(p.numel() for p in module.parameters() if p.requires_grad)
    expected = sum(p.numel() for p in ReferenceASPP(_IN, _FILTERS, _RATES).parameters())
    if got != expected:
        fail(_branches_hint(got, expected) + ".")
    if not torch.isfinite(y).all():
        fail("the ASPP output contains NaN or inf on random input: check the image-pooling branch and the BatchNorms.")
    y[0, :, 0, 0].sum().backward()
    if x.grad is None or float(x.grad[0, :, -1, -1].abs().sum()) == 0.0:
        fail("the output pixel (0, 0) does not depend on the opposite corner of the input: the image-pooling "
             "branch must average over the whole image (F.adaptive_avg_pool2d(x, 1)) and be broadcast back.")
    passed(f"PyTorch ASPP: output shape, {got} parameters, dilations {list(_RATES)}, {branches} branches "
           "concatenated, image-level context and a finite forward pass match the course's ASPP.")


@check
def check_fcn_fusion(fn) -> None:
    """Check FCN-8s skip fusion: ``fn(score32, score16, score8, size) -> logits (B, C, *size)`` (PyTorch, NCHW).

    ``score32`` (B, C, h, w), ``score16`` (B, C, 2h, 2w), ``score8`` (B, C, 4h, 4w): upsample ``score32`` x2
    (bilinear, ``align_corners=False``) and add ``score16``; upsample the sum x2 and add ``score8``; upsample
    that to ``size`` (x8). Compared with ``F.interpolate`` on random score maps.
    """
    import torch
    import torch.nn.functional as F

    name = function_name(fn, "fuse")
    g = torch.Generator().manual_seed(0)
    b, c, h, w, size = 2, 3, 2, 3, (32, 48)
    s32, s16, s8 = (torch.randn(b, c, h * k, w * k, generator=g) for k in (1, 2, 4))

    def up(x, to, mode="bilinear", align=False):
        return F.interpolate(x, size=to, mode=mode, align_corners=align if mode == "bilinear" else None)

    def fused(mode="bilinear", align=False, use16=True, use8=True, average=False):
        x = up(s32, s16.shape[-2:], mode, align)
        x = (x + s16) / (2 if average else 1) if use16 else x
        x = up(x, s8.shape[-2:], mode, align)
        x = (x + s8) / (2 if average else 1) if use8 else x
        return up(x, size, mode, align)

    described = f"{name}(score32 {tuple(s32.shape)}, score16 {tuple(s16.shape)}, score8 {tuple(s8.shape)}, size={size})"
    try:
        with torch.no_grad():
            out = fn(s32.clone(), s16.clone(), s8.clone(), size)
    except NotImplementedError:
        raise not_written(name) from None
    except Exception as error:  # noqa: BLE001
        text = str(error)
        if "must match the size" in text or "Sizes of tensors" in text:
            fail(f"{described} added maps of different sizes ({text[:100]}): upsample the coarser map to the finer "
                 "one's size first (x2), then add.")
        fail(f"{described} raised {type(error).__name__}: {text[:200]}.")
    if not torch.is_tensor(out):
        fail(f"{described} returned {type(out).__name__}: return the fused logits as a tensor.")
    want = fused()
    if out.ndim == 4 and out.shape[1] in (2 * c, 3 * c) and tuple(out.shape[-2:]) == size:
        fail(f"{described} returned {out.shape[1]} channels, not {c}: FCN fuses by ADDING score maps (each has one "
             "channel per class), it does not concatenate them.")
    if tuple(out.shape) != tuple(want.shape):
        fail(f"{described} returned shape {tuple(out.shape)} but expected {tuple(want.shape)}: upsample the last sum "
             "to `size` (F.interpolate(x, size=size, ...)).")
    out = out.detach().float()
    if torch.allclose(out, want, atol=1e-5):
        passed(f"{name}: score32 -> x2 + score16 -> x2 + score8 -> x8, bilinear: the FCN-8s fusion.")
        return
    mistakes = [
        (fused(use16=False, use8=False), "it ignores score16 and score8, which is FCN-32s: add the finer score maps "
                                         "after each x2 upsampling"),
        (fused(use8=False), "it stops at FCN-16s: after the second x2 upsampling add score8 as well"),
        (fused(use16=False), "it skips score16: add score16 after the first x2 upsampling"),
        (fused(mode="nearest"), "it upsamples with nearest neighbour (blocky steps): use mode='bilinear'"),
        (fused(align=True), "it uses align_corners=True: use align_corners=False (pixel centres, as the "
                            "framework layers do)"),
        (fused(average=True), "it averages the two maps: FCN adds them (the 1x1 score convs learn the scale)"),
    ]
    for wrong, hint in mistakes:
        if torch.allclose(out, wrong, atol=1e-5):
            fail(f"{described} is wrong: {hint}.")
    fail(f"{described} differs from the FCN-8s fusion (largest difference {float((out - want).abs().max()):.3g}): "
         "x = up2(score32) + score16; x = up2(x) + score8; return the x8 upsampling of x, all bilinear.")
