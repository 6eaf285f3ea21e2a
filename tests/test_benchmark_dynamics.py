"""benchmarks/training_dynamics.py runs end to end (quick mode) and writes the rows lecture 08 reads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import training_dynamics  # noqa: E402

from course_utils import dynamics  # noqa: E402


def test_sections_cover_the_lab():
    sections = training_dynamics.sections()
    assert {"lr", "lr_large", "batch", "norm", "schedule", "lambda", "recipe", "recipe_long", "keras"} <= set(sections)
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
        if not path.exists():
            pytest.skip(f"{path.name} not committed")
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
