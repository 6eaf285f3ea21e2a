"""Lecture 07's comparison plumbing (course_utils.architecture_lab), DeepLabV3+ in both frameworks, and the
architecture benchmark's paired tables (benchmarks/architecture_comparison.py)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from course_utils import architecture_lab as lab

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

import architecture_comparison as bench  # noqa: E402

BUDGET = lab.Budget(size=32, base_filters=4, unet_depth=2, rates=(1, 2), epochs=1, batch=2, learning_rate=1e-2,
                    seed=0)


# ----------------------------------------------------------------------------- Budget and scores
@pytest.mark.parametrize("change, words", [
    (dict(size=48), "multiple of 32"), (dict(epochs=0), "epochs"), (dict(batch=True), "batch"),
    (dict(rates=()), "rates"), (dict(rates=(1, 0)), "rates"), (dict(learning_rate=3.0), "learning_rate"),
])
def test_budget_refuses_bad_settings(change, words):
    settings = dict(size=64, base_filters=8, unet_depth=3, rates=(1, 2, 3), epochs=2, batch=4, learning_rate=1e-3)
    with pytest.raises(ValueError, match=words):
        lab.Budget(**{**settings, **change})


def test_unknown_model_name_is_refused():
    with pytest.raises(ValueError, match="choose from"):
        lab.torch_models(BUDGET, 3, 2, names=("SegNet",))


def test_scores_against_hand_computed_values():
    truth = np.zeros((1, 8, 8), np.int64)
    truth[0, 2:6, 2:6] = 1                      # 16 pixels of class 1
    pred = np.zeros_like(truth)
    pred[0, 2:6, 2:4] = 1                       # 8 of them found, no false positive
    r = lab.scores(truth, pred, 2, seconds=1.5, params=10, macs=20)
    assert r["dice"][1] == pytest.approx(2 * 8 / (16 + 8))
    assert r["iou"][1] == pytest.approx(8 / 16)
    assert r["dice"][0] == pytest.approx(2 * 48 / (48 + 56))
    assert r["classes"] == [0, 1] and r["params"] == 10 and r["sec"] == 1.5
    background = lab.scores(truth, np.zeros_like(truth), 2)
    assert background["classes"] == [0] and background["dice"][1] == 0 and background["bf1_any"] == 0
    with pytest.raises(ValueError, match="same shape"):
        lab.scores(truth, pred[0], 2)


def _result(dice, bf1_any, macs, classes):
    return dict(params=1000, macs=macs, sec=0.5, dice=np.array(dice), iou=np.array(dice), bf1=np.array(dice),
                bf1_any=bf1_any, classes=classes)


def test_table_and_conclusion_read_the_results():
    results = {"U-Net": _result([0.9, 0.5], 0.8, 300, [0, 1]), "FCN-8s": _result([0.9, 0.0], 0.0, 100, [0])}
    table = lab.format_table(results, ["background", "disc"], "title").splitlines()
    assert table[0] == "title"
    unet = next(line for line in table if line.startswith("U-Net"))
    assert "0.700" in unet and "back=0.90 disc=0.50" in unet and "background only" not in unet
    assert next(line for line in table if line.startswith("FCN-8s")).endswith("<- background only")
    text = lab.conclusion(results, "Test")
    assert "best mean Dice U-Net (0.70)" in text and "fewest multiply-adds FCN-8s" in text
    assert "Predicting background only: FCN-8s." in text
    assert "no multi-seed benchmark" in lab.conclusion(results, "Test", benchmark=False)
    with pytest.raises(ValueError, match="at least one"):
        lab.conclusion({}, "Test")


# ----------------------------------------------------------------------------- models in both frameworks
def test_the_two_frameworks_build_the_same_architectures():
    from course_utils.keras.unet import count_parameters

    keras_side = lab.keras_models(BUDGET, 3, 4)
    torch_side = lab.torch_models(BUDGET, 3, 4)
    assert tuple(keras_side) == tuple(torch_side) == lab.MODEL_NAMES
    for name in lab.MODEL_NAMES:
        assert count_parameters(keras_side[name]()) == sum(p.numel() for p in torch_side[name]().parameters()), name


@pytest.mark.parametrize("output_stride", [16, 8])
def test_deeplab_plus_matches_across_frameworks(output_stride):
    from course_utils.keras.deeplab import build_deeplab
    from course_utils.keras.deeplab_plus import build_deeplab_plus
    from course_utils.keras.unet import count_parameters
    from course_utils.port import keras_to_torch, max_abs_logit_difference
    from course_utils.torch.deeplab_plus import DeepLabV3Plus

    f = 8
    keras_model = build_deeplab_plus((64, 64, 3), 4, output_stride=output_stride, base_filters=f, atrous_rates=(1, 2, 3))
    torch_model = DeepLabV3Plus(3, 4, output_stride=output_stride, base_filters=f, atrous_rates=(1, 2, 3))
    plain = build_deeplab((64, 64, 3), 4, output_stride=output_stride, base_filters=f, atrous_rates=(1, 2, 3))
    # The decoder by hand: 1x1 on stage2's 2f channels -> f, two 3x3 convs of 4f (the first sees 4f + f), BN gamma+beta.
    decoder = 2 * f * f + 2 * f + (4 * f + f) * 4 * f * 9 + 2 * 4 * f + 4 * f * 4 * f * 9 + 2 * 4 * f
    assert count_parameters(keras_model) == count_parameters(plain) + decoder
    assert sum(p.numel() for p in torch_model.parameters()) == count_parameters(keras_model)
    assert keras_model.output_shape == (None, 64, 64, 4)
    assert keras_model.get_layer("decoder_upsample").output.shape[1] == 16  # stride 4 after the decoder's upsampling
    keras_to_torch(keras_model, torch_model)
    x = np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32)
    assert max_abs_logit_difference(keras_model, torch_model, x) < 1e-4


def test_deeplab_plus_uses_the_stride_4_features():
    """Zeroing the low-level 1x1 conv changes the logits: the decoder's skip is wired in."""
    import torch

    from course_utils.torch.deeplab_plus import DeepLabV3Plus

    torch.manual_seed(0)
    model = DeepLabV3Plus(3, 2, output_stride=8, base_filters=4, atrous_rates=(1, 2)).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        model.decoder.low_level.conv.weight.zero_()
        after = model(x)
    assert (before - after).abs().max() > 1e-3
    with pytest.raises(ValueError, match="batch"):
        model(torch.rand(3, 32, 32))


