"""course_utils.torch.metrics equals the NumPy ground truth (course_utils.metrics)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_utils import metrics as M
from course_utils.torch import metrics as TM


def _batches(num_batches=3, b=2, c=3, h=9, w=7, seed=0, ignore=None):
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num_batches):
        logits = torch.randn(b, c, h, w, generator=g)
        target = torch.randint(0, c, (b, h, w), generator=g)
        if ignore is not None:
            target[:, :2, :2] = ignore
        out.append((logits, target))
    return out


def _numpy(batches):
    t = np.concatenate([tg.numpy() for _, tg in batches])
    p = np.concatenate([lg.argmax(1).numpy() for lg, _ in batches])
    return t, p


@pytest.mark.parametrize("ignore_index", [None, 255])
def test_accumulated_scores_equal_numpy(ignore_index):
    batches = _batches(ignore=ignore_index)
    t, p = _numpy(batches)
    cm = TM.ConfusionMatrix(3, ignore_index=ignore_index)
    for logits, target in batches:
        cm.update(logits, target)
    np.testing.assert_array_equal(cm.matrix, M.confusion_matrix(t, p, 3, ignore_index))
    assert cm.dice() == pytest.approx(M.mean_dice(t, p, 3, ignore_index), abs=1e-6)
    assert cm.iou() == pytest.approx(M.mean_iou(t, p, 3, ignore_index), abs=1e-6)
    for k in range(3):
        assert cm.dice(class_id=k) == pytest.approx(M.dice_per_class(t, p, 3, ignore_index)[k], abs=1e-6)
        assert cm.iou(class_id=k) == pytest.approx(M.iou_per_class(t, p, 3, ignore_index)[k], abs=1e-6)
    assert cm.pixel_accuracy() == pytest.approx(M.pixel_accuracy(t, p, ignore_index))
    cm.reset()
    assert cm.matrix.sum() == 0 and np.isnan(cm.dice())


def test_functions_on_one_batch():
    ((logits, target),) = _batches(1)
    t, p = _numpy([(logits, target)])
    assert TM.dice_score(logits, target, 3) == pytest.approx(M.mean_dice(t, p, 3), abs=1e-6)
    assert TM.iou_score(logits, target, 3, class_id=2) == pytest.approx(M.iou_per_class(t, p, 3)[2], abs=1e-6)
    # predicted class indices are accepted too
    assert TM.dice_score(logits.argmax(1), target, 3) == TM.dice_score(logits, target, 3)


def test_absent_class_is_nan_and_left_out_of_the_mean():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 0, 0] = 1
    logits = torch.zeros(1, 3, 4, 4)
    logits[:, 0] = 1.0  # predicts background everywhere
    cm = TM.ConfusionMatrix(3).update(logits, target)
    assert np.isnan(cm.dice(class_id=2)) and cm.dice(class_id=1) == 0.0
    assert cm.dice() == pytest.approx((2 * 15 / (2 * 15 + 1) + 0.0) / 2)


@pytest.mark.parametrize(
    "logits, target, match",
    [
        (torch.zeros(2, 3, 4, 4), torch.full((2, 4, 4), 255), "mask // 255"),
        (torch.zeros(2, 3, 4, 4), torch.zeros(2, 1, 4, 4, dtype=torch.long), r"target\[:, 0\]"),
        (torch.zeros(2, 3, 4, 4), torch.zeros(2, 4, 4), "long"),
        (torch.zeros(2, 4, 4, 3), torch.zeros(2, 4, 4, dtype=torch.long), "permute"),
        (torch.zeros(2, 3, 4, 4), torch.zeros(2, 5, 5, dtype=torch.long), "same batch size"),
    ],
)
def test_bad_input_names_the_fix(logits, target, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TM.ConfusionMatrix(3).update(logits, target)
