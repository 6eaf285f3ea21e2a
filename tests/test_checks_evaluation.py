"""The lecture 06 checks accept right implementations and explain typical wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import checks
from course_utils import metrics as M
from course_utils.checks import CheckFailed


# ---------------------------------------------------------------- confusion matrix
def cm_right(y_true, y_pred, num_classes, ignore_index=None):
    t, p = np.ravel(y_true), np.ravel(y_pred)
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


def cm_swapped(y_true, y_pred, num_classes, ignore_index=None):
    return cm_right(y_true, y_pred, num_classes, ignore_index).T


def cm_no_minlength(y_true, y_pred, num_classes, ignore_index=None):
    t, p = np.ravel(y_true), np.ravel(y_pred)
    k = int(max(t.max(), p.max())) + 1
    return np.bincount(t * k + p, minlength=k * k).reshape(k, k)


def cm_ignores_nothing(y_true, y_pred, num_classes, ignore_index=None):
    t, p = np.ravel(y_true), np.ravel(y_pred)
    keep = t < num_classes
    return cm_right(np.where(keep, t, 0), p, num_classes)


def cm_no_ignore_parameter(y_true, y_pred, num_classes):
    return cm_right(y_true, y_pred, num_classes)


def cm_first_image_only(y_true, y_pred, num_classes, ignore_index=None):
    if np.ndim(y_true) == 3:
        y_true, y_pred = y_true[0], y_pred[0]
    return cm_right(y_true, y_pred, num_classes, ignore_index)


def cm_todo(y_true, y_pred, num_classes, ignore_index=None):
    raise NotImplementedError


def test_confusion_matrix_check_passes_right_ones(capsys):
    checks.check_confusion_matrix(cm_right)
    checks.check_confusion_matrix(M.confusion_matrix)
    assert capsys.readouterr().out.startswith("\N{HEAVY CHECK MARK} ")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (cm_swapped, "rows and columns swapped"),
        (cm_no_minlength, "minlength"),
        (cm_ignores_nothing, "ignore_index"),
        (cm_no_ignore_parameter, "does not accept ignore_index"),
        (cm_first_image_only, "flatten"),
        (cm_todo, "cm_todo is not written yet"),
        (lambda t, p, c, ignore_index=None: np.zeros((c, c)), "counted 0 pixels"),
    ],
)
def test_confusion_matrix_check_explains_wrong_ones(wrong, message):
    with pytest.raises(CheckFailed, match=message) as info:
        checks.check_confusion_matrix(wrong)
    assert "\n" not in str(info.value)  # one sentence


# ---------------------------------------------------------------- IoU and Dice
def _parts(cm):
    cm = np.asarray(cm, dtype=float)
    tp = np.diag(cm)
    return tp, cm.sum(0) - tp, cm.sum(1) - tp


def iou_right(cm):
    tp, fp, fn = _parts(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / (tp + fp + fn)


def dice_right(cm):
    tp, fp, fn = _parts(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * tp / (2 * tp + fp + fn)


def iou_absent_is_one(cm):
    tp, fp, fn = _parts(cm)
    den = tp + fp + fn
    return np.where(den > 0, tp / np.maximum(den, 1), 1.0)


def iou_absent_is_zero(cm):
    tp, fp, fn = _parts(cm)
    return tp / np.maximum(tp + fp + fn, 1)


def iou_nan_for_false_positive_only(cm):
    tp, fp, fn = _parts(cm)
    out = iou_right(cm)
    out[(tp + fn) == 0] = np.nan  # "class not in the truth" -> NaN: wrong
    return out


def iou_mean(cm):
    return np.nanmean(iou_right(cm))


def dice_half(cm):
    return dice_right(cm) / 2


def iou_wrong_fp(cm):
    cm = np.asarray(cm, dtype=float)
    tp = np.diag(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        return tp / cm.sum(0)  # that is the precision


def iou_intersection_twice(cm):
    cm = np.asarray(cm, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.diag(cm) / (cm.sum(0) + cm.sum(1))


def dice_over_union(cm):
    tp, fp, fn = _parts(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        return 2 * tp / (tp + fp + fn)


def dice_todo(cm):
    raise NotImplementedError("Exercise: write this part, then run the check below.")


def iou_in_place(cm):
    np.fill_diagonal(cm, 0)
    return iou_right(cm)


def test_iou_dice_check_passes_right_ones(capsys):
    checks.check_iou_dice_from_confusion(iou_right, dice_right)
    checks.check_iou_dice_from_confusion(M.iou_from_confusion, M.dice_from_confusion)
    assert capsys.readouterr().out.count("\N{HEAVY CHECK MARK}") == 2


@pytest.mark.parametrize(
    "iou_fn, dice_fn, message",
    [
        (iou_absent_is_one, dice_right, "must be NaN"),
        (iou_absent_is_zero, dice_right, "must be NaN"),
        (iou_nan_for_false_positive_only, dice_right, "pure false positive"),
        (iou_mean, dice_right, "one score per class"),
        (iou_right, iou_right, "returned the IoU values"),
        (iou_right, dice_half, "half the Dice"),
        (iou_wrong_fp, dice_right, "IoU = TP / \\(TP \\+ FP \\+ FN\\)"),
        (iou_in_place, dice_right, "changed the confusion matrix"),
        (iou_intersection_twice, dice_right, "counts the intersection twice"),
        (dice_right, dice_right, "dice_right returned the Dice values"),
        (iou_right, dice_over_union, "divides 2 TP by the union"),
        (iou_right, dice_todo, "dice_todo is not written yet"),
    ],
)
def test_iou_dice_check_explains_wrong_ones(iou_fn, dice_fn, message):
    with pytest.raises(CheckFailed, match=message) as info:
        checks.check_iou_dice_from_confusion(iou_fn, dice_fn)
    assert "\n" not in str(info.value)


# ---------------------------------------------------------------- the mistakes the held-out catalogue found
def cm_fancy_index(y_true, y_pred, num_classes, ignore_index=None):
    t, p = np.ravel(y_true), np.ravel(y_pred)
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    cm = np.zeros((num_classes, num_classes), np.int64)
    cm[t, p] += 1  # repeats dropped
    return cm


def cm_bincount_no_minlength(y_true, y_pred, num_classes, ignore_index=None):
    t, p = np.ravel(y_true), np.ravel(y_pred)
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    return np.bincount(t * num_classes + p).reshape(num_classes, num_classes)  # student's own reshape error


def cm_void_kept(y_true, y_pred, num_classes, ignore_index=None):
    t, p = np.ravel(y_true), np.ravel(y_pred)
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(num_classes, num_classes)


@pytest.mark.parametrize("wrong, message", [
    (cm_fancy_index, r"np.add.at\(cm, \(t, p\), 1\)"),
    (cm_bincount_no_minlength, "pass minlength=num_classes \\* num_classes"),
    (cm_void_kept, "the void label 255 was counted as a class"),
])
def test_confusion_matrix_mistakes_are_named_not_the_students_reshape_error(wrong, message):
    with pytest.raises(CheckFailed, match=message) as info:
        checks.check_confusion_matrix(wrong)
    assert "cm[true, pred] += 1" not in str(info.value)


# ---------------------------------------------------------------- exercise 3: the all-cell baseline
def _baseline(masks, **change):
    cm = M.confusion_matrix(masks, np.zeros_like(masks), 2)
    values = dict(cm=cm, accuracy=np.trace(cm) / cm.sum(), iou=M.iou_from_confusion(cm), dice=M.dice_from_confusion(cm))
    values.update(change)
    return values


MASKS = (np.random.default_rng(0).random((3, 16, 16)) < 0.22).astype(np.int64)


def _returning(values):
    def all_cell_baseline(masks):
        return values["cm"], values["accuracy"], values["iou"], values["dice"]

    return all_cell_baseline


def test_all_cell_baseline_passes(capsys):
    checks.check_all_cell_baseline(_returning(_baseline(MASKS)), MASKS)
    assert "pixel accuracy, and not a single membrane pixel found" in capsys.readouterr().out


@pytest.mark.parametrize("change, message", [
    (dict(cm=M.confusion_matrix(np.zeros_like(MASKS), MASKS, 2)), "rows and columns swapped"),
    (dict(cm=M.confusion_matrix(MASKS, np.ones_like(MASKS), 2)), "all-MEMBRANE prediction"),
    (dict(cm=M.confusion_matrix(MASKS[:1], np.zeros_like(MASKS[:1]), 2)), "over all the slices"),
    (dict(accuracy=100 * M.pixel_accuracy(MASKS, np.zeros_like(MASKS))), "a percentage"),
    (dict(accuracy=1 - M.pixel_accuracy(MASKS, np.zeros_like(MASKS))), "fraction of WRONG pixels"),
    (dict(accuracy=0.5), "balanced accuracy"),
    (dict(iou=M.dice_from_confusion(M.confusion_matrix(MASKS, np.zeros_like(MASKS), 2))), "iou holds the Dice"),
    (dict(dice=M.iou_from_confusion(M.confusion_matrix(MASKS, np.zeros_like(MASKS), 2))), "dice holds the IOU"),
    (dict(dice=0.4), "one score per class"),
])
def test_all_cell_baseline_mistakes_are_named(change, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_all_cell_baseline(_returning(_baseline(MASKS, **change)), MASKS)


def test_all_cell_baseline_not_written_and_wrong_return():
    def all_cell_baseline(masks):
        raise NotImplementedError("Exercise: write this part, then run the check below.")

    with pytest.raises(checks.NotWrittenYet, match="all_cell_baseline is not written yet"):
        checks.check_all_cell_baseline(all_cell_baseline, MASKS)
    with pytest.raises(CheckFailed, match="must return four values"):
        checks.check_all_cell_baseline(lambda m: 0.78, MASKS)


# ---------------------------------------------------------------- the boundary band
def band_right(mask):
    from scipy import ndimage

    return mask & ~ndimage.binary_erosion(mask, np.ones((3, 3), bool), border_value=1)


def test_boundary_mask_passes(capsys):
    checks.check_boundary_mask(band_right)
    checks.check_boundary_mask(lambda m: M.boundary_mask(m, 1))
    assert capsys.readouterr().out.count("\N{HEAVY CHECK MARK}") == 2


@pytest.mark.parametrize("wrong, message", [
    ("border", "counts the image border as an edge"),
    ("cross", "uses 4 neighbours"),
    ("outside", "just OUTSIDE the object"),
    ("both", "both sides of the edge"),
    ("interior", "returns the interior"),
    ("wide", "2 pixels wide"),
])
def test_boundary_mask_mistakes_are_named(wrong, message):
    from scipy import ndimage

    full, cross = np.ones((3, 3), bool), ndimage.generate_binary_structure(2, 1)
    variants = {
        "border": lambda m: m & ~ndimage.binary_erosion(m, full),
        "cross": lambda m: m & ~ndimage.binary_erosion(m, cross, border_value=1),
        "outside": lambda m: ndimage.binary_dilation(m, full) & ~m,
        "both": lambda m: ndimage.binary_dilation(m, full) & ~ndimage.binary_erosion(m, full, border_value=1),
        "interior": lambda m: ndimage.binary_erosion(m, full, border_value=1),
        "wide": lambda m: m & ~ndimage.binary_erosion(m, full, iterations=2, border_value=1),
    }
    with pytest.raises(CheckFailed, match=message):
        checks.check_boundary_mask(variants[wrong])
