"""Your own data (issue 14): DatasetInfo, the three mask layouts, the void label, flips, many-class figures.

Each trap a new user met on a multi-class street-scene set with a void label has a test here:
the void label loaded as an extra class, up-down flips that could not be switched off, figures that take
no ``ignore_index`` although their error message advises it, and colliding palette colours for 11 classes.
(Deterministic validation crops: tests/test_pipelines.py; ``steps_per_epoch``: tests/test_train_torch.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from course_utils import data as D
from course_utils import datasets as S
from course_utils import metrics, viz


def _street_folder(tmp_path, n=3, num_classes=11, void=255):
    """A street-scene-like folder: 11 classes in horizontal bands (class 0 = sky on top) and a void bottom row."""
    images_dir, masks_dir = tmp_path / "images", tmp_path / "masks"
    images_dir.mkdir()
    masks_dir.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        mask = np.repeat(np.arange(num_classes, dtype=np.uint8), 2)[:, None] * np.ones((1, 8), np.uint8)
        mask[-1] = void
        Image.fromarray(mask).save(masks_dir / f"f{i}.png")
        Image.fromarray(rng.integers(0, 256, mask.shape + (3,), dtype=np.uint8)).save(images_dir / f"f{i}.png")
    return images_dir, masks_dir


# ------------------------------------------------------------------ trap 1: the void label becomes a 12th class
def test_load_folder_never_makes_the_void_label_a_class(tmp_path):
    images_dir, masks_dir = _street_folder(tmp_path)
    with pytest.raises(ValueError, match=r"looks like a void.*ignore_index=255"):
        D.load_folder(images_dir, masks_dir)
    with pytest.raises(ValueError, match=r"does not guess the number of classes.*num_classes="):
        D.load_folder(images_dir, masks_dir, ignore_index=255)  # the ignore label alone does not give K
    images, masks = D.load_folder(images_dir, masks_dir, num_classes=11, ignore_index=255)
    assert masks.shape == (3, 22, 8) and set(np.unique(masks)) == set(range(11)) | {255}
    # the explicit decision "it is a class" is still possible
    _, as_class = D.load_folder(images_dir, masks_dir, num_classes=12, mask_mapping={**{k: k for k in range(11)}, 255: 11})
    assert as_class.max() == 11


def test_inspect_masks_reports_classes_present_the_void_label_and_frequencies():
    masks = np.zeros((2, 4, 4), np.int64)
    masks[:, 0] = 255
    masks[:, 1] = 3
    report = D.inspect_masks(masks)
    assert report.void_candidate == 255 and report.classes_present == [0, 3]
    np.testing.assert_allclose(report.class_frequencies, [2 / 3, 0, 0, 1 / 3])  # void left out
    assert any("ignore_index=255" in n for n in report.notes) and "void" in str(report)
    assert D.void_candidate([0, 1, 2, 255]) == 255 and D.void_candidate([0, 1, 2, 3]) is None
    assert D.void_candidate([0, 255]) is None  # black/white masks: 255 is the foreground


def test_describe_folder_chooses_the_ignore_label_and_says_so(tmp_path, capsys):
    images_dir, masks_dir = _street_folder(tmp_path)
    info, report = S.describe_folder(images_dir, masks_dir, vflip=False, rotate90=False)
    assert info.num_classes == 11 and info.ignore_index == 255 and info.background is None
    assert report.ok and any("chose ignore_index=255" in n for n in report.notes)
    assert info.augment_options() == {"hflip": True, "vflip": False, "rotate90": False, "elastic": False}
    out = capsys.readouterr().out
    assert "layout: index" in out and "ignore label: 255" in out
    _, masks = D.load_folder(images_dir, masks_dir, info=info)
    assert (masks == 255).sum() == 3 * 8


# ------------------------------------------------------------------ the three layouts through the loader
@pytest.mark.parametrize("layout", S.LAYOUTS)
def test_each_mask_layout_goes_through_describe_and_the_loader(tmp_path, layout):
    root = S.make_example_folder(tmp_path / layout, layout=layout, n=4, size=32, seed=1)
    assert S.detect_layout(root / "masks") == layout
    info, report = S.describe_folder(root / "images", root / "masks", verbose=False)
    assert report.ok, report.problems
    images, masks = D.load_folder(root / "images", root / "masks", info=info)
    assert images.shape == (4, 32, 32, 3) and masks.shape == (4, 32, 32) and masks.dtype == np.int64
    valid = masks[masks != 255]
    assert valid.min() >= 0 and valid.max() < info.num_classes
    if layout == "binary":
        assert info.class_names == ("background", "foreground") and set(np.unique(masks)) == {0, 1}
    else:
        assert info.ignore_index == 255 and (masks == 255).any()
    if layout == "rgb":
        # the colour-coded masks decode to the very class indices of the "index" layout (same seed)
        index_root = S.make_example_folder(tmp_path / "idx", layout="index", n=4, size=32, seed=1)
        _, index_masks = D.load_folder(index_root / "images", index_root / "masks", num_classes=7, ignore_index=255)
        assert np.array_equal(masks, index_masks)
        assert info.class_names == S.STREET.class_names
        np.testing.assert_allclose(info.palette(), np.array(S.STREET.colors) / 255, atol=1e-6)


def test_rgb_masks_convert_to_class_index_pngs(tmp_path):
    root = S.make_example_folder(tmp_path / "rgb", layout="rgb", n=2, size=32)
    mapping = S.palette_mapping(root / "labelmap.txt")
    assert mapping[(0, 0, 0)] == 255 and mapping[(128, 64, 128)] == 2  # void black, road purple
    out = S.convert_masks(root / "masks", tmp_path / "converted", mapping)
    converted = np.stack([np.asarray(Image.open(p)) for p in sorted(out.glob("*.png"))])
    rgb = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted((root / "masks").glob("*.png"))])
    assert np.array_equal(converted, D.rgb_to_index(rgb, mapping))
    with pytest.raises(FileExistsError):  # never overwrites
        S.convert_masks(root / "masks", out, mapping)
    with pytest.raises(ValueError, match="differ"):
        S.convert_masks(root / "masks", root / "masks", mapping)
    with pytest.raises(ValueError, match="not in mask_mapping"):
        D.rgb_to_index(rgb, {(0, 0, 0): 255})
    # the loader reads the label-map file itself: void (black) becomes the ignore label 255
    with pytest.raises(ValueError, match="labelmap.txt"):
        D.load_folder(root / "images", root / "masks")
    _, masks = D.load_folder(root / "images", root / "masks", mask_mapping=root / "labelmap.txt")
    assert np.array_equal(masks, converted.astype(np.int64)) and (masks == 255).any()


def test_read_palette_formats_and_errors(tmp_path):
    (tmp_path / "labelmap.txt").write_text("# label:color_rgb:parts:actions\nbackground:0,0,0::\nroad:128,64,128::\n")
    # "background" is a class (only void / ignore / unlabeled / don't care entries are void)
    assert S.read_palette(tmp_path / "labelmap.txt") == (("background", "road"), ((0, 0, 0), (128, 64, 128)), ())
    (tmp_path / "p.json").write_text('{"sky": [70, 130, 180], "void": [0, 0, 0], "car": [0, 0, 142]}')
    assert S.read_palette(tmp_path / "p.json") == (("sky", "car"), ((70, 130, 180), (0, 0, 142)), ((0, 0, 0),))
    (tmp_path / "bad.txt").write_text("sky:70,130::\n")
    with pytest.raises(ValueError, match="line 1"):
        S.read_palette(tmp_path / "bad.txt")
    (tmp_path / "twice.txt").write_text("a:1,2,3::\nb:1,2,3::\n")
    with pytest.raises(ValueError, match="twice"):
        S.read_palette(tmp_path / "twice.txt")


def test_make_example_folder_writes_only_inside_its_folder(tmp_path):
    target = tmp_path / "inside"
    before = set(tmp_path.iterdir())
    S.make_example_folder(target, layout="rgb", n=2, size=32)
    assert set(tmp_path.iterdir()) - before == {target}
    assert sorted(p.name for p in target.iterdir()) == ["images", "labelmap.txt", "masks"]
    with pytest.raises(ValueError, match="layout"):
        S.make_example_folder(target, layout="jpeg")


def test_dataset_info_defaults_and_checks():
    assert S.SHAPES.class_names == D.SHAPE_CLASS_NAMES and S.MEMBRANES.class_names == D.MEMBRANE_CLASS_NAMES
    assert S.PETS.augment_options()["vflip"] is False and S.STREET.augment_options()["rotate90"] is False
    assert S.MEMBRANES.elastic and S.STREET.ignore_index == 255 and S.STREET.background is None
    with pytest.raises(ValueError, match="ignore_index=3 is one of the classes"):
        S.DatasetInfo("x", ("a", "b", "c", "d"), ignore_index=3)
    with pytest.raises(ValueError, match="one colour per class"):
        S.DatasetInfo("x", ("a", "b"), colors=((0, 0, 0),))
    assert "left-right flips only" in str(S.STREET)


def test_segmentation_report_takes_the_description():
    t = np.array([[0, 1], [2, 255]])
    p = np.array([[0, 1], [1, 0]])
    report = metrics.segmentation_report(t, p, info=S.DatasetInfo("t", ("sky", "road", "car"), ignore_index=255))
    assert list(report["per_class"]) == ["sky", "road", "car"]
    assert report["per_class"]["car"]["true_pixels"] == 1 and report["confusion_matrix"].sum() == 3  # void skipped


# ------------------------------------------------------------------ trap 2: up-down flips were always on
def _marked():
    image = np.arange(36, dtype=np.float32).reshape(6, 6, 1)
    return image, np.arange(36, dtype=np.int64).reshape(6, 6)


def test_augment_pair_left_right_only_never_turns_a_street_upside_down():
    image, mask = _marked()
    seen = set()
    for seed in range(40):
        img, msk = D.augment_pair(image, mask, np.random.default_rng(seed), hflip=True, vflip=False, rotate90=False)
        assert np.array_equal(img[..., 0], msk)
        assert set(msk[0].tolist()) == set(range(6))  # the top row (sky) stays on top
        seen.add(msk.tobytes())
    assert seen == {mask.tobytes(), mask[:, ::-1].tobytes()}  # identity and the left-right flip, both occur
    # each switch alone
    only_v = {D.augment_pair(image, mask, np.random.default_rng(s), flip=False, vflip=True, rotate90=False)[1].tobytes()
              for s in range(30)}
    assert only_v == {mask.tobytes(), mask[::-1].tobytes()}
    # the old default (flip=True, rotate90=True) still gives all 8 flips x turns, with the same random stream
    old = [D.augment_pair(image, mask, np.random.default_rng(s))[1] for s in range(40)]
    assert len({m.tobytes() for m in old}) == 8
    explicit = [D.augment_pair(image, mask, np.random.default_rng(s), hflip=True, vflip=True)[1] for s in range(40)]
    assert all(np.array_equal(a, b) for a, b in zip(old, explicit))


def test_prepare_sample_takes_the_description_flips():
    image, mask = _marked()
    for epoch in range(20):
        _, msk = D.prepare_sample(image, mask, epoch=epoch, augment=S.STREET)
        assert set(msk[0].tolist()) == set(range(6))


# ------------------------------------------------------------------ trap 4: figures for many classes
def _lab(rgb):
    rgb = np.asarray(rgb, np.float64)
    c = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = c @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def _min_delta_e(colors):
    lab = _lab(colors)
    d = np.linalg.norm(lab[:, None] - lab[None], axis=-1)
    np.fill_diagonal(d, np.inf)
    return d.min()


@pytest.mark.parametrize("num_classes", [11, 20, 28])
def test_default_palette_stays_distinct_for_many_classes(num_classes):
    # old palette: class 8 (tab20 blue) was Delta E 2.6 from class 7 (blue)
    assert _min_delta_e(viz.class_colors(num_classes)) > 19
    assert _min_delta_e(np.vstack([viz.class_colors(num_classes), [viz.IGNORE_COLOR]])) > 19
    assert _min_delta_e(viz.class_colors(num_classes - 1, background=False)) > 19
    assert viz.class_colors(num_classes, background=False)[0].max() > 0.3  # no dark class 0 when not asked


def test_palette_and_info_choose_colours_and_class_0_is_not_forced_dark():
    mask = np.array([[0, 1], [2, 255]])
    own = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    rgb = viz.colorize_mask(mask, 3, ignore_index=255, palette=own)
    np.testing.assert_allclose(rgb[0, 0], [1, 0, 0])
    np.testing.assert_allclose(rgb[1, 1], viz.IGNORE_COLOR)
    street = viz.colorize_mask(mask, info=S.STREET)
    np.testing.assert_allclose(street[0, 0], np.array([70, 130, 180]) / 255, atol=1e-6)  # sky is sky blue
    no_colours = S.STREET.replace(colors=None)
    assert viz.colorize_mask(mask, info=no_colours)[0, 0].max() > 0.3
    with pytest.raises(ValueError, match="one colour per class"):
        viz.colorize_mask(mask, 3, palette=own[:2], ignore_index=255)


def test_show_samples_and_overlay_accept_the_ignore_index_their_errors_advise():
    images = np.full((2, 6, 6, 3), 0.5, np.float32)
    masks = np.zeros((2, 6, 6), np.int64)
    masks[:, -1] = 255
    masks[:, 0] = 3
    with pytest.raises(ValueError, match="pass ignore_index"):
        viz.show_samples(images, masks, 4)
    fig = viz.show_samples(images, masks, 4, class_names=["sky", "road", "car", "tree"], ignore_index=255)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["sky", "road", "car", "tree", "ignored (255)"]
    out = viz.overlay(images[0], masks[0], 4, ignore_index=255)
    np.testing.assert_allclose(out[-1, 0], 0.5 * 0.5 + 0.5 * np.array(viz.IGNORE_COLOR), atol=1e-6)
    # a data set without a background class colours class 0 too
    street_mask = np.zeros((6, 6), np.int64)
    assert not np.allclose(viz.overlay(images[0], street_mask, info=S.STREET), 0.5)
    assert np.allclose(viz.overlay(images[0], street_mask, 4), 0.5)


def test_every_figure_names_the_classes_of_the_description():
    images, masks = np.zeros((1, 8, 8, 3), np.float32), np.zeros((1, 8, 8), np.int64)
    masks[0, :, 4:] = 2
    masks[0, 0] = 255
    fig = viz.show_predictions(images, masks, masks, info=S.STREET)
    texts = {t.get_text() for lg in fig.legends for t in lg.get_texts()}
    assert set(S.STREET.class_names) <= texts and "ignored (255)" in texts
    fig = viz.plot_class_frequencies(masks, info=S.STREET)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(S.STREET.class_names)
    fig = viz.plot_confusion_matrix(np.eye(7, dtype=int), info=S.STREET)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == list(S.STREET.class_names)


# ------------------------------------------------------------------ lecture 10's figures (issue 23)
def test_error_map_without_a_background_class_does_not_treat_class_0_as_background():
    t = np.array([[0, 0, 1, 2, 255]])
    p = np.array([[0, 1, 0, 2, 3]])
    # street scenes: class 0 is sky, not background; a correct sky pixel is "correct", a wrong one "wrong class"
    codes = viz.error_codes(t, p, ignore_index=255, background=None)
    np.testing.assert_array_equal(codes, [[1, 4, 4, 1, 5]])
    np.testing.assert_array_equal(viz.error_codes(t, p, ignore_index=255), [[0, 2, 3, 1, 5]])  # default unchanged
    info = S.STREET
    image = np.zeros((1, 1, 5, 3), np.float32)
    fig = viz.show_predictions(image, t[None], p[None], info=info, n=1)
    error_axes = [ax for ax in fig.axes if ax.get_title() == "error map"][0]
    shown = error_axes.get_images()[0].get_array()
    np.testing.assert_allclose(shown[0, 0], viz.ERROR_COLORS[1])  # correct sky: grey, not "correct background"
    np.testing.assert_allclose(shown[0, 1], viz.ERROR_COLORS[4])
    labels = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert "correct" in labels and "correct background" not in labels and "false negative" not in labels


def test_confusion_matrix_numbers_are_readable_for_seven_classes():
    cm = np.arange(49).reshape(7, 7) + 1
    fig = viz.plot_confusion_matrix(cm, info=S.STREET)
    sizes = {t.get_fontsize() for t in fig.axes[0].texts}
    assert sizes == {9.0}  # 6 pt was about 6 px on screen
