"""benchmarks/training_dynamics.py runs end to end (quick mode) and writes the rows lecture 08 reads."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import training_dynamics  # noqa: E402

from course_utils import dynamics  # noqa: E402


def test_sections_cover_the_lab():
    sections = training_dynamics.sections()
    assert {"lr", "lr_large", "batch", "norm", "schedule", "lambda", "recipe", "recipe_long", "keras", "exercise",
            "batch_sgd", "norm_paired", "schedule_peak", "recipe_parts", "frameworks"} <= set(sections)
    assert set(sections["schedule"][1]) == set(dynamics.SCHEDULES)
    batch = sections["batch"][1]
    assert batch["batch 32, lr 0.012 (scaled)"] == {"batch_size": 32, "lr": pytest.approx(0.012)}  # linear scaling


def test_quick_run_writes_rows_to_the_chosen_folder(tmp_path, capsys):
    training_dynamics.main(["--quick", "--only", "lr_large", "--out", str(tmp_path)])
    rows, meta = dynamics.load_rows(tmp_path / "dynamics_lr_large.json")
    assert meta["quick"] is True and meta["seeds"] == [0] and meta["framework"] == "PyTorch"
    assert [r["setting"] for r in rows] == ["lr=10", "lr=100"]
    for row in rows:
        assert 0.0 <= row["dice"] <= 1.0 and len(row["per_class_dice"]) == 4 and len(row["loss_history"]) == 2
    assert not (tmp_path / "training_dynamics.md").exists()  # the committed summary is only rebuilt in results/


def test_committed_results_have_three_seeds_per_setting():
    for name, (_, settings, _, _) in training_dynamics.sections().items():
        path = training_dynamics.RESULTS / f"dynamics_{name}.json"
        if not path.exists():  # a section not run yet (the lecture says "not measured")
            continue
        rows, meta = dynamics.load_rows(path)
        assert not meta.get("quick"), f"{path.name} is a quick (smoke-test) run"
        assert set(r["setting"] for r in rows) == set(settings), path.name
        table = dynamics.summarise(rows, ["dice"])
        assert all(entry["seeds"] >= 3 for entry in table), path.name


def test_report_rebuilds_the_dynamics_tables_from_saved_rows(tmp_path):
    import report

    rows = [{"setting": "lr=0.001", "seed": s, "dice": d, "rare_dice": r} for s, d, r in
            ((0, 0.5, 0.1), (1, 0.7, 0.2), (2, 0.6, 0.3))]
    dynamics.save_rows(tmp_path / "dynamics_lr.json", rows, seeds=[0, 1, 2], framework="PyTorch")
    args = report.parse_args(["--reuse", "--results-dir", str(tmp_path), "--output", str(tmp_path / "R.md")])
    text = report.build_report(args, problems={})
    section = text[text.index("## 7. Training dynamics"):]
    assert "### lr: Learning-rate sweep" in section  # the script's sections, nested under the report's
    assert "# Training dynamics (lecture 08)" not in section  # its title is dropped
    # mean 0.6, sd 0.1 (ddof=1) and range of the dice; mean 0.2, sd 0.1 of the rare class's
    assert "| lr=0.001 | 3 | 0.600 ± 0.100 (0.500-0.700) | 0.200 ± 0.100 (0.100-0.300) |" in section
    assert "### batch" not in section  # sections without saved rows are left out


def test_warm_up_ramps_linearly_to_the_schedule():
    ramp = training_dynamics._warmup(lambda step: 0.4, 4)
    assert [ramp(s) for s in range(6)] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.4, 0.4])
    assert training_dynamics._warmup(lambda step: 0.4, 0)(0) == 0.4


def test_sgd_section_follows_the_linear_scaling_rule():
    sgd = training_dynamics.sections()["batch_sgd"][1]
    lr = training_dynamics.SGD_LR
    assert sgd[f"SGD batch 32, lr {lr * 4:g} (scaled, warm-up)"]["lr"] == pytest.approx(4 * lr)
    assert sgd[f"SGD batch 32, lr {lr * 4:g} (scaled, warm-up)"]["warmup_epochs"] == 1.0
    assert all(config["optimizer"] == "sgd" and config["momentum"] == 0.9 for config in sgd.values())


def test_paired_summary_shows_a_consistent_effect_and_not_noise():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.2, 0.8, 5)  # large between-seed spread, shared by both settings of a seed
    rows = ([{"setting": "a", "seed": s, "dice": float(v)} for s, v in enumerate(base)]
            + [{"setting": "b", "seed": s, "dice": float(v + 0.03 + 0.005 * (-1) ** s)} for s, v in enumerate(base)]
            + [{"setting": "c", "seed": s, "dice": float(v + 0.05 * (-1) ** s)} for s, v in enumerate(base)])
    text = training_dynamics.paired_markdown("demo", rows, {"a": {}, "b": {}, "c": {}}, ["dice"])
    line_b = next(line for line in text.splitlines() if line.startswith("| b vs a"))
    line_c = next(line for line in text.splitlines() if line.startswith("| c vs a"))
    assert "**shown**: b better" in line_b and "| 5/5 |" in line_b
    assert "not shown" in line_c
    assert "need 3 seeds" in training_dynamics.paired_markdown("demo", rows[:2], {"a": {}}, ["dice"])


def test_extended_quick_run_records_divergence_and_extra_metrics(tmp_path):
    training_dynamics.main(["--quick", "--only", "exercise", "--out", str(tmp_path)])
    rows, meta = dynamics.load_rows(tmp_path / "dynamics_exercise.json")
    by_setting = {r["setting"]: r for r in rows}
    diverged = by_setting["no norm, lr=30"]
    assert diverged["diverged"] is True  # the loss became inf: fit stopped, the run is recorded, not lost
    assert not by_setting["lr=0.003"]["diverged"] and len(by_setting["lr=0.003"]["loss_history"]) == 2
    for row in rows:
        assert 0.0 <= row["pixel_accuracy"] <= 1.0 and len(row["per_class_dice"]) == 4
    assert "initial weights" in meta["code"]
