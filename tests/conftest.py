"""Shared test set-up: fast mode, a non-interactive Matplotlib, the local data copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("COURSE_FAST", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"
if "COURSE_DATA_DIR" not in os.environ and (SHARED_DATA / "isbi2012-membrane").is_dir():
    os.environ["COURSE_DATA_DIR"] = str(SHARED_DATA)


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every Matplotlib figure a test opened."""
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")


@pytest.fixture
def membrane_dir() -> Path:
    """The folder holding isbi2012-membrane/ (skips with a clear reason when absent)."""
    root = Path(os.environ.get("COURSE_DATA_DIR", SHARED_DATA))
    if not (root / "isbi2012-membrane").is_dir():
        pytest.skip(f"ISBI 2012 slices not found under {root}: set COURSE_DATA_DIR to the folder holding them")
    return root


@pytest.fixture
def unregister():
    """Forget the data sets a test registers (the download registry is global)."""
    from course_utils import download

    before = set(download.registered_datasets())
    yield
    for name in set(download.registered_datasets()) - before:
        download._REGISTRY.pop(name, None)
