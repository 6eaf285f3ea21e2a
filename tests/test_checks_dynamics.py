"""The lecture-08 checks: right answers pass, thoughtless ones fail with a specific message, and grading sees both."""

from __future__ import annotations

import json

import numpy as np
import pytest

from course_utils import dynamics as dyn
from course_utils.checks import (CheckFailed, NotWrittenYet, check_direction, check_learning_rate_fix,
                                 check_rare_class_repair, check_rare_class_weights, record_prediction)
from course_utils.checks._common import LOG_ENV
from course_utils.checks.dynamics import RecordedPrediction, outcome, tolerance_from_seeds

WHY = {"up": "it went up because ...", "same": "it stayed because ...", "down": "it fell because ..."}


def test_outcome_uses_the_tolerance():
    assert outcome(0.5, 0.6, 0.05) == "up"
    assert outcome(0.5, 0.4, 0.05) == "down"
    assert outcome(0.5, 0.53, 0.05) == "same"
    assert outcome(0.5, float("nan"), 0.05) == "down"  # a diverged run


def test_tolerance_sits_above_the_seed_noise_of_the_difference():
    before = [0.40, 0.50, 0.30, 0.45, 0.35]
    after = [b + d for b, d in zip(before, (0.01, -0.03, 0.02, 0.00, -0.01))]
    sd = np.std(np.subtract(after, before), ddof=1)  # 0.0192: the between-seed spread (0.08) cancels
    assert tolerance_from_seeds(before, after, floor=0.0) == pytest.approx(0.02)  # rounded up, never below sd
    assert tolerance_from_seeds(before, after, factor=2.0) == pytest.approx(np.ceil(2 * sd * 100) / 100)  # 0.04
    assert tolerance_from_seeds(before, before) == 0.02  # the floor
    wide = [b + d for b, d in zip(before, (0.3, 0.0, 0.2, -0.1, 0.1))]
    assert tolerance_from_seeds(before, wide) >= np.std(np.subtract(wide, before), ddof=1)
    with pytest.raises(ValueError, match="at least 3"):
        tolerance_from_seeds([0.1, 0.2], [0.2, 0.3])


def test_record_refuses_an_empty_prediction_before_the_run():
    with pytest.raises(NotWrittenYet, match="PREDICTION_LR is still empty.*does not run before you have predicted"):
        record_prediction(None, name="PREDICTION_LR")
    with pytest.raises(CheckFailed, match="not a prediction I can compare"):
        record_prediction("better", name="PREDICTION_LR")
    assert record_prediction(" Down ", name="P") == RecordedPrediction("P", "down")


def test_the_check_uses_the_value_recorded_before_the_run(capsys):
    recorded = record_prediction("down", name="PREDICTION_LR")
    PREDICTION_LR = "same"  # noqa: F841 - changed after the run: it does not count
    check_direction(recorded, 0.5, 0.2, 0.05, WHY, name="PREDICTION_LR")
    assert "you predicted 'down'" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="must be recorded before the run"):
        check_direction("down", 0.5, 0.2, 0.05, WHY, name="PREDICTION_LR")  # a raw string, not recorded


def test_a_wrong_prediction_fails_and_explains_the_measured_outcome(tmp_path, monkeypatch):
    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv(LOG_ENV, str(log))
    with pytest.raises(CheckFailed, match=r"you predicted 'up', but .* measured 'down'. Why: it fell because"):
        check_direction(record_prediction("up", "P"), 0.5, 0.2, 0.05, WHY, name="P")
    with pytest.raises(CheckFailed, match="measured 'same'. Why: it stayed because"):
        check_direction(record_prediction("down", "P"), 0.5, 0.47, 0.05, WHY, name="P")
    check_direction(record_prediction("same", "P"), 0.5, 0.47, 0.05, WHY, name="P")
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["check"], r["target"], r["status"]) for r in records] == [
        ("check_direction", "P", "failed"), ("check_direction", "P", "failed"), ("check_direction", "P", "passed")]


