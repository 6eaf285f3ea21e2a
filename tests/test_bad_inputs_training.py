"""Training that goes wrong (issue 24): a loss that becomes NaN/inf stops training with a message naming the
epoch, the step and the causes, in both frameworks; an output folder that cannot be written is reported
before training starts; sweep files that are cut short, broken or compared on one seed get clear answers;
the data-parallel scripts refuse bad arguments up front.

Everything runs on the CPU in seconds; destructive code only on ``tmp_path``.
"""

from __future__ import annotations

import errno
import json
import math
import pathlib
import tempfile

import numpy as np
import pytest

from course_utils import dynamics
from course_utils.distributed import RunLog, check_script_arguments, positive_int
from course_utils.dynamics import TrainingDivergedError


# ============================================================================ PyTorch: NaN / inf loss
def _torch_setup(lr=0.01, n=16, batch=4, model=None):
    torch = pytest.importorskip("torch")
    from torch import nn

    torch.manual_seed(0)
    x = torch.rand(n, 1, 8, 8)
    y = (x[:, 0] > 0.5).long()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch)
    model = model or nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    steps = []
    optimizer.register_step_post_hook(lambda *args: steps.append(1))  # counts the optimizer steps taken
    return torch, model, loader, optimizer, steps


def _nan_after(calls: int):
    """A model whose output turns NaN from its ``calls + 1``-th training forward pass on."""
    import torch
    from torch import nn

    class NaNAfter(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 1)
            self.calls = 0

        def forward(self, x):
            out = self.conv(x)
            if self.training:
                self.calls += 1
                if self.calls > calls:
                    out = out * torch.nan
            return out

    return NaNAfter()


def test_torch_fit_with_a_huge_learning_rate_stops_at_the_first_inf_loss():
    torch, model, loader, optimizer, steps = _torch_setup(lr=1e38)
    from course_utils.torch import train

    with pytest.raises(TrainingDivergedError, match=r"epoch 1, step 2\b.*learning rate.*too high.*NaN.*float16") as info:
        train.fit(model, loader, loader, torch.nn.CrossEntropyLoss(), optimizer, 5, 2, device="cpu", progress=False)
    error = info.value
    assert (error.epoch, error.step) == (1, 2) and not math.isfinite(error.loss)
    assert len(steps) == 2  # stopped at once: no step after the bad one (the old code ran all 5 epochs)
    assert error.history == {"loss": [], "val_loss": [], "val_dice": [], "val_iou": []}


def test_torch_fit_names_the_epoch_and_step_of_a_model_that_starts_to_output_nan():
    torch, model, loader, optimizer, steps = _torch_setup(model=_nan_after(6))  # 4 steps/epoch: epoch 2, step 3
    from course_utils.torch import train

    with pytest.raises(TrainingDivergedError, match=r"became nan at epoch 2, step 3") as info:
        train.fit(model, loader, loader, torch.nn.CrossEntropyLoss(), optimizer, 4, 2, device="cpu", progress=False)
    assert len(info.value.history["loss"]) == 1 and math.isfinite(info.value.history["loss"][0])
    assert len(steps) == 7  # 4 + 3: the NaN step itself is taken, none after it


def test_torch_train_one_epoch_under_autocast_puts_the_precision_hint_first():
    """The mixed-precision code path (bfloat16 autocast + GradScaler on the CPU) stops the same way."""
    torch, model, loader, optimizer, steps = _torch_setup(model=_nan_after(1))
    from course_utils.torch import train

    scaler = torch.amp.GradScaler("cpu")
    with pytest.raises(TrainingDivergedError, match=r"epoch 3, step 2.*\(1\) float16 overflow.*GradScaler.*bfloat16"):
        train.train_one_epoch(model, loader, torch.nn.CrossEntropyLoss(), optimizer, "cpu", amp=True,
                              scaler=scaler, epoch=3)


def test_torch_stop_on_nonfinite_false_keeps_training_as_before():
    torch, model, loader, optimizer, steps = _torch_setup(model=_nan_after(0))
    from course_utils.torch import train

    history = train.fit(model, loader, None, torch.nn.CrossEntropyLoss(), optimizer, 2, 2, device="cpu",
                        monitor="loss", progress=False, stop_on_nonfinite=False)
    assert len(history["loss"]) == 2 and all(math.isnan(v) for v in history["loss"]) and len(steps) == 8


