"""`./course grade`: runs notebooks in fast mode and tabulates passed / failed / not attempted per check."""

from __future__ import annotations

import csv
import json
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


# --- grading cannot be hung, fooled or stopped by one broken notebook (issue 24) ---

FORGED_RECORD = (
    "import json, os\n"
    "# checks.check_one_hot(one_hot)\n"
    "record = {'check': 'check_one_hot', 'target': 'one_hot', 'status': 'passed', 'message': ''}\n"
    "for name in ('COURSE_CHECK_LOG',):\n"
    "    if os.environ.get(name):\n"
    "        open(os.environ[name], 'a').write(json.dumps(record) + '\\n')\n"
    "from IPython.display import display\n"
    "display({'application/vnd.course-check-record+json': {'record': json.dumps(dict(record, seq=1)), 'sig': '0' * 64}},"
    " raw=True)\n"
    "text = 'checks.check_one_hot(one_hot)'\n")


def _cells_notebook(path: Path, *sources: str) -> None:
    cells = [nbformat.v4.new_code_cell("import numpy as np\nfrom course_utils import checks")]
    cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)


def test_a_check_only_in_a_comment_with_a_forged_record_is_not_passed(tmp_path):
    """The forged record (in the old log file and as an unsigned output) and the commented call count for nothing."""
    folder = tmp_path / "student"
    folder.mkdir()
    _cells_notebook(folder / "01_forged.ipynb", ONE_HOT_SWAPPED, FORGED_RECORD)
    (result,) = grade.grade_folder(folder, timeout=120, progress=None)
    assert result.rows == []
    assert result.error.startswith("no check of the course is called in this notebook")   # a row, not silence
    assert "no check of the course is called" in grade.to_markdown([result], "t")
    # with the real call in the same cell, only the check's own (failing) record counts
    _cells_notebook(folder / "01_forged.ipynb", ONE_HOT_SWAPPED,
                    FORGED_RECORD + "try:\n    checks.check_one_hot(one_hot)\nexcept Exception:\n    pass\n")
    (result,) = grade.grade_folder(folder, timeout=120, progress=None)
    assert [(r.check, r.status) for r in result.rows] == [("check_one_hot(one_hot)", "failed")]
    assert "height and width are swapped" in result.rows[0].message


def test_a_copied_signed_record_is_not_counted_twice():
    from course_utils.checks._common import RECORD_MIME, sign_record

    key = b"k" * 32

    def output(seq, status="passed", sig=None):
        text = json.dumps({"check": "check_one_hot", "target": "", "status": status, "message": "", "seq": seq},
                          sort_keys=True)
        return {"output_type": "display_data", "data": {RECORD_MIME: {"record": text,
                                                                       "sig": sig or sign_record(key, text)}}}

    cell = {"outputs": [output(1), output(1), output(2, sig="f" * 64), output(3, "failed")]}
    records, last = grade.signed_records(cell, key, 0)
    assert [(r["seq"], r["status"]) for r in records] == [(1, "passed"), (3, "failed")] and last == 3
    assert grade.signed_records(cell, b"other key" * 4, 0) == ([], 0)
    assert grade.signed_records({"outputs": [output(2)]}, key, 3) == ([], 3)


def test_calls_in_comments_and_strings_are_not_calls():
    source = ("# checks.check_one_hot(one_hot)\ntext = 'checks.check_dice(dice)'\n%time x = 1\n"
              "checks.check_iou(iou)")
    assert grade.check_calls(source) == [("check_iou", "check_iou(iou)")]
    # a cell magic's body is Python; a cell that is not Python has calls for its rows, never real ones
    assert grade.check_calls("%%time\nchecks.check_iou(iou)") == [("check_iou", "check_iou(iou)")]
    assert grade._calls("%%bash\necho checks.check_iou(iou) &&") == [("check_iou", "check_iou(...)", False)]


