"""Fast/full mode, seeding, device report and Colab detection.

Fast mode is switched on by the environment variable ``COURSE_FAST=1`` (the
test command sets it): notebooks then shrink image sizes, data and epochs so
that they run on a laptop CPU in a few minutes. Full mode (the default) is for
a GPU, e.g. on Colab.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from pathlib import Path

FAST_ENV_VAR = "COURSE_FAST"
DRY_RUN_ENV_VAR = "COURSE_DRY_RUN"
#: Training steps per epoch (and validation batches) in a dry run; epochs are capped to one.
DRY_RUN_STEPS = 2
DATA_ENV_VAR = "COURSE_DATA_DIR"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def is_fast() -> bool:
    """True when ``COURSE_FAST`` is set to 1/true/yes/on.

    Read at call time, so a notebook can flip the variable and re-run cells.
    """
    value = os.environ.get(FAST_ENV_VAR, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(
        f"{FAST_ENV_VAR}={value!r} is not understood: set it to 1 for fast mode "
        "or 0 (or leave it unset) for full mode."
    )


def is_dry_run() -> bool:
    """True when ``COURSE_DRY_RUN`` is set to 1/true/yes/on (``./course dry-run`` sets it).

    A dry run is full mode with every training loop of the course's helpers cut
    to one epoch of :data:`DRY_RUN_STEPS` steps: ``course_utils.torch.train.fit``
    and, once ``course_utils.keras`` is imported, every ``keras.Model.fit``
    (see :func:`dry_run_cap`). It exercises the full-size shapes, models, data and
    figures on a CPU in minutes; the notebooks' results then mean nothing.
    """
    value = os.environ.get(DRY_RUN_ENV_VAR, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{DRY_RUN_ENV_VAR}={value!r} is not understood: set it to 1 for a dry run or 0 (or unset).")


def dry_run_cap(epochs: int, steps=None) -> tuple[int, int | None]:
    """``(epochs, steps per epoch)`` a training loop should run: unchanged, or capped in a dry run.

    ``steps`` None means "the whole data set"; in a dry run it becomes
    :data:`DRY_RUN_STEPS` and ``epochs`` at most 1.

    >>> dry_run_cap(40)          # not a dry run
    (40, None)
    """
    if not is_dry_run():
        return epochs, steps
    return min(int(epochs), 1), DRY_RUN_STEPS if steps is None else min(int(steps), DRY_RUN_STEPS)


def pick(fast, full):
    """Return ``fast`` in fast mode and ``full`` otherwise.

    >>> image_size = pick(fast=64, full=256)
    """
    return fast if is_fast() else full  # a dry run is full mode (its fit calls are capped instead)


def pick_epochs(fast: int, full: int) -> int:
    """The epoch count of a training loop written out in a notebook: ``pick(fast, full)``, but 1 in a dry run.

    ``fit`` (both frameworks) caps itself in a dry run; a hand-written ``for epoch in range(EPOCHS)`` cannot,
    so it takes its count from here. (Its loaders already hand a dry run only a few batches per epoch.)

    >>> EPOCHS = pick_epochs(fast=8, full=30)
    """
    return min(int(pick(fast, full)), 1) if is_dry_run() else int(pick(fast, full))


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def data_dir() -> Path:
    """The folder where data sets are cached.

    ``COURSE_DATA_DIR`` when set (tests point it at a local copy), otherwise
    the user's cache folder (``~/.cache/semantic-segmentation-course`` on
    Linux).
    """
    configured = os.environ.get(DATA_ENV_VAR)
    if configured:
        return Path(configured).expanduser()
    import pooch  # only needed for the platform's cache location

    return Path(pooch.os_cache("semantic-segmentation-course"))


def seed_everything(seed: int = 42) -> int:
    """Seed Python, NumPy and whichever of TensorFlow/PyTorch is loaded.

    Frameworks that are not imported yet are not imported here (a PyTorch
    notebook must not load TensorFlow): call this after importing your
    framework. Returns the seed, so ``SEED = seed_everything(42)`` works.
    """
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    if "keras" in sys.modules:
        import keras

        keras.utils.set_random_seed(seed)  # seeds Python, NumPy and the backend
    elif "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.random.set_seed(seed)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)  # also seeds every CUDA device
    return seed


def torch_device():
    """The best PyTorch device here: ``cuda``, then ``mps``, then ``cpu``."""
    import torch

    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_report() -> dict:
    """What each loaded framework will compute on, e.g. ``{"torch": "cuda (Tesla T4)"}``.

    Only frameworks that are already imported are asked.
    """
    report = {}
    if "tensorflow" in sys.modules or "keras" in sys.modules:
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            names = []
            for gpu in gpus:
                details = tf.config.experimental.get_device_details(gpu)
                names.append(details.get("device_name", gpu.name))
            report["tensorflow"] = "GPU (" + ", ".join(names) + ")"
        else:
            report["tensorflow"] = "CPU"
    if "torch" in sys.modules:
        import torch

        device = torch_device()
        if device.type == "cuda":
            report["torch"] = f"cuda ({torch.cuda.get_device_name(0)})"
        else:
            report["torch"] = device.type.upper() if device.type == "cpu" else device.type
    return report


def gpu_name() -> str | None:
    """The NVIDIA GPU's name from ``nvidia-smi``, or None (asks no framework)."""
    import shutil
    import subprocess

    if shutil.which("nvidia-smi") is None:
        return None
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    names = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return ", ".join(names) or None


def describe() -> str:
    """One paragraph on where and how this notebook runs."""
    gpu = gpu_name()
    lines = [
        f"Python {platform.python_version()} on {platform.system()} "
        f"({'Colab' if in_colab() else 'local'})",
        f"Mode: FAST (small sizes for CPU/tests; unset {FAST_ENV_VAR} for full mode)" if is_fast()
        else f"Mode: FULL (sizes for a GPU; set {FAST_ENV_VAR}=1 for fast mode)",
        f"Data folder: {data_dir()}",
        f"GPU: {gpu or 'none found - training runs on the CPU'}",
    ]
    if gpu is None and not is_fast():
        lines.append(f"Without a GPU, full mode trains for a long time: use fast mode ({FAST_ENV_VAR}=1).")
    if in_colab() and gpu is None:
        lines.append("On Colab, choose Runtime > Change runtime type > GPU for full mode.")
    for framework, device in device_report().items():
        lines.append(f"{framework} computes on: {device}")
    return "\n".join(lines)


def setup_notebook() -> None:
    """Print the notebook's mode, data folder and devices (the first cell calls this).

    Also quiets TensorFlow's C++ start-up log (oneDNN notices and the like),
    which would otherwise bury the first outputs, and lets TensorFlow take GPU
    memory as it needs it (``TF_FORCE_GPU_ALLOW_GROWTH=true``) rather than all
    at once, unless the user set these variables.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow otherwise reserves almost all GPU memory at its first operation, and the PyTorch half of a
    # lecture that trains both (05, 07, the capstone) would run out of memory. Read when TF starts its GPU.
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    print(describe())