def test_compare_torch_end_to_end():
    rng = np.random.default_rng(0)
    x = rng.random((4, 32, 32, 3), dtype=np.float32)
    y = (x[..., 0] > 0.5).astype(np.int64)
    results, preds = lab.compare_torch(x[:2], y[:2], x[2:], y[2:], 2, BUDGET)
    assert list(results) == list(lab.MODEL_NAMES)
    for name, r in results.items():
        assert preds[name].shape == (2, 32, 32) and r["params"] > 0 and r["macs"] > 0 and r["sec"] > 0
        assert r["dice"].shape == (2,) and 0 <= r["bf1_any"] <= 1


def test_compare_keras_end_to_end():
    rng = np.random.default_rng(0)
    x = rng.random((4, 32, 32, 1), dtype=np.float32)
    y = (x[..., 0] > 0.5).astype(np.int64)
    results, preds = lab.compare_keras(x[:2], y[:2], x[2:], y[2:], 2, BUDGET, names=("FCN-8s",))
    assert list(results) == ["FCN-8s"] and preds["FCN-8s"].shape == (2, 32, 32)
    assert results["FCN-8s"]["classes"] == sorted(np.unique(preds["FCN-8s"]).tolist())


# ----------------------------------------------------------------------------- the benchmark's paired tables
def _runs():
    runs = []
    for seed, (u, f, d) in enumerate([(0.80, 0.60, 0.40), (0.50, 0.58, 0.38), (0.70, 0.50, 0.39)]):
        for name, value in (("U-Net", u), ("FCN-8s", f), ("DeepLab OS8", d), (bench.BASELINES[1], 0.45)):
            runs.append({"name": name, "seed": seed, "mean_dice": value, "boundary_f1": value,
                         "boundary_f1_agnostic": value})
    return runs


def test_paired_section_lists_the_pairs_that_have_runs():
    text = "\n".join(bench.paired_section(_runs()))
    assert "DeepLabV3+" not in text  # no runs of it: its pairs are left out
    # FCN-8s - DeepLab: +0.20, +0.20, +0.11 -> mean +0.170, consistent: shown
    assert "| FCN-8s vs DeepLab OS8 | 3 | +0.170 |" in text and "**shown**: FCN-8s better" in text
    # U-Net - FCN-8s: +0.20, -0.08, +0.20: not shown
    assert "| U-Net vs FCN-8s | 3 | +0.107 |" in text
    assert text.count("| U-Net vs FCN-8s |") == 3  # one table per metric


def test_a_run_without_the_init_key_says_it_predates_he_init():
    config = dict(bench.DEFAULTS)
    assert "before the course's He initialisation" in bench.describe(config)
    assert "He uniform" in bench.describe({**config, "init": bench.INIT})


def test_the_committed_table_is_what_rebuild_renders_from_the_committed_runs(tmp_path):
    committed = ROOT / "benchmarks" / "results" / "architecture_comparison"
    for suffix in (".json", ".md"):
        shutil.copy(committed.with_suffix(suffix), tmp_path / ("copy" + suffix))
    assert bench.main(["--rebuild", "--out", str(tmp_path / "copy")]) == 0
    assert (tmp_path / "copy.md").read_text() == committed.with_suffix(".md").read_text()
    saved = json.loads(committed.with_suffix(".json").read_text())
    assert "Paired comparisons" in (tmp_path / "copy.md").read_text()
    assert {r["name"] for r in saved["runs"]} >= {"U-Net", "FCN-8s", "DeepLab OS8"}
