"""course_utils.env: fast mode, seeding, data folder, device report."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import numpy as np
import pytest

from course_utils import env


@pytest.mark.parametrize("value, expected", [("1", True), ("true", True), ("ON", True), ("0", False), ("", False)])
def test_fast_mode_is_read_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("COURSE_FAST", value)
    assert env.is_fast() is expected
    assert env.pick(fast="small", full="big") == ("small" if expected else "big")


def test_fast_mode_unset_means_full_mode(monkeypatch):
    monkeypatch.delenv("COURSE_FAST", raising=False)
    assert env.is_fast() is False


def test_unclear_fast_mode_value_is_an_error_that_says_what_to_set(monkeypatch):
    monkeypatch.setenv("COURSE_FAST", "maybe")
    with pytest.raises(ValueError, match="set it to 1"):
        env.is_fast()


def test_data_dir_follows_the_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert env.data_dir() == tmp_path
    monkeypatch.delenv("COURSE_DATA_DIR")
    assert "semantic-segmentation-course" in str(env.data_dir())


def test_seed_everything_repeats_python_and_numpy():
    env.seed_everything(7)
    first = (random.random(), np.random.rand(3))
    env.seed_everything(7)
    second = (random.random(), np.random.rand(3))
    assert first[0] == second[0] and np.array_equal(first[1], second[1])
    env.seed_everything(8)
    assert random.random() != first[0]


def test_seed_everything_seeds_loaded_frameworks_without_importing_others():
    code = (
        "import sys, torch\n"
        "from course_utils import env\n"
        "env.seed_everything(3); a = torch.rand(3)\n"
        "env.seed_everything(3); b = torch.rand(3)\n"
        "assert torch.equal(a, b)\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def test_seed_everything_seeds_keras():
    keras = pytest.importorskip("keras")
    env.seed_everything(5)
    a = keras.ops.convert_to_numpy(keras.random.uniform((4,)))
    layer_a = keras.layers.Dense(2)
    layer_a.build((None, 3))
    env.seed_everything(5)
    b = keras.ops.convert_to_numpy(keras.random.uniform((4,)))
    layer_b = keras.layers.Dense(2)
    layer_b.build((None, 3))
    assert np.array_equal(a, b)
    assert np.array_equal(layer_a.get_weights()[0], layer_b.get_weights()[0])


def test_device_report_names_only_loaded_frameworks():
    code = (
        "import torch\nfrom course_utils import env\n"
        "print(sorted(env.device_report()), env.device_report()['torch'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("['torch']")
    assert "CPU" in out or "cuda" in out or "mps" in out


def test_describe_mentions_mode_and_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_FAST", "1")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    text = env.describe()
    assert "FAST" in text and str(tmp_path) in text and "GPU" in text


def test_describe_says_how_to_switch_to_the_other_mode_only(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_FAST", "1")
    fast = env.describe()
    assert "Mode: FAST" in fast and "set COURSE_FAST=1" not in fast and "unset COURSE_FAST" in fast
    monkeypatch.delenv("COURSE_FAST")
    full = env.describe()
    assert "Mode: FULL" in full and "set COURSE_FAST=1 for fast mode" in full
    monkeypatch.setattr(env, "gpu_name", lambda: None)
    assert "Without a GPU" in env.describe()                     # full mode on a CPU: advise fast mode
    monkeypatch.setattr(env, "gpu_name", lambda: "Tesla T4")
    assert "Without a GPU" not in env.describe()
    monkeypatch.setenv("COURSE_FAST", "1")
    monkeypatch.setattr(env, "gpu_name", lambda: None)
    assert "Without a GPU" not in env.describe()                 # already in fast mode: nothing to advise


def test_setup_notebook_prints_no_fast_mode_hint_when_fast_mode_is_on(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COURSE_FAST", "1")
    env.setup_notebook()
    out = capsys.readouterr().out
    assert "FAST" in out and "set COURSE_FAST=1" not in out


def test_colab_detection(monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert env.in_colab() is False
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_2026")
    assert env.in_colab() is True


def test_setup_notebook_lets_tensorflow_grow_its_gpu_memory(monkeypatch, capsys):
    import subprocess
    import sys

    from course_utils import env

    monkeypatch.delenv("TF_FORCE_GPU_ALLOW_GROWTH", raising=False)
    env.setup_notebook()
    assert os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    monkeypatch.setenv("TF_FORCE_GPU_ALLOW_GROWTH", "false")  # a user's own choice is kept
    env.setup_notebook()
    assert os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "false"
    capsys.readouterr()
    # set before TensorFlow is imported: the first cell of a notebook imports no framework
    code = ("import sys, os; from course_utils import env; env.setup_notebook(); "
            "assert 'tensorflow' not in sys.modules and 'torch' not in sys.modules; "
            "print(os.environ['TF_FORCE_GPU_ALLOW_GROWTH'])")
    clean = {k: v for k, v in os.environ.items() if k != "TF_FORCE_GPU_ALLOW_GROWTH"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=clean)
    assert out.stdout.strip().splitlines()[-1] == "true"
