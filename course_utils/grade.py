"""Grade a folder of exercise notebooks: which checks pass, fail (with the message) or were not attempted.

Usage (instructors)::

    ./course grade FOLDER [--out DIR] [--timeout SECONDS]
    python -m course_utils.grade FOLDER ...        # the same without the course script

Every ``NN_*.ipynb`` in FOLDER (a student's copy of ``exercises/``) runs in fast mode (``COURSE_FAST=1``) with
nbclient, one kernel per notebook, errors allowed so that one unfinished exercise does not hide the rest.
Each check appends a JSON record to the file in ``$COURSE_CHECK_LOG`` (see
:mod:`course_utils.checks._common`); after every cell the records are attributed to that cell and matched
with the ``checks.check_*(...)`` calls in its source. A call without a record (its cell stopped earlier)
counts as "not attempted", or "failed" when the cell stopped with an error other than a missing
implementation. The table is written as Markdown and CSV (``DIR/<folder>.md`` and ``.csv``, default
DIR ``grades/``); notebooks are never modified on disk.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"
_CALL = re.compile(r"\bchecks\.(check_\w+)\(")
_NOT_WRITTEN_ERRORS = {"NotImplementedError", "NotWrittenYet"}


@dataclass
class Row:
    """One check call of one notebook and its outcome."""

    exercise: str
    check: str
    status: str = NOT_ATTEMPTED
    message: str = ""


@dataclass
class NotebookResult:
    exercise: str
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    error: str = ""  # the notebook could not be run at all (kernel died, timeout)


def _call_text(source: str, start: int) -> str:
    """The text of the call starting at ``start`` (``checks.check_x(...)``), up to its closing parenthesis."""
    depth, i = 0, source.index("(", start)
    for j in range(i, len(source)):
        if source[j] == "(":
            depth += 1
        elif source[j] == ")":
            depth -= 1
            if depth == 0:
                return source[start:j + 1]
    return source[start:]


def check_calls(source: str) -> list[tuple[str, str]]:
    """``[(check_name, label)]`` for every ``checks.check_*(...)`` call in a cell, in order.

    The label is the call without ``checks.``, shortened to its first line for long calls; a prediction
    check is labelled by its variable (``check_prediction(PREDICTION_RF)``).
    """
    calls = []
    for match in _CALL.finditer(source):
        text = _call_text(source, match.start())
        name = match.group(1)
        if name == "check_prediction":
            variable = re.search(r"name\s*=\s*[\"'](\w+)[\"']", text)
            label = f"check_prediction({variable.group(1) if variable else '?'})"
        else:
            label = " ".join(text[len("checks."):].split())
            if len(label) > 80:
                label = label[:77] + "..."
        calls.append((name, label))
    return calls


def _cell_error(cell) -> tuple[str, str]:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output.get("ename", ""), output.get("evalue", "")
    return "", ""


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", " ".join(str(text).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def grade_notebook(path: Path, timeout: int = 600, kernel_name: str = "python3") -> NotebookResult:
    """Run one notebook in fast mode and return one row per check call."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    result = NotebookResult(exercise=path.stem)
    with tempfile.TemporaryDirectory(prefix="course_grade_") as tmp:
        log = Path(tmp) / "checks.jsonl"
        log.touch()
        position = [0]
        per_cell: dict[int, list[dict]] = {}

        def on_cell_executed(cell, cell_index, **_):
            with open(log, encoding="utf-8") as handle:
                handle.seek(position[0])
                new = handle.read()
                position[0] = handle.tell()
            per_cell[cell_index] = [json.loads(line) for line in new.splitlines() if line.strip()]

        saved = {k: os.environ.get(k) for k in ("COURSE_FAST", "COURSE_CHECK_LOG", "MPLBACKEND")}
        os.environ.update(COURSE_FAST="1", COURSE_CHECK_LOG=str(log), MPLBACKEND="Agg")
        client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}},
                                on_cell_executed=on_cell_executed)
        start = time.perf_counter()
        try:
            client.execute()
        except Exception as error:  # noqa: BLE001 - a timeout or a dead kernel: report it, grade what ran
            result.error = _one_line(f"{type(error).__name__}: {error}")
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        result.seconds = time.perf_counter() - start

    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        records = list(per_cell.get(index, []))
        ename, evalue = _cell_error(cell)
        for name, label in check_calls(cell.source):
            row = Row(result.exercise, label)
            record = next((r for r in records if r.get("check") == name), None)
            if record is not None:
                records.remove(record)
                row.status, row.message = record["status"], _one_line(record.get("message", ""))
            elif index not in per_cell:
                row.message = "not run: " + (result.error or "the notebook stopped before this cell")
            elif ename and ename not in _NOT_WRITTEN_ERRORS:
                row.status, row.message = FAILED, _one_line(f"the cell stopped before the check: {ename}: {evalue}")
            elif ename:
                row.message = _one_line(f"the cell stopped before the check: {ename}: {evalue}")
            result.rows.append(row)
    return result


def grade_folder(folder, timeout: int = 600, kernel_name: str = "python3", pattern: str = "[0-9][0-9]_*.ipynb",
                 progress=print) -> list[NotebookResult]:
    """Grade every notebook matching ``pattern`` in ``folder`` (sorted by name)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder: pass the folder that holds the exercise notebooks, "
                         "e.g. ./course grade exercises")
    paths = sorted(folder.glob(pattern))
    if not paths:
        raise ValueError(f"no notebooks matching {pattern} in {folder}: pass the folder of exercise notebooks.")
    results = []
    for path in paths:
        if progress:
            progress(f"grading {path.name} ...")
        results.append(grade_notebook(path, timeout=timeout, kernel_name=kernel_name))
        if progress:
            counts = summary(results[-1:])
            progress(f"  {counts[PASSED]} passed, {counts[FAILED]} failed, {counts[NOT_ATTEMPTED]} not attempted "
                     f"({results[-1].seconds:.0f} s)")
    return results


def summary(results) -> dict:
    counts = {PASSED: 0, FAILED: 0, NOT_ATTEMPTED: 0}
    for result in results:
        for row in result.rows:
            counts[row.status] += 1
    return counts


def to_markdown(results, title: str) -> str:
    counts = summary(results)
    lines = [f"# Grades: {title}", "",
             f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[NOT_ATTEMPTED]} not attempted "
             f"({sum(r.seconds for r in results):.0f} s in fast mode).", "",
             "| exercise | check | status | message |", "|---|---|---|---|"]
    for result in results:
        if result.error:
            lines.append(f"| {result.exercise} | (notebook) | error | {result.error.replace('|', '/')} |")
        for row in result.rows:
            cells = [row.exercise, f"`{row.check}`", row.status, row.message]
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(results, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["exercise", "check", "status", "message"])
        for result in results:
            for row in result.rows:
                writer.writerow([row.exercise, row.check, row.status, row.message])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="course grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="folder of exercise notebooks (a student's copy of exercises/)")
    parser.add_argument("--out", default="grades", help="folder for <name>.md and <name>.csv (default: grades/)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    args = parser.parse_args(argv)
    folder = Path(args.folder).resolve()
    try:
        results = grade_folder(folder, timeout=args.timeout, kernel_name=args.kernel)
    except ValueError as error:
        print(f"course grade: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    markdown, table = out / f"{folder.name}.md", out / f"{folder.name}.csv"
    markdown.write_text(to_markdown(results, folder.name), encoding="utf-8")
    write_csv(results, table)
    counts = summary(results)
    print(f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[NOT_ATTEMPTED]} not attempted: "
          f"{markdown} and {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
