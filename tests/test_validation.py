"""The course's one set of input validators (course_utils.data) and the entry points that use them.

Each test here feeds an input that used to pass silently or fail deep inside NumPy/PIL/TensorFlow/PyTorch
(a void label without ignore_index, NaN probabilities, a uint8 image in 0..255, a transposed array) and
checks the one-sentence error that names the problem and the fix.
"""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import data, losses
from course_utils.data import (
    check_class_axis,
    check_images,
    check_logits,
    check_masks,
    check_probabilities,
    label_range_message,
)

RANGE_SENTENCE = r"target values must be in 0\.\.2 \(or ignore_index\), found 0\.\.3: map labels to class indices " \
                 r"or pass ignore_index\."


# ---------------------------------------------------------------------------- the validators themselves
def test_check_images_accepts_the_convention_and_names_each_fix():
    good = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype(np.float32)
    assert check_images(good) is not None
    with pytest.raises(TypeError, match=r"float in \[0, 1\], got dtype uint8 \(values 0\.\.254\).*/ 255"):
        check_images((good * 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"must be in \[0, 1\], found values 0\.07668\.\.254\.3: divide by 255"):
        check_images(good * 255)
    with pytest.raises(ValueError, match="undo the normalisation"):
        check_images(good - 0.5)
    nan = good.copy()
    nan[0, 1, 2, 0] = np.nan
    with pytest.raises(ValueError, match="1 NaN or infinite"):
        check_images(nan)
    with pytest.raises(ValueError, match=r"looks channels-first.*transpose\(0, 2, 3, 1\)"):
        check_images(good.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match=r"looks channels-last; PyTorch takes \(N, C, H, W\).*permute\(0, 3, 1, 2\)"):
        check_images(good, layout="NCHW")
    assert check_images(good.transpose(0, 3, 1, 2), layout="NCHW").shape == (2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"images\[None\]"):
        check_images(good[0])
    with pytest.raises(ValueError, match=r"image\[\.\.\., None\]"):
        check_images(good[0, ..., 0], "image", ndim=3)


def test_check_masks_labels_and_dtypes():
    masks = np.array([[[0, 1], [2, 255]]])
    assert check_masks(masks, 3, ignore_index=255).dtype == np.int64
    with pytest.raises(ValueError, match=r"masks values must be in 0\.\.2 \(or ignore_index\), found 0\.\.255"):
        check_masks(masks, 3)
    with pytest.raises(TypeError, match="NaN"):
        check_masks(np.array([[[0.0, np.nan]]]))
    with pytest.raises(TypeError, match="argmax"):
        check_masks(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"drop the channel axis"):
        check_masks(np.zeros((1, 2, 2, 1), int))
    assert label_range_message("target", 0, 3, 3) == (
        "target values must be in 0..2 (or ignore_index), found 0..3: map labels to class indices or pass ignore_index.")


def test_check_probabilities_refuses_nan_logits_and_wrong_axis():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1, 4, 4, 3))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert check_probabilities(probs) is not None
    with pytest.raises(ValueError, match="look like logits"):
        check_probabilities(logits)
    wrong_axis = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    with pytest.raises(ValueError, match="sum to 1 over the class axis"):
        check_probabilities(wrong_axis)
    probs[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        check_probabilities(probs)
    assert check_probabilities(rng.uniform(size=(1, 4, 4, 1))) is not None  # sigmoid: no sum rule
    with pytest.raises(ValueError, match="diverged"):
        check_logits(np.array([[[[np.inf]]]]))


def test_check_class_axis_detects_the_other_frameworks_layout():
    with pytest.raises(ValueError, match=r"transpose\(0, 2, 3, 1\)"):
        check_class_axis((2, 3, 8, 8), (2, 8, 8), "NHWC")
    with pytest.raises(ValueError, match=r"permute\(0, 3, 1, 2\)"):
        check_class_axis((2, 8, 8, 3), (2, 8, 8), "NCHW")
    check_class_axis((2, 8, 8, 3), (2, 8, 8), "NHWC")
    check_class_axis((2, 3, 8, 8), (2, 8, 8), "NCHW")


# ---------------------------------------------------------------------------- NumPy losses
def test_numpy_losses_refuse_nan_transposed_logits_and_wrong_class_weights():
    logits = np.zeros((1, 4, 4, 3))
    target = np.zeros((1, 4, 4), int)
    with pytest.raises(ValueError, match=r"transpose\(0, 2, 3, 1\)"):
        losses.cross_entropy(logits.transpose(0, 3, 1, 2), target)
    bad = logits.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        losses.dice_loss(bad, target)
    with pytest.raises(ValueError, match="class_weights has 2 entries but the logits have 3 classes"):
        losses.cross_entropy(logits, target, class_weights=[1.0, 2.0])
    target[0, 0, 0] = 3
    with pytest.raises(ValueError, match=RANGE_SENTENCE):
        losses.focal_loss(logits, target)


# ---------------------------------------------------------------------------- PyTorch losses
TORCH_LOSSES = ["CrossEntropyLoss", "FocalLoss", "CEDiceLoss", "DiceLoss", "TverskyLoss"]


@pytest.mark.parametrize("name", TORCH_LOSSES)
def test_torch_losses_refuse_a_void_label_with_one_sentence(name):
    torch = pytest.importorskip("torch")
    from course_utils.torch import losses as tl

    logits = torch.zeros(1, 3, 4, 4)
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 0, 0] = 3  # a void label left in: classes are 0..2
    with pytest.raises(ValueError, match=f"^{name}: " + RANGE_SENTENCE):
        getattr(tl, name)()(logits, target)
    target[0, 0, 0] = -1
    with pytest.raises(ValueError, match=f"^{name}: target values must be in 0..2"):
        getattr(tl, name)()(logits, target)
    target[0, 0, 0] = 255
    value = getattr(tl, name)(ignore_index=255)(logits, target)  # the same label as ignore_index is fine
    assert torch.isfinite(value)


