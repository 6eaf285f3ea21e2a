"""Fuzz test: random shapes, dtypes, NaNs and value ranges fed to the public entry points.

Each call must either work or raise the course's own clear error: a ValueError or TypeError (or a
FileNotFoundError for a missing folder) raised by a ``raise`` statement in ``course_utils`` - never an
IndexError, a RuntimeError or a ValueError from inside NumPy, PIL, TensorFlow or PyTorch.

Inputs are drawn around the valid case (a consistent batch of images, masks and logits) and then spoiled
one way at a time (wrong dtype, NaN/inf, 0..255, labels out of range, a swapped or missing axis, an
empty axis), plus arrays of arbitrary shape. Bounded examples keep it within seconds per target.
"""

from __future__ import annotations

import tempfile
import traceback
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_utils import data, losses, metrics, tiling, viz

FUZZ = settings(max_examples=8, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FEW = settings(max_examples=4, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [np.uint8, np.int32, np.int64, np.float32, np.float64, np.bool_]
ALLOWED = (ValueError, TypeError, FileNotFoundError)


def works_or_clear_error(call, *args, **kwargs):
    """Run ``call``; an exception must be one of ours, raised in course_utils, with a sentence that names a fix."""
    try:
        return call(*args, **kwargs)
    except ALLOWED as error:
        frames = traceback.extract_tb(error.__traceback__)
        where = frames[-1].filename if frames else ""
        assert "course_utils" in where.replace("\\", "/"), (
            f"{type(error).__name__} from {where}:{frames[-1].lineno if frames else '?'} (not the course's own "
            f"error): {error}")
        message = str(error)
        assert len(message) > 30 and (":" in message or "." in message), f"unclear message: {message!r}"
        return error
    # Anything else (IndexError, RuntimeError, KeyError, tf.errors..., torch errors) propagates and fails.


def _values(rng, n, kind):
    if kind == "unit":
        return rng.uniform(0, 1, n)
    if kind == "labels":
        return rng.integers(-2, 7, n).astype(np.float64)
    if kind == "wide":
        return rng.normal(0, 300, n)
    return rng.choice([np.nan, np.inf, -np.inf, 0.0, 1.0, 255.0, -1.0, 0.5], n)


def _cast(values, dtype):
    if np.dtype(dtype).kind in "biu":
        values = np.nan_to_num(values, nan=0.0, posinf=300.0, neginf=-300.0)
        if dtype is np.bool_:
            return values > 0.5
        info = np.iinfo(dtype)
        return np.clip(np.round(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


@st.composite
def any_array(draw, min_dims=0, max_dims=5):
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=min_dims, max_size=max_dims)))
    dtype = draw(st.sampled_from(DTYPES))
    kind = draw(st.sampled_from(["unit", "labels", "wide", "special"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    return _cast(_values(rng, int(np.prod(shape)), kind), dtype).reshape(shape)


SPOILS = ["none", "dtype", "nan", "scale255", "label_range", "transpose", "drop_axis", "add_axis", "empty"]


@st.composite
def batch(draw, spoil, targets=("images", "masks", "logits")):
    """(images NHWC, masks, logits NHWC, num_classes, ignore_index) around a valid batch, spoiled by ``spoil``.

    Every kind of spoiling is a pytest parameter (hypothesis alone seldom picks the rarer ones).
    """
    n, h, w = draw(st.integers(1, 3)), draw(st.integers(1, 9)), draw(st.integers(1, 9))
    c = draw(st.sampled_from([1, 3]))
    k = draw(st.integers(1, 4))
    ignore_index = draw(st.sampled_from([None, None, 255, -1]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    images = rng.uniform(0, 1, (n, h, w, c)).astype(np.float32)
    classes = max(k, 2)
    masks = rng.integers(0, classes, (n, h, w)).astype(np.int64)
    if ignore_index is not None and draw(st.booleans()):
        masks[0, 0, 0] = ignore_index
    logits = rng.normal(0, 3, (n, h, w, k)).astype(np.float32)
    target = draw(st.sampled_from(list(targets)))
    arrays = {"images": images, "masks": masks, "logits": logits}
    a = arrays[target]
    if spoil == "dtype":
        a = _cast(a.astype(np.float64), draw(st.sampled_from(DTYPES)))
    elif spoil == "nan" and a.dtype.kind == "f":
        a = a.copy()
        a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    elif spoil == "nan":
        a = a.astype(np.float32)
        a.flat[0] = np.nan
    elif spoil == "scale255":
        a = (a * 255).astype(draw(st.sampled_from([np.uint8, np.float32])))
    elif spoil == "label_range":
        a = a.copy()
        a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([classes, 11, 255, -1, -5]))
    elif spoil == "transpose" and a.ndim == 4:
        a = a.transpose(0, 3, 1, 2)
    elif spoil == "transpose":
        a = a.transpose(0, 2, 1)
    elif spoil == "drop_axis":
        a = a[0]
    elif spoil == "add_axis":
        a = a[..., None]
    elif spoil == "empty":
        a = a[:0]
    arrays[target] = a
    return arrays["images"], arrays["masks"], arrays["logits"], classes, ignore_index


# ---------------------------------------------------------------------------- validators, metrics, NumPy losses
@settings(FUZZ, max_examples=60)
@given(any_array(), st.integers(-1, 5), st.sampled_from([None, 255, -1]))
def test_validators_on_arbitrary_arrays(array, num_classes, ignore_index):
    works_or_clear_error(data.check_images, array)
    works_or_clear_error(data.check_images, array, "image", ndim=3)
    works_or_clear_error(data.check_images, array, layout="NCHW")
    works_or_clear_error(data.check_masks, array, num_classes if num_classes > 0 else None, ignore_index)
    works_or_clear_error(data.check_logits, array)
    works_or_clear_error(data.check_probabilities, array)


@FUZZ
@pytest.mark.parametrize("spoil", SPOILS)
@given(draw_from=st.data())
def test_metrics(spoil, draw_from):
    sample = draw_from.draw(batch(spoil, ("masks", "logits")))
    _, masks, logits, classes, ignore_index = sample
    prediction = np.asarray(logits).argmax(-1) if np.asarray(logits).ndim >= 1 and np.asarray(logits).size else logits
    for fn in (metrics.confusion_matrix, metrics.mean_iou, metrics.mean_dice, metrics.iou_per_class,
               metrics.dice_per_class):
        works_or_clear_error(fn, masks, prediction, classes, ignore_index=ignore_index)
        works_or_clear_error(fn, masks, logits, classes, ignore_index=ignore_index)  # scores instead of labels
    works_or_clear_error(metrics.pixel_accuracy, masks, prediction, ignore_index=ignore_index)


@FUZZ
@pytest.mark.parametrize("spoil", SPOILS)
@given(draw_from=st.data())
def test_numpy_losses(spoil, draw_from):
    sample = draw_from.draw(batch(spoil, ("masks", "logits")))
    weights = draw_from.draw(any_array(max_dims=2))
    _, masks, logits, classes, ignore_index = sample
    for fn in (losses.cross_entropy, losses.focal_loss):
        works_or_clear_error(fn, logits, masks, ignore_index=ignore_index)
    works_or_clear_error(losses.cross_entropy, logits, masks, class_weights=weights)
    for fn in (losses.dice_loss, losses.tversky_loss, losses.binary_cross_entropy, losses.ce_dice_loss):
        works_or_clear_error(fn, logits, masks, ignore_index=ignore_index)
    works_or_clear_error(losses.soft_dice_per_class, logits, masks)


# ---------------------------------------------------------------------------- viz and tiling
@FEW
@pytest.mark.parametrize("spoil", SPOILS)
@given(draw_from=st.data())
def test_viz(spoil, draw_from):
    sample = draw_from.draw(batch(spoil, ("images", "masks")))
    images, masks, logits, classes, ignore_index = sample
    first = lambda a: a[0] if np.ndim(a) >= 1 and len(a) else a  # noqa: E731
    works_or_clear_error(viz.colorize_mask, masks, classes, ignore_index)
    works_or_clear_error(viz.overlay, first(images), first(masks), classes)
    works_or_clear_error(viz.error_map, masks, masks, ignore_index=ignore_index)
    works_or_clear_error(viz.show_samples, images, masks, classes, n=1)
    works_or_clear_error(viz.show_predictions, images, masks, masks, classes, n=1)


@FUZZ
@pytest.mark.parametrize("spoil", SPOILS)
@given(draw_from=st.data(), tile=st.integers(1, 10), overlap=st.integers(0, 6), multiple=st.sampled_from([None, 1, 2, 4]))
def test_tiling(spoil, draw_from, tile, overlap, multiple):
    sample = draw_from.draw(batch(spoil, ("images",)))
    images, _, _, classes, _ = sample
    image = images[0] if np.ndim(images) == 4 and len(images) else images

    def predict_fn(tiles):
        assert tiles.dtype.kind == "f" and np.isfinite(tiles).all() and tiles.min() >= 0 and tiles.max() <= 1
        return np.zeros(tiles.shape[:3] + (classes,), np.float32)

    works_or_clear_error(tiling.predict_tiled, predict_fn, image, tile, overlap, classes, multiple_of=multiple)


# ---------------------------------------------------------------------------- the folder loader
@settings(FEW, max_examples=15)
@given(st.lists(st.tuples(any_array(min_dims=2, max_dims=3), any_array(min_dims=2, max_dims=3),
                          st.sampled_from(["png", "bytes", "empty"])), min_size=1, max_size=3),
       st.sampled_from([None, 2, 3]))
def test_folder_loader(files, num_classes):
    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        images_dir, masks_dir = Path(folder, "images"), Path(folder, "masks")
        images_dir.mkdir()
        masks_dir.mkdir()
        for i, (image, mask, how) in enumerate(files):
            for array, where in ((image, images_dir), (mask, masks_dir)):
                path = where / f"f{i}.png"
                if how == "bytes":
                    path.write_bytes(array.tobytes()[:64] + b"\x89PNG")
                elif how == "empty":
                    path.write_bytes(b"")
                else:
                    try:
                        Image.fromarray(np.ascontiguousarray(array)).save(path)
                    except (TypeError, ValueError, KeyError, OSError, SystemError):
                        path.write_bytes(b"not an image")
        works_or_clear_error(data.load_folder, images_dir, masks_dir, num_classes=num_classes)


# ---------------------------------------------------------------------------- PyTorch and Keras losses
@FUZZ
@pytest.mark.parametrize("spoil", SPOILS)
@given(draw_from=st.data())
def test_torch_losses(spoil, draw_from):
    sample = draw_from.draw(batch(spoil, ("masks", "logits")))
    torch = pytest.importorskip("torch")
    from course_utils.torch import losses as tl

    _, masks, logits, classes, ignore_index = sample
    logits_t = torch.from_numpy(np.ascontiguousarray(np.asarray(logits, np.float32)))
    if logits_t.ndim == 4:
        logits_t = logits_t.permute(0, 3, 1, 2) if np.asarray(logits).shape[-1] <= 4 else logits_t
    masks_t = torch.from_numpy(np.ascontiguousarray(masks))
    for cls in (tl.CrossEntropyLoss, tl.FocalLoss, tl.CEDiceLoss, tl.DiceLoss, tl.TverskyLoss,
                tl.BinaryCrossEntropyLoss):
        works_or_clear_error(lambda: cls(ignore_index=ignore_index)(logits_t, masks_t))


@settings(FEW, max_examples=5)
@pytest.mark.parametrize("spoil", SPOILS)
@given(draw_from=st.data())
def test_keras_losses(spoil, draw_from):
    sample = draw_from.draw(batch(spoil, ("masks", "logits")))
    pytest.importorskip("keras")
    from course_utils.keras import losses as kl

    _, masks, logits, classes, ignore_index = sample
    for cls in (kl.CrossEntropyLoss, kl.FocalLoss, kl.CEDiceLoss, kl.DiceLoss, kl.TverskyLoss,
                kl.BinaryCrossEntropyLoss):
        works_or_clear_error(lambda: cls(ignore_index=ignore_index)(masks, logits))
