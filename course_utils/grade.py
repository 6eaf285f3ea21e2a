"""Grade a folder of exercise notebooks: which checks pass, fail (with the message) or were not attempted.

Usage (instructors)::

    ./course grade FOLDER [--out DIR] [--timeout SECONDS]
    python -m course_utils.grade FOLDER ...        # the same without the course script

Every ``NN_*.ipynb`` in FOLDER (a student's copy of ``exercises/``) runs in fast mode (``COURSE_FAST=1``) with
nbclient, one kernel per notebook, errors allowed so that one unfinished exercise does not hide the rest, and a
time limit per notebook (``--timeout``, default 600 s): a notebook still running at its limit is stopped, gets
a row saying so, and the others are graded. A notebook that cannot be read (not JSON, not a notebook) or that
went missing during grading (an earlier notebook deleted it) gets one error row; the rest are graded.

Where the grades come from. The grader writes a fresh random key to a private file and starts each kernel
with a start-up line that reads the key, deletes the file and removes its name from the environment, all
before the notebook's first cell (:func:`course_utils.checks._common.arm_grading`). Each check then shows
its result as an output of the cell that called it, signed with that key (HMAC-SHA256) and numbered. A
check's row is "passed" or "failed" only from such a record, and only when

* the grader itself executed that cell and saw the record among the cell's outputs,
* the signature is valid and the record's number is higher than every earlier record's (no replays), and
* the cell's code calls that check: a real ``checks.check_*(...)`` call in the parsed code, not in a comment
  or a string.

Nothing is read from a file or log the notebook could write. A check call without a record (its cell stopped
earlier) counts as "not attempted", or "failed" when the cell stopped with an error other than a missing
implementation. The table is written as Markdown and CSV (``DIR/<folder>.md`` and ``.csv``, default DIR
``grades/``); notebooks are never modified on disk.

What this does NOT guarantee: the student's code runs in the same Python process as the checks. Code written
to cheat on purpose can still reach the key inside the kernel, replace a check function, pass the check a
reference solution instead of its own function, or ship its own ``course_utils`` next to the notebook (the
kernel runs in the notebook's folder); and it runs with your permissions (it may read, change or
delete files). The grade is meant to be honest for honest work and not fooled by a pasted record or a
commented-out check; grade untrusted submissions in a sandbox (a container or a throw-away account) and read
what you grade.
"""

from __future__ import annotations

import argparse
import ast
import csv
import hmac
import json
import math
import os
import re
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

PASSED, FAILED, NOT_ATTEMPTED, ERROR = "passed", "failed", "not attempted", "error"
DEFAULT_TIMEOUT = 600
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
    error: str = ""  # the notebook could not be run (unreadable, missing, timed out, kernel died)


