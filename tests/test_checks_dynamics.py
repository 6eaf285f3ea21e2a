"""The lecture-08 checks: right answers pass, wrong ones get a specific message."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import dynamics as dyn
from course_utils.checks import CheckFailed, check_learning_rate_fix, check_direction, check_rare_class_weights
from course_utils.checks.dynamics import outcome


def test_outcome_uses_the_spread():
    assert outcome(0.5, 0.6, 0.05) == "up"
    assert outcome(0.5, 0.4, 0.05) == "down"
    assert outcome(0.5, 0.53, 0.05) == "same"
    assert outcome(0.5, float("nan"), 0.05) == "down"


def test_check_direction_right_and_wrong(capsys):
    assert check_direction("down", 0.5, 0.2, 0.05, why="The rate was too large.") is True
    assert "right" in capsys.readouterr().out
    assert check_direction(" UP ", 0.5, 0.2, 0.05) is False  # a wrong guess is reported, not an error
    out = capsys.readouterr().out
    assert "differs from the run" in out and "measured 'down'" in out


@pytest.mark.parametrize("bad, message", [
    (None, "still empty"), (..., "still empty"), ("better", "not a prediction I can compare"), (1, "one of"),
])
def test_check_direction_rejects_missing_or_malformed(bad, message):
    with pytest.raises(CheckFailed, match=message):
        check_direction(bad, 0.5, 0.4, 0.05)


def test_check_direction_rejects_bad_numbers():
    with pytest.raises(CheckFailed, match="must be numbers"):
        check_direction("up", "a", 0.4, 0.05)
    with pytest.raises(CheckFailed, match="must be finite"):
        check_direction("up", float("nan"), 0.4, 0.05)


def _range_test(curvature=4.0):
    rates = dyn.range_test_rates(1e-4, 10.0, 120)
    w, losses = np.ones(20), []
    for lr in rates:
        losses.append(0.5 * curvature * float(w @ w) + 1.0)
        w = w - lr * curvature * w
    return rates, np.array(losses)


def test_learning_rate_fix_messages(capsys):
    rates, losses = _range_test()
    suggestion = dyn.suggest_learning_rate(rates, losses)
    check_learning_rate_fix(suggestion, rates, losses, history_loss=[1.0, 0.5, 0.3])
    assert "good region" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="at or past the range test's minimum"):
        check_learning_rate_fix(5.0, rates, losses)
    with pytest.raises(CheckFailed, match="too slow, not unstable"):
        check_learning_rate_fix(suggestion / 1000, rates, losses)
    with pytest.raises(CheckFailed, match="non-finite loss"):
        check_learning_rate_fix(suggestion, rates, losses, history_loss=[1.0, float("nan")])
    with pytest.raises(CheckFailed, match="did not fall"):
        check_learning_rate_fix(suggestion, rates, losses, history_loss=[1.0, 1.2])
    with pytest.raises(CheckFailed, match="background only"):
        check_learning_rate_fix(suggestion, rates, losses, history_loss=[1.0, 0.5], per_class_dice=[0.9, 0.0, 0.0, 0.0])
    check_learning_rate_fix(suggestion, rates, losses, history_loss=[1.0, 0.5], per_class_dice=[0.9, 0.3, 0.0, 0.0])
    assert "more than the background" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="positive number"):
        check_learning_rate_fix(-1e-3, rates, losses)
    with pytest.raises(CheckFailed, match="the range test's two lists"):
        check_learning_rate_fix(1e-3, rates[:3], losses)


def test_rare_class_weights_messages(capsys):
    freq = [0.88, 0.05, 0.065, 0.005]
    check_rare_class_weights([0.3, 5.0, 4.0, 50.0], freq, rare_class=3)
    assert "no longer ignore it" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=r"class 3 \(the rare class, 0.5% of the pixels\) still weighs less"):
        check_rare_class_weights([1.0, 1.0, 1.0, 0.02], freq, rare_class=3)
    with pytest.raises(CheckFailed, match="a weight of 0 removes the class"):
        check_rare_class_weights([1.0, 1.0, 1.0, 0.0], freq, rare_class=3)
    with pytest.raises(CheckFailed, match="4 classes, got 3 weights"):
        check_rare_class_weights([1.0, 1.0, 1.0], freq, rare_class=3)
    with pytest.raises(CheckFailed, match="a list of numbers"):
        check_rare_class_weights(["a", "b", "c", "d"], freq, rare_class=3)


def test_an_empty_prediction_counts_as_not_attempted():
    from course_utils.checks import NotWrittenYet

    with pytest.raises(NotWrittenYet, match="PREDICTION_LR is still empty"):
        check_direction(None, 0.5, 0.4, 0.05, name="PREDICTION_LR")