def test_torch_binary_loss_and_class_weights_and_axis_order():
    torch = pytest.importorskip("torch")
    from course_utils.torch import losses as tl

    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 1, 1] = 255  # a 0/255 mask that was never mapped to 0/1
    with pytest.raises(ValueError, match=r"BinaryCrossEntropyLoss: target values must be in 0\.\.1"):
        tl.BinaryCrossEntropyLoss()(torch.zeros(1, 1, 4, 4), target)
    target[0, 1, 1] = 0
    with pytest.raises(ValueError, match="class_weights has 2 entries but the logits have 3"):
        tl.CrossEntropyLoss(class_weights=[1.0, 2.0])(torch.zeros(1, 3, 4, 4), target)
    with pytest.raises(ValueError, match=r"permute\(0, 3, 1, 2\)"):
        tl.CrossEntropyLoss()(torch.zeros(1, 4, 4, 3), target)


def test_torch_label_check_is_explicit_not_gathers_error(monkeypatch):
    """On a GPU gather's out-of-range index is a device-side assert: the loss must check before gathering."""
    torch = pytest.importorskip("torch")
    from course_utils.torch import losses as tl

    calls = []
    real_gather = torch.Tensor.gather

    def spy(self, *args, **kwargs):
        calls.append(1)
        return real_gather(self, *args, **kwargs)

    monkeypatch.setattr(torch.Tensor, "gather", spy)
    target = torch.full((1, 4, 4), 5, dtype=torch.long)
    with pytest.raises(ValueError, match="target values must be in"):
        tl.CrossEntropyLoss()(torch.zeros(1, 3, 4, 4), target)
    assert calls == []  # refused before any gather


# ---------------------------------------------------------------------------- Keras losses
KERAS_LOSSES = ["CrossEntropyLoss", "FocalLoss", "CEDiceLoss", "DiceLoss", "TverskyLoss"]


@pytest.mark.parametrize("name", KERAS_LOSSES)
def test_keras_losses_refuse_a_void_label_with_the_same_sentence(name):
    pytest.importorskip("keras")
    from course_utils.keras import losses as kl

    y_pred = np.zeros((1, 4, 4, 3), np.float32)
    y_true = np.zeros((1, 4, 4), np.int32)
    y_true[0, 0, 0] = 3
    with pytest.raises(ValueError, match=f"^{name}: " + RANGE_SENTENCE):
        getattr(kl, name)()(y_true, y_pred)
    y_true[0, 0, 0] = 255
    assert np.isfinite(float(getattr(kl, name)(ignore_index=255)(y_true, y_pred)))


def test_keras_label_check_inside_a_graph_and_under_xla():
    """model.fit runs the loss in a graph: an assertion with the sentence; XLA drops assertions: NaN, not 0."""
    pytest.importorskip("keras")
    import tensorflow as tf

    from course_utils.keras import losses as kl

    y_pred = np.zeros((1, 4, 4, 3), np.float32)
    y_true = np.zeros((1, 4, 4), np.int32)
    graph = tf.function(lambda t, p: kl.CrossEntropyLoss()(t, p))
    xla = tf.function(lambda t, p: kl.CrossEntropyLoss()(t, p), jit_compile=True)
    assert float(graph(y_true, y_pred)) == pytest.approx(np.log(3), rel=1e-5)
    assert float(xla(y_true, y_pred)) == pytest.approx(np.log(3), rel=1e-5)
    y_true[0, 0, 0] = 3
    with pytest.raises(tf.errors.InvalidArgumentError, match="target values must be in 0..2 .*map labels"):
        graph(y_true, y_pred)
    assert np.isnan(float(xla(y_true, y_pred)))


