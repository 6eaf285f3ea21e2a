"""The dry run (COURSE_DRY_RUN=1, ``./course dry-run``): full mode with every fit capped to 1 epoch of 2 steps."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

from course_utils import env
from course_utils.data import make_shapes


def test_dry_run_cap_only_in_a_dry_run(monkeypatch):
    monkeypatch.delenv(env.DRY_RUN_ENV_VAR, raising=False)
    assert not env.is_dry_run() and env.dry_run_cap(40) == (40, None) and env.dry_run_cap(3, 50) == (3, 50)
    monkeypatch.setenv(env.DRY_RUN_ENV_VAR, "1")
    assert env.is_dry_run()
    assert env.dry_run_cap(40) == (1, env.DRY_RUN_STEPS) == (1, 2)
    assert env.dry_run_cap(40, 50) == (1, 2) and env.dry_run_cap(40, 1) == (1, 1)
    monkeypatch.setenv(env.FAST_ENV_VAR, "0")
    assert env.pick(fast=64, full=256) == 256  # a dry run uses the full-mode sizes
    monkeypatch.setenv(env.DRY_RUN_ENV_VAR, "maybe")
    with pytest.raises(ValueError, match="COURSE_DRY_RUN"):
        env.is_dry_run()


def test_pick_epochs_is_pick_except_in_a_dry_run(monkeypatch):
    monkeypatch.delenv(env.DRY_RUN_ENV_VAR, raising=False)
    monkeypatch.setenv(env.FAST_ENV_VAR, "1")
    assert env.pick_epochs(fast=8, full=30) == 8
    monkeypatch.setenv(env.FAST_ENV_VAR, "0")
    assert env.pick_epochs(fast=8, full=30) == 30
    monkeypatch.setenv(env.DRY_RUN_ENV_VAR, "1")
    assert env.pick_epochs(fast=8, full=30) == 1 and env.pick_epochs(fast=8, full=0) == 0


class _CountingLoader:
    """A loader that counts the batches it hands out."""

    def __init__(self, loader):
        self.loader, self.batches = loader, 0

    def __iter__(self):
        for batch in self.loader:
            self.batches += 1
            yield batch

    def __len__(self):
        return len(self.loader)


def test_torch_fit_runs_one_epoch_of_two_steps_in_a_dry_run(monkeypatch):
    torch = pytest.importorskip("torch")
    from course_utils.torch.data import make_loader
    from course_utils.torch.train import fit
    from course_utils.torch.unet import UNet

    images, masks = make_shapes(12, size=32, num_classes=2, seed=0)
    for dry_run, expected_epochs, expected_batches in (("0", 3, 3 * 6), ("1", 1, 2)):
        monkeypatch.setenv(env.DRY_RUN_ENV_VAR, dry_run)
        train = _CountingLoader(make_loader(images, masks, batch_size=2, shuffle=False))
        val = _CountingLoader(make_loader(images, masks, batch_size=2, shuffle=False))
        model = UNet(3, 2, base_filters=4, depth=2)
        history = fit(model, train, val, torch.nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters()),
                      epochs=3, num_classes=2, device="cpu", progress=False)
        assert len(history["loss"]) == len(history["val_dice"]) == expected_epochs
        assert train.batches == expected_batches and val.batches == expected_batches


def test_keras_fit_runs_one_epoch_of_two_steps_in_a_dry_run(monkeypatch):
    keras = pytest.importorskip("keras")
    from course_utils.keras.train import compile_model, install_dry_run_cap
    from course_utils.keras.unet import build_unet

    monkeypatch.setattr(keras.Model, "fit", keras.Model.fit)  # the patch below is undone after the test
    images, masks = make_shapes(12, size=32, num_classes=2, seed=0)

    class CountSteps(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.train_steps, self.val_steps = 0, 0

        def on_train_batch_end(self, batch, logs=None):
            self.train_steps += 1

        def on_test_batch_end(self, batch, logs=None):
            self.val_steps += 1

    def run():
        model = compile_model(build_unet((32, 32, 3), 2, base_filters=4, depth=2), 2)
        counter = CountSteps()
        history = model.fit(images, masks, batch_size=2, epochs=3, validation_data=(images, masks),
                            callbacks=[counter], verbose=0)
        return len(history.history["loss"]), counter.train_steps, counter.val_steps

    monkeypatch.setenv(env.DRY_RUN_ENV_VAR, "0")
    install_dry_run_cap()  # not a dry run: nothing changes
    assert run() == (3, 18, 18)
    monkeypatch.setenv(env.DRY_RUN_ENV_VAR, "1")
    install_dry_run_cap()
    install_dry_run_cap()  # idempotent
    assert run() == (1, 2, 2)

    # a data set of no more batches than the cap runs whole, without Keras' "ran out of data" warning
    import warnings

    import tensorflow as tf

    small = tf.data.Dataset.from_tensor_slices((images[:3], masks[:3])).batch(2)  # 2 batches
    single = tf.data.Dataset.from_tensor_slices((images[:2], masks[:2])).batch(8)  # 1 batch
    model = compile_model(build_unet((32, 32, 3), 2, base_filters=4, depth=2), 2)
    counter = CountSteps()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(small, validation_data=single, epochs=3, callbacks=[counter], verbose=0)
    assert (counter.train_steps, counter.val_steps) == (2, 1)
    assert not [w for w in caught if "ran out of data" in str(w.message)]


def test_dry_run_data_holds_a_pet_stand_in_in_the_real_layout(tmp_path, membrane_dir):
    """scripts/dry_run.py's data folder: the capstone's full-mode loader finds the Pets offline."""
    import importlib.util
    from pathlib import Path

    from course_utils import pets

    spec = importlib.util.spec_from_file_location("dry_run", Path(__file__).parent.parent / "scripts" / "dry_run.py")
    dry_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dry_run)
    data_dir = dry_run.prepare_data(tmp_path / "data", membrane_dir)
    assert (data_dir / "isbi2012-membrane").resolve() == (membrane_dir / "isbi2012-membrane").resolve()
    images, masks = pets.load_pets(root=data_dir, size=64, split="trainval", download=False)
    assert images.shape == (dry_run.PET_STAND_IN["num_trainval"], 64, 64, 3) and masks.max() == 2
    x_test, _ = pets.load_pets(root=data_dir, size=64, split="test", download=False)
    assert len(x_test) == dry_run.PET_STAND_IN["num_test"]
    assert dry_run.prepare_data(tmp_path / "data", membrane_dir) == data_dir  # a second call changes nothing


def test_dry_run_counts_only_non_assertion_errors_as_failures():
    import importlib.util
    from pathlib import Path

    import nbformat

    spec = importlib.util.spec_from_file_location("dry_run", Path(__file__).parent.parent / "scripts" / "dry_run.py")
    dry_run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dry_run)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("assert x")])
    nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="", traceback=[])]
    assert dry_run.errors_of(nb) == [(1, "AssertionError", "")]
    nb.cells[0].outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="bad shape", traceback=[])]
    assert [e[1] for e in dry_run.errors_of(nb)] == ["ValueError", "AssertionError"]
    assert dry_run.warnings_of(nb) == []
    retracing = "WARNING:tensorflow:5 out of the last 5 calls to <function f> triggered tf.function retracing."
    nb.cells[1].outputs.append(nbformat.v4.new_output("stream", name="stderr", text=f"{retracing}\nplain\n"))
    nb.cells[0].outputs.append(nbformat.v4.new_output("stream", name="stdout", text="a warning in stdout\n"))
    nb.cells[1].outputs.append(nbformat.v4.new_output("stream", name="stderr", text=retracing + "\n"))
    absl = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
    nb.cells[0].outputs.append(nbformat.v4.new_output("stream", name="stderr", text=absl + "\n"))
    assert dry_run.warnings_of(nb) == [(1, retracing)]  # stderr only, each distinct line once, start-up noise out


def test_timing_helpers_take_few_steps_in_a_dry_run(monkeypatch):
    from course_utils import timing

    calls, batch = [], (np.zeros((2, 4, 4, 1)), np.zeros((2, 4, 4)))
    monkeypatch.setenv(env.DRY_RUN_ENV_VAR, "1")
    timing.measure_train_step(lambda b: calls.append(1), batch, num_steps=20, warmup=2, sync=None)
    assert len(calls) == 1 + env.DRY_RUN_STEPS
    drawn = []
    timing.measure_input_pipeline(iter(drawn.append(i) or batch for i in range(100)), num_batches=40)
    assert len(drawn) == 1 + env.DRY_RUN_STEPS
    monkeypatch.setenv(env.DRY_RUN_ENV_VAR, "0")
    calls.clear()
    timing.measure_train_step(lambda b: calls.append(1), batch, num_steps=20, warmup=2, sync=None)
    assert len(calls) == 22


def test_torch_fit_with_steps_per_epoch_is_capped_in_a_dry_run(monkeypatch):
    torch = pytest.importorskip("torch")
    from course_utils.torch.data import make_loader
    from course_utils.torch.train import fit
    from course_utils.torch.unet import UNet

    images, masks = make_shapes(12, size=32, num_classes=2, seed=0)
    for dry_run, expected_epochs, expected_batches in (("0", 2, 2 * 5), ("1", 1, 2)):
        monkeypatch.setenv(env.DRY_RUN_ENV_VAR, dry_run)
        train = _CountingLoader(make_loader(images, masks, batch_size=2, shuffle=False))
        model = UNet(3, 2, base_filters=4, depth=2)
        history = fit(model, train, None, torch.nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters()),
                      epochs=2, num_classes=2, device="cpu", progress=False, steps_per_epoch=5,
                      monitor="loss")
        assert len(history["loss"]) == expected_epochs
        assert train.batches == expected_batches


def test_torch_loaders_hand_a_dry_run_only_a_few_batches(monkeypatch):
    """Loops written out in a notebook (lecture 04's inline loop, exercise 04) are capped through the loader."""
    pytest.importorskip("torch")
    from course_utils.torch.data import make_loader

    images, masks = make_shapes(12, size=32, num_classes=2, seed=0)
    for dry_run, expected in (("0", 6), ("1", env.DRY_RUN_STEPS)):
        monkeypatch.setenv(env.DRY_RUN_ENV_VAR, dry_run)
        loader = make_loader(images, masks, batch_size=2, shuffle=False)
        assert len(loader) == expected
        assert sum(1 for _ in loader) == expected
        assert len(loader.dataset) == 12  # the data itself is whole


@pytest.mark.slow
def test_the_dry_run_command_runs_a_notebook_in_full_mode(tmp_path):
    """The job itself (scripts/dry_run.py, as ./course dry-run calls it) on the quickest lecture; the whole
    course is too slow for CI on two cores (README: full-size dry run)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
    environ = {k: v for k, v in os.environ.items() if k not in ("COURSE_FAST", "COURSE_DRY_RUN")}
    result = subprocess.run([sys.executable, str(root / "scripts" / "dry_run.py"), "--data-dir", str(tmp_path / "d"),
                             str(root / "notebooks" / "00_setup.ipynb")], cwd=root, env=environ,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| notebooks/00_setup.ipynb |" in result.stdout and "| ok" in result.stdout
    assert (tmp_path / "d" / "oxford-iiit-pet" / "annotations" / "trimaps").is_dir()  # the Pet stand-in, unpacked