def _python_source(source: str) -> str:
    """The cell's code as Python (IPython's ``%magic`` and ``!shell`` lines turned into calls)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:  # pragma: no cover - IPython comes with nbclient's kernel
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - fall back to the raw text; ast decides
        return source


def _label(name: str, text: str, keywords) -> str:
    if name == "check_prediction":
        variable = next((k.value.value for k in keywords if k.arg == "name" and isinstance(k.value, ast.Constant)
                         and isinstance(k.value.value, str)), None)
        return f"check_prediction({variable or '?'})"
    label = " ".join(text[len("checks."):].split()) if text.startswith("checks.") else " ".join(text.split())
    return label if len(label) <= 80 else label[:77] + "..."


def check_calls(source: str) -> list[tuple[str, str]]:
    """``[(check_name, label)]`` for every ``checks.check_*(...)`` call in a cell's code, in order.

    Only real calls count: the cell is parsed, so a call in a comment or a string is not one. The label is
    the call without ``checks.``, shortened for long calls; a prediction check is labelled by its variable
    (``check_prediction(PREDICTION_RF)``). See :func:`_calls` for cells that are not plain Python.
    """
    return [(name, label) for name, label, _ in _calls(source)]


def _calls(source: str) -> list[tuple[str, str, bool]]:
    """``[(check_name, label, real)]``: ``real`` is False for calls read from a cell that is not valid Python.

    A cell magic's body (``%%time``, ``%%capture``) is parsed as Python. A cell that still does not parse has
    no real calls: its rows come from the lines that are not comments, and they are never matched with a
    record (such a cell cannot run a check, so it cannot pass one).
    """
    body = source.split("\n", 1)[1] if source.lstrip().startswith("%%") and "\n" in source else source
    code = _python_source(body)
    try:
        tree = ast.parse(code)
    except SyntaxError:
        lines = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
        return [(m.group(1), m.group(1) + "(...)", False) for m in _CALL.finditer(lines)]
    calls = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "checks"
                and node.func.attr.startswith("check_")):
            text = ast.get_source_segment(code, node) or f"checks.{node.func.attr}(...)"
            calls.append(((node.lineno, node.col_offset), node.func.attr, _label(node.func.attr, text,
                                                                                  node.keywords)))
    return [(name, label, True) for _, name, label in sorted(calls)]


def _cell_error(cell) -> tuple[str, str]:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return output.get("ename", ""), output.get("evalue", "")
    return "", ""


def _one_line(text: str, limit: int = 300) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", " ".join(str(text).split()))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def signed_records(cell, key: bytes, last_seq: int) -> tuple[list[dict], int]:
    """The check records among a cell's outputs whose signature is valid and whose number is new, in order.

    Returns the records and the highest number seen; a record with a bad signature or an old number
    (a copy of an earlier output) is dropped.
    """
    from .checks._common import RECORD_MIME, sign_record

    records = []
    for output in cell.get("outputs", []):
        if output.get("output_type") not in ("display_data", "execute_result"):
            continue
        data = output.get("data", {}).get(RECORD_MIME)
        if not isinstance(data, dict) or not isinstance(data.get("record"), str) or not isinstance(
                data.get("sig"), str):
            continue
        if not hmac.compare_digest(sign_record(key, data["record"]), data["sig"]):
            continue
        try:
            record = json.loads(data["record"])
            seq = int(record["seq"])
        except (ValueError, KeyError, TypeError):
            continue
        if seq <= last_seq or record.get("status") not in (PASSED, FAILED, NOT_ATTEMPTED):
            continue
        last_seq = seq
        records.append(record)
    return records, last_seq


def _check_timeout(timeout) -> float:
    if timeout is None or isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not math.isfinite(timeout) or timeout <= 0:
        raise ValueError(f"timeout={timeout!r} is not a time limit: give the seconds each notebook may run as a "
                         f"positive number, e.g. --timeout {DEFAULT_TIMEOUT}.")
    return float(timeout)


def _read(path: Path, result: NotebookResult):
    import nbformat

    if not path.is_file():
        result.error = ("the file went missing before it was graded (did an earlier notebook delete or move it?)"
                        if not path.exists() else
                        f"{path.name} is not a regular file (a folder, pipe or device): grade only notebook files")
        return None
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:  # noqa: BLE001 - any unreadable file gets its own row
        reason = f"{type(error).__name__}: {error}"
        try:  # JSON that is not a notebook: say what it is, not the library's AttributeError
            top = json.loads(path.read_text(encoding="utf-8"))
        except Exception:  # noqa: BLE001 - not JSON (or unreadable): the library's reason stands
            top = None
        if isinstance(top, list) or (isinstance(top, dict) and "cells" not in top):
            reason = ("it is JSON but not a notebook: a list at the top level" if isinstance(top, list)
                      else "it is JSON but not a notebook: no 'cells'")
        result.error = _one_line(f"{path.name} could not be read as a notebook ({reason}): open it in Jupyter "
                                 "and save it again, or ask for a new copy")
        return None


def grade_notebook(path: Path, timeout: float = DEFAULT_TIMEOUT, kernel_name: str = "python3") -> NotebookResult:
    """Run one notebook in fast mode, stopped after ``timeout`` seconds, and return one row per check call."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError

    timeout = _check_timeout(timeout)
    path = Path(path)
    result = NotebookResult(exercise=path.stem)
    nb = _read(path, result)
    if nb is None:
        return result
    key = secrets.token_bytes(32)
    executed: set[int] = set()
    with tempfile.TemporaryDirectory(prefix="course_grade_") as tmp:
        key_file = Path(tmp) / "key"
        key_file.write_bytes(key)
        key_file.chmod(0o600)
        deadline = [time.monotonic() + timeout]

        def remaining(cell):
            return max(1, math.ceil(deadline[0] - time.monotonic()))

        def on_cell_executed(cell, cell_index, **_):
            executed.add(cell_index)

        saved = {k: os.environ.get(k) for k in ("COURSE_FAST", "COURSE_CHECK_LOG", "MPLBACKEND",
                                                "COURSE_GRADE_KEY_FILE")}
        os.environ.update(COURSE_FAST="1", MPLBACKEND="Agg", COURSE_GRADE_KEY_FILE=str(key_file))
        os.environ.pop("COURSE_CHECK_LOG", None)
        arm = "from course_utils.checks._common import arm_grading as _a; _a(); del _a"
        client = NotebookClient(nb, timeout_func=remaining, kernel_name=kernel_name, allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}},
                                extra_arguments=[f"--IPKernelApp.exec_lines={arm}"],
                                on_cell_executed=on_cell_executed)
        start = time.perf_counter()
        deadline[0] = time.monotonic() + timeout
        try:
            client.execute()
        except CellTimeoutError:
            result.error = (f"timed out: still running after the limit of {timeout:g} s per notebook, stopped "
                            "(an endless loop, or a run too long for fast mode; raise --timeout if it needs longer)")
        except Exception as error:  # noqa: BLE001 - a dead kernel: report it, grade what ran
            result.error = _one_line(f"{type(error).__name__}: {error}")
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        result.seconds = time.perf_counter() - start

    last_seq = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        records, last_seq = (signed_records(cell, key, last_seq) if index in executed else ([], last_seq))
        ename, evalue = _cell_error(cell)
        for name, label, real in _calls(cell.source):
            row = Row(result.exercise, label)
            record = next((r for r in records if r.get("check") == name), None) if real else None
            if record is not None:
                records.remove(record)
                row.status, row.message = record["status"], _one_line(record.get("message", ""))
            elif index not in executed:
                row.message = "not run: " + (result.error or "the notebook stopped before this cell")
            elif ename and ename not in _NOT_WRITTEN_ERRORS:
                row.status, row.message = FAILED, _one_line(f"the cell stopped before the check: {ename}: {evalue}")
            elif ename:
                row.message = _one_line(f"the cell stopped before the check: {ename}: {evalue}")
            else:
                row.message = "the check did not report a result when its cell ran"
            result.rows.append(row)
    if not result.rows and not result.error:
        result.error = ("no check of the course is called in this notebook (the check cells are missing, or "
                        "their calls are only in comments or strings): compare it with a fresh copy of the exercise")
    return result


