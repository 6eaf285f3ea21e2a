"""course_utils.viz: every function returns a Figure with the expected panels and fixed colours."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.figure import Figure

from course_utils import viz

NAMES = ("background", "disc", "square", "triangle")


def _data(n=3, size=24, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, (n, size, size, channels)).astype(np.float32)
    masks = np.zeros((n, size, size), np.int64)
    masks[:, 2:10, 2:10] = 1
    masks[:, 12:20, 12:20] = 2
    masks[:, 0:3, 20:24] = 3
    return images, masks


def _image_axes(fig):
    return [ax for ax in fig.axes if ax.images]


def test_class_colors_are_fixed_and_background_is_dark():
    c4 = viz.class_colors(4)
    c8 = viz.class_colors(8)
    assert c4.shape == (4, 3) and c4.dtype == np.float32
    np.testing.assert_array_equal(c4, c8[:4])  # same colour per class whatever num_classes
    assert c4[0].max() < 0.2  # background dark
    assert len({tuple(c) for c in viz.class_colors(20)}) == 20  # all distinct, even beyond the palette
    assert np.all((viz.class_colors(30) >= 0) & (viz.class_colors(30) <= 1))


def test_colorize_mask_uses_the_palette():
    mask = np.array([[0, 1], [2, 3]])
    rgb = viz.colorize_mask(mask, 4)
    assert rgb.shape == (2, 2, 3)
    np.testing.assert_array_equal(rgb[1, 0], viz.class_colors(4)[2])
    ignored = viz.colorize_mask(np.array([[0, 255]]), 2, ignore_index=255)
    np.testing.assert_allclose(ignored[0, 1], viz.IGNORE_COLOR)  # its own neutral grey
    with pytest.raises(ValueError, match="255"):
        viz.colorize_mask(np.array([[0, 255]]), 2)


def test_overlay_value_at_a_marked_pixel():
    image = np.full((5, 5, 1), 0.4, np.float32)  # grey image
    mask = np.zeros((5, 5), int)
    mask[2, 3] = 2
    out = viz.overlay(image, mask, 3, alpha=0.25)
    assert out.shape == (5, 5, 3)
    expected = 0.75 * 0.4 + 0.25 * viz.class_colors(3)[2]
    np.testing.assert_allclose(out[2, 3], expected, rtol=1e-6)
    np.testing.assert_allclose(out[0, 0], [0.4, 0.4, 0.4])  # background keeps the image
    full = viz.overlay(image, mask, 3, alpha=1.0, include_background=True)
    np.testing.assert_allclose(full[0, 0], viz.class_colors(3)[0])
    with pytest.raises(ValueError, match="same pixels"):
        viz.overlay(image, np.zeros((4, 4), int), 3)


def test_error_map_colours_fp_and_fn():
    t = np.array([[0, 1, 1, 2]])
    p = np.array([[1, 1, 0, 1]])
    codes = viz.error_codes(t, p)
    np.testing.assert_array_equal(codes, [[2, 1, 3, 4]])  # FP, TP, FN, wrong class
    rgb = viz.error_map(t, p)
    np.testing.assert_allclose(rgb[0, 0], viz.ERROR_COLORS[2])
    np.testing.assert_allclose(rgb[0, 2], viz.ERROR_COLORS[3])
    # with a positive class, other classes count as negatives
    np.testing.assert_array_equal(viz.error_codes(t, p, positive_class=1), [[2, 1, 3, 2]])
    np.testing.assert_array_equal(viz.error_codes(np.array([[255, 0]]), np.array([[1, 0]]), ignore_index=255), [[5, 0]])


def test_show_samples_layout_and_grey_images():
    images, masks = _data(channels=1)
    fig = viz.show_samples(images, masks, 4, NAMES, n=2, title="samples")
    assert isinstance(fig, Figure)
    axes = _image_axes(fig)
    assert len(axes) == 6
    assert [ax.get_title() for ax in axes[:3]] == ["image", "mask", "overlay"]
    assert axes[0].images[0].get_cmap().name == "gray"  # (H, W, 1) shown in grey
    assert fig._suptitle.get_text() == "samples"
    assert fig.legends and [t.get_text() for t in fig.legends[0].get_texts()] == list(NAMES)
    # one sample without the batch axis
    assert len(_image_axes(viz.show_samples(images[0], masks[0], 4))) == 3


def test_show_predictions_has_four_panels_per_row_and_legends():
    images, masks = _data()
    pred = masks.copy()
    pred[:, 2:10, 2:5] = 0
    fig = viz.show_predictions(images, masks, pred, 4, NAMES, n=5)  # n larger than N
    axes = _image_axes(fig)
    assert len(axes) == 12
    assert [ax.get_title() for ax in axes[:4]] == ["image", "truth", "prediction", "error map"]
    # by hand: disc 64 px, 24 of them predicted background -> Dice 2*40/(64+40); background 436 px, all found,
    # plus 24 wrong ones -> 2*436/(436+460); square and triangle perfect
    assert axes[2].get_xlabel() == f"mean Dice of 4 classes {(872 / 896 + 80 / 104 + 2) / 4:.3f}"
    one = viz.show_predictions(images, masks, pred, 4, NAMES, n=1, score_class=1)
    assert _image_axes(one)[2].get_xlabel() == f"disc Dice {80 / 104:.3f}"
    with pytest.raises(ValueError, match="score_class"):
        viz.show_predictions(images, masks, pred, 4, NAMES, n=1, score_class=4)
    labels = {t.get_text() for leg in fig.legends for t in leg.get_texts()}
    assert {"false positive", "false negative", "disc"} <= labels
    with pytest.raises(ValueError, match="argmax"):
        viz.show_predictions(images, masks, np.zeros(masks.shape + (4,)), 4)


def test_nchw_images_are_refused_with_a_hint():
    images, masks = _data()
    with pytest.raises(ValueError, match="NHWC"):
        viz.show_samples(images.transpose(0, 3, 1, 2), masks, 4)


def test_plot_class_frequencies():
    _, masks = _data()
    fig = viz.plot_class_frequencies(masks, 4, NAMES)
    (ax,) = fig.axes
    assert len(ax.patches) == 4 and ax.get_title()
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights) == pytest.approx(1.0)
    np.testing.assert_allclose(ax.patches[2].get_facecolor()[:3], viz.class_colors(4)[2], atol=1e-6)


def test_plot_history_from_dict_and_keras_like_object():
    hist = {"loss": [1.0, 0.5, 0.4], "val_loss": [1.1, 0.7, 0.8], "val_dice": [0.2, 0.5, 0.6], "lr": [1, 1, 1]}
    fig = viz.plot_history(hist, title="run")
    assert [ax.get_title() for ax in fig.axes] == ["loss", "dice"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[:2] == ["train", "validation"]

    class FakeHistory:
        history = {"loss": [3.0, 2.0], "val_loss": [3.5, 2.5], "dice": [0.1, 0.2], "val_dice": [0.1, 0.3]}

    fig = viz.plot_history(FakeHistory(), metrics=("dice",))
    assert [ax.get_title() for ax in fig.axes] == ["dice"]
    with pytest.raises(KeyError, match="available"):
        viz.plot_history(hist, metrics=("iou",))
    with pytest.raises(TypeError):
        viz.plot_history([1, 2, 3])


def test_plot_confusion_matrix():
    cm = np.array([[50, 5, 0], [10, 30, 0], [0, 0, 0]])
    fig = viz.plot_confusion_matrix(cm, ["a", "b", "c"])
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == 9 and "n/a" in texts  # absent class row
    assert texts[0].startswith("90.9%")
    assert ax.get_xlabel() == "predicted class" and ax.get_ylabel() == "true class"
    raw = viz.plot_confusion_matrix(cm, normalize=False)
    assert raw.axes[0].texts[0].get_text() == "50"


def test_compare_bar_chart_groups_and_legend():
    table = {"CE": {"disc": 0.8, "square": 0.7}, "Dice": {"disc": 0.85, "square": float("nan")}}
    fig = viz.compare_bar_chart(table, "per-class Dice", "Dice")
    ax = fig.axes[0]
    assert len(ax.patches) == 4
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["CE", "Dice"]
    assert ax.get_title() == "per-class Dice" and ax.get_ylabel() == "Dice"
    assert "n/a" in [t.get_text() for t in ax.texts]
    with pytest.raises(TypeError, match="dict of dicts"):
        viz.compare_bar_chart({"a": 1.0}, "t", "y")


def _tick_boxes(fig):
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    return [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()]


@pytest.mark.parametrize(
    "categories",
    [
        ["Dice", "boundary F1 (tol 1)", "boundary F1 (tol 2)", "Boundary IoU (w 2)"],        # lecture 06
        ["pixel accuracy", "Dice membrane", "IoU membrane", "mean Dice"],                     # lecture 06
        [f"a rather long category name number {i}" for i in range(9)],                        # needs slanting
        ["supercalifragilisticexpialidocious-" + str(i) for i in range(6)],                   # unbreakable
    ],
)
def test_compare_bar_chart_tick_labels_do_not_overlap(categories):
    table = {s: {c: 0.1 * (i + 1) for i, c in enumerate(categories)} for s in ("large object", "small object")}
    fig = viz.compare_bar_chart(table, "scores")
    fig.canvas.draw()
    boxes = sorted(_tick_boxes(fig), key=lambda b: b.x0)
    assert len(boxes) == len(categories)
    for left, right in zip(boxes, boxes[1:]):
        assert left.x1 <= right.x0, f"tick labels overlap: {left} and {right}"
    shown = [" ".join(t.get_text().split()) for t in fig.axes[0].get_xticklabels()]
    assert shown == categories                      # wrapped at spaces, no word lost or cut


def test_add_class_legend_names_every_class_in_its_mask_colour():
    fig = Figure()
    fig.add_subplot(1, 1, 1).imshow(viz.colorize_mask(np.array([[0, 1], [2, 3]]), 4))
    legend = viz.add_class_legend(fig, 4, NAMES)
    assert [t.get_text() for t in legend.get_texts()] == list(NAMES)
    colors = [tuple(patch.get_facecolor()[:3]) for patch in legend.get_patches()]
    assert np.allclose(colors, viz.class_colors(4)[:, :3])
    with pytest.raises(ValueError, match="give one per class"):
        viz.add_class_legend(fig, 4, NAMES[:2])
