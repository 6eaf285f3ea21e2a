"""Record a lecture's comparison table for the benchmark report.

When the environment variable ``COURSE_RECORD_RESULTS`` is set, lectures 05,
07 and 08 call :func:`record_results` at the end; ``benchmarks/report.py`` then
puts the table into ``benchmarks/RESULTS.md`` (the format is described in
``benchmarks/README.md``). Unset, nothing is written.
"""

from __future__ import annotations

import datetime
import json
import math
import os
from pathlib import Path

from .safety import atomic_write, remove

__all__ = ["record_results", "results_dir", "check_writable_folder", "RECORD_ENV_VAR"]

RECORD_ENV_VAR = "COURSE_RECORD_RESULTS"


def check_writable_folder(folder, what: str = "the output folder") -> Path:
    """Make sure files can be written in ``folder`` *before* a long run needs to; return it as a Path.

    The folder is created (with its parents) when missing. Raises a one-sentence error naming the folder,
    what is wrong and what to do, when a file stands where the folder (or one of its parents) should be
    (``NotADirectoryError``), or when a test file cannot be created there (``PermissionError`` for a
    read-only folder, ``OSError`` for a full disk and the like). The test file has a unique name and is
    removed at once; nothing else in the folder is touched. ``what`` names the folder in the message,
    e.g. "the checkpoint folder".
    """
    import errno
    import tempfile

    folder = Path(folder).expanduser()
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            if not candidate.is_dir():
                raise NotADirectoryError(
                    f"{what} {str(folder)!r} cannot be created because {str(candidate)!r} is a file, not a folder: "
                    "choose another folder, or move that file away."
                )
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        message = (f"cannot write to {what} {str(folder)!r} ({reason}): choose a folder you can write to "
                   "(and with free space) before training starts.")
        if isinstance(error, PermissionError) or error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise PermissionError(message) from None
        raise OSError(error.errno, message) from None
    try:
        os.write(handle, b"0")
    except OSError as error:
        raise OSError(error.errno, f"cannot write to {what} {str(folder)!r} ({error.strerror}): free some space "
                      "or choose another folder before training starts.") from None
    finally:
        os.close(handle)
        remove(probe, inside=folder)  # the probe file this function made, nothing else
    return folder


def results_dir() -> Path | None:
    """Where to write, or None when recording is off.

    ``COURSE_RECORD_RESULTS=1`` means ``benchmarks/results/`` of the course
    repository the notebook runs in (found from the working folder upwards);
    any other non-empty value is taken as the folder itself.
    """
    value = os.environ.get(RECORD_ENV_VAR, "").strip()
    if value in ("", "0"):
        return None
    if value != "1":
        return Path(value).expanduser()
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "benchmarks").is_dir() and (folder / "course_utils").is_dir():
            return folder / "benchmarks" / "results"
    raise FileNotFoundError(
        f"{RECORD_ENV_VAR}=1 but no course repository (with benchmarks/ and course_utils/) was found "
        f"above {Path.cwd()}: set {RECORD_ENV_VAR} to the folder to write to instead."
    )


def _plain(value):
    """NumPy scalars/arrays -> JSON-friendly Python values."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return float("nan")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def record_results(lecture: str, rows: list[dict], *, mode: str, dataset: str | None = None,
                   setup: str | None = None) -> Path | None:
    """Write ``lecture<NN>.json`` when recording is on; return its path (or None).

    Args:
        lecture: "05", "07" or "09".
        rows: one dict per trained model with at least ``framework``, ``name``,
            ``dice`` and ``iou``; other keys become extra columns.
        mode: "fast" or "full".
        dataset, setup: one-line descriptions shown above the table.
    """
    folder = results_dir()
    if folder is None:
        return None
    required = {"framework", "name", "dice", "iou"}
    for row in rows:
        missing = required - set(row)
        if missing:
            raise ValueError(f"a results row lacks {sorted(missing)}: every row needs {sorted(required)}.")
    payload = {
        "lecture": lecture,
        "mode": mode,
        "dataset": dataset,
        "setup": setup,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "rows": [_plain(row) for row in rows],
    }
    if not (isinstance(lecture, str) and lecture.isdigit() and len(lecture) == 2):
        raise ValueError(f"lecture must be a two-digit string such as '05', got {lecture!r}.")
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(payload, indent=2)
    # Only ever lecture<NN>.json inside the results folder, written atomically (never half a file).
    path = atomic_write(folder / f"lecture{lecture}.json", lambda tmp: tmp.write_text(text, encoding="utf-8"),
                        inside=folder)
    print(f"Recorded the results in {path}")
    return path
