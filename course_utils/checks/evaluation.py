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

__all__ = ["check_confusion_matrix", "check_iou_dice_from_confusion", "check_all_cell_baseline",
           "check_boundary_mask"]


def _fmt(a) -> str:
    return np.array2string(np.asarray(a), precision=3, separator=", ").replace("\n", "")


def _call(fn, name, *args, _reshape_hint: str = "", **kwargs):
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
        if _reshape_hint and isinstance(error, ValueError) and "reshape" in str(error):
            fail(f"calling {name} raised ValueError ({error}): {_reshape_hint}")
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
    fancy = np.zeros((3, 3), np.int64)
    fancy[t.ravel(), p.ravel()] += 1  # what `cm[t, p] += 1` gives: each cell at most once
    if np.array_equal(got, fancy) or (0 < got.sum() < t.size and got.max() <= 1):
        fail(
            f"{name} counted each (true, predicted) pair only once ({got.sum():g} of {t.size} pixels): "
            "`cm[t, p] += 1` with index arrays adds 1 once per distinct cell and drops the repeats. Count with "
            "np.add.at(cm, (t, p), 1) or np.bincount(t * num_classes + p, minlength=num_classes**2)."
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
    got = np.asarray(_call(fn, name, t2, p2, 4, _reshape_hint=(
        "on masks without classes 2 and 3 np.bincount returns fewer than num_classes**2 counts: pass "
        "minlength=num_classes * num_classes so the matrix always has a row and a column for every class.")))
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
    got = np.asarray(_call(fn, name, t3, p3, 2, ignore_index=255, _reshape_hint=(
        "the void label 255 was counted as a class (its flat index 255 * num_classes + p makes bincount far "
        "longer): drop the pixels whose TRUE label equals ignore_index before counting (keep = y_true != "
        "ignore_index; t, p = t[keep], p[keep]).")))
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


@check
def check_all_cell_baseline(fn, masks) -> None:
    """Check exercise 3 of lecture 06: ``fn(masks (N, H, W)) -> (cm (2, 2), accuracy, iou (2,), dice (2,))``.

    The all-cell "model" predicts class 0 everywhere on the membrane masks (1 = membrane); the values are
    compared with :mod:`course_utils.metrics`.
    """
    name = getattr(fn, "__name__", "all_cell_baseline")
    masks = np.asarray(masks)
    result = _call(fn, name, masks.copy())
    if not isinstance(result, (tuple, list)) or len(result) != 4:
        fail(f"{name}(masks) must return four values: `return cm, accuracy, iou, dice`.")
    cm, accuracy, iou, dice = result
    zeros = np.zeros_like(masks)
    want_cm = _ref.confusion_matrix(masks, zeros, 2)
    cm = np.asarray(cm)
    if cm.shape != (2, 2):
        fail(f"cm has shape {cm.shape} but expected (2, 2): confusion_matrix(masks, all_cell, num_classes=2).")
    if np.array_equal(cm, _ref.confusion_matrix(masks, np.ones_like(masks), 2)):
        fail("cm is the confusion matrix of an all-MEMBRANE prediction: the all-cell model predicts class 0 "
             "everywhere, np.zeros_like(masks).")
    if np.array_equal(cm, want_cm.T) and not np.array_equal(cm, want_cm):
        fail("cm has rows and columns swapped: call confusion_matrix(masks, all_cell, ...), the TRUE masks first "
             "(rows = truth, columns = prediction).")
    if cm.sum() != masks.size:
        fail(f"cm counts {cm.sum():,} pixels but the masks have {masks.size:,}: compute it over all the slices, "
             "the whole masks array.")
    if not np.array_equal(cm, want_cm):
        fail(f"cm is {_fmt(cm)} but expected {_fmt(want_cm)}: confusion_matrix(masks, np.zeros_like(masks), 2).")
    want_accuracy = _ref.pixel_accuracy(masks, zeros)
    try:
        accuracy = float(accuracy)
    except (TypeError, ValueError):
        fail(f"accuracy is a {type(accuracy).__name__}: pixel accuracy is one number, np.trace(cm) / cm.sum().")
    recall = np.diag(want_cm) / np.maximum(want_cm.sum(axis=1), 1)
    if np.isclose(accuracy, 100 * want_accuracy):
        fail(f"accuracy is {accuracy:.1f}, a percentage: give the fraction np.trace(cm) / cm.sum() "
             f"({want_accuracy:.3f}).")
    if np.isclose(accuracy, 1 - want_accuracy):
        fail(f"accuracy {accuracy:.3f} is the fraction of WRONG pixels: the diagonal holds the right ones, "
             "np.trace(cm) / cm.sum().")
    if np.isclose(accuracy, recall.mean()) and not np.isclose(accuracy, want_accuracy):
        fail(f"accuracy {accuracy:.3f} is the mean of the per-class recalls (balanced accuracy): pixel accuracy "
             "counts every pixel once, np.trace(cm) / cm.sum().")
    if not np.isclose(accuracy, want_accuracy):
        fail(f"accuracy is {accuracy:.4f} but expected {want_accuracy:.4f}: np.trace(cm) / cm.sum().")
    want = {"iou": _ref.iou_from_confusion(want_cm), "dice": _ref.dice_from_confusion(want_cm)}
    for label, value, other in (("iou", iou, "dice"), ("dice", dice, "iou")):
        value = np.asarray(value, dtype=np.float64)
        if value.shape != (2,):
            fail(f"{label} has shape {value.shape} but expected (2,): one score per class "
                 f"({label}_from_confusion(cm)), not the mean.")
        if np.allclose(value, want[other], equal_nan=True) and not np.allclose(value, want[label], equal_nan=True):
            fail(f"{label} holds the {other.upper() if other == 'iou' else 'Dice'} values: use "
                 f"{label}_from_confusion(cm).")
        if not np.allclose(value, want[label], equal_nan=True):
            fail(f"{label} is {_fmt(value)} but expected {_fmt(want[label])}: {label}_from_confusion(cm).")
    passed(f"{want_accuracy:.0%} pixel accuracy, and not a single membrane pixel found (Dice {want['dice'][1]:.0f}).")


@check
def check_boundary_mask(fn) -> None:
    """Check ``fn(mask (H, W) bool) -> (H, W) bool``: the object's pixels that have an 8-neighbour outside it.

    The inner 1-pixel band along the edge, as :func:`course_utils.metrics.boundary_mask` with ``width=1``; the
    image border is not an edge. Boundary IoU and boundary F1 compare such bands of truth and prediction.
    """
    from scipy import ndimage

    name = getattr(fn, "__name__", "boundary_mask")
    mask = np.zeros((9, 10), bool)
    mask[2:7, 3:8] = True   # a 5x5 square inside the image
    mask[5:9, 0:2] = True   # a block touching the left and bottom image borders
    mask[1, 8] = True       # a single pixel touching the square only diagonally
    mask[7:9, 3:5] = True   # a leg below the square: a concave corner, background only diagonally
    want = _ref.boundary_mask(mask, 1)
    got = _call(fn, name, mask.copy())
    got = np.asarray(got)
    if got.shape != mask.shape:
        fail(f"{name} returned shape {got.shape} for a {mask.shape} mask: return a band of the same shape.")
    if got.dtype != bool and not np.isin(got, (0, 1)).all():
        fail(f"{name} returned values other than 0/1 ({_fmt(np.unique(got)[:5])}): return a boolean mask.")
    got = got.astype(bool)
    if np.array_equal(got, want):
        passed(f"{name}: the inner band along the edge, 8-neighbourhood, the image border is not an edge.")
        return
    full = np.ones((3, 3), bool)
    cross = ndimage.generate_binary_structure(2, 1)
    mistakes = [
        (mask & ~ndimage.binary_erosion(mask, full, border_value=0),
         "it counts the image border as an edge: only pixels next to background inside the image are edge pixels "
         "(erode with border_value=1, or pad with the edge values)"),
        (mask & ~ndimage.binary_erosion(mask, cross, border_value=1),
         "it uses 4 neighbours: a pixel whose diagonal neighbour is background lies on the edge too, so use the "
         "8-neighbourhood (a 3x3 structure of ones)"),
        (ndimage.binary_dilation(mask, full) & ~mask,
         "it marks the background pixels just OUTSIDE the object: the band lies inside, mask & ~eroded(mask)"),
        (ndimage.binary_dilation(mask, full) & ~ndimage.binary_erosion(mask, full, border_value=1),
         "it marks both sides of the edge: keep only the object's own pixels, mask & ~eroded(mask)"),
        (ndimage.binary_erosion(mask, full, border_value=1),
         "it returns the interior (the eroded mask): the band is what erosion removes, mask & ~eroded(mask)"),
        (mask & ~ndimage.binary_erosion(mask, full, iterations=2, border_value=1),
         "the band is 2 pixels wide: erode once (width 1)"),
    ]
    for wrong, hint in mistakes:
        if np.array_equal(got, wrong):
            fail(f"{name} is wrong on a small test mask: {hint}.")
    fail(f"{name} marked {int(got.sum())} edge pixels but the test mask has {int(want.sum())}: keep the pixels of "
         "the mask that have an 8-neighbour outside it (mask & ~binary_erosion(mask, np.ones((3, 3)), "
         "border_value=1)).")
