"""course_utils.dynamics: schedules, the range test's reading, sweep tables (no framework needed)."""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

from course_utils import dynamics as dyn


# ----------------------------------------------------------------------------- schedules
def test_framework_free():
    """Importing the module (in a fresh interpreter) loads neither framework."""
    import importlib
    import subprocess

    code = "import sys, course_utils.dynamics; print('torch' in sys.modules, 'tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
    assert importlib.import_module("course_utils.dynamics") is dyn


def test_constant_and_step_values():
    rates = dyn.schedule_rates(dyn.constant_schedule(0.01), 5)
    np.testing.assert_allclose(rates, [0.01] * 5)
    rates = dyn.schedule_rates(dyn.step_schedule(1.0, 8, milestones=(0.5, 0.75), factor=0.1), 8)
    np.testing.assert_allclose(rates, [1, 1, 1, 1, 0.1, 0.1, 0.01, 0.01])


def test_cosine_by_hand():
    s = dyn.cosine_schedule(1.0, 11)  # decay over steps 0..10
    assert s(0) == pytest.approx(1.0)
    assert s(5) == pytest.approx(0.5)
    assert s(10) == pytest.approx(0.0, abs=1e-12)
    assert s(100) == pytest.approx(0.0, abs=1e-12)  # past the end: the last rate
    w = dyn.cosine_schedule(1.0, 12, warmup_steps=3, final_lr=0.1)
    np.testing.assert_allclose([w(0), w(1), w(2)], [0.25, 0.5, 0.75])
    assert w(3) == pytest.approx(1.0)
    assert w(11) == pytest.approx(0.1)


def test_one_cycle_shape():
    s = dyn.one_cycle_schedule(1.0, 100, pct_start=0.3, div_factor=25, final_div_factor=1e4)
    rates = dyn.schedule_rates(s, 100)
    assert rates[0] == pytest.approx(1 / 25)
    assert rates.max() == pytest.approx(1.0)
    assert int(rates.argmax()) == 29  # peak at pct_start * total - 1, as OneCycleLR
    assert rates[-1] == pytest.approx(1 / 25 / 1e4)
    assert np.all(np.diff(rates[:30]) > 0) and np.all(np.diff(rates[29:]) < 0)


