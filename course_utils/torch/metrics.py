"""PyTorch segmentation metrics: an accumulating confusion matrix, Dice and IoU.

``ConfusionMatrix`` adds each batch's counts on the batch's device (no copy to
the CPU per batch); Dice/IoU are read off the total with the NumPy ground truth
in ``course_utils.metrics``, so the epoch value equals
``course_utils.metrics.mean_dice`` on all pixels of the epoch.

Inputs: ``logits`` ``(B, C, H, W)`` (NCHW, argmax over dim 1) and ``target``
int ``(B, H, W)``.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import metrics as _np_metrics

__all__ = ["ConfusionMatrix", "confusion_matrix", "dice_score", "iou_score"]


def _check_num_classes(num_classes):
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}.")
    return num_classes


def confusion_matrix(logits: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index=None) -> torch.Tensor:
    """One batch's confusion matrix as an int64 tensor ``(C, C)`` on the input's device.

    Args:
        logits: ``(B, C, H, W)`` scores, or already-predicted class indices ``(B, H, W)``.
        target: int ``(B, H, W)`` class indices (``ignore_index`` allowed).
        num_classes: C.
        ignore_index: true label whose pixels are not counted.

    Rows = truth, columns = prediction.
    """
    c = _check_num_classes(num_classes)
    if not torch.is_tensor(logits) or not torch.is_tensor(target):
        raise TypeError("logits and target must be torch tensors (use torch.as_tensor(...)).")
    if target.dim() == 4 and target.shape[1] == 1:
        raise ValueError(
            f"target has shape {tuple(target.shape)}: targets are (B, H, W) class indices, "
            "drop the channel axis with target[:, 0] (or target.squeeze(1))."
        )
    if target.dim() != 3:
        raise ValueError(f"target must be (B, H, W) class indices, got shape {tuple(target.shape)}.")
    if target.is_floating_point():
        raise TypeError(
            f"target has dtype {target.dtype}; it must hold integer class indices: use target.long() "
            "(and resize masks with nearest neighbour, never bilinear)."
        )
    if logits.dim() == 3 and not logits.is_floating_point():
        pred = logits
    elif logits.dim() == 4:
        if logits.shape[1] != c:
            hint = ""
            if logits.shape[-1] == c:
                hint = " It looks channels-last (NHWC): use logits.permute(0, 3, 1, 2)."
            raise ValueError(
                f"logits have shape {tuple(logits.shape)} but num_classes={c}: expected (B, {c}, H, W).{hint}"
            )
        pred = logits.argmax(dim=1)
    else:
        raise ValueError(
            f"logits must be (B, C, H, W) scores or (B, H, W) class indices, got shape {tuple(logits.shape)}."
        )
    if pred.shape != target.shape:
        raise ValueError(
            f"predictions {tuple(pred.shape)} and target {tuple(target.shape)} cover different pixels: "
            "they must have the same batch size, height and width."
        )
    t = target.reshape(-1).long()
    p = pred.reshape(-1).long().to(t.device)
    if ignore_index is not None:
        keep = t != ignore_index
        t, p = t[keep], p[keep]
    if t.numel():
        lo, hi = int(t.min()), int(t.max())
        if lo < 0 or hi >= c:
            bad = hi if hi >= c else lo
            fix = (
                "masks stored as 0/255 must be mapped to 0/1 (mask // 255), or pass ignore_index=255"
                if bad == 255
                else "check num_classes, remap the mask values, or pass ignore_index"
            )
            raise ValueError(f"target contains the value {bad} outside 0..{c - 1}: {fix}.")
    return torch.bincount(t * c + p, minlength=c * c).reshape(c, c)


class ConfusionMatrix:
    """Accumulates a ``(C, C)`` confusion matrix over batches (rows = truth).

    >>> cm = ConfusionMatrix(num_classes=2)
    >>> for images, masks in val_loader:
    ...     cm.update(model(images), masks)
    >>> cm.dice(), cm.iou(class_id=1)

    Args:
        num_classes: C.
        ignore_index: true label whose pixels are not counted.
    """

    def __init__(self, num_classes: int, ignore_index=None):
        self.num_classes = _check_num_classes(num_classes)
        self.ignore_index = ignore_index
        self._matrix = None

    @torch.no_grad()
    def update(self, logits: torch.Tensor, target: torch.Tensor) -> "ConfusionMatrix":
        """Add a batch: ``logits`` ``(B, C, H, W)`` (or class indices ``(B, H, W)``), ``target`` ``(B, H, W)``."""
        batch = confusion_matrix(logits.detach(), target, self.num_classes, self.ignore_index)
        if self._matrix is None or self._matrix.device != batch.device:
            self._matrix = batch if self._matrix is None else self._matrix.to(batch.device) + batch
        else:
            self._matrix += batch
        return self

    def reset(self) -> None:
        """Forget every batch (call at the start of each epoch)."""
        self._matrix = None

    @property
    def matrix(self) -> np.ndarray:
        """The accumulated counts as int64 NumPy ``(C, C)``."""
        if self._matrix is None:
            return np.zeros((self.num_classes, self.num_classes), np.int64)
        return self._matrix.cpu().numpy().astype(np.int64)

    def _select(self, scores: np.ndarray, class_id):
        if class_id is None:
            return _np_metrics.nanmean(scores)
        if not 0 <= class_id < self.num_classes:
            raise ValueError(f"class_id={class_id} is not in 0..{self.num_classes - 1}.")
        return float(scores[class_id])

    def dice(self, class_id=None) -> float:
        """Dice of ``class_id``, or the mean over present classes (``None``); NaN if nothing to score."""
        return self._select(_np_metrics.dice_from_confusion(self.matrix), class_id)

    def iou(self, class_id=None) -> float:
        """IoU of ``class_id``, or the mean over present classes (``None``); NaN if nothing to score."""
        return self._select(_np_metrics.iou_from_confusion(self.matrix), class_id)

    def pixel_accuracy(self) -> float:
        """Fraction of counted pixels predicted correctly."""
        return _np_metrics.pixel_accuracy_from_confusion(self.matrix)

    def __repr__(self) -> str:
        return f"ConfusionMatrix(num_classes={self.num_classes}, ignore_index={self.ignore_index})"


def dice_score(logits, target, num_classes: int, class_id=None, ignore_index=None) -> float:
    """Dice of one batch (``class_id``, or mean over present classes) as a Python float.

    Args:
        logits: ``(B, C, H, W)``; target: int ``(B, H, W)``.
    """
    return ConfusionMatrix(num_classes, ignore_index).update(logits, target).dice(class_id)


def iou_score(logits, target, num_classes: int, class_id=None, ignore_index=None) -> float:
    """IoU of one batch (``class_id``, or mean over present classes) as a Python float.

    Args:
        logits: ``(B, C, H, W)``; target: int ``(B, H, W)``.
    """
    return ConfusionMatrix(num_classes, ignore_index).update(logits, target).iou(class_id)