def test_keras_binary_loss_and_axis_order():
    pytest.importorskip("keras")
    from course_utils.keras import losses as kl

    y_true = np.zeros((1, 4, 4), np.int32)
    y_true[0, 1, 1] = 255
    with pytest.raises(ValueError, match=r"BinaryCrossEntropyLoss: target values must be in 0\.\.1"):
        kl.BinaryCrossEntropyLoss()(y_true, np.zeros((1, 4, 4, 1), np.float32))
    y_true[0, 1, 1] = 0
    with pytest.raises(ValueError, match=r"transpose\(0, 2, 3, 1\)"):
        kl.CrossEntropyLoss()(y_true, np.zeros((1, 3, 4, 4), np.float32))
    with pytest.raises(TypeError, match="integer class indices"):
        kl.CrossEntropyLoss()(y_true.astype(np.float32), np.zeros((1, 4, 4, 3), np.float32))


# ---------------------------------------------------------------------------- other entry points
def test_predict_tiled_refuses_uint8_like_predict():
    from course_utils.tiling import predict_tiled

    image = (np.random.default_rng(0).uniform(size=(16, 16, 1)) * 255).astype(np.uint8)
    seen = []

    def predict_fn(tiles):
        seen.append(tiles.dtype)
        return np.zeros(tiles.shape[:3] + (2,), np.float32)

    with pytest.raises(TypeError, match=r"float in \[0, 1\], got dtype uint8.*/ 255"):
        predict_tiled(predict_fn, image, tile_size=8, overlap=2, num_classes=2)
    with pytest.raises(ValueError, match="NaN"):
        predict_tiled(predict_fn, np.full((16, 16, 1), np.nan, np.float32), tile_size=8, overlap=2, num_classes=2)
    assert seen == []  # the model never saw the bad tiles
    with pytest.raises(ValueError, match="predict_fn returned NaN"):
        predict_tiled(lambda t: np.full(t.shape[:3] + (2,), np.nan, np.float32),
                      np.zeros((16, 16, 1), np.float32), tile_size=8, overlap=2, num_classes=2)


def test_explorer_refuses_nan_probabilities():
    pytest.importorskip("ipywidgets")
    from course_utils.explorer import SegmentationExplorer

    images = np.zeros((1, 4, 4, 1), np.float32)
    masks = np.zeros((1, 4, 4), np.int64)
    probs = np.full((1, 4, 4, 2), 0.5, np.float32)
    SegmentationExplorer(images, masks, probs)
    probs[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SegmentationExplorer(images, masks, probs)
    with pytest.raises(ValueError, match=r"masks_true values must be in 0\.\.1"):
        SegmentationExplorer(images, masks + 2, np.full((1, 4, 4, 2), 0.5, np.float32))


def test_predict_refuses_nan_and_0_255_images():
    torch = pytest.importorskip("torch")
    from course_utils.torch import train

    model = torch.nn.Conv2d(1, 2, 1)
    images = np.zeros((1, 4, 4, 1), np.float32)
    assert train.predict(model, images).shape == (1, 4, 4, 2)
    with pytest.raises(ValueError, match="divide by 255"):
        train.predict(model, images + 200.0)
    images[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train.predict(model, images)


def test_viz_refuses_nan_images_and_masks():
    from course_utils import viz

    with pytest.raises(ValueError, match="NaN"):
        viz.overlay(np.full((4, 4), np.nan), np.zeros((4, 4), int), 2)
    with pytest.raises(ValueError, match="NaN"):
        viz.colorize_mask(np.array([[0.0, np.inf]]), 2)


def test_folder_loader_names_an_unreadable_file(tmp_path):
    from PIL import Image

    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "images" / "a.png")
    (tmp_path / "masks" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    with pytest.raises(ValueError, match=r"a\.png is not a readable image.*re-export it"):
        data.load_folder(tmp_path / "images", tmp_path / "masks")


def test_pipelines_refuse_nan_and_0_255_images():
    torch = pytest.importorskip("torch")  # noqa: F841
    from course_utils.torch.data import SegmentationDataset

    images = np.zeros((2, 4, 4, 1), np.float32)
    masks = np.zeros((2, 4, 4), np.int64)
    assert len(SegmentationDataset(images, masks)) == 2
    with pytest.raises(TypeError, match=r"/ 255"):
        SegmentationDataset((images * 255).astype(np.uint8), masks)
    images[1, 2, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        SegmentationDataset(images, masks)
