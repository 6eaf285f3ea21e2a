"""Paired comparisons over seeds (course_utils.multiseed.compare_paired, compare_runs, paired_table), and the
input checks and atomic writes of the multi-seed tables: against hand-computed values and constructed data."""

from __future__ import annotations

import errno
import json
import math

import numpy as np
import pytest

from course_utils import multiseed


def test_t_interval_by_hand():
    # differences 1, 2, 3: mean 2, sd 1, t(0.975, df=2) = 4.302653, half width 4.302653 / sqrt(3) = 2.48414
    result = multiseed.compare_paired([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert result["n"] == 3
    assert result["mean_difference"] == pytest.approx(2.0)
    assert result["sd_difference"] == pytest.approx(1.0)
    assert result["ci_low"] == pytest.approx(2.0 - 2.484138, abs=1e-5)
    assert result["ci_high"] == pytest.approx(2.0 + 2.484138, abs=1e-5)
    assert result["shown"] is False                      # -0.48 < 0 < 4.48
    assert (result["wins"], result["losses"], result["ties"]) == (3, 0, 0)
    assert result["verdict"] == ("a better in 3/3 seeds, mean +2.000, 95 % CI [-0.484, +4.484]: "
                                 "not shown (the interval includes 0; this does not mean equal)")
    # A 90 % interval is narrower: t(0.95, 2) = 2.919986
    ninety = multiseed.compare_paired([2.0, 4.0, 6.0], [1.0, 2.0, 3.0], confidence=0.90)
    assert ninety["ci_high"] - ninety["ci_low"] == pytest.approx(2 * 2.919986 / math.sqrt(3), abs=1e-5)


def test_a_small_consistent_effect_under_large_seed_variance_is_shown():
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0.5, 0.15, size=5)          # seeds differ a lot: the shared noise
    b = seed_effect
    a = seed_effect + 0.03 + rng.normal(0, 0.005, size=5)  # a is better by 0.03 in every seed
    result = multiseed.compare_paired(a, b, names=("Dice", "CE"))
    assert result["shown"] and result["better"] == "Dice"
    assert result["wins"] == 5 and result["ci_low"] > 0
    assert result["verdict"].startswith("Dice better in 5/5 seeds, mean +0.03")
    assert result["verdict"].endswith(": shown")
    # The unpaired rule cannot see it: the gap is far smaller than the seeds' spread.
    rows = multiseed.summarise([{"name": "Dice", "seed": i, "dice": v} for i, v in enumerate(a)]
                               + [{"name": "CE", "seed": i, "dice": v} for i, v in enumerate(b)], "dice")
    assert not multiseed.separated(rows[0], rows[1], "dice")


def test_zero_mean_noise_is_shown_about_as_often_as_the_confidence_allows():
    rng = np.random.default_rng(1)
    shown = 0
    trials = 600
    for _ in range(trials):
        base = rng.normal(0.5, 0.2, size=5)
        shown += multiseed.compare_paired(base + rng.normal(0, 0.02, 5), base + rng.normal(0, 0.02, 5))["shown"]
    assert shown / trials < 0.09                          # nominal 5 %; a rule that ignores the spread fails this
    assert shown > 0                                      # and the interval is not absurdly wide either


def test_lower_is_better_flips_wins_and_the_better_side():
    result = multiseed.compare_paired([0.30, 0.31, 0.29, 0.30], [0.40, 0.42, 0.41, 0.39], higher_is_better=False,
                                      names=("cosine", "constant"))
    assert result["mean_difference"] == pytest.approx(-0.105)
    assert result["wins"] == 4 and result["shown"] and result["better"] == "cosine"
    assert result["verdict"].startswith("cosine better in 4/4 seeds, mean -0.105")


def test_the_bootstrap_interval_is_reproducible_and_narrower_than_t_at_small_n():
    a, b = [0.8, 0.7, 0.9, 0.85], [0.75, 0.71, 0.8, 0.8]
    one = multiseed.compare_paired(a, b, method="bootstrap", seed=3)
    two = multiseed.compare_paired(a, b, method="bootstrap", seed=3)
    t = multiseed.compare_paired(a, b)
    assert (one["ci_low"], one["ci_high"]) == (two["ci_low"], two["ci_high"])
    assert one["ci_high"] - one["ci_low"] < t["ci_high"] - t["ci_low"]   # why the course uses t at 3-10 seeds
    assert min(a_ - b_ for a_, b_ in zip(a, b)) <= one["ci_low"] <= one["ci_high"] <= max(
        a_ - b_ for a_, b_ in zip(a, b))


@pytest.mark.parametrize("a, b, message", [
    ([0.1, 0.2, 0.3], [0.1, 0.2], "same seed order"),
    ([0.1, 0.2], [0.1, 0.2], "at least 3 seeds"),
    ([0.1, float("nan"), 0.3], [0.1, 0.2, 0.3], "no finite score at seed position"),
    ([0.1, None, 0.3], [0.1, 0.2, 0.3], "no finite score"),
    ([0.1, "n/a", 0.3], [0.1, 0.2, 0.3], "is not a number"),
    ("abc", [0.1, 0.2, 0.3], "not text"),
])
def test_compare_paired_refuses_bad_input(a, b, message):
    with pytest.raises(ValueError, match=message):
        multiseed.compare_paired(a, b)


def test_no_difference_on_average_names_the_side_that_won_more_seeds():
    result = multiseed.compare_paired([0.8, 0.82, 0.79], [0.81, 0.80, 0.80], names=("Dice", "CE"))
    assert result["verdict"].startswith("CE better in 2/3 seeds")
    assert not result["shown"] and result["better"] is None


RUNS = ([{"name": "CE", "seed": s, "dice": v} for s, v in enumerate([0.50, 0.60, 0.40, 0.55, 0.45])]
        + [{"name": "Dice", "seed": s, "dice": v} for s, v in enumerate([0.55, 0.66, 0.43, 0.60, 0.50])]
        + [{"name": "lr=1", "seed": s, "dice": v} for s, v in enumerate([None, float("nan"), 0.1, float("inf"), 0.2])])


def test_compare_runs_lines_up_seeds_and_drops_diverged_ones():
    result = multiseed.compare_runs(list(reversed(RUNS)), "dice", "Dice", "CE")
    assert result["seeds"] == [0, 1, 2, 3, 4] and result["dropped"] == []
    assert result["mean_difference"] == pytest.approx(0.048)
    not_comparable = multiseed.compare_runs(RUNS, "dice", "lr=1", "CE")
    assert not_comparable["dropped"] == [0, 1, 3] and not not_comparable["shown"]
    assert not_comparable["verdict"].startswith("not comparable: 2 seed(s)")
    with pytest.raises(KeyError, match="no run has name='Tversky'"):
        multiseed.compare_runs(RUNS, "dice", "Tversky", "CE")
    with pytest.raises(ValueError, match="two runs with seed 0"):
        multiseed.compare_runs(RUNS + [{"name": "CE", "seed": 0, "dice": 0.1}], "dice", "Dice", "CE")


def test_paired_table_prints_every_verdict():
    table = multiseed.paired_table(RUNS, "dice", [("Dice", "CE"), ("lr=1", "CE")], title="mean Dice")
    lines = table.splitlines()
    assert lines[0] == "| mean Dice: a vs b | seeds | mean a - b | 95 % CI | a wins | verdict |"
    assert lines[2].startswith("| Dice vs CE | 5 | +0.048 | [+0.0")
    assert lines[2].endswith("| 5/5 | **shown**: Dice better |")
    assert lines[3].startswith("| lr=1 vs CE | 2 | n/a | n/a | - | not comparable")


def test_summarise_refuses_text_where_a_number_belongs():
    with pytest.raises(ValueError, match=r"name='CE', metric 'dice': 'n/a' is not a number: store a missing value as None"):
        multiseed.summarise([{"name": "CE", "seed": 0, "dice": "n/a"}], "dice")


def test_plot_spread_names_a_run_without_a_seed():
    payload = {"runs": [{"name": "CE", "dice": 0.5}], "summary": multiseed.summarise([{"name": "CE", "dice": 0.5}],
                                                                                      "dice")}
    with pytest.raises(ValueError, match="run 0 of the results has no 'seed' key"):
        multiseed.plot_spread(payload, {"dice": "Dice"})


def test_write_results_on_a_full_disk_keeps_the_good_files(tmp_path, monkeypatch):
    stem = tmp_path / "table"
    payload = {"runs": RUNS[:2], "summary": multiseed.summarise(RUNS[:10], "dice")}
    multiseed.write_results(stem, payload, "| good |")
    good = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert set(good) == {"table.json", "table.csv", "table.md"}

    real_write_text = type(stem).write_text

    def full_disk(self, text, *args, **kwargs):
        real_write_text(self, text[: len(text) // 2], *args, **kwargs)   # half the bytes, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(type(stem), "write_text", full_disk)
    with pytest.raises(OSError, match="No space left"):
        multiseed.write_results(stem, {"runs": RUNS, "summary": payload["summary"]}, "| new |")
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == good   # nothing replaced, no temporary left
    assert json.loads((tmp_path / "table.json").read_text())["runs"] == RUNS[:2]


def test_write_results_refuses_a_file_where_the_folder_should_be(tmp_path):
    (tmp_path / "results").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        multiseed.write_results(tmp_path / "results" / "table", {"runs": [], "summary": []}, "x")
