"""Issue 24, the data side: every bad input of the folder tools, DatasetInfo and the pipelines gets a clear error.

One test per case of the second catalogue (folder description, load_folder, palettes, DatasetInfo,
convert_masks, the pipelines' augmentation default and their messages). Destructive code runs only on
``tmp_path`` under the ``guard_fs`` fixture.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from PIL import Image

from course_utils import data as D
from course_utils import datasets as S
from fs_guard import guard_fs  # noqa: F401  (fixture)


def _write(folder, name, array):
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(folder / name)


def _pairs(tmp_path, masks, image_stems=None, mask_suffix=".png"):
    """images/<stem>.png (random RGB) and masks/<stem><mask_suffix> from a list of (H, W) mask arrays."""
    rng = np.random.default_rng(0)
    stems = image_stems or [f"m{i}" for i in range(len(masks))]
    for i, stem in enumerate(stems):
        _write(tmp_path / "images", f"{stem}.png", rng.integers(0, 256, masks[0].shape[:2] + (3,), dtype=np.uint8))
    for i, mask in enumerate(masks):
        _write(tmp_path / "masks", f"m{i}{mask_suffix}", mask)
    return tmp_path / "images", tmp_path / "masks"


# ------------------------------------------------------------------ describe_folder
def test_describe_folder_lists_unmatched_images_and_masks(tmp_path):
    masks = [np.array([[0, 1], [1, 0]], np.uint8)] * 3
    images_dir, masks_dir = _pairs(tmp_path, masks, image_stems=["m0", "m1", "lonely"])
    info, report = S.describe_folder(images_dir, masks_dir, class_names=("a", "b"), verbose=False)
    text = " ".join(report.problems)
    assert not report.ok
    assert "1 image(s) without a mask" in text and "lonely" in text
    assert "1 mask(s) without an image" in text and "m2" in text
    assert info.num_classes == 2  # the masks themselves are fine


def test_describe_folder_says_16_bit_values_are_not_class_indices(tmp_path):
    mask = np.zeros((6, 6), np.uint16)
    mask[:2], mask[4:] = 3000, 5000
    images_dir, masks_dir = _pairs(tmp_path, [mask, mask[::-1].copy()])
    assert np.asarray(Image.open(masks_dir / "m0.png")).max() == 5000  # really stored as 16 bits
    with pytest.raises(ValueError, match=r"not class indices.*5001 classes.*mask_mapping=\{0: 0, 3000: 1, 5000: 2\}"
                       r".*convert_masks"):
        S.describe_folder(images_dir, masks_dir, verbose=False)
    with pytest.raises(ValueError, match=r"not class indices"):
        D.load_folder(images_dir, masks_dir, num_classes=3)
    _, loaded = D.load_folder(images_dir, masks_dir, mask_mapping={0: 0, 3000: 1, 5000: 2})
    assert set(np.unique(loaded)) == {0, 1, 2}


def test_describe_folder_reports_grey_levels_of_jpeg_masks(tmp_path, capsys):
    yy, xx = np.mgrid[:32, :32]
    mask = (((yy - 15.3) ** 2 + (xx - 17.1) ** 2) < 81).astype(np.uint8) * 255  # a disc: edges inside JPEG blocks
    images_dir, masks_dir = _pairs(tmp_path, [mask, mask.T.copy()], mask_suffix=".jpg")
    assert len(np.unique(np.asarray(Image.open(masks_dir / "m0.jpg")))) > 2  # JPEG made grey levels
    with pytest.raises(ValueError, match=r"JPEG.*lossy.*found \d+ grey levels: 0, 1.*save masks as PNG") as error:
        S.describe_folder(images_dir, masks_dir)
    assert "256 classes" not in str(error.value)
    assert "PROBLEM" in capsys.readouterr().out
    # an aligned square survives JPEG as 0/255, but the files are still lossy masks: said, with what was found
    square = np.zeros((32, 32), np.uint8)
    square[8:24, 8:24] = 255
    images_dir, masks_dir = _pairs(tmp_path / "square", [square, square], mask_suffix=".jpeg")
    with pytest.raises(ValueError, match=r"2 mask file\(s\) are JPEG .*lossy.*found 2 grey levels: 0, 255.*PNG"):
        S.describe_folder(images_dir, masks_dir, verbose=False)


def _camvid_like(tmp_path, n=6, void=11):
    """11 classes in bands (0..10) and a void value that labels a few pixels in every mask."""
    masks = []
    for i in range(n):
        mask = np.repeat(np.arange(11, dtype=np.uint8), 3)[:, None] * np.ones((1, 10), np.uint8)
        mask[-1, : 2 + i % 3] = void  # a few void pixels per frame
        masks.append(mask)
    return _pairs(tmp_path, masks)


def test_describe_folder_flags_a_void_value_just_above_the_classes(tmp_path):
    images_dir, masks_dir = _camvid_like(tmp_path)
    with pytest.raises(ValueError, match=r"11, the largest value, labels few pixels.*in many masks \(6 of 6\).*"
                       r"ignore_index=11.*class_names=\[\.\.\.\] with 12 names"):
        S.describe_folder(images_dir, masks_dir, verbose=False)
    info, report = S.describe_folder(images_dir, masks_dir, ignore_index=11, verbose=False)
    assert info.num_classes == 11 and info.ignore_index == 11 and report.ok
    named, _ = S.describe_folder(images_dir, masks_dir, class_names=[f"c{i}" for i in range(12)], verbose=False)
    assert named.num_classes == 12 and named.ignore_index is None  # the user's explicit decision


def test_describe_folder_flags_a_conventional_void_value(tmp_path):
    mask = np.zeros((8, 8), np.uint8)
    mask[2:4], mask[4:6], mask[6:] = 100, 200, 255  # 255 is not "far beyond" 200, but it is the usual void
    images_dir, masks_dir = _pairs(tmp_path, [mask, mask])
    with pytest.raises(ValueError, match=r"255 is a value data sets conventionally use for void.*ignore_index=255"):
        S.describe_folder(images_dir, masks_dir, verbose=False)


def test_describe_then_load_reads_every_mask_once(tmp_path, monkeypatch):
    root = S.make_example_folder(tmp_path / "street", layout="index", n=5, size=32, seed=0)
    from course_utils import folders

    calls = []
    real = folders._read_mask
    monkeypatch.setattr(folders, "_read_mask", lambda path: calls.append(path.name) or real(path))
    info, report = S.describe_folder(root / "images", root / "masks", verbose=False)
    _, masks = D.load_folder(root / "images", root / "masks", info=info)
    assert sorted(calls) == sorted(f"scene_{i:03d}.png" for i in range(5))  # five files, one read each
    assert masks.shape == (5, 32, 32) and any("memory" in note for note in report.notes)
    # a changed file is read again, not taken from the scan
    S.describe_folder(root / "images", root / "masks", verbose=False)
    changed = np.asarray(Image.open(root / "masks" / "scene_000.png")).copy()
    changed[0, 0] = 1
    Image.fromarray(changed).save(root / "masks" / "scene_000.png")
    os.utime(root / "masks" / "scene_000.png", ns=(1, 1))
    calls.clear()
    _, again = D.load_folder(root / "images", root / "masks", info=info)
    assert len(calls) == 5 and again[0, 0, 0] == 1


# ------------------------------------------------------------------ load_folder
def test_load_folder_refuses_a_fifo_without_opening_it(tmp_path):
    images_dir, masks_dir = _pairs(tmp_path, [np.zeros((4, 4), np.uint8)] * 2)
    os.mkfifo(images_dir / "b.png")
    os.mkfifo(masks_dir / "b.png")

    def hung(*_):
        raise TimeoutError("load_folder blocked on the FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(20)
    try:
        with pytest.raises(ValueError, match=r"b\.png is a FIFO \(named pipe\), not an image file: move it out"):
            D.load_folder(images_dir, masks_dir, num_classes=2)
        with pytest.raises(ValueError, match=r"FIFO"):
            S.describe_folder(images_dir, masks_dir, verbose=False)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_load_folder_refuses_a_folder_named_like_an_image(tmp_path):
    images_dir, masks_dir = _pairs(tmp_path, [np.zeros((4, 4), np.uint8)])
    (masks_dir / "m1.png").mkdir()
    with pytest.raises(ValueError, match=r"m1\.png is a folder, not an image file"):
        D.load_folder(images_dir, masks_dir, num_classes=2)


def test_load_folder_does_not_guess_the_number_of_classes(tmp_path):
    images_dir, masks_dir = _pairs(tmp_path, [np.array([[0, 1], [2, 1]], np.uint8)] * 2)
    with pytest.raises(ValueError, match=r"does not guess the number of classes.*\[0, 1, 2\].*num_classes=K.*"
                       r"ignore_index=.*info=datasets\.describe_folder"):
        D.load_folder(images_dir, masks_dir)
    _, masks = D.load_folder(images_dir, masks_dir, num_classes=3)
    assert masks.max() == 2
    _, mapped = D.load_folder(images_dir, masks_dir, mask_mapping={0: 0, 1: 1, 2: 1})  # K from the mapping
    assert mapped.max() == 1


# ------------------------------------------------------------------ read_palette
def test_read_palette_refuses_a_class_listed_twice(tmp_path):
    text = tmp_path / "labelmap.txt"
    text.write_text("void:0,0,0::\nroad:128,64,128::\ncar:0,0,142::\nroad:1,2,3::\n")
    with pytest.raises(ValueError, match=r"labelmap\.txt: the class 'road' is listed twice"):
        S.read_palette(text)
    js = tmp_path / "palette.json"
    js.write_text('{"road": [128, 64, 128], "car": [0, 0, 142], "road": [1, 2, 3]}')
    with pytest.raises(ValueError, match=r"palette\.json: the class 'road' is listed twice"):
        S.read_palette(js)


def test_read_palette_names_the_file_and_line_of_broken_json(tmp_path):
    js = tmp_path / "palette.json"
    js.write_text('{\n  "road": [128, 64, 128],\n  "car": [0, 0, 142]\n  "sky": [70, 130, 180]\n}\n')
    with pytest.raises(ValueError, match=r"palette\.json, line 4, column 3: not valid JSON"):
        S.read_palette(js)


# ------------------------------------------------------------------ DatasetInfo
def test_dataset_info_refuses_a_string_for_class_names():
    with pytest.raises(TypeError, match=r"class_names must be a sequence of names.*'background'.*pass a tuple"):
        S.DatasetInfo("x", "background")


def test_dataset_info_refuses_a_class_name_given_twice():
    with pytest.raises(ValueError, match=r"\['road'\] are given twice"):
        S.DatasetInfo("x", ("road", "car", "road"))


@pytest.mark.parametrize("flag", ["hflip", "vflip", "rotate90", "elastic"])
def test_dataset_info_refuses_non_bool_flags(flag):
    with pytest.raises(TypeError, match=rf"{flag} must be True or False, got 'False'"):
        S.DatasetInfo("x", ("a", "b"), **{flag: "False"})
    with pytest.raises(TypeError, match=rf"{flag} must be True or False, got 1"):
        S.DatasetInfo("x", ("a", "b"), **{flag: 1})
    assert getattr(S.DatasetInfo("x", ("a", "b"), **{flag: np.bool_(False)}), flag) is False


def test_dataset_info_refuses_colours_in_two_scales():
    with pytest.raises(ValueError, match=r"mix the scales 0\.\.1 .*and 0\.\.255"):
        S.DatasetInfo("x", ("sky", "road"), colors=((0.27, 0.51, 0.71), (128, 64, 128)))
    ok = S.DatasetInfo("x", ("sky", "road"), colors=((70, 130, 180), (128, 64, 128)))
    np.testing.assert_allclose(ok.palette()[0], np.array([70, 130, 180]) / 255, atol=1e-6)
    with pytest.raises(ValueError, match=r"colours must be 0\.\.255"):
        S.DatasetInfo("x", ("sky", "road"), colors=((0, 0, 300), (1, 2, 3)))


# ------------------------------------------------------------------ convert_masks
def _rgb_masks(tmp_path, bad_at=None, n=4):
    masks_dir = tmp_path / "data" / "masks"
    for i in range(n):
        mask = np.zeros((4, 4, 3), np.uint8)
        mask[:2] = (255, 0, 0)
        if i == bad_at:
            mask[0, 0] = (0, 255, 0)  # a colour the mapping does not know
        _write(masks_dir, f"m{i}.png", mask)
    return masks_dir


def test_convert_masks_leaves_nothing_behind_when_a_mask_fails(tmp_path, guard_fs):
    masks_dir = _rgb_masks(tmp_path, bad_at=2)
    out = tmp_path / "data" / "converted"
    mapping = {(0, 0, 0): 0, (255, 0, 0): 1}
    with pytest.raises(ValueError, match=r"colours not in mask_mapping: \[\(0, 255, 0\)\]"):
        S.convert_masks(masks_dir, out, mapping)
    assert not out.exists()
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["masks"]  # no staging folder left
    # the same into an existing folder: the folder stays as it was
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not in mask_mapping"):
        S.convert_masks(masks_dir, out, mapping)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    # a rerun with the colour mapped works
    S.convert_masks(masks_dir, out, {**mapping, (0, 255, 0): 2})
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt", "m0.png", "m1.png", "m2.png", "m3.png"]
    assert np.asarray(Image.open(out / "m2.png"))[0, 0] == 2 and np.asarray(Image.open(out / "m1.png"))[0, 0] == 1
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["converted", "masks"]
    assert not guard_fs.violations


def test_convert_masks_refuses_an_out_dir_that_is_a_file(tmp_path, guard_fs):
    masks_dir = _rgb_masks(tmp_path)
    target = tmp_path / "data" / "out.png"
    target.write_bytes(b"precious")
    with pytest.raises(NotADirectoryError, match=r"out\.png is a file, not a folder"):
        S.convert_masks(masks_dir, target, {(0, 0, 0): 0, (255, 0, 0): 1})
    assert target.read_bytes() == b"precious"


def test_convert_masks_refuses_a_list_as_mapping(tmp_path, guard_fs):
    masks_dir = _rgb_masks(tmp_path)
    with pytest.raises(TypeError, match=r"mask_mapping must be a dict .*got a list \[0, 255\].*\{0: 0, 255: 1\}"):
        S.convert_masks(masks_dir, tmp_path / "data" / "out", [0, 255])
    assert not (tmp_path / "data" / "out").exists()


def test_convert_masks_refuses_a_colour_with_two_values(tmp_path, guard_fs):
    masks_dir = _rgb_masks(tmp_path)
    with pytest.raises(ValueError, match=r"the colour \(255, 0\) in mask_mapping has 2 value\(s\).*\(r, g, b\)"):
        S.convert_masks(masks_dir, tmp_path / "data" / "out", {(0, 0, 0): 0, (255, 0): 1})


# ------------------------------------------------------------------ the pipelines: default augmentation and messages
def _street_pair(n=48, size=8):
    """Masks with an up (class 0 on top, class 1 below) and a left-right marker column (class 2 on the left)."""
    masks = np.zeros((n, size, size), np.int64)
    masks[:, size // 2:] = 1
    masks[:, 1:size - 1, 0] = 2
    images = (masks[..., None] / 2.0).astype(np.float32).repeat(3, axis=-1)
    return images, masks


def _check_left_right_only(batches):
    masks = np.concatenate([np.asarray(m) for _, m in batches])
    assert (masks[:, 0] == 0).all() and (masks[:, -1] == 1).all(), "a street scene was flipped up-down or turned"
    flipped = (masks[:, 1:-1, -1] == 2).all(axis=1)
    assert 0 < flipped.sum() < len(masks)  # left-right flips do happen


def test_make_loader_augment_true_flips_left_right_only():
    pytest.importorskip("torch")
    from course_utils.torch.data import make_loader

    images, masks = _street_pair()
    _check_left_right_only(list(make_loader(images, masks, batch_size=16, augment=True, seed=3)))
    # every flip and turn remain one argument away
    loader = make_loader(images, masks, batch_size=48, augment={"flip": True, "rotate90": True}, seed=3)
    all_masks = next(iter(loader))[1].numpy()
    assert not (all_masks[:, 0] == 0).all()


def test_make_dataset_augment_true_flips_left_right_only():
    pytest.importorskip("tensorflow")
    from course_utils.keras.data import make_dataset

    images, masks = _street_pair()
    _check_left_right_only(list(make_dataset(images, masks, batch_size=16, augment=True, seed=3).as_numpy_iterator()))


def test_pipelines_name_channels_first_images_and_one_hot_masks():
    images, masks = _street_pair(n=4, size=16)
    nchw = images.transpose(0, 3, 1, 2)
    with pytest.raises(ValueError, match=r"looks channels-first.*transpose\(0, 2, 3, 1\)"):
        D._ensure_dataset_arrays(nchw, masks)
    one_hot = np.eye(3, dtype=np.int64)[masks]
    with pytest.raises(ValueError, match=r"one-hot.*take the argmax over the class axis, masks\.argmax\(axis=-1\)"):
        D._ensure_dataset_arrays(images, one_hot)
    with pytest.raises(ValueError, match=r"argmax\(axis=1\)"):
        D._ensure_dataset_arrays(images, one_hot.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match=r"drop the channel axis with masks\[\.\.\., 0\]"):
        D._ensure_dataset_arrays(images, masks[..., None])
    pytest.importorskip("torch")
    from course_utils.torch.data import make_loader

    with pytest.raises(ValueError, match=r"looks channels-first"):
        make_loader(nchw, masks)
    with pytest.raises(ValueError, match=r"take the argmax over the class axis"):
        make_loader(images, one_hot)


def test_max_abs_logit_difference_names_the_axis_order():
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    from course_utils import port

    nchw = np.zeros((2, 3, 16, 16), np.float32)
    with pytest.raises(ValueError, match=r"looks channels-first \(N, C, H, W\).*\(N, H, W, C\).*transpose\(0, 2, 3, 1\)"):
        port.max_abs_logit_difference(None, None, nchw)


def test_mask_values_are_found_without_widening_8_and_16_bit_masks():
    rng = np.random.default_rng(0)
    for dtype, top in ((np.uint8, 255), (np.uint16, 65535)):
        masks = rng.choice(np.array([0, 3, 7, top], dtype=dtype), size=(3, 5, 7))
        np.testing.assert_array_equal(D._distinct_values(masks), np.unique(masks))
        assert D._distinct_values(masks).dtype == dtype
    sixteen = np.array([[[0, 65535]]], np.uint16)  # no uint16 overflow in the "not class indices" check
    assert any("not class indices" in p for p in D.inspect_masks(sixteen).problems)


def test_load_folder_returns_int64_masks_checked_in_their_stored_dtype(tmp_path):
    images_dir, masks_dir = _pairs(tmp_path, [np.array([[0, 1], [2, 1]], np.uint8)] * 2)
    _, masks = D.load_folder(images_dir, masks_dir, num_classes=3)
    assert masks.dtype == np.int64 and masks.tolist() == [[[0, 1], [2, 1]]] * 2