# ============================================================================ Keras: NaN / inf loss
def _keras_fit(learning_rate, x=None, epochs=3, callbacks=None):
    keras = pytest.importorskip("keras")
    from course_utils import env
    from course_utils.keras import train

    env.seed_everything(0)
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, padding="same", activation="tanh"),
                              keras.layers.Conv2D(2, 1)])
    train.compile_model(model, 2, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        learning_rate=learning_rate, jit_compile=False)
    rng = np.random.default_rng(0)
    x = rng.random((32, 8, 8, 1)).astype("float32") if x is None else x
    y = (np.nan_to_num(x[..., 0]) > 0.5).astype("int32")
    callbacks = train.training_callbacks() if callbacks is None else callbacks
    return model.fit(x, y, batch_size=8, epochs=epochs, shuffle=False, verbose=0, callbacks=callbacks)


def test_keras_training_callbacks_stop_at_the_first_inf_loss():
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, step 2\b.*too high.*mixed_bfloat16") as info:
        _keras_fit(1e38)
    assert (info.value.epoch, info.value.step) == (1, 2)


def test_keras_nan_pixels_name_the_batch_and_a_finished_epoch_is_kept():
    keras = pytest.importorskip("keras")
    from course_utils.keras import train

    # Epoch 1 trains normally; from epoch 2 on the rate is absurd: the error names epoch 2.
    rates = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 1e-3 if epoch == 0 else 1e38)
    with pytest.raises(TrainingDivergedError, match=r"epoch 2, step 2\b") as info:
        _keras_fit(1e-3, callbacks=[rates, *train.training_callbacks()])
    assert len(info.value.history["loss"]) == 1 and math.isfinite(info.value.history["loss"][0])
    x = np.random.default_rng(0).random((32, 8, 8, 1)).astype("float32")
    x[17, 3, 3, 0] = np.nan  # a NaN pixel in the third batch of 8
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, step 3\b.*NaN or inf pixels"):
        _keras_fit(1e-3, x=x)


def test_keras_mixed_precision_policy_puts_the_precision_hint_first():
    keras = pytest.importorskip("keras")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        with pytest.raises(TrainingDivergedError, match=r"step \d+.*\(1\) float16 overflow under mixed precision"):
            _keras_fit(1e38)
    finally:
        keras.config.set_dtype_policy(previous)


def test_keras_callback_list_order_and_opt_out():
    pytest.importorskip("keras")
    from course_utils.keras import train

    assert [type(c).__name__ for c in train.training_callbacks()] == ["StopOnNonFiniteLoss"]
    assert train.training_callbacks(stop_on_nonfinite=False) == []


# ============================================================================ output folders
def test_check_writable_folder_file_in_the_way_and_read_only(tmp_path, monkeypatch):
    from course_utils.results import check_writable_folder

    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=r"runs/a' cannot be created because '.*/runs' is a file, not a folder: choose another folder"):
        check_writable_folder(tmp_path / "runs" / "a")
    assert check_writable_folder(tmp_path / "new" / "sub") == tmp_path / "new" / "sub"
    assert list((tmp_path / "new" / "sub").iterdir()) == []  # the probe is gone

    def refuse(*args, **kwargs):  # a read-only folder (the tests run as root, where chmod does not stop writes)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(PermissionError, match=r"cannot write to the checkpoint folder .*Permission denied"):
        check_writable_folder(tmp_path / "ro", "the checkpoint folder")


def test_torch_fit_and_save_checkpoint_check_the_folder_before_training(tmp_path):
    torch, model, loader, optimizer, steps = _torch_setup()
    from course_utils.torch import train

    (tmp_path / "ck").write_text("a file named like the folder")
    with pytest.raises(NotADirectoryError, match=r"checkpoint folder .*ck.* is a file"):
        train.fit(model, loader, loader, torch.nn.CrossEntropyLoss(), optimizer, 2, 2, device="cpu",
                  progress=False, checkpoint_path=tmp_path / "ck" / "unet.pt")
    assert steps == []  # refused before the first step
    with pytest.raises(NotADirectoryError, match="is a file"):
        train.save_checkpoint(model, tmp_path / "ck" / "unet.pt")
    assert (tmp_path / "ck").read_text() == "a file named like the folder"