def test_a_diverged_run_counts_as_down(capsys):
    check_direction(record_prediction("down", "P"), 0.5, float("nan"), 0.05, WHY, name="P")
    assert "the run diverged" in capsys.readouterr().out


def test_check_direction_rejects_bad_input():
    recorded = record_prediction("up", "P")
    with pytest.raises(CheckFailed, match="must be numbers"):
        check_direction(recorded, "a", 0.4, 0.05, WHY)
    with pytest.raises(CheckFailed, match="must be finite"):
        check_direction(recorded, float("nan"), 0.4, 0.05, WHY)
    with pytest.raises(CheckFailed, match="one sentence for each outcome"):
        check_direction(recorded, 0.5, 0.4, 0.05, {"up": "fixed text"})
    with pytest.raises(NotWrittenYet, match="still empty"):
        check_direction(None, 0.5, 0.4, 0.05, WHY, name="P")


def _range_test(curvature=4.0):
    """A quadratic bowl under gradient descent: the loss falls, then (rate > 2 / curvature) explodes."""
    rates = dyn.range_test_rates(1e-4, 10.0, 120)
    w, losses = np.ones(20), []
    for lr in rates:
        losses.append(0.5 * curvature * float(w @ w) + 1.0)
        w = w - lr * curvature * w
    return rates, np.array(losses)


def test_learning_rate_fix_passes_the_suggestion_with_a_good_run(capsys):
    rates, losses = _range_test()
    suggestion = dyn.suggest_learning_rate(rates, losses)
    check_learning_rate_fix(suggestion, rates, losses, history_loss=[1.0, 0.5, 0.3],
                            per_class_dice=[0.95, 0.6, 0.5, 0.1], background_dice=0.24)
    assert "segments more than the background" in capsys.readouterr().out


def test_the_raw_minimum_of_the_range_test_fails():
    rates, losses = _range_test()
    raw_minimum = float(rates[int(np.argmin(losses))])
    with pytest.raises(CheckFailed, match="at or near the range test's minimum"):
        check_learning_rate_fix(raw_minimum, rates, losses)
    with pytest.raises(CheckFailed, match="at or near the range test's minimum"):
        check_learning_rate_fix(raw_minimum / 1.5, rates, losses)  # within a factor 2 below it


def test_learning_rate_fix_fails_each_bad_run():
    rates, losses = _range_test()
    suggestion = dyn.suggest_learning_rate(rates, losses)
    with pytest.raises(CheckFailed, match="too slow, not unstable"):
        check_learning_rate_fix(suggestion / 1000, rates, losses)
    with pytest.raises(CheckFailed, match="diverged"):
        check_learning_rate_fix(suggestion, rates, losses, history_loss=[1.0, float("inf")])
    with pytest.raises(CheckFailed, match="diverged"):
        check_learning_rate_fix(suggestion, rates, losses, diverged=True)
    with pytest.raises(CheckFailed, match="did not fall"):
        check_learning_rate_fix(suggestion, rates, losses, history_loss=[1.0, 1.2])
    with pytest.raises(CheckFailed, match="hardly above predicting the background"):  # background only
        check_learning_rate_fix(suggestion, rates, losses, history_loss=[1.0, 0.5],
                                per_class_dice=[0.95, 0.0, 0.0, 0.0], background_dice=0.2375)
    with pytest.raises(CheckFailed, match="positive number"):
        check_learning_rate_fix(-1e-3, rates, losses)
    with pytest.raises(CheckFailed, match="the range test's two lists"):
        check_learning_rate_fix(1e-3, rates[:3], losses)


def test_a_range_test_that_ends_in_inf_is_read_before_the_inf():
    rates, losses = _range_test()
    losses = losses.copy()
    stop = int(np.argmin(losses)) + 3
    losses[stop:] = np.inf
    suggestion = dyn.suggest_learning_rate(rates[:stop], losses[:stop])
    check_learning_rate_fix(suggestion, rates, losses)


FREQ = [0.88, 0.05, 0.065, 0.005]


def test_rare_class_weights_pass_inverse_frequency(capsys):
    check_rare_class_weights([1 / (4 * f) for f in FREQ], FREQ, rare_class=3)
    assert "25.0% of the weighted loss" in capsys.readouterr().out


