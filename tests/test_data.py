"""course_utils.data: synthetic shapes, loaders, mask inspection, resizing, encodings, augmentation."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from course_utils import data as D


# ------------------------------------------------------------------ make_shapes
def test_make_shapes_shapes_dtypes_ranges_and_classes():
    images, masks = D.make_shapes(12, size=48, num_classes=4, seed=3)
    assert images.shape == (12, 48, 48, 3) and images.dtype == np.float32
    assert masks.shape == (12, 48, 48) and masks.dtype == np.int64
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert set(np.unique(masks)) == {0, 1, 2, 3}
    assert all((m > 0).any() for m in masks)  # every image holds at least one shape
    for k in (2, 3):
        _, m = D.make_shapes(6, size=32, num_classes=k, seed=0)
        assert m.max() == k - 1 and m.min() == 0
    with pytest.raises(ValueError, match="num_classes 2..4"):
        D.make_shapes(2, num_classes=5)


def test_make_shapes_is_deterministic_by_seed():
    a = D.make_shapes(5, size=32, seed=11)
    b = D.make_shapes(5, size=32, seed=11)
    c = D.make_shapes(5, size=32, seed=12)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_shapes_differ_from_background_and_have_texture():
    images, masks = D.make_shapes(20, size=64, seed=0, noise=0.0)
    background = images[masks == 0].mean()
    shapes = images[masks > 0].mean()
    assert shapes - background > 0.2
    assert images[0][masks[0] == 0].std() > 0.01  # textured, not flat


def test_rare_class_frequency_lowers_the_last_class():
    _, balanced = D.make_shapes(60, size=64, seed=0)
    _, imbalanced = D.make_shapes(60, size=64, seed=0, rare_class_frequency=0.05)
    f_bal = D.class_frequencies(balanced, 4)
    f_imb = D.class_frequencies(imbalanced, 4)
    assert f_imb[3] < 0.25 * f_bal[3]
    assert f_imb[3] < 0.01 and f_imb[1] > 0.02 and f_imb[2] > 0.02
    _, two = D.make_shapes(40, size=32, num_classes=2, seed=0, rare_class_frequency=0.1)
    _, two_bal = D.make_shapes(40, size=32, num_classes=2, seed=0)
    assert D.class_frequencies(two, 2)[1] < D.class_frequencies(two_bal, 2)[1]


# ------------------------------------------------------------------ membranes
def test_load_membranes_on_the_shared_copy(membrane_dir):
    images, masks = D.load_membranes(root=membrane_dir, download=False)
    assert images.shape == (30, 512, 512, 1) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.std() > 0.05
    assert masks.shape == (30, 512, 512) and masks.dtype == np.int64
    assert set(np.unique(masks)) == {0, 1}
    assert 0.15 < masks.mean() < 0.3  # membrane (class 1) is the rarer class: about 22 %
    # membranes are dark in the EM image
    assert images[masks == 1].mean() < images[masks == 0].mean() - 0.1


# ------------------------------------------------------------------ load_folder
def _write_pair(images_dir, masks_dir, stem, image, mask, mask_suffix=".png"):
    images_dir.mkdir(exist_ok=True)
    masks_dir.mkdir(exist_ok=True)
    Image.fromarray(image).save(images_dir / f"{stem}.png")
    Image.fromarray(mask).save(masks_dir / f"{stem}{mask_suffix}")


@pytest.fixture
def folders(tmp_path):
    rng = np.random.default_rng(0)
    images_dir, masks_dir = tmp_path / "images", tmp_path / "masks"
    for i in range(3):
        image = rng.integers(0, 256, size=(10, 12, 3), dtype=np.uint8)
        mask = rng.integers(0, 3, size=(10, 12)).astype(np.uint8)
        mask[0, 0] = 2
        _write_pair(images_dir, masks_dir, f"img{i}", image, mask)
    return images_dir, masks_dir


def test_load_folder_happy_path(folders):
    images, masks = D.load_folder(*folders, num_classes=3)
    assert images.shape == (3, 10, 12, 3) and images.dtype == np.float32 and images.max() <= 1.0
    assert masks.shape == (3, 10, 12) and masks.dtype == np.int64 and masks.max() == 2
    gray, _ = D.load_folder(*folders, num_classes=3, grayscale=True)
    assert gray.shape == (3, 10, 12, 1)
    raw = np.asarray(Image.open(folders[1] / "img1.png"))
    assert np.array_equal(masks[1], raw)  # natural order img0, img1, img2; nothing changed


def test_load_folder_unpaired_files(folders):
    images_dir, masks_dir = folders
    Image.fromarray(np.zeros((10, 12, 3), np.uint8)).save(images_dir / "lonely.png")
    with pytest.raises(ValueError, match=r"1 image\(s\) without a mask.*lonely"):
        D.load_folder(images_dir, masks_dir)


def test_load_folder_size_mismatch(folders):
    images_dir, masks_dir = folders
    Image.fromarray(np.zeros((9, 12), np.uint8)).save(masks_dir / "img2.png")
    with pytest.raises(ValueError, match=r"img2\.png is 12x10 pixels but its mask img2\.png is 12x9"):
        D.load_folder(images_dir, masks_dir)


def test_load_folder_0_255_masks_mention_mapping(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(2):
        mask = (rng.random((8, 8)) > 0.5).astype(np.uint8) * 255
        _write_pair(tmp_path / "im", tmp_path / "ma", str(i), rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), mask)
    with pytest.raises(ValueError, match=r"mask_mapping=\{0: 0, 255: 1\}"):
        D.load_folder(tmp_path / "im", tmp_path / "ma")
    images, masks = D.load_folder(tmp_path / "im", tmp_path / "ma", mask_mapping={0: 0, 255: 1})
    assert set(np.unique(masks)) == {0, 1} and masks.dtype == np.int64
    with pytest.raises(ValueError, match="not in mask_mapping"):
        D.load_folder(tmp_path / "im", tmp_path / "ma", mask_mapping={0: 0})


def test_load_folder_values_out_of_range(folders):
    with pytest.raises(ValueError, match=r"outside the class range 0\.\.1"):
        D.load_folder(*folders, num_classes=2)
    _, masks = D.load_folder(*folders, num_classes=2, mask_mapping={0: 0, 1: 1, 2: 255}, ignore_index=255)
    assert set(np.unique(masks)) == {0, 1, 255}


def test_load_folder_colour_masks_need_a_mapping(tmp_path):
    mask = np.zeros((6, 6, 3), np.uint8)
    mask[:3] = (255, 0, 0)
    _write_pair(tmp_path / "im", tmp_path / "ma", "a", np.zeros((6, 6, 3), np.uint8), mask)
    with pytest.raises(ValueError, match="colour"):
        D.load_folder(tmp_path / "im", tmp_path / "ma")
    _, masks = D.load_folder(tmp_path / "im", tmp_path / "ma", mask_mapping={(0, 0, 0): 0, (255, 0, 0): 1})
    assert masks[0, :3].min() == 1 and masks[0, 3:].max() == 0


# ------------------------------------------------------------------ inspect_masks / validate_masks
def test_inspect_masks_accepts_good_masks_and_reports_frequencies():
    masks = np.zeros((2, 4, 4), np.int64)
    masks[0, :2] = 1
    report = D.inspect_masks(masks, 2, class_names=("bg", "fg"))
    assert report.ok and report.problems == []
    assert np.allclose(report.class_frequencies, [0.75, 0.25])
    assert "OK" in str(report) and "fg" in str(report) and "MaskReport" in report._repr_html_()
    assert D.validate_masks(masks, 2).ok


@pytest.mark.parametrize(
    "masks, num_classes, needle",
    [
        (np.ones((2, 4, 4), np.float32), 2, r"astype\(np\.int64\)"),
        (np.full((2, 4, 4), 0.5, np.float32), 2, "nearest neighbour"),
        (np.ones((2, 4, 4), bool), 2, "bool"),
        (np.array([0, 255] * 16, np.uint8).reshape(2, 4, 4), 2, "0/255"),
        (np.zeros((2, 4, 4, 1), np.int64), 2, r"masks\[\.\.\., 0\]"),
        (np.zeros((2, 1, 4, 4), np.int64), 2, r"masks\[:, 0\]"),
        (np.eye(3, dtype=np.int64)[np.zeros((2, 4, 4), int)], 3, "argmax"),
        (np.full((2, 4, 4), 5, np.int64), 3, "outside the class range"),
        (np.full((2, 4, 4), -1, np.int64), 3, "Negative"),
        (np.zeros((4, 4), np.int64), 2, r"masks\[None\]"),
    ],
)
def test_inspect_masks_detects_each_problem(masks, num_classes, needle):
    report = D.inspect_masks(masks, num_classes)
    assert not report.ok
    assert any(__import__("re").search(needle, p) for p in report.problems), report.problems
    with pytest.raises(ValueError, match="Invalid masks"):
        D.validate_masks(masks, num_classes)


def test_inspect_masks_grey_levels_from_lossy_saving():
    masks = np.array([0, 255] * 50, np.uint8).reshape(1, 10, 10)
    masks[0, 0, :3] = (3, 128, 250)  # JPEG-like fringe
    report = D.inspect_masks(masks)
    assert any("grey levels" in p for p in report.problems)


def test_inspect_masks_missing_classes_and_ignore_index():
    masks = np.zeros((1, 4, 4), np.int64)
    masks[0, 0, 0] = 255
    report = D.inspect_masks(masks, 3, ignore_index=255)
    assert report.ok and report.missing_classes == [1, 2]
    assert any("never occur" in note for note in report.notes)
    assert np.allclose(report.class_frequencies, [1, 0, 0])


# ------------------------------------------------------------------ split, crop, resize
def test_split_indices_and_train_val_split():
    train, val = D.split_indices(10, 0.2, seed=0)
    assert len(val) == 2 and len(train) == 8 and set(train) | set(val) == set(range(10))
    assert np.array_equal(D.split_indices(10, 0.2, seed=0)[1], val)
    x = np.arange(10)[:, None, None, None] * np.ones((10, 2, 2, 1), np.float32)
    y = np.arange(10)[:, None, None] * np.ones((10, 2, 2), np.int64)
    x_train, y_train, x_val, y_val = D.train_val_split(x, y, 0.3, seed=1)
    assert len(x_val) == 3 and np.array_equal(x_val[:, 0, 0, 0], y_val[:, 0, 0])
    with pytest.raises(ValueError, match="nothing would be left"):
        D.split_indices(1, 0.5)


def test_random_crop_keeps_image_and_mask_aligned():
    image = np.arange(20 * 16, dtype=np.float32).reshape(20, 16, 1)
    mask = np.arange(20 * 16).reshape(20, 16)
    img, msk = D.random_crop(image, mask, (8, 6), np.random.default_rng(0))
    assert img.shape == (8, 6, 1) and msk.shape == (8, 6)
    assert np.array_equal(img[..., 0], msk)
    with pytest.raises(ValueError, match="larger than the image"):
        D.random_crop(image, mask, 32, np.random.default_rng(0))


def test_resize_image_is_bilinear_and_resize_mask_never_invents_classes():
    image = np.zeros((4, 4, 1), np.float32)
    image[:, 2:] = 1.0
    up = D.resize_image(image, 8)
    assert up.shape == (8, 8, 1) and up.dtype == np.float32
    assert 0 < up[0, 3, 0] < 1  # interpolated across the edge
    assert D.resize_image(np.ones((3, 5, 7, 2), np.float32), (4, 6)).shape == (3, 4, 6, 2)

    mask = np.zeros((16, 16), np.int64)
    mask[:, :8] = 0
    mask[:, 8:] = 2  # classes 0 and 2: bilinear would invent class 1 at the border
    bilinear = np.rint(D.resize_image(mask[..., None].astype(np.float32), 11)[..., 0])
    assert 1 in set(np.unique(bilinear))  # the trap
    for size in (5, 11, 23, (7, 30)):
        small = D.resize_mask(mask, size)
        assert set(np.unique(small)) <= {0, 2} and small.dtype == np.int64
    assert D.resize_mask(np.zeros((2, 6, 6), np.uint8), 3).shape == (2, 3, 3)
    assert np.array_equal(D.resize_mask(mask, 32)[::2, ::2], mask)
    with pytest.raises(TypeError, match="float mask"):
        D.resize_mask(mask.astype(np.float32), 8)


# ------------------------------------------------------------------ encodings and statistics
def test_one_hot_class_frequencies_and_weights():
    masks = np.array([[[0, 1], [1, 1]]])
    oh = D.one_hot(masks, 3)
    assert oh.shape == (1, 2, 2, 3) and oh.dtype == np.float32
    assert np.array_equal(oh.argmax(-1), masks) and np.all(oh.sum(-1) == 1) and not oh[..., 2].any()
    with pytest.raises(ValueError, match="0..1"):
        D.one_hot(masks + 1, 2)
    freqs = D.class_frequencies(masks, 3)
    assert freqs.dtype == np.float64 and np.allclose(freqs, [0.25, 0.75, 0])
    ignored = np.array([[[0, 255], [1, 1]]])
    assert np.allclose(D.class_frequencies(ignored, 2, ignore_index=255), [1 / 3, 2 / 3])
    w = D.class_weights(masks, 3)
    assert w.dtype == np.float32 and w[2] == 0 and w[0] > w[1]
    assert np.isclose((freqs * w).sum(), 1.0)  # pixel-weighted mean weight is 1
    wm = D.class_weights(masks, 3, method="median_frequency")
    assert np.allclose(wm[:2], [0.5 / 0.25, 0.5 / 0.75])
    with pytest.raises(ValueError, match="inverse_frequency"):
        D.class_weights(masks, 3, method="magic")


def test_median_frequency_weights_count_only_images_where_the_class_occurs():
    # hand-computed (Eigen & Fergus): freq_c = pixels of c / pixels of the images that contain c
    masks = np.array([[[0, 0], [0, 1]],      # class 0: 3, class 1: 1
                      [[0, 0], [1, 1]],      # class 0: 2, class 1: 2
                      [[2, 2], [2, 0]]])     # class 0: 1, class 2: 3
    # freq_0 = 6/12 = 0.5, freq_1 = 3/8 = 0.375 (images 0 and 1), freq_2 = 3/4 = 0.75 (image 2 only)
    # median(0.5, 0.375, 0.75) = 0.5 -> w = 0.5/0.5, 0.5/0.375, 0.5/0.75
    w = D.class_weights(masks, 3, method="median_frequency")
    assert w.dtype == np.float32 and np.allclose(w, [1.0, 4 / 3, 2 / 3])
    # inverse frequency sees f = (0.5, 0.25, 0.25) and weighs classes 1 and 2 alike; median frequency
    # gives the class that is large where it occurs (2) less weight than the one spread thin (1)
    assert np.allclose(D.class_weights(masks, 3), [2 / 3, 4 / 3, 4 / 3])
    # ignore_index pixels are left out of both counts
    ignored = np.array([[[0, 255], [0, 1]], [[1, 1], [1, 1]]])
    # freq_0 = 2/3 (image 0 has 3 valid pixels), freq_1 = 5/7; median = (2/3 + 5/7) / 2 = 29/42
    wi = D.class_weights(ignored, 2, method="median_frequency", ignore_index=255)
    assert np.allclose(wi, [29 / 28, 29 / 30])
    # a class that never occurs gets 0; one (H, W) mask is a batch of one
    assert D.class_weights(masks[0], 3, method="median_frequency")[2] == 0
    assert np.allclose(D.class_weights(masks[0], 3, method="median_frequency")[:2], [0.5 / 0.75, 0.5 / 0.25])


def test_median_frequency_is_inverse_frequency_times_a_constant_when_every_image_has_every_class():
    rng = np.random.default_rng(0)
    masks = rng.integers(0, 4, size=(5, 8, 8))
    masks[:, 0, :4] = np.arange(4)                       # every class in every image
    inverse = D.class_weights(masks, 4)
    median = D.class_weights(masks, 4, method="median_frequency")
    assert np.allclose(median / inverse, (median / inverse)[0], rtol=1e-5)


# ------------------------------------------------------------------ augmentation
def _marked_pair(size=(16, 16)):
    """An image that is 1 exactly where the mask is class 1 (a few asymmetric pixels)."""
    mask = np.zeros(size, np.int64)
    mask[2, 3] = mask[2, 4] = mask[5, 11] = 1
    mask[9:12, 1:3] = 1
    image = np.zeros(size + (2,), np.float32)
    image[..., 0] = mask
    image[..., 1] = 0.5
    return image, mask


@pytest.mark.parametrize("k", range(4))
@pytest.mark.parametrize("flip", [False, True])
def test_flip_rotate_moves_image_and_mask_together(k, flip):
    image, mask = _marked_pair((12, 16))
    img, msk = D.flip_rotate(image, mask, k, flip)
    assert np.array_equal(img[..., 0], msk.astype(np.float32)) and msk.dtype == np.int64
    assert msk.sum() == mask.sum()


def test_augment_pair_keeps_alignment_over_many_draws():
    image, mask = _marked_pair()
    seen = set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        img, msk = D.augment_pair(image, mask, rng)
        assert img.dtype == np.float32 and msk.dtype == np.int64 and img.flags.c_contiguous
        assert np.array_equal(img[..., 0], msk)
        seen.add(msk.tobytes())
    assert len(seen) == 8  # all flips x quarter turns occur
    rect = np.zeros((8, 12, 1), np.float32), np.zeros((8, 12), np.int64)
    assert all(D.augment_pair(*rect, np.random.default_rng(s))[1].shape == (8, 12) for s in range(10))


def test_elastic_deformation_moves_image_and_mask_together():
    image, mask = _marked_pair((48, 48))
    image = image.copy()
    mask = mask.copy()
    mask[20:30, 20:34] = 1
    image[..., 0] = mask
    rng = np.random.default_rng(0)
    img, msk = D.elastic_deform(image, mask, rng, alpha=4.0)
    assert msk.dtype == np.int64 and set(np.unique(msk)) <= {0, 1}
    assert not np.array_equal(msk, mask)  # it did deform
    # the marked image channel was resampled bilinearly; where it is clearly in/out it matches the mask
    assert np.all(msk[img[..., 0] > 0.99] == 1) and np.all(msk[img[..., 0] < 0.01] == 0)
    assert np.mean((img[..., 0] > 0.5) == (msk == 1)) > 0.98
    img2, msk2 = D.augment_pair(image, mask, np.random.default_rng(3), elastic=True, elastic_alpha=6.0,
                                elastic_sigma=16)
    assert np.mean((img2[..., 0] > 0.5) == (msk2 == 1)) > 0.98
    # a multi-class mask stays within its classes (nearest neighbour)
    three = (np.arange(48)[None, :] // 16 * np.ones((48, 1), int)).astype(np.int64)
    _, m3 = D.elastic_deform(np.zeros((48, 48, 1), np.float32), three * 2, np.random.default_rng(1), 8.0)
    assert set(np.unique(m3)) <= {0, 2, 4}


def test_augment_pair_rejects_float_masks_and_bad_shapes():
    image, mask = _marked_pair()
    with pytest.raises(TypeError, match="astype"):
        D.augment_pair(image, mask.astype(np.float32), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"image\[\.\.\., None\]"):
        D.augment_pair(image[..., 0], mask, np.random.default_rng(0))


def test_sample_rng_and_prepare_sample_are_reproducible():
    a = D.sample_rng(1, 2, 3).random(4)
    assert np.array_equal(a, D.sample_rng(1, 2, 3).random(4))
    assert not np.array_equal(a, D.sample_rng(1, 3, 3).random(4))
    assert not np.array_equal(a, D.sample_rng(1, 2, 4).random(4))
    image, mask = _marked_pair((20, 20))
    one = D.prepare_sample(image, mask, seed=0, epoch=1, index=5, augment={"elastic": True}, crop_size=12)
    two = D.prepare_sample(image, mask, seed=0, epoch=1, index=5, augment={"elastic": True}, crop_size=12)
    assert one[0].shape == (12, 12, 2) and one[1].dtype == np.int64
    assert np.array_equal(one[0], two[0]) and np.array_equal(one[1], two[1])
    assert not np.array_equal(D.epoch_order(50, 0, 0), D.epoch_order(50, 0, 1))
    assert np.array_equal(D.epoch_order(5, 0, 0, shuffle=False), np.arange(5))


def test_core_modules_do_not_import_a_framework():
    import subprocess

    code = ("import sys, course_utils.data, course_utils.download, course_utils.checks.data; "
            "sys.exit(int('torch' in sys.modules or 'tensorflow' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_mask_report_rounds_float_values_from_lossy_masks():
    masks = np.zeros((2, 4, 4), np.float32)
    masks[0, 0, 0] = 0.01  # stored as 0.009999999776...
    masks[1, 1, 1] = 1
    report = D.inspect_masks(masks, 2)
    text = str(report)
    assert "values [0, 0.01, 1]" in text
    assert "(e.g. 0.01)" in text
    assert "0.0099999" not in text and "0.0099999" not in report._repr_html_()