def test_keras_training_callbacks_check_the_folder(tmp_path):
    pytest.importorskip("keras")
    from course_utils.keras import train

    (tmp_path / "ck").write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        train.training_callbacks(checkpoint_path=tmp_path / "ck" / "unet.keras")


def test_run_log_checks_its_folder_when_made_on_rank0_only(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(NotADirectoryError, match="run log's folder"):
        RunLog(tmp_path / "out" / "log.json", rank=0)
    log = RunLog(tmp_path / "out" / "log.json", rank=1)  # other ranks never write
    assert log.save(loss=1.0) is None


def test_save_rows_on_a_full_disk_keeps_the_old_file_and_leaves_nothing_behind(tmp_path, monkeypatch):
    path = dynamics.save_rows(tmp_path / "sweep.json", [{"setting": "a", "seed": 0, "dice": 0.5}])
    good = path.read_text()
    original = pathlib.Path.write_text

    def full_disk(self, text, *args, **kwargs):
        original(self, text[:8192], *args, **kwargs)  # 8 KB reach the disk, then it is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pathlib.Path, "write_text", full_disk)
    rows = [{"setting": "a", "seed": s, "dice": 0.5, "history": list(range(500))} for s in range(10)]
    with pytest.raises(OSError, match="No space left"):
        dynamics.save_rows(path, rows)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep.json"]  # no .tmp left behind
    assert path.read_text() == good


# ============================================================================ sweep tables
def test_compare_with_one_valid_seed_per_side_is_not_comparable():
    rows = [{"setting": "a", "seed": 0, "dice": 0.80}, {"setting": "a", "seed": 1, "dice": float("nan")},
            {"setting": "b", "seed": 0, "dice": 0.79}]
    a, b = dynamics.summarise(rows, "dice")
    assert dynamics.compare(a, b).startswith("not comparable (a spread needs 2 or more seeds; 1 here)")
    assert dynamics.compare(b, a).startswith("not comparable")


def test_compare_paired_uses_the_per_seed_differences():
    # b is below a by 0.01-0.02 in every seed, far inside the seed spread: unpaired "within", paired "higher".
    a_values, b_values = [0.60, 0.80, 0.70, 0.75, 0.65], [0.59, 0.78, 0.69, 0.74, 0.63]
    rows = ([{"setting": "a", "seed": s, "dice": v} for s, v in enumerate(a_values)]
            + [{"setting": "b", "seed": s, "dice": v} for s, v in enumerate(b_values)])
    a, b = dynamics.summarise(rows, "dice")
    assert a["dice_by_seed"] == dict(enumerate(a_values))
    assert dynamics.compare(a, b) == "within the seed spread of"
    assert dynamics.compare(a, b, paired=True) == "higher than"
    assert dynamics.compare(b, a, paired=True) == "lower than"
    noisy = dynamics.summarise([{"setting": "c", "seed": s, "dice": v}
                                for s, v in enumerate([0.70, 0.70, 0.60, 0.80, 0.75])], "dice")[0]
    assert dynamics.compare(a, noisy, paired=True) == "not shown to differ from"
    two = dynamics.summarise([{"setting": "d", "seed": s, "dice": v} for s, v in enumerate([0.5, 0.6])], "dice")[0]
    assert dynamics.compare(a, two, paired=True).startswith("not comparable (a paired comparison needs 3")
    with pytest.raises(ValueError, match="dice_by_seed"):
        dynamics.compare({k: v for k, v in a.items() if k != "dice_by_seed"}, b, paired=True)


def test_summarise_refuses_text_for_a_number():
    with pytest.raises(ValueError, match=r"'n/a' is not a number.*None"):
        dynamics.summarise([{"setting": "a", "seed": 0, "dice": "n/a"}], "dice")


def test_load_rows_names_the_file_when_it_is_broken_or_not_a_sweep(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"rows": [{"setting": "a"')
    with pytest.raises(ValueError, match=r"broken\.json is not a valid JSON file .*save_rows"):
        dynamics.load_rows(broken)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"runs": []}))
    with pytest.raises(ValueError, match=r"other\.json has no list of 'rows' \(found \['runs'\]\)"):
        dynamics.load_rows(other)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"list\.json has no list of 'rows' \(found list\)"):
        dynamics.load_rows(listed)


