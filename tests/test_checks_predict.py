"""Predict-run-explain checks: a right prediction passes with the reason, a wrong one fails with it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from course_utils import checks
from course_utils.checks import CheckFailed, NotWrittenYet
from course_utils.checks._common import LOG_ENV

WHY = "every layer adds dilation*(kernel-1) pixels."


def test_right_number_and_choice_pass_with_the_reason(capsys):
    checks.check_prediction(15, 15, name="PREDICTION_RF", explanation=WHY, unit="pixels")
    checks.check_prediction(" Lower ", "lower", name="PREDICTION_SKIPS", explanation="x", choices=["higher", "lower"])
    checks.check_prediction(0.46, 0.45, name="P", explanation="x", tolerance=0.02)
    checks.check_prediction(110, 100, name="P", explanation="x", relative=0.1)
    out = capsys.readouterr().out
    assert out.count("\N{HEAVY CHECK MARK}") == 4 and WHY in out and "15 pixels" in out


@pytest.mark.parametrize("prediction, kwargs, message", [
    (13, dict(measured=15), "you predicted 13 pixels, but the experiment measured 15 pixels. Why: every layer"),
    (0.5, dict(measured=0.45, tolerance=0.02), "measured 0.45"),
    ("higher", dict(measured="lower", choices=["higher", "lower"]), "you predicted 'higher'"),
    ("maybe", dict(measured="lower", choices=["higher", "lower"]), "not one of the choices"),
    ("15", dict(measured=15), "is not a number"),
    (True, dict(measured=1), "is not a number"),
])
def test_wrong_or_invalid_predictions_fail_with_explanation(prediction, kwargs, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_prediction(prediction, name="PREDICTION_RF", explanation=WHY, unit="pixels", **kwargs)


def test_missing_prediction_is_not_attempted(tmp_path, monkeypatch):
    log = tmp_path / "log.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    with pytest.raises(NotWrittenYet, match="PREDICTION_RF is not written yet"):
        checks.check_prediction(None, 15, name="PREDICTION_RF", explanation=WHY)
    record = json.loads(log.read_text())
    assert (record["check"], record["target"], record["status"]) == ("check_prediction", "PREDICTION_RF",
                                                                     "not attempted")


def test_closest_choice():
    assert checks.closest_choice(3.97, {"2x": 2, "4x": 4, "8x": 8}) == "4x"
    assert checks.closest_choice(7.0, {"2x": 2, "4x": 4, "8x": 8}) == "8x"


# ------------------------------------------------------------------ capstone: beats the trivial baseline
def _truth():
    truth = np.zeros((2, 20, 20), dtype=np.int64)
    truth[:, 5:12, 5:12], truth[:, 14:, 14:] = 1, 2
    return truth


def test_capstone_check_passes_a_good_prediction(capsys):
    truth = _truth()
    noisy = truth.copy()
    noisy[:, 5, 5:12] = 0  # a few wrong pixels
    checks.check_beats_baseline(truth, noisy, 3)
    assert "\N{HEAVY CHECK MARK}" in capsys.readouterr().out


@pytest.mark.parametrize("make_pred, message", [
    (lambda t: np.zeros_like(t), "not clearly better than predicting class 0"),
    (lambda t: t.astype(np.float32), "class indices"),
    (lambda t: t[:, :10], "shape"),
    (lambda t: None, "the pipeline is not written yet"),
])
def test_capstone_check_names_the_problem(make_pred, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_beats_baseline(_truth(), make_pred(_truth()), 3)