def test_make_schedule_and_errors():
    assert set(dyn.SCHEDULES) == {"constant", "step", "cosine", "one-cycle"}
    assert dyn.make_schedule("cosine", 0.5, 3)(0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        dyn.make_schedule("linear", 0.1, 10)
    with pytest.raises(ValueError, match="base_lr must be a positive number"):
        dyn.cosine_schedule(-1.0, 10)
    with pytest.raises(ValueError, match="total_steps must be a positive integer"):
        dyn.cosine_schedule(1.0, 0)
    with pytest.raises(ValueError, match="step must be an integer >= 0"):
        dyn.cosine_schedule(1.0, 10)(-1)
    with pytest.raises(ValueError, match="milestones"):
        dyn.step_schedule(1.0, 10, milestones=(5,))


# ----------------------------------------------------------------------------- the range test's reading
def _quadratic_range_test(curvature=4.0, num_steps=120, min_lr=1e-4, max_lr=10.0):
    """Gradient descent on loss(w) = curvature / 2 * |w|^2 with the range test's rising rate.

    A rate above 2 / curvature makes |1 - lr * curvature| > 1: the iteration diverges. The fastest
    decrease is at lr = 1 / curvature (one step to the minimum)."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=50)
    rates = dyn.range_test_rates(min_lr, max_lr, num_steps)
    losses = []
    for lr in rates:
        losses.append(0.5 * curvature * float(w @ w) + 1.0)  # + 1: a loss floor, like real data
        w = w - lr * curvature * w
    return rates, np.array(losses)


def _descend(lr, curvature=4.0, steps=30):
    w = np.ones(10)
    for _ in range(steps):
        w = w - lr * curvature * w
    return 0.5 * curvature * float(w @ w)


@pytest.mark.parametrize("method", ["steepest", "min/10"])
def test_suggestion_on_a_known_problem(method):
    curvature = 4.0  # diverges above 2 / 4 = 0.5
    rates, losses = _quadratic_range_test(curvature)
    assert np.isinf(losses).any() or losses[-1] > 100 * losses.min()  # the test did reach divergence
    lr = dyn.suggest_learning_rate(rates, losses, method=method)
    assert 0.01 / curvature < lr < 2.0 / curvature
    # and it is a useful rate: 30 steps at it cut the loss at least 20-fold, where 1e-4 barely moves
    # it ("steepest" is the cautious reading: lower than the best 1 / curvature, never near 2 / curvature)
    assert _descend(lr) < 0.05 * _descend(0.0)
    assert _descend(1e-4) > 0.9 * _descend(0.0)


def test_min_over_ten_by_hand():
    rates = np.array([1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0])
    losses = np.array([2.0, 1.9, 1.0, 0.8, 3.0, np.inf])
    # minimum 0.8 at 1e-1 -> a tenth of it; 3.0 > 4 x 0.8 and inf are cut off as divergence
    assert dyn.suggest_learning_rate(rates, losses, method="min/10", beta=0.0) == pytest.approx(1e-2)
    # slopes per decade (central differences, one-sided at the ends): -0.1, -0.5, -0.55, -0.2 -> at 1e-2
    assert dyn.suggest_learning_rate(rates, losses, method="steepest", beta=0.0) == pytest.approx(1e-2)


def test_suggestion_errors():
    with pytest.raises(ValueError, match="same length"):
        dyn.suggest_learning_rate([1e-3, 1e-2], [1.0])
    with pytest.raises(ValueError, match="increasing"):
        dyn.suggest_learning_rate([1e-1, 1e-2, 1e-3, 1e-4, 1e-5], [1, 1, 1, 1, 1])
    with pytest.raises(ValueError, match="diverged within the first steps"):
        dyn.suggest_learning_rate(np.geomspace(1e-3, 1, 6), [1.0, np.nan, np.nan, np.nan, np.nan, np.nan])
    with pytest.raises(ValueError, match='method must be "steepest" or "min/10"'):
        dyn.suggest_learning_rate(*_quadratic_range_test(), method="valley")


def test_smooth_losses_bias_corrected():
    np.testing.assert_allclose(dyn.smooth_losses([3.0, 3.0, 3.0]), [3.0, 3.0, 3.0])
    out = dyn.smooth_losses([1.0, 3.0], beta=0.5)
    assert out[1] == pytest.approx((0.25 * 1 + 0.5 * 3) / 0.75)


# ----------------------------------------------------------------------------- sweeps
def _fake_train(setting, seed):
    return {"dice": setting["base"] + 0.01 * seed, "history": [1.0, 0.5]}


def test_run_sweep_table_shape_and_content():
    rows = dyn.run_sweep(_fake_train, {"a": {"base": 0.5}, "b": {"base": 0.7}}, seeds=(0, 1, 2), verbose=False)
    assert len(rows) == 6
    assert [(r["setting"], r["seed"]) for r in rows] == [(s, k) for s in "ab" for k in (0, 1, 2)]
    assert rows[4]["dice"] == pytest.approx(0.71)
    assert rows[0]["history"] == [1.0, 0.5] and rows[0]["seconds"] >= 0
    table = dyn.summarise(rows, ["dice"])
    assert [t["setting"] for t in table] == ["a", "b"]
    assert table[1]["seeds"] == 3 and table[1]["dice_n"] == 3
    assert table[1]["dice_mean"] == pytest.approx(0.71)
    assert table[1]["dice_std"] == pytest.approx(np.std([0.70, 0.71, 0.72], ddof=1))
    assert (table[0]["dice_min"], table[0]["dice_max"]) == pytest.approx((0.50, 0.52))
    text = dyn.markdown_table(table, ["dice"])
    assert text.splitlines()[0] == "| setting | seeds | dice |"
    assert "| b | 3 | 0.710 ± 0.010 (0.700-0.720) |" in text


def test_summarise_counts_diverged_runs_and_single_seed():
    rows = [{"setting": "x", "seed": 0, "dice": float("nan")}, {"setting": "x", "seed": 1, "dice": 0.4},
            {"setting": "y", "seed": 0, "dice": 0.2}]
    table = dyn.summarise(rows, "dice")
    assert table[0]["seeds"] - table[0]["dice_n"] == 1 and table[0]["dice_mean"] == pytest.approx(0.4)
    assert math.isnan(table[1]["dice_std"])
    text = dyn.markdown_table(table, ["dice"])
    assert "| x | 2 | 0.400 [1 of 2 seeds] |" in text and "| y | 1 | 0.200 |" in text
    with pytest.raises(KeyError, match="'dise'"):  # a misspelt metric is not silently n/a
        dyn.summarise(rows, ["dise"])


def test_sweep_errors():
    with pytest.raises(TypeError, match="must return a dict"):
        dyn.run_sweep(lambda s, k: 0.5, ["a"], seeds=(0,), verbose=False)
    with pytest.raises(ValueError, match="reserved keys"):
        dyn.run_sweep(lambda s, k: {"seed": 1}, ["a"], seeds=(0,), verbose=False)
    with pytest.raises(ValueError, match="seeds is empty"):
        dyn.run_sweep(_fake_train, ["a"], seeds=())
    with pytest.raises(KeyError, match="no run has the metric 'iou'"):
        dyn.summarise([{"setting": "a", "dice": 1.0}], ["iou"])


def test_save_and_load_rows_roundtrip(tmp_path):
    rows = [{"setting": "a", "seed": 0, "dice": float("nan"), "loss_history": [1.0, 0.5]},
            {"setting": "a", "seed": 1, "dice": np.float32(0.5), "loss_history": [1.0, 0.25]}]
    path = dyn.save_rows(tmp_path / "sub" / "sweep.json", rows, section="lr", seeds=[0, 1])
    back, meta = dyn.load_rows(path)
    assert meta == {"section": "lr", "seeds": [0, 1]}
    assert math.isnan(back[0]["dice"]) and back[1]["dice"] == pytest.approx(0.5)
    assert back[1]["loss_history"] == [1.0, 0.25]
    with pytest.raises(FileNotFoundError, match="run the benchmark script"):
        dyn.load_rows(tmp_path / "missing.json")


def test_plot_histories_draws_one_line_per_entry_with_band():
    fig = dyn.plot_histories({"one": {"loss": [3, 2, 1]},
                              "seeds": [{"loss": [3, 2, 1]}, {"loss": [4, 2, 0.5]}]}, metric="loss", logy=True)
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [3.5, 2.0, 0.75])
    assert len(ax.collections) == 1  # the min-max band of the multi-seed entry
    assert ax.get_yscale() == "log"
    with pytest.raises(KeyError, match="has no 'val_dice'"):
        dyn.plot_histories({"one": {"loss": [1]}}, metric="val_dice")


def test_compare_and_lookup_use_the_spread():
    rows = ([{"setting": "a", "seed": k, "dice": v} for k, v in enumerate([0.80, 0.82, 0.81])]
            + [{"setting": "b", "seed": k, "dice": v} for k, v in enumerate([0.60, 0.62, 0.61])]
            + [{"setting": "c", "seed": k, "dice": v} for k, v in enumerate([0.70, 0.83, 0.79])])
    table = dyn.summarise(rows, "dice")
    a, b, c = (dyn.lookup(table, s) for s in "abc")
    assert dyn.compare(a, b) == "higher than"
    assert dyn.compare(b, a) == "lower than"
    assert dyn.compare(a, c) == "within the seed spread of"  # ranges overlap
    with pytest.raises(KeyError, match="no setting 'd'"):
        dyn.lookup(table, "d")


def test_load_benchmark_from_a_folder_and_a_clear_error(tmp_path):
    dyn.save_rows(tmp_path / "dynamics_lr.json", [{"setting": "a", "seed": 0, "dice": 0.5}], section="lr")
    rows, meta = dyn.load_benchmark("lr", folder=tmp_path)
    assert rows[0]["dice"] == 0.5 and meta["section"] == "lr"
    with pytest.raises(FileNotFoundError, match="--only schedule"):
        dyn.load_benchmark("schedule", folder=tmp_path)