# ============================================================================ the data-parallel scripts
def _script(name):
    import importlib.util

    path = pathlib.Path(__file__).resolve().parent.parent / "scripts" / name
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["train_ddp_torch.py", "train_mirrored_keras.py"])
@pytest.mark.parametrize("steps", ["0", "-5", "2.5"])
def test_scripts_refuse_steps_that_are_not_positive(name, steps, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        _script(name).parse_args(["--steps", steps, "--out", str(tmp_path / "run")])
    assert info.value.code == 2
    assert f"argument --steps: {steps}" in capsys.readouterr().err.replace("'", "")


def test_torch_script_refuses_a_global_batch_that_does_not_split_and_a_file_as_out(tmp_path, monkeypatch, capsys):
    module = _script("train_ddp_torch.py")
    monkeypatch.setenv("WORLD_SIZE", "3")
    with pytest.raises(SystemExit):
        module.parse_args(["--global-batch", "8", "--out", str(tmp_path / "run")])
    assert "--global-batch 8 with 3 processes/replicas: a global batch of 8 does not split evenly over 3" \
        in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "2")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit):
        module.parse_args(["--out", str(tmp_path / "file")])
    assert "is a file, not a folder" in capsys.readouterr().err
    assert module.parse_args(["--out", str(tmp_path / "run")]).steps == 20


def test_keras_script_refuses_a_global_batch_that_does_not_split(tmp_path, capsys):
    module = _script("train_mirrored_keras.py")
    with pytest.raises(SystemExit):
        module.parse_args(["--devices", "3", "--global-batch", "8", "--out", str(tmp_path / "run")])
    assert "does not split evenly over 3 devices: use a multiple of 3 (e.g. 6 or 9)" in capsys.readouterr().err


def test_check_script_arguments_and_positive_int(tmp_path):
    assert check_script_arguments(8, 2, tmp_path / "run") == tmp_path / "run"
    with pytest.raises(ValueError, match="--num-images 4 is fewer than one global batch of 8"):
        check_script_arguments(8, 2, tmp_path / "run", num_images=4)
    assert positive_int("3") == 3


def test_ddp_script_stops_when_the_loss_becomes_inf(tmp_path):
    import os
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parent.parent
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": "",
           "PYTHONPATH": str(root) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("WORLD_SIZE", None)
    result = subprocess.run([sys.executable, str(root / "scripts" / "train_ddp_torch.py"), "--steps", "5",
                             "--global-batch", "4", "--image-size", "16", "--num-images", "8", "--base-filters", "2",
                             "--depth", "1", "--no-batch-norm", "--lr", "1e38", "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=300, env=env, cwd=root)
    assert result.returncode != 0
    assert "TrainingDivergedError: the training loss became" in result.stderr and "at step 2," in result.stderr
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_the_batched_check_used_on_gpus_names_the_first_bad_step():
    """On a GPU the losses are read every POSTFIX_EVERY steps; the first bad one is still the step named."""
    torch = pytest.importorskip("torch")
    from course_utils.torch import train

    pending = [torch.tensor(v) for v in [0.7, 0.6, 0.5, float("nan"), float("inf"), 0.4, 0.3, 0.2, 0.1, 0.1]]
    with pytest.raises(TrainingDivergedError, match=r"became nan at epoch 4, step 14,") as info:
        train._stop_if_nonfinite(pending, 19, 4, False, None)  # 0-based steps 10..19: the NaN is step 13 (0-based)
    assert info.value.step == 14
    train._stop_if_nonfinite(pending[:3], 2, 1, False, None)  # all finite: nothing happens