@pytest.mark.parametrize("weights, message", [
    ([1.0, 1.0, 1.0, 1.0], "leaves it at about its share of the pixels"),  # all ones: plain CE
    ([2.0, 2.0, 2.0, 2.0], "leaves it at about its share of the pixels"),  # every class alike
    ([1.0, 1.0, 1.0, 1.5], "leaves it at about its share of the pixels"),  # a token rise
    ([1.0, 1.0, 1.0, 0.01], "lighter than the common classes, so it drowns"),  # the broken weights
    ([1.0, 1.0, 1.0, 0.0], "a weight of 0 removes the class"),
    ([1.0, 1.0, 1.0], "4 classes, got 3 weights"),
    (["a", "b", "c", "d"], "a list of numbers"),
])
def test_thoughtless_weights_fail(weights, message):
    with pytest.raises(CheckFailed, match=message):
        check_rare_class_weights(weights, FREQ, rare_class=3)


def test_the_repair_is_checked_on_the_repaired_runs_result(capsys):
    good = [1 / (4 * f) for f in FREQ]
    check_rare_class_repair(good, FREQ, 3, rare_dice_before=0.0, rare_dice_after=0.31, tolerance=0.1)
    assert "its Dice rose from 0.000 to 0.310" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="not a rise beyond the seed noise"):  # good weights, no effect on the run
        check_rare_class_repair(good, FREQ, 3, rare_dice_before=0.0, rare_dice_after=0.05, tolerance=0.1)
    with pytest.raises(CheckFailed, match="not a rise beyond the seed noise"):  # a diverged repaired run
        check_rare_class_repair(good, FREQ, 3, rare_dice_before=0.0, rare_dice_after=float("nan"), tolerance=0.1)
    with pytest.raises(CheckFailed, match="about its share of the pixels"):  # all ones fail before the run is read
        check_rare_class_repair([1.0] * 4, FREQ, 3, rare_dice_before=0.0, rare_dice_after=0.5, tolerance=0.1)


def test_the_exercise_premises_agree_with_the_committed_runs():
    """Exercise 08 runs seed 2 at the lab's budget: its committed rows give the outcomes the solution predicts."""
    from course_utils import dynamics

    try:
        rows, meta = dynamics.load_benchmark("exercise", download=False)
    except FileNotFoundError:
        pytest.skip("benchmarks/results/dynamics_exercise.json is not here")

    def values(setting, metric):
        return [r[metric] for r in sorted((r for r in rows if r["setting"] == setting), key=lambda r: r["seed"])]

    def at_seed_2(setting, metric):
        return next(r[metric] for r in rows if r["setting"] == setting and r["seed"] == 2)

    assert meta["seeds"] == [0, 1, 2, 3, 4]
    tol_lr = tolerance_from_seeds(values("lr=0.003", "dice"), values("lr=0.3", "dice"))
    assert outcome(at_seed_2("lr=0.003", "dice"), at_seed_2("lr=0.3", "dice"), tol_lr) == "down"
    weighted, plain = "inverse-frequency weighted CE", "lr=0.003"
    tol_rare = tolerance_from_seeds(values(plain, "rare_dice"), values(weighted, "rare_dice"))
    assert outcome(at_seed_2(plain, "rare_dice"), at_seed_2(weighted, "rare_dice"), tol_rare) == "up"
    drowned = "drowned weights [1, 1, 1, 0.01]"
    tol_repair = tolerance_from_seeds(values(drowned, "rare_dice"), values(weighted, "rare_dice"))
    assert at_seed_2(weighted, "rare_dice") - at_seed_2(drowned, "rare_dice") > tol_repair
    # the broken run diverges (loss to inf) at seed 2, and the repaired rate's run beats background-only by 0.05
    broken = next(r for r in rows if r["setting"] == "no norm, lr=30" and r["seed"] == 2)
    assert broken["diverged"] is True
    assert min(values("no norm, lr=0.001", "dice")) > max(values("no norm, lr=30", "dice")) + 0.05