def find_notebooks(folder, pattern: str = "[0-9][0-9]_*.ipynb") -> list[Path]:
    """The notebooks to grade in ``folder``, sorted by name; a clear error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a folder: pass the folder that holds the exercise notebooks, "
                         "e.g. ./course grade exercises")
    paths = sorted(folder.glob(pattern))
    if not paths:
        raise ValueError(f"no notebooks matching {pattern} in {folder}: pass the folder of exercise notebooks.")
    return paths


def grade_folder(folder, timeout: float = DEFAULT_TIMEOUT, kernel_name: str = "python3",
                 pattern: str = "[0-9][0-9]_*.ipynb", progress=print) -> list[NotebookResult]:
    """Grade every notebook matching ``pattern`` in ``folder`` (sorted by name), each within ``timeout`` s."""
    timeout = _check_timeout(timeout)
    paths = find_notebooks(folder, pattern)
    results = []
    for path in paths:
        if progress:
            progress(f"grading {path.name} ...")
        results.append(grade_notebook(path, timeout=timeout, kernel_name=kernel_name))
        if progress:
            counts = summary(results[-1:])
            note = f"; {results[-1].error}" if results[-1].error else ""
            progress(f"  {counts[PASSED]} passed, {counts[FAILED]} failed, {counts[NOT_ATTEMPTED]} not attempted "
                     f"({results[-1].seconds:.0f} s){note}")
    return results


def summary(results) -> dict:
    """Counts of rows per status, and ``error``: the number of notebooks that could not be run to the end."""
    counts = {PASSED: 0, FAILED: 0, NOT_ATTEMPTED: 0, ERROR: 0}
    for result in results:
        counts[ERROR] += bool(result.error)
        for row in result.rows:
            counts[row.status] += 1
    return counts


def _totals(counts) -> str:
    text = f"{counts[PASSED]} passed, {counts[FAILED]} failed, {counts[NOT_ATTEMPTED]} not attempted"
    if counts[ERROR]:
        text += f", {counts[ERROR]} notebook{'s' if counts[ERROR] > 1 else ''} with an error"
    return text


def to_markdown(results, title: str) -> str:
    counts = summary(results)
    lines = [f"# Grades: {title}", "",
             f"{_totals(counts)} ({sum(r.seconds for r in results):.0f} s in fast mode).", "",
             "| exercise | check | status | message |", "|---|---|---|---|"]
    for result in results:
        if result.error:
            lines.append(f"| {result.exercise} | (notebook) | {ERROR} | {result.error.replace('|', '/')} |")
        for row in result.rows:
            cells = [row.exercise, f"`{row.check}`", row.status, row.message]
            lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(results, path: Path) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["exercise", "check", "status", "message"])
        for result in results:
            if result.error:
                writer.writerow([result.exercise, "(notebook)", ERROR, result.error])
            for row in result.rows:
                writer.writerow([row.exercise, row.check, row.status, row.message])


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time limit: give the seconds each notebook may run as a positive number, "
            f"e.g. --timeout {DEFAULT_TIMEOUT} (there is no 'no limit' setting)")
    return value


def _prepare_out(out: Path) -> str:
    """Create the output folder before grading; a one-sentence problem, or ''."""
    if out.exists() and not out.is_dir():
        return (f"--out {out} is a file, not a folder: name a folder for the grade tables "
                "(it is created when missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        return f"--out {out} cannot be created ({error.strerror or error}): name a folder you can write to"
    if not os.access(out, os.W_OK):
        return f"--out {out} is not writable: name a folder you can write to"
    return ""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="course grade", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="folder of exercise notebooks (a student's copy of exercises/)")
    parser.add_argument("--out", default="grades", help="folder for <name>.md and <name>.csv (default: grades/)")
    parser.add_argument("--timeout", type=_positive_seconds, default=DEFAULT_TIMEOUT,
                        help=f"time limit per notebook in seconds (default {DEFAULT_TIMEOUT}); a notebook still "
                             "running then is stopped and reported")
    parser.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    args = parser.parse_args(argv)
    folder = Path(args.folder).resolve()
    out = Path(args.out)
    try:
        find_notebooks(folder)
    except ValueError as error:
        print(f"course grade: {error}", file=sys.stderr)
        return 2
    problem = _prepare_out(out)
    if problem:
        print(f"course grade: {problem}", file=sys.stderr)
        return 2
    try:
        results = grade_folder(folder, timeout=args.timeout, kernel_name=args.kernel)
    except ValueError as error:
        print(f"course grade: {error}", file=sys.stderr)
        return 2
    problem = _prepare_out(out)  # a graded notebook may have removed or replaced it
    if problem:
        print(f"course grade: {problem} (it changed during grading)", file=sys.stderr)
        return 2
    markdown, table = out / f"{folder.name}.md", out / f"{folder.name}.csv"
    markdown.write_text(to_markdown(results, folder.name), encoding="utf-8")
    write_csv(results, table)
    print(f"{_totals(summary(results))}: {markdown} and {table}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
