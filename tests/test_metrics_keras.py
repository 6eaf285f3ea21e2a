"""course_utils.keras.metrics equals the NumPy ground truth, also inside model.evaluate."""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import numpy as np
import pytest

from course_utils import metrics as M
from course_utils.keras.metrics import DiceScore, IoUScore


def _batches(num_batches=3, b=2, c=3, h=9, w=7, seed=0, ignore=None):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(num_batches):
        logits = rng.normal(size=(b, h, w, c)).astype("float32")
        target = rng.integers(0, c, (b, h, w)).astype("int32")
        if ignore is not None:
            target[:, :2, :2] = ignore
        out.append((target, logits))
    return out


def _numpy(batches):
    t = np.concatenate([tg for tg, _ in batches])
    p = np.concatenate([lg.argmax(-1) for _, lg in batches])
    return t, p


@pytest.mark.parametrize("ignore_index", [None, 255])
@pytest.mark.parametrize("class_id", [None, 0, 2])
def test_accumulated_scores_equal_numpy(ignore_index, class_id):
    batches = _batches(ignore=ignore_index)
    t, p = _numpy(batches)
    dice = DiceScore(3, class_id=class_id, ignore_index=ignore_index)
    iou = IoUScore(3, class_id=class_id, ignore_index=ignore_index)
    for target, logits in batches:
        dice.update_state(target, logits)
        iou.update_state(target, logits)
    np.testing.assert_array_equal(dice.matrix, M.confusion_matrix(t, p, 3, ignore_index))
    want_dice = M.dice_per_class(t, p, 3, ignore_index)
    want_iou = M.iou_per_class(t, p, 3, ignore_index)
    if class_id is None:
        want_dice, want_iou = np.nanmean(want_dice), np.nanmean(want_iou)
    else:
        want_dice, want_iou = want_dice[class_id], want_iou[class_id]
    assert float(dice.result()) == pytest.approx(want_dice, abs=1e-6)
    assert float(iou.result()) == pytest.approx(want_iou, abs=1e-6)
    dice.reset_state()
    assert dice.matrix.sum() == 0 and np.isnan(float(dice.result()))


def test_absent_class_nan_and_out_of_range_labels_give_nan():
    target = np.zeros((1, 4, 4), "int32")
    target[0, 0, 0] = 1
    logits = np.zeros((1, 4, 4, 3), "float32")
    logits[..., 0] = 1.0
    metric = DiceScore(3, class_id=2)
    metric.update_state(target, logits)
    assert np.isnan(float(metric.result()))
    mean = DiceScore(3)
    mean.update_state(target, logits)
    assert float(mean.result()) == pytest.approx(M.mean_dice(target, logits.argmax(-1), 3), abs=1e-6)
    bad = DiceScore(3)
    bad.update_state(np.full((1, 4, 4), 255, "int32"), logits)  # 255 without ignore_index
    assert np.isnan(float(bad.result()))


def test_bad_shapes_and_arguments_raise():
    with pytest.raises(ValueError, match="output channels"):
        DiceScore(3).update_state(np.zeros((1, 4, 4), "int32"), np.zeros((1, 4, 4, 1), "float32"))
    with pytest.raises(ValueError, match=r"mask\[\.\.\., 0\]"):
        DiceScore(2).update_state(np.zeros((1, 4, 4, 1), "int32"), np.zeros((1, 4, 4, 2), "float32"))
    with pytest.raises(ValueError, match="class_id"):
        DiceScore(2, class_id=2)


def test_inside_model_evaluate_and_fit_in_graph_mode():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(12, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, (12, 8, 8)).astype("int32")
    y[:, 0, :] = 255
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Conv2D(3, 3, padding="same")(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255),
        metrics=[DiceScore(3, ignore_index=255), IoUScore(3, ignore_index=255), DiceScore(3, 1, 255, name="dice_1")],
    )
    history = model.fit(x, y, batch_size=5, epochs=1, verbose=0, validation_data=(x, y))
    assert {"dice", "iou", "dice_1", "val_dice"} <= set(history.history)
    scores = model.evaluate(x, y, batch_size=5, verbose=0, return_dict=True)  # 3 batches, last one partial
    pred = model.predict(x, verbose=0).argmax(-1)
    assert scores["dice"] == pytest.approx(M.mean_dice(y, pred, 3, ignore_index=255), abs=1e-6)
    assert scores["iou"] == pytest.approx(M.mean_iou(y, pred, 3, ignore_index=255), abs=1e-6)
    assert scores["dice_1"] == pytest.approx(M.dice_per_class(y, pred, 3, ignore_index=255)[1], abs=1e-6)


def test_config_round_trip():
    metric = IoUScore(4, class_id=1, ignore_index=255, name="iou_disc")
    clone = IoUScore.from_config(metric.get_config())
    assert (clone.num_classes, clone.class_id, clone.ignore_index, clone.name) == (4, 1, 255, "iou_disc")


@pytest.mark.parametrize("num_classes", [1, 2])
def test_single_logit_binary_output(num_classes):
    rng = np.random.default_rng(3)
    target = rng.integers(0, 2, (2, 6, 6)).astype("int32")
    logit = rng.normal(size=(2, 6, 6, 1)).astype("float32")
    pred = (logit[..., 0] > 0).astype(int)
    metric = DiceScore(num_classes, class_id=1)
    metric.update_state(target, logit)
    assert float(metric.result()) == pytest.approx(M.dice_per_class(target, pred, 2)[1], abs=1e-6)
    sigmoid = 1 / (1 + np.exp(-logit))
    prob_metric = IoUScore(num_classes, class_id=1, threshold=0.5)
    prob_metric.update_state(target, sigmoid)
    assert float(prob_metric.result()) == pytest.approx(M.iou_per_class(target, pred, 2)[1], abs=1e-6)
    assert IoUScore.from_config(prob_metric.get_config()).threshold == 0.5
