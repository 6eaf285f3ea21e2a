"""The benchmark scripts in benchmarks/: argument handling, scoring, tables and the combined report.

The timings themselves are never asserted (they depend on the machine); the scripts run here only at
their smallest sizes, to prove that they work end to end and write what benchmarks/report.py reads.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import membrane_unet  # noqa: E402
import report  # noqa: E402


# ----------------------------------------------------------------------------- membrane_unet.py
def test_presets_and_overrides():
    args = membrane_unet.parse_args(["--preset", "lecture"])
    assert args.config["base_filters"] == 64 and args.config["depth"] == 4 and args.config["crop"] == 256
    args = membrane_unet.parse_args(["--preset", "fast", "--epochs", "2", "--learning-rate", "0.01"])
    assert args.config["epochs"] == 2 and args.config["learning_rate"] == 0.01
    assert args.config["crop"] == membrane_unet.PRESETS["fast"]["crop"]
    assert membrane_unet.PRESETS["fast"]["epochs"] == 8  # the preset itself is not changed
    assert membrane_unet.augmentation(args.config) is True and "elastic" not in membrane_unet.describe(args.config)
    args = membrane_unet.parse_args(["--elastic"])
    assert membrane_unet.augmentation(args.config) == {"elastic": True}
    assert "elastic deformation" in membrane_unet.describe(args.config)


def test_a_crop_the_depth_cannot_divide_is_refused(capsys):
    with pytest.raises(SystemExit):
        membrane_unet.parse_args(["--preset", "fast", "--crop", "100"])  # depth 3: multiples of 8
    assert "multiples of 2**depth = 8" in capsys.readouterr().err


def test_score_against_hand_computed_values():
    truth = np.zeros((1, 4, 4), dtype=np.int64)
    truth[0, 1, :] = 1  # one membrane row: 4 pixels
    pred = np.zeros_like(truth)
    pred[0, 1, :2] = 1  # 2 of them found
    pred[0, 3, 0] = 1  # and one false positive
    scores = membrane_unet.score(truth, pred)
    assert scores["membrane_dice"] == pytest.approx(2 * 2 / (4 + 3))
    assert scores["membrane_iou"] == pytest.approx(2 / 5)
    assert scores["pixel_error"] == pytest.approx(3 / 16)  # 2 missed + 1 false positive
    assert 0 <= scores["boundary_f1"] <= 1


def test_table_lists_scores_and_failures():
    rows = [
        {"framework": "PyTorch 2", "device": "cpu", "parameters": 1234, "epochs_run": 3, "seconds": 90.0,
         "membrane_dice": 0.8, "membrane_iou": 0.667, "pixel_error": 0.08, "boundary_f1": 0.9},
        {"framework": "keras", "error": "ImportError: no keras"},
    ]
    lines = membrane_unet.table(rows)
    assert lines[2] == "| PyTorch 2 | cpu | 1,234 | 3 | 1.5 | 0.800 | 0.667 | 0.080 | 0.900 |"
    assert "failed: ImportError: no keras" in lines[3]


def membranes_available() -> bool:
    root = Path(os.environ.get("COURSE_DATA_DIR", ""))
    return (root / "isbi2012-membrane").is_dir()


@pytest.mark.skipif(not membranes_available(), reason="set COURSE_DATA_DIR to the folder with isbi2012-membrane/")
def test_membrane_script_runs_end_to_end(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "membrane.json"
    code = membrane_unet.main(["--preset", "fast", "--epochs", "1", "--crops-per-slice", "1", "--frameworks",
                               "torch", "--json", str(out)])
    assert code == 0
    payload = json.loads(out.read_text())
    assert payload["preset"] == "fast" and payload["config"]["epochs"] == 1
    assert 0.3 < payload["baseline_all_membrane"]["membrane_dice"] < 0.42  # membranes: about 20 % of pixels
    (row,) = payload["rows"]
    assert row["epochs_run"] == 1 and row["parameters"] == 121_042  # the lectures' fast U-Net
    assert 0 <= row["membrane_dice"] <= 1 and 0 <= row["pixel_error"] <= 1
    assert "| PyTorch" in capsys.readouterr().out


# ----------------------------------------------------------------------------- report.py
def test_report_combines_the_saved_results(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "train_speed.md").write_text("## Training speed\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    (results / "model_zoo.json").write_text(json.dumps({
        "settings": "64x64x3 images", "batch": 4,
        "rows": [{"framework": "PyTorch", "device": "cpu", "model": "U-Net", "parameters": 10, "images_per_s": 8.0},
                 {"framework": "Keras", "device": "CPU", "model": "FCN-8s", "error": "ValueError: boom"}]}))
    (results / "notebook_runtimes.json").write_text(json.dumps({"quick": False, "rows": [
        {"notebook": "notebooks/00.ipynb", "seconds": 10.4, "status": "passed"},
        {"notebook": "notebooks/01.ipynb", "seconds": 20.0, "status": "failed"}]}))
    (results / "membrane_unet.json").write_text(json.dumps({
        "preset": "cpu", "setup": "U-Net depth 4", "baseline_all_membrane": {"membrane_dice": 0.332},
        "rows": [{"framework": "PyTorch", "device": "cpu", "parameters": 5, "epochs_run": 30, "seconds": 600.0,
                  "membrane_dice": 0.85, "membrane_iou": 0.74, "pixel_error": 0.07, "boundary_f1": 0.95}]}))
    (results / "lecture05.json").write_text(json.dumps({"lecture": "05", "mode": "fast", "rows": [
        {"framework": "Keras", "name": "Dice", "dice": 0.7, "iou": 0.55, "per_class_dice": {"membrane": 0.7}}]}))
    args = report.parse_args(["--reuse", "--results-dir", str(results), "--output", str(tmp_path / "R.md")])
    text = report.build_report(args, problems={})
    assert "### Training speed" in text  # demoted under the report's own section
    assert "| U-Net | PyTorch | cpu | 10 | 8.0 | 500.0 |" in text  # 4 images at 8 images/s
    assert "unavailable" in text and "ValueError: boom" in text
    assert "| **total** | **30** | 1/2 passed |" in text
    assert "Preset `cpu`" in text and "0.332" in text and "| 0.850 | 0.740 | 0.070 | 0.950 |" in text
    assert "| Keras | Dice | 0.700 | 0.550 | 0.700 |" in text  # per_class_dice -> "dice (membrane)"
    assert "Not recorded yet: run `python benchmarks/report.py`" in text and "notebooks/07_*.ipynb" in text


def test_report_says_what_is_missing(tmp_path):
    args = report.parse_args(["--reuse", "--results-dir", str(tmp_path), "--output", str(tmp_path / "R.md")])
    text = report.build_report(args, problems={"model_zoo": "model_zoo.py failed (exit 1)"})
    # training speed, model zoo, notebooks, membranes, the two multi-seed comparisons
    assert text.count("_Not measured yet") == 7  # ... and the training-dynamics sweeps
    assert "_Not measured yet: run `python benchmarks/loss_comparison.py`._" in text
    assert "Not measured yet: run `python benchmarks/report.py`" in text  # training speed
    assert "- model_zoo: model_zoo.py failed (exit 1)" in text


def test_lectures_run_in_the_callers_mode_and_record_into_the_results_folder(tmp_path):
    command, env = report.lecture_run("07", tmp_path, environ={"COURSE_FAST": "1", "MPLBACKEND": "Agg"})
    assert command[:4] == [sys.executable, "-m", "jupyter", "nbconvert"] and "--execute" in command
    assert command[-1].endswith("notebooks/07_fcn_deeplab.ipynb")
    assert command[command.index("--output-dir") + 1] == str(tmp_path.resolve())
    assert env["COURSE_RECORD_RESULTS"] == str(tmp_path.resolve())  # where course_utils.results writes
    assert env["COURSE_FAST"] == "1" and "MPLBACKEND" not in env  # inline figures in the executed copy
    _, env = report.lecture_run("05", tmp_path, environ={"COURSE_DATA_DIR": "/data"})
    assert "COURSE_FAST" not in env and env["COURSE_DATA_DIR"] == "/data"  # full mode; the caller's data


def test_child_processes_get_the_local_data_copy_unless_the_caller_chose_one():
    import machine

    shared = BENCHMARKS.parent.parent / "shared" / "data"
    env = machine.with_local_data({"PATH": "/bin"})
    if (shared / "isbi2012-membrane").is_dir():
        assert env["COURSE_DATA_DIR"] == str(shared)
    else:
        assert "COURSE_DATA_DIR" not in env
    assert machine.with_local_data({"COURSE_DATA_DIR": "/mine"})["COURSE_DATA_DIR"] == "/mine"
    caller = {"PATH": "/bin"}
    machine.with_local_data(caller)
    assert caller == {"PATH": "/bin"}  # a copy: the caller's mapping is left alone


def test_report_embeds_the_multi_seed_tables(tmp_path):
    (tmp_path / "loss_comparison.md").write_text("## Loss comparison\n\n| loss | seeds |\n|---|---:|\n| CE | 3 |\n")
    args = report.parse_args(["--reuse", "--results-dir", str(tmp_path), "--output", str(tmp_path / "R.md")])
    text = report.build_report(args, problems={})
    assert "## 6. Comparisons over several seeds" in text
    assert "### Loss comparison" in text and "| CE | 3 |" in text  # demoted under section 6
    assert "_Not measured yet: run `python benchmarks/architecture_comparison.py`._" in text
    assert "comparisons" in report.PARTS


# ----------------------------------------------------------------------------- loss_comparison.py (paired, reuse)
def _loss_runs(mean_dice: dict[str, list[float]]) -> list[dict]:
    """Complete per-seed runs for every loss and baseline of loss_comparison.py, with the given mean Dice."""
    import loss_comparison

    truth = np.zeros((1, 4, 4), dtype=np.int64)
    truth[0, 0, :2] = 3
    runs = []
    for seed in range(len(mean_dice["CE"])):
        for name in loss_comparison.LOSS_NAMES:
            runs.append({"name": name, "seed": seed, "seconds": 1.0, **loss_comparison.score(truth, truth),
                         "mean_dice": mean_dice[name][seed]})
        runs += loss_comparison.baseline_runs(truth, seed)
    return runs


def test_loss_comparison_reuse_renders_paired_verdicts_without_training(tmp_path):
    import loss_comparison

    ce = [0.40, 0.55, 0.70]
    runs = _loss_runs({"CE": ce, "Dice": [v + d for v, d in zip(ce, (0.10, 0.12, 0.08))],
                       "weighted CE": [v + d for v, d in zip(ce, (-0.10, 0.10, 0.03))],
                       "CE + Dice": [v - d for v, d in zip(ce, (0.20, 0.21, 0.19))]})
    stem = tmp_path / "lc"
    payload = {"created": "2026-01-02T03:04:05Z", "model": "toy model", "config": dict(loss_comparison.DEFAULTS),
               "class_share": [0.7, 0.1, 0.1, 0.1], "runs": runs, "summary": []}
    stem.with_suffix(".json").write_text(json.dumps(payload))
    assert loss_comparison.main(["--reuse", "--out", str(stem)]) == 0
    text = stem.with_suffix(".md").read_text()
    assert "Trained 2026-01-02 with the toy model." in text
    assert "### Paired comparisons (each loss against CE, the same seeds)" in text
    # Dice - CE = +0.10, +0.12, +0.08: mean +0.100, sd 0.02, t(2) = 4.303 -> half-width 0.0497
    assert "| Dice vs CE | 3 | +0.100 | [+0.050, +0.150] | 3/3 | **shown**: Dice better |" in text
    assert "| weighted CE vs CE | 3 | +0.010 |" in text and "| 2/3 | not shown |" in text
    assert "| CE + Dice vs CE | 3 | -0.200 |" in text and "**shown**: CE better" in text
    saved = json.loads(stem.with_suffix(".json").read_text())
    ce_row = next(r for r in saved["summary"] if r["name"] == "CE")
    assert ce_row["seeds"] == 3 and ce_row["mean_dice_mean"] == pytest.approx(np.mean(ce))


def test_loss_comparison_reuse_needs_the_results_file(tmp_path):
    import loss_comparison

    with pytest.raises(SystemExit, match="--reuse needs"):
        loss_comparison.main(["--reuse", "--out", str(tmp_path / "missing")])


def test_loss_comparison_says_when_too_few_seeds_for_paired_verdicts():
    import loss_comparison

    runs = _loss_runs({name: [0.5, 0.6] for name in loss_comparison.LOSS_NAMES})
    lines = loss_comparison.paired_section(runs)
    assert "_Paired verdicts need at least 3 seeds per loss; this table has 2._" in lines


def test_loss_comparison_never_resumes_runs_of_another_model_version(tmp_path):
    import loss_comparison

    config = dict(loss_comparison.DEFAULTS)
    runs = [{"name": "CE", "seed": 0, "mean_dice": 0.5}]
    partial = tmp_path / "lc.partial.json"
    (tmp_path / "lc.json").write_text(json.dumps({"config": config, "model": "an older model", "runs": runs}))
    assert loss_comparison._load_partial(partial, config) == []
    partial.write_text(json.dumps({"config": config, "model": loss_comparison.MODEL_VERSION, "runs": runs}))
    assert loss_comparison._load_partial(partial, config) == runs


def test_the_committed_loss_table_is_rendered_from_its_runs_with_paired_verdicts():
    import loss_comparison

    payload = json.loads((BENCHMARKS / "results" / "loss_comparison.json").read_text())
    committed = (BENCHMARKS / "results" / "loss_comparison.md").read_text()
    assert committed.rstrip() == loss_comparison.render(payload)[1].rstrip()  # re-render == committed
    for a, b in loss_comparison.PAIRS:
        assert committed.count(f"| {a} vs {b} | {len(payload['config']['seeds'])} |") == len(loss_comparison.PAIRED_METRICS)
    assert "shown" in committed and payload.get("model")
