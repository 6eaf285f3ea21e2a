"""Checks for the lecture 06 exercises (evaluation): confusion matrix, IoU and Dice.

The student writes

* ``confusion_matrix(y_true, y_pred, num_classes, ignore_index=None)`` -> ``(C, C)``
  counts, rows = true class, columns = predicted class;
* ``iou_from_confusion(cm)`` and ``dice_from_confusion(cm)`` -> per-class ``(C,)``
  scores with NaN for a class absent from truth and prediction.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import metrics as _ref
from ._common import check, fail, not_written, passed

__all__ = ["check_confusion_matrix", "check_iou_dice_from_confusion"]


def _fmt(a) -> str:
    return np.array2string(np.asarray(a), precision=3, separator=", ").replace("\n", "")


def _call(fn, name, *args, **kwargs):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # 0/0 -> nan is expected
            return fn(*args, **kwargs)
    except NotImplementedError:
        raise not_written(name) from None
    except TypeError as error:
        if "ignore_index" in str(error):
            fail(f"{name} does not accept ignore_index: give it a parameter `ignore_index=None`.")
        fail(f"calling {name} raised TypeError ({error}): check its parameters.")
    except Exception as error:  # noqa: BLE001 - tell the student what happened
        fail(f"calling {name} raised {type(error).__name__}: {error}.")


@check
def check_confusion_matrix(fn) -> None:
    """Check ``fn(y_true, y_pred, num_classes, ignore_index=None)`` against known cases."""
    name = getattr(fn, "__name__", "confusion_matrix")
    # 1) a hand-computed case with more predicted "1" than true "1"
    t = np.array([[0, 0, 1], [1, 2, 2]])
    p = np.array([[0, 1, 1], [1, 2, 0]])
    expected = _ref.confusion_matrix(t, p, 3)
    got = _call(fn, name, t, p, 3)
    got = np.asarray(got)
    if got.shape != (3, 3):
        fail(
            f"{name}(y_true, y_pred, 3) returned shape {got.shape} but expected (3, 3): one row and one "
            "column per class."
        )
    if np.array_equal(got, expected.T) and not np.array_equal(got, expected):
        fail(
            f"{name} has rows and columns swapped: cm[i, j] must count pixels of TRUE class i predicted "
            "as class j (rows = truth)."
        )
    if got.sum() != t.size:
        fail(
            f"{name} counted {got.sum():g} pixels but the masks have {t.size}: every pixel adds 1 to exactly "
            "one cell (cm[true, pred] += 1)."
        )
    if not np.array_equal(got, expected):
        fail(f"{name} returned {_fmt(got)} but expected {_fmt(expected)} for y_true={_fmt(t)}, y_pred={_fmt(p)}.")
    # 2) a class that occurs nowhere must still get its row and column
    t2 = np.zeros((2, 3, 3), int)
    t2[0, 0, :] = 1
    p2 = t2.copy()
    got = np.asarray(_call(fn, name, t2, p2, 4))
    if got.shape != (4, 4):
        fail(
            f"{name}(..., num_classes=4) returned shape {got.shape} on masks without classes 2 and 3: the "
            "matrix must always be (num_classes, num_classes), e.g. np.bincount(..., minlength=C * C)."
        )
    if not np.array_equal(got, _ref.confusion_matrix(t2, p2, 4)):
        fail(f"{name} is wrong on a batch of shape (2, 3, 3): flatten all images (ravel) before counting.")
    # 3) ignore_index
    t3 = np.array([[0, 255, 1], [1, 255, 0]])
    p3 = np.array([[0, 1, 1], [0, 0, 0]])
    expected = _ref.confusion_matrix(t3, p3, 2, ignore_index=255)
    got = np.asarray(_call(fn, name, t3, p3, 2, ignore_index=255))
    if got.shape != (2, 2) or not np.array_equal(got, expected):
        fail(
            f"{name}(..., ignore_index=255) returned {_fmt(got)} but expected {_fmt(expected)}: drop the pixels "
            "whose TRUE label equals ignore_index before counting (keep = y_true != ignore_index)."
        )
    passed(f"{name}: rows = truth, absent classes keep their row/column, batches and ignore_index work.")


@check
def check_iou_dice_from_confusion(iou_fn, dice_fn) -> None:
    """Check ``iou_fn(cm)`` and ``dice_fn(cm)`` -> per-class (C,) scores with NaN for absent classes."""
    # classes: 0 and 1 present; 2 predicted but never true; 3 absent everywhere
    cm = np.array([[5, 1, 1, 0], [2, 3, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    before = cm.copy()
    expected = {"iou_fn": _ref.iou_from_confusion(cm), "dice_fn": _ref.dice_from_confusion(cm)}
    formulas = {"iou_fn": "IoU = TP / (TP + FP + FN)", "dice_fn": "Dice = 2 TP / (2 TP + FP + FN)"}
    for label, fn in (("iou_fn", iou_fn), ("dice_fn", dice_fn)):
        name = getattr(fn, "__name__", label)
        got = _call(fn, name, cm)
        if not np.array_equal(cm, before):
            fail(f"{name} changed the confusion matrix it was given: work on a copy (cm.astype(float)).")
        if np.ndim(got) == 0:
            fail(f"{name} returned one number but should return one score per class (shape (4,)); do not average.")
        got = np.asarray(got, dtype=np.float64)
        want = expected[label]
        if got.shape != want.shape:
            fail(f"{name} returned shape {got.shape} but expected {want.shape}: one score per class.")
        if not np.isnan(got[3]):
            fail(
                f"{name} gave {got[3]:.3g} for a class absent from truth and prediction, but it must be NaN "
                "(0/0): 1.0 would inflate the mean and 0.0 would punish a correct 'nothing there'."
            )
        if np.isnan(got[2]) or got[2] != 0.0:
            fail(
                f"{name} gave {got[2]:.3g} for a class that is predicted but never true: that is a pure false "
                "positive and must score 0, only 0/0 is NaN."
            )
        tp, rows, cols = np.diag(cm).astype(float), cm.sum(1).astype(float), cm.sum(0).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            twice = tp / (rows + cols)  # union taken as |A| + |B|: the intersection counted twice
            dice_over_union = 2 * tp / (rows + cols - tp)
        if label == "iou_fn" and np.allclose(got[:3], twice[:3]):
            fail(f"{name} counts the intersection twice: the union is row sum + column sum - TP "
                 f"(TP + FP + FN), not row sum + column sum; {formulas[label]}.")
        if label == "iou_fn" and np.allclose(got[:3], expected["dice_fn"][:3]):
            fail(f"{name} returned the Dice values (factor 2 in the numerator): {formulas[label]}.")
        if label == "dice_fn" and np.allclose(got[:3], dice_over_union[:3]):
            fail(f"{name} divides 2 TP by the union: Dice divides by the sum of both sizes, {formulas[label]}.")
        if label == "dice_fn" and np.allclose(got[:3], expected["iou_fn"][:3]):
            fail(f"{name} returned the IoU values (Dice equals IoU only for a perfect or empty class): "
                 f"{formulas[label]}.")
        if label == "dice_fn" and np.allclose(got[:3], want[:3] / 2):
            fail(f"{name} is half the Dice: {formulas[label]} (the numerator has a factor 2).")
        if not np.allclose(got[:3], want[:3]):
            fail(
                f"{name} returned {_fmt(got)} but expected {_fmt(want)} for cm={_fmt(cm)}: {formulas[label]} "
                "with TP = diagonal, FP = column sum - TP, FN = row sum - TP."
            )
    passed("iou_fn and dice_fn: per-class scores right, 0 for a pure false positive, NaN for an absent class.")