def test_a_looping_notebook_is_stopped_at_its_limit_and_the_rest_are_graded(tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    _cells_notebook(folder / "01_loops.ipynb", "while True:\n    pass", "checks.check_one_hot(one_hot)")
    _notebook(folder / "02_right.ipynb", ONE_HOT_RIGHT, "15")
    out = tmp_path / "grades"
    assert grade.main([str(folder), "--out", str(out), "--timeout", "20"]) == 0
    rows = list(csv.DictReader(open(out / "student.csv", encoding="utf-8")))
    table = {(r["exercise"], r["check"]): (r["status"], r["message"]) for r in rows}
    status, message = table[("01_loops", "(notebook)")]
    assert status == "error" and "timed out" in message and "20 s" in message
    assert table[("01_loops", "check_one_hot(one_hot)")][0] == "not attempted"
    assert table[("02_right", "check_one_hot(one_hot)")] == ("passed", "")


@pytest.mark.parametrize("value", ["0", "-5", "nan"])
def test_a_timeout_that_is_not_positive_is_refused(tmp_path, capsys, value):
    _notebook(tmp_path / "01_x.ipynb", ONE_HOT_RIGHT, "15")
    with pytest.raises(SystemExit):
        grade.main([str(tmp_path), "--out", str(tmp_path / "g"), "--timeout", value])
    assert "not a time limit" in capsys.readouterr().err and not (tmp_path / "g").exists()
    with pytest.raises(ValueError, match="not a time limit"):
        grade.grade_notebook(tmp_path / "01_x.ipynb", timeout=0)


def test_broken_and_missing_notebooks_get_a_row_and_the_rest_are_graded(tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    # 01 deletes 03 while it runs (the grader runs it with the notebook's folder as working directory)
    _cells_notebook(folder / "01_deletes.ipynb", "import os\nos.remove('03_deleted.ipynb')")
    (folder / "02_list.ipynb").write_text("[]")
    _notebook(folder / "03_deleted.ipynb", ONE_HOT_RIGHT, "15")
    (folder / "04_not_json.ipynb").write_text("this is not {json")
    _notebook(folder / "05_right.ipynb", ONE_HOT_RIGHT, "15")
    out = tmp_path / "grades"
    assert grade.main([str(folder), "--out", str(out), "--timeout", "120"]) == 0
    rows = list(csv.DictReader(open(out / "student.csv", encoding="utf-8")))
    errors = {r["exercise"]: r["message"] for r in rows if r["status"] == "error"}
    assert set(errors) == {"01_deletes", "02_list", "03_deleted", "04_not_json"}
    assert errors["01_deletes"].startswith("no check of the course is called")   # it ran, but checked nothing
    assert "02_list.ipynb could not be read as a notebook" in errors["02_list"]
    assert "04_not_json.ipynb could not be read as a notebook" in errors["04_not_json"]
    assert "went missing" in errors["03_deleted"]
    assert {r["status"] for r in rows if r["exercise"] == "05_right"} == {"passed"}
    assert "4 notebooks with an error" in (out / "student.md").read_text()


def test_out_naming_a_file_is_refused_before_grading(tmp_path, capsys):
    _cells_notebook(tmp_path / "01_x.ipynb", "open('graded', 'w').close()")
    out = tmp_path / "grades.txt"
    out.write_text("keep me")
    assert grade.main([str(tmp_path), "--out", str(out)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert out.read_text() == "keep me" and not (tmp_path / "graded").exists()  # nothing was run


def test_the_signing_key_is_out_of_reach_of_the_environment_and_the_disk(tmp_path):
    _cells_notebook(tmp_path / "01_snoop.ipynb", ONE_HOT_RIGHT,
                    "import os\nassert 'COURSE_GRADE_KEY_FILE' not in os.environ\n"
                    "assert b'COURSE_GRADE_KEY_FILE=' not in open('/proc/self/environ', 'rb').read() or not any(\n"
                    "    os.path.exists(p.split(b'=', 1)[1].decode()) for p in open('/proc/self/environ', 'rb')"
                    ".read().split(b'\\0') if p.startswith(b'COURSE_GRADE_KEY_FILE='))\n"
                    "checks.check_one_hot(one_hot)")
    (result,) = grade.grade_folder(tmp_path, timeout=120, progress=None)
    assert [(r.status, r.message) for r in result.rows] == [("passed", "")]
