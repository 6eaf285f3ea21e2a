"""Full-size dry run: execute every lecture and solution in FULL mode with training capped.

    python scripts/dry_run.py                      # every notebook in notebooks/ and solutions/
    python scripts/dry_run.py notebooks/06_evaluation.ipynb ...

``./course dry-run`` calls this. Each notebook runs with ``COURSE_FAST=0`` (full-size
images, models, validation and figures) and ``COURSE_DRY_RUN=1``: every
``course_utils.torch.train.fit`` and ``keras.Model.fit`` then runs one epoch of
``env.DRY_RUN_STEPS`` steps (see ``course_utils.env.dry_run_cap``), so a CPU gets
through a notebook in minutes. Data: the ISBI slices from ``$COURSE_DATA_DIR`` (or
``../shared/data``, or downloaded), and the Oxford-IIIT Pet data set replaced by a
synthetic stand-in in the real archives' layout (``course_utils.pets.make_sample_archives``),
unpacked where the capstone looks for the real one, so nothing large is downloaded.

What counts as a failure: any error except an ``AssertionError``. After two training
steps a notebook's claims about trained models ("Dice above 0.7") cannot hold, so
failed assertions are listed but do not fail the dry run; shape errors, missing
data, out-of-memory and every other exception do. Exit status 1 when a notebook failed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PET_STAND_IN = {"num_trainval": 48, "num_test": 16, "min_size": 160, "max_size": 400, "seed": 0}


def prepare_data(data_dir: Path, isbi_source: Path | None) -> Path:
    """A data folder for the dry run: the ISBI slices (a link) and a Pet stand-in, unpacked as the real one."""
    from course_utils import pets, safety

    data_dir.mkdir(parents=True, exist_ok=True)
    if isbi_source is not None and (isbi_source / "isbi2012-membrane").is_dir():
        link = data_dir / "isbi2012-membrane"
        if not link.exists():
            link.symlink_to((isbi_source / "isbi2012-membrane").resolve(), target_is_directory=True)
    target = data_dir / pets.DATASET_NAME
    if not target.exists():
        archives = pets.make_sample_archives(data_dir / "pet-archives", **PET_STAND_IN)
        partial = data_dir / (pets.DATASET_NAME + ".partial")
        partial.mkdir()
        for path in archives.values():
            with tarfile.open(path) as tar:
                tar.extractall(partial, filter="data")  # our own archives; "data" refuses links and escapes
        safety.replace(partial, target, inside=data_dir)
    return data_dir


def errors_of(nb) -> list[tuple[int, str, str]]:
    """(cell index, exception name, message) of every error output in an executed notebook."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                found.append((index, output.get("ename", "?"), output.get("evalue", "")))
    return found


# TensorFlow's C++ logger prints this once per process when it starts; it warns about nothing.
HARMLESS_WARNINGS = ("All log messages before absl::InitializeLog() is called are written to STDERR",)


def warnings_of(nb) -> list[tuple[int, str]]:
    """(cell index, line) of every distinct warning a cell printed to stderr (TensorFlow's retracing
    warning, deprecations, ...): a full-size run should be quiet, so the report lists them
    (except the start-up line in ``HARMLESS_WARNINGS``)."""
    found, seen = [], set()
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") != "stream" or output.get("name") != "stderr":
                continue
            for line in output.get("text", "").splitlines():
                line = line.strip()
                harmless = any(text in line for text in HARMLESS_WARNINGS)
                if "warn" in line.lower() and not harmless and line not in seen:
                    seen.add(line)
                    found.append((index, line))
    return found


def run_notebook(path: Path, timeout: int = 3600) -> dict:
    """Execute ``path`` in its own folder (errors recorded, not raised); return time and errors."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    errors = errors_of(nb)
    failures = [e for e in errors if e[1] != "AssertionError"]
    return {"path": path, "seconds": seconds, "errors": errors, "failed": bool(failures),
            "warnings": warnings_of(nb)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/*.ipynb and solutions/*.ipynb")
    parser.add_argument("--data-dir", type=Path, default=None, help="where to prepare the data (default: a temp dir)")
    args = parser.parse_args(argv)

    paths = [p.resolve() for p in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted(
        (ROOT / "solutions").glob("*.ipynb"))
    isbi = os.environ.get("COURSE_DATA_DIR")
    isbi_source = Path(isbi) if isbi else (ROOT.parent / "shared" / "data")
    with tempfile.TemporaryDirectory(prefix="course-dry-run-") as tmp:
        data_dir = prepare_data(args.data_dir or Path(tmp) / "data", isbi_source)
        os.environ.update({"COURSE_FAST": "0", "COURSE_DRY_RUN": "1", "COURSE_DATA_DIR": str(data_dir),
                           "MPLBACKEND": "Agg", "TF_CPP_MIN_LOG_LEVEL": "2",
                           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
        results, total = [], time.perf_counter()
        for path in paths:
            print(f"[dry-run] {path.relative_to(ROOT)} ...", flush=True)
            result = run_notebook(path)
            results.append(result)
            status = "FAILED" if result["failed"] else "ok"
            print(f"[dry-run]   {status} in {result['seconds']:.0f} s", flush=True)
            for index, name, message in result["errors"]:
                kind = "claim not met after 2 steps" if name == "AssertionError" else "ERROR"
                print(f"[dry-run]     cell {index}: {kind}: {name}: {message[:300]}", flush=True)
            for index, line in result["warnings"]:
                print(f"[dry-run]     cell {index}: warning: {line[:300]}", flush=True)
    print(f"\n| notebook | dry run (s) | result | warnings |\n|---|---:|---|---:|")
    for r in results:
        asserts = sum(e[1] == "AssertionError" for e in r["errors"])
        note = "FAILED" if r["failed"] else "ok" + (f" ({asserts} assertion(s) on trained results)" if asserts else "")
        print(f"| {r['path'].relative_to(ROOT)} | {r['seconds']:.0f} | {note} | {len(r['warnings'])} |")
    print(f"\nTotal: {time.perf_counter() - total:.0f} s for {len(results)} notebooks.")
    return 1 if any(r["failed"] for r in results) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
