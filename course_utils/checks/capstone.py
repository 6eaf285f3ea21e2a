"""Check for the capstone's open task: your pipeline on a folder of images and masks beats a trivial baseline."""

from __future__ import annotations

import numpy as np

from .. import metrics
from ._common import NotWrittenYet, check, fail, passed

__all__ = ["check_beats_baseline"]


@check
def check_beats_baseline(y_true, y_pred, num_classes: int, margin: float = 0.05) -> None:
    """Pass when the prediction's mean IoU beats "the most frequent class everywhere" by ``margin``.

    Args:
        y_true, y_pred: int masks (N, H, W) of the validation split (truth, your model's prediction).
        num_classes: C.
        margin: how much better than the baseline the mean IoU must be.
    """
    if y_true is None or y_pred is None:
        raise NotWrittenYet("the pipeline is not written yet: load the folder, train, and set y_val (the "
                            "validation masks) and y_pred (your model's predicted masks), then run this check.")
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape:
        fail(f"y_pred has shape {y_pred.shape} but y_val has {y_true.shape}: predict one class index per pixel "
             "(argmax over the class axis, e.g. train.predict_masks) for the same validation images.")
    if y_pred.dtype.kind not in "iu":
        fail(f"y_pred has dtype {y_pred.dtype}: it must hold class indices (integers), not probabilities or "
             "logits - take the argmax over the class axis.")
    majority = int(np.bincount(y_true.ravel(), minlength=num_classes).argmax())
    baseline = metrics.mean_iou(y_true, np.full_like(y_true, majority), num_classes)
    score = metrics.mean_iou(y_true, y_pred, num_classes)
    if not score > baseline + margin:
        fail(f"your model's mean IoU {score:.3f} is not clearly better than predicting class {majority} "
             f"everywhere ({baseline:.3f}): train longer or with a higher learning rate, check that the masks "
             "hold the classes you expect (data.inspect_masks), and try CE + Dice if a class is rare.")
    passed(f"mean IoU {score:.3f} on the validation split, against {baseline:.3f} for predicting class {majority} "
           "everywhere.")
