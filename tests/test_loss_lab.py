"""course_utils.loss_lab (lecture 05's plumbing): scores against hand-computed values, the trivial baselines,
the flag for a model that is no better than a baseline, the printed table and the figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_utils import loss_lab  # noqa: E402

NAMES = ("background", "disc", "square", "triangle")


def make_ds():
    """Two 4x4 validation masks with every class; training masks where background is the most and triangle the
    least frequent class."""
    y_val = np.zeros((2, 4, 4), dtype=np.int64)
    y_val[0, 0, :2] = 1          # 2 disc pixels
    y_val[0, 3, :] = 2           # 4 square pixels
    y_val[1, 1, 1] = 3           # 1 triangle pixel
    y_train = np.zeros((3, 4, 4), dtype=np.int64)
    y_train[0, 0, :3] = 1        # disc 3, square 2, triangle 1, background 42
    y_train[1, 0, :2] = 2
    y_train[2, 0, 0] = 3
    x = np.zeros((2, 4, 4, 3), dtype=np.float32)
    return dict(name="toy", num_classes=4, class_names=NAMES, x_train=np.zeros((3, 4, 4, 3), np.float32),
                y_train=y_train, x_val=x, y_val=y_val)


def test_per_class_scores_by_hand():
    ds = make_ds()
    pred = ds["y_val"].copy()
    pred[0, 3, :2] = 0           # half of the square missed
    scores = loss_lab.per_class_scores(ds, pred)
    # square: TP 2, FN 2, FP 0 -> Dice 4/6, IoU 2/4; background: TP 25, FP 2 -> Dice 50/52
    assert scores["dice"][2] == pytest.approx(4 / 6) and scores["iou"][2] == pytest.approx(0.5)
    assert scores["dice"][0] == pytest.approx(50 / 52)
    assert scores["dice"][1] == 1.0 and scores["dice"][3] == 1.0
    assert scores["mean_dice"] == pytest.approx((50 / 52 + 1 + 4 / 6 + 1) / 4)
    assert scores["predicted_pixels"].tolist() == [27, 2, 2, 1]


def test_per_class_scores_refuses_a_wrong_shape():
    ds = make_ds()
    with pytest.raises(ValueError, match="predicted masks have shape"):
        loss_lab.per_class_scores(ds, ds["y_val"][0])
    with pytest.raises(KeyError, match="lacks"):
        loss_lab.per_class_scores({"name": "x"}, ds["y_val"])


def test_baselines_use_the_training_masks_majority_and_rarest_class():
    ds = make_ds()
    baselines = loss_lab.baseline_predictions(ds)
    assert list(baselines) == ["all background (majority class)", "all triangle (rare class)"]
    assert (baselines["all background (majority class)"] == 0).all()
    assert (baselines["all triangle (rare class)"] == 3).all()
    assert baselines["all triangle (rare class)"].shape == ds["y_val"].shape
    # the all-background baseline's background Dice: TP 25 of 25 true, 32 predicted -> 50 / 57
    scores = loss_lab.per_class_scores(ds, baselines["all background (majority class)"])
    assert scores["dice"][0] == pytest.approx(50 / 57) and scores["dice"][1:].tolist() == [0, 0, 0]


def _baselines(ds):
    return {label: loss_lab.per_class_scores(ds, p) for label, p in loss_lab.baseline_predictions(ds).items()}


def test_flag_names_a_model_that_predicts_one_class_only():
    ds = make_ds()
    collapsed = loss_lab.per_class_scores(ds, np.zeros_like(ds["y_val"]))
    assert loss_lab.baseline_flag(collapsed, _baselines(ds), NAMES, ds["y_val"]) == "predicts background only"
    perfect = loss_lab.per_class_scores(ds, ds["y_val"])
    assert loss_lab.baseline_flag(perfect, _baselines(ds), NAMES, ds["y_val"]) == ""


def test_flag_names_a_model_at_the_baseline_and_the_classes_it_never_predicts():
    ds = make_ds()
    pred = np.zeros_like(ds["y_val"])
    pred[1, 3, 3] = 1            # one wrong disc pixel: two classes predicted, still no better than background
    scores = loss_lab.per_class_scores(ds, pred)
    flag = loss_lab.baseline_flag(scores, _baselines(ds), NAMES, ds["y_val"])
    assert flag == "at the 'all background (majority class)' baseline; never predicts square, triangle"
    good = ds["y_val"].copy()
    good[1, 1, 1] = 0            # everything right but the triangle: far above the baselines
    flag = loss_lab.baseline_flag(loss_lab.per_class_scores(ds, good), _baselines(ds), NAMES, ds["y_val"])
    assert flag == "never predicts triangle"


def test_score_table_lists_the_losses_then_the_baselines_with_flags():
    ds = make_ds()
    results = {"CE": {**loss_lab.per_class_scores(ds, np.zeros_like(ds["y_val"])), "seconds": 1.5},
               "Dice": {**loss_lab.per_class_scores(ds, ds["y_val"]), "seconds": 2.0}}
    text = loss_lab.score_table(results, ds, "Keras")
    lines = text.splitlines()
    assert lines[0].startswith("Keras · toy: per-class Dice / IoU on 2 validation images")
    rows = {line.split("  ")[0].strip(): line for line in lines[2:]}
    assert list(rows) == ["CE", "Dice", "all background (majority class)", "all triangle (rare class)"]
    assert rows["CE"].endswith("<- predicts background only") and "1.5s" in rows["CE"]
    assert "<-" not in rows["Dice"] and "1.00 / 1.00" in rows["Dice"]
    assert "<-" not in rows["all background (majority class)"]


def test_score_table_writes_n_a_for_a_class_absent_from_truth_and_prediction():
    ds = make_ds()
    ds["y_val"] = np.where(ds["y_val"] == 3, 0, ds["y_val"])      # no triangle left in the validation masks
    results = {"CE": {**loss_lab.per_class_scores(ds, ds["y_val"]), "seconds": 1.0}}
    assert "n/a" in loss_lab.score_table(results, ds, "PyTorch").splitlines()[2]


def test_figures_have_one_panel_per_image_and_loss():
    ds = make_ds()
    results = {"CE": {**loss_lab.per_class_scores(ds, ds["y_val"]), "seconds": 1.0}}
    fig = loss_lab.dice_chart(results, ds, "Keras")
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["CE", "all background (majority class)"]
    assert fig.get_size_inches()[0] <= 10
    plt.close(fig)
    predictions = {"CE": ds["y_val"], "Dice": np.zeros_like(ds["y_val"])}
    fig = loss_lab.predictions_side_by_side(ds, predictions, "Keras", n=3)
    # one validation image holds a triangle: one row of image, truth and two predictions
    assert len(fig.axes) == 4 and [ax.get_title() for ax in fig.axes] == ["image", "truth", "CE", "Dice"]
    assert fig.get_size_inches()[0] <= 10
    plt.close(fig)
