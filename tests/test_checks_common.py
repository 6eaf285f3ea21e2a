"""The mechanism shared by every check: short failures, 'not written yet' by name, a grading record."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from course_utils import checks
from course_utils.checks import CheckFailed, NotWrittenYet
from course_utils.checks._common import LOG_ENV, check, is_unfinished, require


def good_one_hot(masks, num_classes):
    return np.eye(num_classes, dtype=np.float32)[masks]


def todo_one_hot(masks, num_classes):
    # TODO: your code here (replace the line below).
    raise NotImplementedError("Exercise: write this part, then run the check below.")


def test_failure_renders_as_one_short_block_in_ipython():
    with pytest.raises(CheckFailed) as info:
        checks.check_one_hot(lambda m, c: np.moveaxis(good_one_hot(m, c), -1, 1))
    lines = info.value._render_traceback_()
    assert len(lines) == 1 and "class axis is first" in lines[0] and "Traceback" not in lines[0]
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no chained traceback


def test_student_error_inside_a_check_is_one_sentence_without_chain():
    def broken(masks, num_classes):
        return {}["missing"]

    with pytest.raises(CheckFailed, match="KeyError") as info:
        checks.check_one_hot(broken)
    assert info.value.__suppress_context__ and "\n" not in str(info.value)


def test_plain_python_prints_a_readable_last_line(tmp_path):
    script = tmp_path / "student.py"
    script.write_text(textwrap.dedent("""
        import numpy as np
        from course_utils import checks
        def one_hot(masks, num_classes):
            return np.swapaxes(np.eye(num_classes, dtype=np.float32)[masks], 1, 2)
        checks.check_one_hot(one_hot)
    """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("course_utils.checks._common.CheckFailed: one_hot(masks, 3)")
    assert "height and width are swapped" in last
    assert "During handling of the above exception" not in result.stderr


def test_records_pass_fail_and_not_attempted(tmp_path, monkeypatch, capsys):
    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    checks.check_one_hot(good_one_hot)
    with pytest.raises(CheckFailed):
        checks.check_one_hot(lambda m, c: m)
    with pytest.raises(NotWrittenYet, match="todo_one_hot is not written yet"):
        checks.check_one_hot(todo_one_hot)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["check"], r["target"], r["status"]) for r in records] == [
        ("check_one_hot", "good_one_hot", "passed"),
        ("check_one_hot", "", "failed"),
        ("check_one_hot", "todo_one_hot", "not attempted"),
    ]
    assert "add the class axis last" in records[1]["message"]


def test_a_dispatching_check_records_once(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from course_utils.torch.unet import DoubleConv

    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    checks.check_conv_block(DoubleConv, "torch")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["check"], r["target"], r["status"]) for r in records] == [("check_conv_block", "DoubleConv", "passed")]


def test_usage_errors_are_not_turned_into_student_mistakes():
    with pytest.raises(ValueError, match="framework must be"):
        checks.check_soft_dice(good_one_hot, "jax")


def test_require_names_the_unfinished_functions():
    assert is_unfinished(todo_one_hot) and not is_unfinished(good_one_hot)
    require(good_one_hot)  # finished: nothing happens
    with pytest.raises(NotWrittenYet, match="this cell uses todo_one_hot, which is not written yet"):
        require(good_one_hot, todo_one_hot)


def test_decorator_turns_a_stray_not_implemented_into_not_written():
    @check
    def check_thing(fn):
        fn()

    def my_function():
        raise NotImplementedError

    with pytest.raises(NotWrittenYet, match="^my_function is not written yet"):
        check_thing(my_function)


def test_every_public_check_goes_through_the_shared_wrapper():
    from course_utils.checks import capstone, data, dense, evaluation, fcn, losses, predict, unet

    names = {n for module in (data, dense, unet, losses, evaluation, fcn, predict, capstone)
             for n in module.__all__ if n.startswith("check_")}
    assert len(names) >= 20
    for name in names:
        assert getattr(getattr(checks, name), "__wrapped_check__", False), f"{name} is not decorated with @check"


def test_not_written_renders_as_a_to_do_line():
    with pytest.raises(NotWrittenYet) as info:
        checks.check_one_hot(todo_one_hot)
    (line,) = info.value._render_traceback_()
    assert "To do:" in line and "todo_one_hot is not written yet" in line
