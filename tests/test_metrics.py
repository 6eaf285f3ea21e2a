"""course_utils.metrics: the NumPy ground truth, checked on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import metrics as M

NAN = np.nan

# a 2x3 case computed by hand (4 classes, class 3 absent everywhere)
T = np.array([[0, 0, 1], [1, 2, 2]])
P = np.array([[0, 1, 1], [1, 2, 0]])
CM = np.array([[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
# class 0: TP 1, FP 1, FN 1 -> IoU 1/3, Dice 2/4
# class 1: TP 2, FP 1, FN 0 -> IoU 2/3, Dice 4/5
# class 2: TP 1, FP 0, FN 1 -> IoU 1/2, Dice 2/3
IOU = np.array([1 / 3, 2 / 3, 1 / 2, NAN])
DICE = np.array([1 / 2, 4 / 5, 2 / 3, NAN])


def test_confusion_matrix_by_hand():
    cm = M.confusion_matrix(T, P, 4)
    assert cm.dtype == np.int64 and cm.shape == (4, 4)
    np.testing.assert_array_equal(cm, CM)
    # rows = truth: row sums are the true pixel counts
    np.testing.assert_array_equal(cm.sum(axis=1), np.bincount(T.ravel(), minlength=4))


def test_confusion_matrix_matches_a_loop_on_random_batches():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 5, (3, 17, 11))
    p = rng.integers(0, 5, (3, 17, 11))
    slow = np.zeros((5, 5), np.int64)
    for a, b in zip(t.ravel(), p.ravel()):
        slow[a, b] += 1
    np.testing.assert_array_equal(M.confusion_matrix(t, p, 5), slow)


def test_per_class_scores_and_means_by_hand():
    np.testing.assert_allclose(M.iou_per_class(T, P, 4), IOU)
    np.testing.assert_allclose(M.dice_per_class(T, P, 4), DICE)
    np.testing.assert_allclose(M.iou_from_confusion(CM), IOU)
    np.testing.assert_allclose(M.dice_from_confusion(CM), DICE)
    # absent class 3 is NaN and does not count in the mean
    assert M.mean_iou(T, P, 4) == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert M.mean_dice(T, P, 4) == pytest.approx((1 / 2 + 4 / 5 + 2 / 3) / 3)
    assert M.pixel_accuracy(T, P) == pytest.approx(4 / 6)
    assert M.pixel_accuracy_from_confusion(CM) == pytest.approx(4 / 6)


def test_dice_and_iou_are_related():
    rng = np.random.default_rng(1)
    t = rng.integers(0, 3, (2, 9, 9))
    p = rng.integers(0, 3, (2, 9, 9))
    iou = M.iou_per_class(t, p, 3)
    np.testing.assert_allclose(M.dice_per_class(t, p, 3), 2 * iou / (1 + iou))


def test_class_present_in_only_one_side_scores_zero():
    t = np.zeros((4, 4), int)
    p = np.zeros((4, 4), int)
    p[0, 0] = 1  # predicted but absent from truth -> 0, not NaN
    assert M.iou_per_class(t, p, 2)[1] == 0.0
    assert M.dice_per_class(p, t, 2)[1] == 0.0  # present in truth, never predicted -> 0


def test_all_background_prediction_on_imbalanced_data():
    t = np.zeros((10, 10), int)
    t[:, :1] = 1  # 10 % foreground
    p = np.zeros_like(t)
    assert M.pixel_accuracy(t, p) == pytest.approx(0.9)
    assert M.dice_per_class(t, p, 2)[1] == 0.0


def test_everything_absent_gives_nan_without_warnings():
    t = np.zeros((3, 3), int)
    with np.errstate(all="raise"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert np.isnan(M.mean_iou(t, t, 3, ignore_index=0))
            assert np.isnan(M.pixel_accuracy(t, t, ignore_index=0))
            assert np.isnan(M.nanmean([NAN, NAN]))


def test_ignore_index_is_honoured_by_every_metric():
    t = np.array([[0, 255, 1], [1, 255, 0]])
    p = np.array([[0, 1, 1], [0, 0, 0]])  # the predictions under 255 do not matter
    cm = M.confusion_matrix(t, p, 2, ignore_index=255)
    np.testing.assert_array_equal(cm, [[2, 0], [1, 1]])
    assert M.pixel_accuracy(t, p, ignore_index=255) == pytest.approx(3 / 4)
    np.testing.assert_allclose(M.iou_per_class(t, p, 2, ignore_index=255), [2 / 3, 1 / 2])
    np.testing.assert_allclose(M.dice_per_class(t, p, 2, ignore_index=255), [4 / 5, 2 / 3])
    assert M.mean_iou(t, p, 2, ignore_index=255) == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert M.mean_dice(t, p, 2, ignore_index=255) == pytest.approx((4 / 5 + 2 / 3) / 2)
    report = M.segmentation_report(t, p, 2, ignore_index=255)
    assert report["per_class"]["class 0"]["true_pixels"] == 2
    # without ignore_index the 255 is an error that names the fix
    with pytest.raises(ValueError, match="ignore_index"):
        M.confusion_matrix(t, p, 2)


def test_batch_and_single_mask_agree():
    rng = np.random.default_rng(2)
    t = rng.integers(0, 3, (2, 5, 5))
    p = rng.integers(0, 3, (2, 5, 5))
    both = M.confusion_matrix(t, p, 3)
    np.testing.assert_array_equal(both, M.confusion_matrix(t[0], p[0], 3) + M.confusion_matrix(t[1], p[1], 3))


@pytest.mark.parametrize(
    "y_true, y_pred, kwargs, match",
    [
        (np.zeros((2, 4, 4), int), np.zeros((2, 4, 4, 3)), {}, "argmax"),
        (np.zeros((2, 4, 4, 1), int), np.zeros((2, 4, 4), int), {}, r"\[\.\.\., 0\]"),
        (np.zeros((2, 1, 4, 4), int), np.zeros((2, 1, 4, 4), int), {}, r"mask\[:, 0\]"),
        (np.zeros((4,), int), np.zeros((4,), int), {}, r"\(N, H, W\) or \(H, W\)"),
        (np.full((4, 4), 255), np.zeros((4, 4), int), {}, "mask // 255"),
        (np.full((4, 4), 3), np.zeros((4, 4), int), {}, "increase num_classes"),
        (np.zeros((4, 4), int), np.full((4, 4), -1), {}, "negative"),
        (np.full((4, 4), 0.5), np.zeros((4, 4), int), {}, "nearest"),
        (np.array([["a"]]), np.array([[0]]), {}, "dtype"),
    ],
)
def test_bad_input_raises_a_message_with_the_fix(y_true, y_pred, kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        M.confusion_matrix(y_true, y_pred, 2, **kwargs)


def test_integral_floats_and_bools_are_accepted():
    t = np.array([[0.0, 1.0]])
    p = np.array([[False, True]])
    assert M.pixel_accuracy(t, p) == 1.0
    np.testing.assert_array_equal(M.confusion_matrix(t, p, 2), [[1, 0], [0, 1]])


def test_bad_num_classes_and_confusion_matrix():
    with pytest.raises(TypeError):
        M.confusion_matrix(T, P, 2.5)
    with pytest.raises(ValueError, match="square"):
        M.iou_from_confusion(np.zeros((2, 3)))


def test_segmentation_report_contents_and_printing():
    report = M.segmentation_report(T, P, 4, class_names=["bg", "a", "b", "c"])
    assert report["pixel_accuracy"] == pytest.approx(4 / 6)
    assert report["mean_iou"] == pytest.approx(np.nanmean(IOU))
    assert report["per_class"]["a"]["iou"] == pytest.approx(2 / 3)
    assert report["per_class"]["a"]["precision"] == pytest.approx(2 / 3)
    assert report["per_class"]["b"]["recall"] == pytest.approx(1 / 2)
    assert np.isnan(report["per_class"]["c"]["dice"])
    text = str(report)
    assert "n/a" in text and "0.667" in text and "bg" in text
    assert "<table>" in report._repr_html_()
    with pytest.raises(ValueError, match="one name per class"):
        M.segmentation_report(T, P, 4, class_names=["x"])


def test_boundary_mask_is_the_inner_band():
    m = np.zeros((9, 9), bool)
    m[2:7, 2:7] = True
    band = M.boundary_mask(m, 1)
    assert band.sum() == 16 and not band[4, 4] and band[2, 2]
    assert M.boundary_mask(m, 2).sum() == 24
    # the image border is not an edge
    assert not M.boundary_mask(np.ones((5, 5), bool), 1).any()


def test_boundary_scores_on_a_shifted_square():
    t = np.zeros((20, 20), int)
    t[5:15, 5:15] = 1
    p = np.roll(t, 1, axis=1)  # one pixel to the right
    # region Dice is high, but the outline moved
    assert M.dice_per_class(t, p, 2)[1] == pytest.approx(0.9)
    f1_tol1 = M.boundary_f1(t, p, 2, tolerance=1)
    np.testing.assert_allclose(f1_tol1, [1.0, 1.0])  # every edge within 1 pixel
    f1_tol0 = M.boundary_f1(t, p, 2, tolerance=0)
    # 36 outline pixels each; top/bottom rows share 9 pixels each -> 18 of 36 match
    np.testing.assert_allclose(f1_tol0[1], 0.5)
    np.testing.assert_allclose(M.boundary_f1(t, t, 2, tolerance=0), [1.0, 1.0])
    biou = M.boundary_iou(t, p, 2, width=1)
    assert 0.0 < biou[1] < 1.0 and biou[1] < M.iou_per_class(t, p, 2)[1]
    np.testing.assert_allclose(M.boundary_iou(t, t, 2), [1.0, 1.0])


def test_boundary_scores_absent_classes_ignore_index_and_batches():
    t = np.zeros((2, 12, 12), int)
    t[0, 3:9, 3:9] = 1
    p = t.copy()
    assert np.isnan(M.boundary_f1(t, p, 3)[2])  # class 2 nowhere
    assert np.isnan(M.boundary_iou(t, p, 3)[2])
    missed = np.zeros_like(t)
    assert M.boundary_f1(t, missed, 2)[1] == 0.0
    assert M.boundary_iou(t, missed, 2)[1] == 0.0
    # an ignored region in the truth hides the wrong prediction there
    t_ign = t.copy()
    t_ign[0, 3:9, 3:9] = 255
    wrong = np.zeros_like(t)
    wrong[0, 3:9, 3:9] = 1
    assert np.isnan(M.boundary_f1(t_ign, wrong, 2, ignore_index=255)[1])
    # batches: the same as summing the per-image counts
    single = M.boundary_iou(t[0], p[0], 2)
    np.testing.assert_allclose(M.boundary_iou(t, p, 2), single)
