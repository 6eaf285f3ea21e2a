"""course_utils.explorer: drive the widgets programmatically and check the numbers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

from course_utils import metrics as M
from course_utils.explorer import SegmentationExplorer


def _binary(n=3, size=16, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(n, size, size, 1)).astype(np.float32)
    masks = (rng.uniform(size=(n, size, size)) < 0.3).astype(np.int64)
    p1 = np.clip(0.6 * masks + 0.4 * rng.uniform(size=masks.shape), 0, 1)
    probs = np.stack([1 - p1, p1], axis=-1).astype(np.float32)
    return images, masks, probs


def _multi(n=2, size=16, k=4, seed=1):
    rng = np.random.default_rng(seed)
    images = rng.uniform(size=(n, size, size, 3)).astype(np.float32)
    masks = rng.integers(0, k, (n, size, size))
    logits = rng.normal(size=(n, size, size, k)) + 2.0 * np.eye(k)[masks]
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return images, masks, probs.astype(np.float32)


def test_binary_threshold_and_sample_drive_the_metrics():
    images, masks, probs = _binary()
    ex = SegmentationExplorer(images, masks, probs, class_names=("cell", "membrane"))
    assert ex.class_selector is None and ex.threshold_slider is not None
    for sample, threshold in [(0, 0.5), (2, 0.3), (1, 0.9)]:
        ex.sample_slider.value = sample
        ex.threshold_slider.value = threshold
        pred = (probs[sample, ..., 1] >= threshold).astype(np.int64)
        np.testing.assert_array_equal(ex.current_prediction(), pred)
        m = ex.current_metrics()
        assert m["sample"] == sample and m["threshold"] == pytest.approx(threshold)
        assert m["dice"] == pytest.approx(M.dice_per_class(masks[sample], pred, 2)[1])
        assert m["iou"] == pytest.approx(M.iou_per_class(masks[sample], pred, 2)[1])
        assert m["pixel_accuracy"] == pytest.approx(M.pixel_accuracy(masks[sample], pred))
        assert m["mean_dice"] == pytest.approx(M.mean_dice(masks[sample], pred, 2))
        assert f"{m['dice']:.3f}" in ex.metrics_html.value  # the HTML follows the widgets
    ex.all_samples.value = True
    pred_all = (probs[..., 1] >= ex.threshold).astype(np.int64)
    assert ex.current_metrics()["dice"] == pytest.approx(M.dice_per_class(masks, pred_all, 2)[1])
    assert "all samples" in ex.metrics_html.value


def test_threshold_extremes():
    images, masks, probs = _binary()
    ex = SegmentationExplorer(images, masks, probs)
    ex.threshold_slider.value = 0.0
    assert ex.current_prediction().all()  # everything foreground
    ex.threshold_slider.value = 1.0
    assert ex.current_metrics()["pixel_accuracy"] == pytest.approx(
        M.pixel_accuracy(masks[0], (probs[0, ..., 1] >= 1.0).astype(int))
    )


def test_sigmoid_output_with_one_channel():
    images, masks, probs = _binary()
    ex = SegmentationExplorer(images, masks, probs[..., 1:], class_names=("cell", "membrane"))
    ex.threshold_slider.value = 0.4
    np.testing.assert_array_equal(ex.current_prediction(), probs[0, ..., 1] >= 0.4)


def test_multiclass_class_selection_and_opacity():
    images, masks, probs = _multi()
    names = ("background", "disc", "square", "triangle")
    ex = SegmentationExplorer(images, masks, probs, class_names=names)
    assert ex.threshold_slider is None
    assert ex.selected_classes == (1, 2, 3)
    pred = probs[0].argmax(-1)
    np.testing.assert_array_equal(ex.current_prediction(), pred)
    ex.class_selector.value = (2,)
    m = ex.current_metrics()
    assert m["classes"] == ["square"]
    assert m["dice"] == pytest.approx(M.dice_per_class(masks[0], pred, 4)[2])
    ex.class_selector.value = (1, 3)
    assert ex.current_metrics()["iou"] == pytest.approx(np.nanmean(M.iou_per_class(masks[0], pred, 4)[[1, 3]]))
    ex.opacity_slider.value = 0.9
    fig = ex.figure()
    assert len(fig.axes) >= 4 and fig.axes[0].get_title() == "truth"
    assert ex.current_metrics()["mean_iou"] == pytest.approx(M.mean_iou(masks[0], pred, 4))


def test_widget_is_a_displayable_container():
    import ipywidgets

    images, masks, probs = _binary(n=1)
    ex = SegmentationExplorer(images, masks, probs)
    assert isinstance(ex.widget, ipywidgets.VBox)
    assert ex.sample_slider.max == 0


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda i, m, p: (i, m, np.log(p + 1e-6)), "softmax"),
        (lambda i, m, p: (i, m, p.transpose(0, 3, 1, 2)), "channels-first|share"),
        (lambda i, m, p: (i, m[..., None], p), r"\(N, H, W\)"),
        (lambda i, m, p: (i[0], m, p), "batch"),
    ],
)
def test_bad_inputs_name_the_fix(change, match):
    with pytest.raises(ValueError, match=match):
        SegmentationExplorer(*change(*_binary()))
