"""Multi-seed tables (course_utils.multiseed) and the comparison benchmarks of lectures 05 and 07
(benchmarks/loss_comparison.py, benchmarks/architecture_comparison.py): table-building code against
hand-computed values, and the scripts end to end at their smallest size."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from course_utils import data, multiseed

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import architecture_comparison  # noqa: E402
import loss_comparison  # noqa: E402

RUNS = [
    {"name": "CE", "seed": 0, "dice": 0.2, "recall": float("nan")},
    {"name": "CE", "seed": 1, "dice": 0.4, "recall": 0.5},
    {"name": "CE", "seed": 2, "dice": 0.6, "recall": 0.7},
    {"name": "Dice", "seed": 0, "dice": 0.9, "recall": float("nan")},
]


def test_summarise_by_hand():
    ce, dice = multiseed.summarise(RUNS, ["dice", "recall"])
    assert ce["name"] == "CE" and ce["seeds"] == 3
    assert ce["dice_mean"] == pytest.approx(0.4)
    assert ce["dice_std"] == pytest.approx(0.2)          # sample std of 0.2, 0.4, 0.6
    assert (ce["dice_min"], ce["dice_max"]) == (0.2, 0.6)
    assert ce["recall_mean"] == pytest.approx(0.6)        # the NaN seed is left out
    assert ce["recall_n"] == 2 and ce["dice_n"] == 3
    assert math.isnan(dice["dice_std"]) and math.isnan(dice["recall_mean"])  # one seed: no spread measured
    with pytest.raises(ValueError, match="at least one run"):
        multiseed.summarise([], ["dice"])
    with pytest.raises(ValueError, match="'name'"):
        multiseed.summarise([{"dice": 1.0}], ["dice"])
    with pytest.raises(KeyError, match="'dise'"):
        multiseed.summarise(RUNS, ["dise"])
    # grouped by another key (lecture 08's "setting"), with an inf (a diverged run) left out like a NaN
    by_setting = multiseed.summarise([{"setting": "lr=1", "dice": float("inf")}, {"setting": "lr=1", "dice": 0.3}],
                                     "dice", by="setting")
    assert by_setting == [{"setting": "lr=1", "seeds": 2, "dice_n": 1, "dice_mean": 0.3,
                           "dice_std": pytest.approx(math.nan, nan_ok=True), "dice_min": 0.3, "dice_max": 0.3}]


def test_cells_and_markdown_table():
    rows = multiseed.summarise(RUNS, ["dice", "recall"])
    assert multiseed.cell(rows[0], "dice") == "0.40 ± 0.20 (0.20-0.60)"
    assert multiseed.cell(rows[1], "dice") == "0.90"      # one seed: no spread to show
    assert multiseed.cell(rows[1], "recall") == "n/a"
    table = multiseed.markdown_table(rows, {"dice": "Dice", "recall": "recall"}, first="loss")
    lines = table.splitlines()
    assert lines[0] == "| loss | seeds | Dice | recall |" and lines[1] == "|---|---:|---:|---:|"
    assert lines[2] == "| CE | 3 | 0.40 ± 0.20 (0.20-0.60) | 0.60 ± 0.14 (0.50-0.70) [2 of 3 seeds] |"


def test_gap_separates_only_beyond_the_spread():
    runs = [{"name": "a", "seed": s, "m": v} for s, v in enumerate((0.80, 0.82, 0.84))]
    runs += [{"name": "b", "seed": s, "m": v} for s, v in enumerate((0.30, 0.32, 0.34))]
    runs += [{"name": "c", "seed": s, "m": v} for s, v in enumerate((0.70, 0.90, 0.80))]
    rows = multiseed.summarise(runs, ["m"])
    g = multiseed.gap(rows, "m", "a", "b")
    assert g["difference"] == pytest.approx(0.5) and g["spread"] == pytest.approx(0.02) and g["separated"]
    assert not multiseed.gap(rows, "m", "a", "c")["separated"]   # ranges overlap
    with pytest.raises(KeyError, match="'z'"):
        multiseed.gap(rows, "m", "a", "z")


def test_one_rule_for_separated_in_lectures_05_07_and_08():
    """multiseed.gap (lectures 05, 07) and dynamics.compare (lecture 08) judge by the same rule: a gap beyond
    twice the larger standard deviation, with disjoint seed ranges."""
    from course_utils import dynamics

    # a: std 0.1 over 3 seeds; b: a trivial baseline (std 0). Gap 0.15 > sum of stds (0.1) but < 2 * 0.1:
    # disjoint ranges, yet within the spread by the course's rule.
    runs = [{"name": "a", "seed": s, "m": v} for s, v in enumerate((0.05, 0.15, 0.25))]
    runs += [{"name": "b", "seed": s, "m": 0.0} for s in range(3)]
    rows = multiseed.summarise(runs, ["m"])
    a, b = multiseed.row(rows, "a"), multiseed.row(rows, "b")
    assert a["m_min"] > b["m_max"] and 0.1 < a["m_mean"] - b["m_mean"] < 2 * a["m_std"]
    assert not multiseed.separated(a, b, "m") and not multiseed.gap(rows, "m", "a", "b")["separated"]
    table = dynamics.summarise([dict(r, setting=r["name"]) for r in runs], ["m"])
    assert dynamics.compare(dynamics.lookup(table, "a"), dynamics.lookup(table, "b"), "m") == "within the seed spread of"

    # the two modules agree on every pair of many random summaries
    rng = np.random.default_rng(0)
    for _ in range(200):
        runs = [{"name": name, "seed": s, "m": float(v)} for name in "xy"
                for s, v in enumerate(rng.normal(rng.uniform(0, 1), rng.uniform(0, 0.2), 3))]
        rows = multiseed.summarise(runs, ["m"])
        table = dynamics.summarise([dict(r, setting=r["name"]) for r in runs], ["m"])
        verdict = dynamics.compare(dynamics.lookup(table, "x"), dynamics.lookup(table, "y"), "m")
        assert (verdict != "within the seed spread of") == multiseed.gap(rows, "m", "x", "y")["separated"]


def test_separated_with_one_seed_or_a_nan_mean():
    one = {"m_mean": 0.9, "m_std": float("nan"), "m_min": 0.9, "m_max": 0.9}
    other = {"m_mean": 0.1, "m_std": 0.0, "m_min": 0.1, "m_max": 0.1}
    assert multiseed.separated(one, other, "m")  # no spread measured: any gap with disjoint ranges
    assert not multiseed.separated(dict(one, m_mean=float("nan")), other, "m")


def test_write_and_load_results(tmp_path):
    rows = multiseed.summarise(RUNS, ["dice"])
    payload = {"setup": "test", "runs": RUNS, "summary": rows}
    (tmp_path / "course_utils").mkdir()
    paths = multiseed.write_results(tmp_path / "benchmarks" / "results" / "toy", payload, "| a |")
    assert [p.suffix for p in paths] == [".json", ".csv", ".md"]
    csv_lines = paths[1].read_text().splitlines()
    assert csv_lines[0].startswith("name,seeds,dice_n,dice_mean") and csv_lines[1].startswith("CE,3,3,0.4000")
    loaded = multiseed.load_results("toy", start=tmp_path / "benchmarks")
    assert loaded["summary"][0]["dice_mean"] == pytest.approx(0.4)
    assert multiseed.row(loaded["summary"], "Dice")["seeds"] == 1
    assert multiseed.load_results("missing", start=tmp_path) is None
    fig = multiseed.plot_spread(loaded, {"dice": "Dice"})
    assert len(fig.axes[0].patches) == 2                   # one bar per name
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_the_committed_tables_are_complete():
    for name, names in (("loss_comparison", loss_comparison.LOSS_NAMES + loss_comparison.BASELINES),
                        ("architecture_comparison", architecture_comparison.MODEL_NAMES
                         + architecture_comparison.BASELINES)):
        payload = multiseed.load_results(name, start=BENCHMARKS)
        assert payload is not None, f"benchmarks/results/{name}.json is missing"
        assert [r["name"] for r in payload["summary"]] == list(names)
        assert all(r["seeds"] >= 3 for r in payload["summary"])


# ----------------------------------------------------------------------------- loss_comparison.py
def test_loss_comparison_scores_and_baselines_by_hand():
    truth = np.zeros((1, 4, 4), dtype=np.int64)
    truth[0, 0, :2] = 3                                   # 2 triangle pixels
    truth[0, 3, :] = 1                                    # 4 disc pixels
    scores = loss_comparison.score(truth, np.zeros_like(truth))
    assert scores["dice_background"] == pytest.approx(2 * 10 / (10 + 16))
    assert scores["dice_triangle"] == 0.0 and scores["recall_triangle"] == 0.0
    assert math.isnan(scores["precision_triangle"])       # nothing predicted as triangle
    assert math.isnan(scores["dice_square"])              # absent from truth and prediction
    assert scores["mean_dice"] == pytest.approx((20 / 26 + 0 + 0) / 3)
    background, rare = loss_comparison.baseline_runs(truth, seed=7)
    assert background["seed"] == 7 and background["dice_background"] == pytest.approx(20 / 26)
    assert rare["recall_triangle"] == 1.0 and rare["precision_triangle"] == pytest.approx(2 / 16)


def test_loss_comparison_arguments():
    args = loss_comparison.parse_args(["--epochs", "3", "--seeds", "4", "5", "6"])
    assert args.config["epochs"] == 3 and args.config["seeds"] == [4, 5, 6]
    assert loss_comparison.DEFAULTS["epochs"] == 20
    assert loss_comparison.parse_args(["--quick"]).config["epochs"] == 1
    with pytest.raises(SystemExit):
        loss_comparison.parse_args(["--size", "60"])      # not a multiple of 2**depth


def test_loss_comparison_end_to_end(tmp_path):
    out = tmp_path / "lc"
    assert loss_comparison.main(["--quick", "--seeds", "0", "--out", str(out)]) == 0
    payload = json.loads(out.with_suffix(".json").read_text())
    assert [r["name"] for r in payload["summary"]] == list(loss_comparison.LOSS_NAMES + loss_comparison.BASELINES)
    assert "| CE | 1 |" in out.with_suffix(".md").read_text()


# ----------------------------------------------------------------------------- architecture_comparison.py
def test_tile_scenes_puts_scenes_in_a_grid():
    images = np.arange(8, dtype=np.float32).reshape(8, 1, 1, 1) * np.ones((8, 2, 2, 1), np.float32)
    masks = np.arange(8).reshape(8, 1, 1) * np.ones((8, 2, 2), np.int64)
    tiled_images, tiled_masks = data.tile_scenes(images, masks, 2)
    assert tiled_images.shape == (2, 4, 4, 1) and tiled_masks.shape == (2, 4, 4)
    np.testing.assert_array_equal(tiled_masks[0, ::2, ::2], [[0, 1], [2, 3]])   # row-major order
    np.testing.assert_array_equal(tiled_masks[1, ::2, ::2], [[4, 5], [6, 7]])
    same = data.tile_scenes(images, masks, 1)
    assert same[0] is images
    with pytest.raises(ValueError, match="at least per_side"):
        data.tile_scenes(images[:3], masks[:3], 2)


def test_architecture_baselines_by_hand():
    truth = np.zeros((1, 16, 16), dtype=np.int64)
    truth[0, :8, :8] = 2                                  # one square that fills an 8x8 cell
    background, oracle = architecture_comparison.baseline_runs(truth, seed=0)
    assert background["mean_dice"] == pytest.approx((2 * 192 / (192 + 256) + 0) / 2)
    assert background["boundary_f1_agnostic"] == 0.0
    assert oracle["dice_square"] > 0.9                     # aligned with the stride-8 grid: nearly exact


def test_architecture_comparison_arguments_and_end_to_end(tmp_path):
    with pytest.raises(SystemExit):
        architecture_comparison.parse_args(["--size", "48"])
    with pytest.raises(SystemExit):
        architecture_comparison.parse_args(["--scene", "24"])
    out = tmp_path / "ac"
    assert architecture_comparison.main(["--quick", "--seeds", "0", "--out", str(out)]) == 0
    payload = json.loads(out.with_suffix(".json").read_text())
    assert set(payload["parameters"]) == set(architecture_comparison.MODEL_NAMES)
    assert [r["name"] for r in payload["summary"]] == list(architecture_comparison.MODEL_NAMES
                                                           + architecture_comparison.BASELINES)
