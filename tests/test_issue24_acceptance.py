"""Issue 24, acceptance review: the cases a user meets that the first tests did not cover, and the two fixes.

* a street-scene folder as lecture 10 reads it (11 classes, void 11 in most but not all masks, at random
  places): flagged, then read once, loaded with 11 classes, and augmented left-right only;
* colour-coded RGB masks handed to a pipeline are named as colour masks (the one-hot hint, "take the argmax",
  would turn colours into nonsense classes);
* ``./course grade`` given JSON that is not a notebook, or a folder / FIFO named like a notebook: one row
  naming the file and what it is, no library AttributeError, and the grader is not hung;
* the Keras data-parallel script refuses ``--out`` naming a file before it trains (the PyTorch script's test
  covered only its own).

Everything runs on ``tmp_path``.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import signal

import numpy as np
import pytest
from PIL import Image

from course_utils import data as D
from course_utils import datasets as S

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _street_folder(tmp_path, n=24, h=12, w=22, void_every=4, seed=0):
    """11 classes (0..10, about equal shares) and void 11 on 5 random pixels of 3 masks in 4."""
    rng = np.random.default_rng(seed)
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir(parents=True)
    for i in range(n):
        mask = rng.permutation(np.arange(h * w) % 11).reshape(h, w).astype(np.uint8)
        mask[:2] = 0  # "sky" on top: an up-down flip or a turn moves it
        if i % void_every != void_every - 1:
            mask.flat[rng.choice(np.arange(2 * w, h * w), 5, replace=False)] = 11
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / "images" / f"f{i:03d}.png")
        Image.fromarray(mask).save(tmp_path / "masks" / f"f{i:03d}.png")
    return tmp_path / "images", tmp_path / "masks"


def test_street_scene_folder_as_lecture_10_reads_it(tmp_path, monkeypatch):
    images_dir, masks_dir = _street_folder(tmp_path)
    lecture_call = dict(name="street", hflip=True, vflip=False, rotate90=False, verbose=False)
    # void in 18 of 24 masks, not all: still not taken as a twelfth class
    with pytest.raises(ValueError, match=r"11, the largest value, labels few pixels.*\(18 of 24\).*ignore_index=11"):
        S.describe_folder(images_dir, masks_dir, **lecture_call)
    with pytest.raises(ValueError, match=r"does not guess the number of classes"):
        D.load_folder(images_dir, masks_dir)

    from course_utils import folders

    reads = []
    real = folders._read_mask
    monkeypatch.setattr(folders, "_read_mask", lambda path: reads.append(path.name) or real(path))
    info, report = S.describe_folder(images_dir, masks_dir, ignore_index=11, **lecture_call)
    images, masks = D.load_folder(images_dir, masks_dir, info=info)
    assert sorted(reads) == sorted(f"f{i:03d}.png" for i in range(24))  # each mask read once, by describe only
    assert info.num_classes == 11 and info.ignore_index == 11 and report.ok
    assert images.shape == (24, 12, 22, 3) and masks.dtype == np.int64
    assert int((masks == 11).sum()) == 18 * 5  # void kept as the ignore label, not remapped

    pytest.importorskip("torch")
    from course_utils.torch.data import make_loader

    for kwargs in ({}, {"info": info}):  # the generic default and the data set's own: left-right only
        batch = np.concatenate([m.numpy() for _, m in make_loader(images, masks, batch_size=8, augment=True,
                                                                   seed=1, **kwargs)])
        assert (batch[:, :2] == 0).all(), f"a street scene was flipped up-down or turned ({kwargs})"


def test_pipelines_name_colour_coded_masks_instead_of_suggesting_argmax():
    rng = np.random.default_rng(0)
    images = rng.random((2, 8, 8, 3)).astype(np.float32)
    palette = np.array([[0, 0, 0], [128, 64, 128], [70, 130, 180]], np.uint8)
    colour_masks = palette[rng.integers(0, 3, (2, 8, 8))]  # (N, H, W, 3) as read from colour PNGs
    with pytest.raises(ValueError, match=r"colour-coded RGB masks \(values up to 180\), not one-hot.*"
                       r"data\.rgb_to_index\(masks") as error:
        D._ensure_dataset_arrays(images, colour_masks)
    assert "argmax" not in str(error.value)
    one_hot = np.eye(3, dtype=np.float32)[rng.integers(0, 3, (2, 8, 8))]  # still told to take the argmax
    with pytest.raises(ValueError, match=r"one-hot.*masks\.argmax\(axis=-1\)"):
        D._ensure_dataset_arrays(images, one_hot)
    pytest.importorskip("torch")
    from course_utils.torch.data import make_loader

    with pytest.raises(ValueError, match=r"colour-coded RGB masks"):
        make_loader(images, colour_masks)


def test_grade_names_json_that_is_not_a_notebook_and_files_that_are_not_regular(tmp_path):
    from course_utils import grade

    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "01_list.ipynb").write_text("[]")
    (folder / "02_object.ipynb").write_text('{"metadata": {}}')
    (folder / "03_folder.ipynb").mkdir()
    os.mkfifo(folder / "04_fifo.ipynb")

    def hung(*_):
        raise TimeoutError("the grader blocked on a FIFO named like a notebook")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        results = grade.grade_folder(folder, timeout=60, progress=None)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    errors = {r.exercise: r.error for r in results}
    assert sorted(errors) == ["01_list", "02_object", "03_folder", "04_fifo"]  # one row each, none skipped
    assert "01_list.ipynb could not be read as a notebook (it is JSON but not a notebook: a list at the top level)" \
        in errors["01_list"]
    assert "02_object.ipynb could not be read as a notebook (it is JSON but not a notebook: no 'cells')" \
        in errors["02_object"]
    assert not any("AttributeError" in e or "ValidationError" in e for e in errors.values())
    assert errors["03_folder"].startswith("03_folder.ipynb is not a regular file")
    assert errors["04_fifo"].startswith("04_fifo.ipynb is not a regular file")
    assert all(not r.rows for r in results)


def test_keras_script_refuses_a_file_as_out_before_training(tmp_path, capsys):
    path = ROOT / "scripts" / "train_mirrored_keras.py"
    spec = importlib.util.spec_from_file_location("train_mirrored_keras", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    target = tmp_path / "run"
    target.write_text("a file where the run folder should be")
    with pytest.raises(SystemExit) as info:
        module.parse_args(["--out", str(target)])
    assert info.value.code == 2
    assert f"--out '{target}' is a file, not a folder" in capsys.readouterr().err
    assert target.read_text() == "a file where the run folder should be"
    assert module.parse_args(["--out", str(tmp_path / "ok")]).steps >= 1
