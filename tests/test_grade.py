"""`./course grade`: runs notebooks in fast mode and tabulates passed / failed / not attempted per check."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nbformat
import pytest

from course_utils import grade

ROOT = Path(__file__).resolve().parent.parent

ONE_HOT_RIGHT = "def one_hot(masks, num_classes):\n    return np.eye(num_classes, dtype=np.float32)[masks]"
ONE_HOT_SWAPPED = ("def one_hot(masks, num_classes):\n"
                   "    return np.swapaxes(np.eye(num_classes, dtype=np.float32)[masks], 1, 2)")
ONE_HOT_TODO = ("def one_hot(masks, num_classes):\n    # TODO: your code here (replace the line below).\n"
                '    raise NotImplementedError("Exercise: write this part, then run the check below.")')


def _notebook(path: Path, one_hot_source: str, prediction: str) -> None:
    cells = [
        nbformat.v4.new_markdown_cell("# Exercise 99 · tiny"),
        nbformat.v4.new_code_cell("import numpy as np\nfrom course_utils import checks"),
        nbformat.v4.new_code_cell(one_hot_source),
        nbformat.v4.new_code_cell("checks.check_one_hot(one_hot)"),
        nbformat.v4.new_code_cell(f"PREDICTION_X = {prediction}"),
        nbformat.v4.new_code_cell('checks.check_prediction(PREDICTION_X, 15, name="PREDICTION_X", explanation="why.")'),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


def test_check_calls_are_found_in_cell_sources():
    source = ('checks.check_soft_dice(soft_dice_loss_torch, "torch")\n'
              'checks.check_prediction(\n    P, m, name="PREDICTION_RF",\n    explanation="x (y)")\nx = 1')
    assert grade.check_calls(source) == [("check_soft_dice", 'check_soft_dice(soft_dice_loss_torch, "torch")'),
                                         ("check_prediction", "check_prediction(PREDICTION_RF)")]
    assert grade.check_calls("print('no checks here')") == []


def test_grade_folder_reports_passed_failed_and_not_attempted(tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    _notebook(folder / "01_right.ipynb", ONE_HOT_RIGHT, "15")
    _notebook(folder / "02_wrong.ipynb", ONE_HOT_SWAPPED, "12")
    _notebook(folder / "03_untouched.ipynb", ONE_HOT_TODO, "None")
    out = tmp_path / "grades"
    assert grade.main([str(folder), "--out", str(out), "--timeout", "120"]) == 0

    rows = list(csv.DictReader(open(out / "student.csv", encoding="utf-8")))
    table = {(r["exercise"], r["check"]): (r["status"], r["message"]) for r in rows}
    assert len(rows) == 6
    assert table[("01_right", "check_one_hot(one_hot)")] == ("passed", "")
    assert table[("01_right", "check_prediction(PREDICTION_X)")] == ("passed", "")
    status, message = table[("02_wrong", "check_one_hot(one_hot)")]
    assert status == "failed" and "height and width are swapped" in message
    status, message = table[("02_wrong", "check_prediction(PREDICTION_X)")]
    assert status == "failed" and "you predicted 12" in message
    assert table[("03_untouched", "check_one_hot(one_hot)")][0] == "not attempted"
    assert "one_hot is not written yet" in table[("03_untouched", "check_one_hot(one_hot)")][1]
    assert table[("03_untouched", "check_prediction(PREDICTION_X)")][0] == "not attempted"

    markdown = (out / "student.md").read_text()
    assert "2 passed, 2 failed, 2 not attempted" in markdown
    assert "| 02_wrong | `check_one_hot(one_hot)` | failed |" in markdown
    # the notebooks on disk are not modified
    assert all(not c.get("outputs") for c in nbformat.read(folder / "01_right.ipynb", 4).cells
               if c.cell_type == "code")


def test_bad_folder_is_a_clear_error(tmp_path, capsys):
    assert grade.main([str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
    assert grade.main([str(tmp_path)]) == 2
    assert "no notebooks" in capsys.readouterr().err


@pytest.mark.parametrize("folder, expected", [("solutions", "passed"), ("exercises", "not attempted")])
def test_real_notebook_solution_passes_and_exercise_is_not_attempted(tmp_path, folder, expected):
    """One real, small notebook (lecture 06's): the solution passes every check, the exercise attempts none."""
    copy = tmp_path / folder
    copy.mkdir()
    shutil.copy(ROOT / folder / "06_evaluation.ipynb", copy)
    (result,) = grade.grade_folder(copy, timeout=300, progress=None)
    assert len(result.rows) >= 3
    assert {row.status for row in result.rows} == {expected}, [(r.check, r.status, r.message) for r in result.rows]
