#!/usr/bin/env python3
"""How long every notebook takes in fast mode (what `./course test` runs).

Runs each notebook of notebooks/ and solutions/ on its own under ``pytest --nbval-lax`` with
``COURSE_FAST=1`` (exactly as the test suite does, one kernel per notebook, one after the other) and
records the wall-clock seconds and whether it passed.

    python benchmarks/notebook_runtimes.py --quick          # only the first lecture: checks that it runs
    python benchmarks/notebook_runtimes.py                  # every lecture and solution (many minutes)
    python benchmarks/notebook_runtimes.py notebooks/09_capstone.ipynb --json out.json

Prints a Markdown table; ``--json PATH`` also writes the rows (used by benchmarks/report.py).
Run it on a quiet machine: the numbers are the notebooks' fast-mode budget (about 1-2 minutes each).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from machine import with_local_data  # noqa: E402
FOLDERS = ("notebooks", "solutions")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks to run (default: notebooks/ and solutions/)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds before a notebook counts as failed")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="run only the first lecture notebook")
    return parser.parse_args(argv)


def notebooks(args) -> list[Path]:
    if args.paths:
        return [p.resolve() for p in args.paths]
    found = [p for folder in FOLDERS for p in sorted((ROOT / folder).glob("[0-9][0-9]_*.ipynb"))]
    return found[:1] if args.quick else found


def fast_mode_env() -> dict:
    """The environment of `./course test`: fast mode, no GUI backend, the local data copy when present."""
    return with_local_data(dict(os.environ, COURSE_FAST="1", MPLBACKEND="Agg", TF_CPP_MIN_LOG_LEVEL="2"))


def run_one(path: Path, timeout: int) -> dict:
    command = [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "-q",
               f"--nbval-cell-timeout={timeout}", str(path)]
    start = time.perf_counter()
    try:
        result = subprocess.run(command, cwd=ROOT, env=fast_mode_env(), capture_output=True, text=True,
                                timeout=timeout)
        status = "passed" if result.returncode == 0 else "failed"
        tail = (result.stdout + result.stderr)[-2000:] if result.returncode else ""
    except subprocess.TimeoutExpired:
        status, tail = "timeout", f"no result after {timeout} s"
    seconds = time.perf_counter() - start
    try:
        name = str(path.relative_to(ROOT))
    except ValueError:
        name = str(path)
    return {"notebook": name, "seconds": seconds, "status": status, "output_tail": tail}


def markdown(rows) -> str:
    lines = [
        "## Notebook run times (fast mode)",
        "",
        "Each notebook alone under `pytest --nbval-lax` with `COURSE_FAST=1` (kernel start included).",
        "",
        "| notebook | seconds | result |",
        "|---|---:|---|",
    ]
    for row in rows:
        lines.append(f"| {row['notebook']} | {row['seconds']:.0f} | {row['status']} |")
    total = sum(row["seconds"] for row in rows)
    lines.append(f"| **total** | **{total:.0f}** | {sum(r['status'] == 'passed' for r in rows)}/{len(rows)} passed |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    paths = notebooks(args)
    if not paths:
        print("No notebooks found.", file=sys.stderr)
        return 1
    rows = []
    for path in paths:
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        rows.append(run_one(path, args.timeout))
        print(f"  {rows[-1]['status']} in {rows[-1]['seconds']:.0f} s", file=sys.stderr, flush=True)
    print(markdown(rows))
    for row in rows:
        if row["status"] != "passed":
            print(f"\n{row['notebook']} {row['status']}:\n{row['output_tail']}", file=sys.stderr)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"quick": args.quick, "rows": rows}, indent=2))
    return 0 if all(row["status"] == "passed" for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
