"""Keras metrics for segmentation: Dice and IoU from an accumulated confusion matrix.

``DiceScore`` and ``IoUScore`` are ``keras.metrics.Metric`` s that work in
``model.fit`` / ``model.evaluate`` (graph mode, XLA): each batch adds its
confusion matrix to a ``(C, C)`` state variable, and ``result()`` reads Dice
or IoU off the total. The value at the end of an epoch is therefore the score
over all pixels of the epoch, exactly what ``course_utils.metrics`` computes on
the same masks (not an average of per-batch scores).

Inputs: ``y_true`` int ``(B, H, W)``; ``y_pred`` logits (or probabilities)
``(B, H, W, C)``, reduced with argmax over the last axis.

A value of ``nan`` in the logs means either that no class had a pixel yet or
that ``y_true`` held values outside ``0..C-1`` (e.g. 255 without
``ignore_index``, or 0/255 masks): fix the masks or pass ``ignore_index``.
"""

from __future__ import annotations

import keras
from keras import ops

__all__ = ["DiceScore", "IoUScore", "confusion_matrix_batch"]


def confusion_matrix_batch(y_true, y_pred_logits, num_classes: int, ignore_index=None, sample_weight=None,
                           threshold: float = 0.0):
    """One batch's confusion matrix with ``keras.ops`` (graph/XLA friendly).

    Args:
        y_true: int ``(B, H, W)``.
        y_pred_logits: ``(B, H, W, C)`` scores (argmax is taken).
        num_classes: C.
        ignore_index: true label whose pixels are not counted.
        sample_weight: optional ``(B,)`` or ``(B, H, W)`` weights.
        threshold: only for a single-channel output ``(B, H, W, 1)`` of a binary problem
            (``num_classes`` 2): foreground where the output is ``> threshold``
            (0.0 for logits, 0.5 for sigmoid probabilities).

    Returns:
        ``(cm, invalid)``: float32 ``(C, C)`` counts (rows = truth) and the number
        of counted-as-invalid pixels (true values outside ``0..C-1``).
    """
    c = num_classes
    y_true = ops.convert_to_tensor(y_true)
    y_pred_logits = ops.convert_to_tensor(y_pred_logits)
    if len(y_true.shape) != 3:
        raise ValueError(
            f"y_true must be (B, H, W) class indices, got shape {tuple(y_true.shape)}"
            + (": drop the channel axis (mask[..., 0])." if len(y_true.shape) == 4 else ".")
        )
    single = c == 2 and len(y_pred_logits.shape) == 4 and y_pred_logits.shape[-1] == 1
    if len(y_pred_logits.shape) != 4 or (
        y_pred_logits.shape[-1] is not None and y_pred_logits.shape[-1] != c and not single
    ):
        raise ValueError(
            f"y_pred must be (B, H, W, {c}) logits for num_classes={c}, got shape "
            f"{tuple(y_pred_logits.shape)}: give the model {c} output channels (a 1-channel "
            "output is only accepted for a binary problem, num_classes=1 or 2)."
        )
    t = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    if single:  # one logit (or sigmoid probability) per pixel: foreground above the threshold
        p = ops.reshape(ops.cast(ops.greater(y_pred_logits[..., 0], threshold), "int32"), (-1,))
    else:
        p = ops.reshape(ops.cast(ops.argmax(y_pred_logits, axis=-1), "int32"), (-1,))
    weight = ops.ones_like(t, dtype="float32")
    if ignore_index is not None:
        weight = ops.where(ops.equal(t, ignore_index), ops.zeros_like(weight), weight)
    out_of_range = ops.logical_and(ops.logical_or(ops.less(t, 0), ops.greater_equal(t, c)), ops.greater(weight, 0))
    invalid = ops.sum(ops.cast(out_of_range, "float32"))
    weight = ops.where(out_of_range, ops.zeros_like(weight), weight)
    if sample_weight is not None:
        sw = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
        if len(sw.shape) == 1:
            sw = ops.reshape(sw, (-1, 1, 1))
        sw = ops.broadcast_to(sw, ops.shape(y_true))
        weight = weight * ops.reshape(sw, (-1,))
    t = ops.clip(t, 0, c - 1)
    onehot_t = ops.one_hot(t, c, dtype="float32") * ops.expand_dims(weight, -1)
    onehot_p = ops.one_hot(p, c, dtype="float32")
    cm = ops.matmul(ops.transpose(onehot_t), onehot_p)  # (C, N) @ (N, C)
    return cm, invalid


class _ConfusionMatrixScore(keras.metrics.Metric):
    _score = "dice"

    def __init__(self, num_classes, class_id=None, ignore_index=None, name=None, dtype=None, threshold=0.0):
        super().__init__(name=name or self._score, dtype=dtype)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}.")
        self.requested_num_classes = int(num_classes)
        self.threshold = float(threshold)
        num_classes = max(int(num_classes), 2)  # a 1-logit model is a 2-class problem
        if class_id is not None and not 0 <= class_id < num_classes:
            raise ValueError(
                f"class_id={class_id} is not a class of a {num_classes}-class problem: use 0..{num_classes - 1} "
                "or None for the mean over classes."
            )
        self.num_classes = int(num_classes)
        self.class_id = class_id
        self.ignore_index = ignore_index
        # float64 keeps integer counts exact far beyond float32's 16.7 million
        self.confusion = self.add_variable(
            shape=(self.num_classes, self.num_classes), initializer="zeros", dtype="float64", name="confusion"
        )
        self.invalid = self.add_variable(shape=(), initializer="zeros", dtype="float64", name="invalid")

    def update_state(self, y_true, y_pred, sample_weight=None):
        cm, invalid = confusion_matrix_batch(y_true, y_pred, self.num_classes, self.ignore_index, sample_weight,
                                             threshold=self.threshold)
        self.confusion.assign_add(ops.cast(cm, "float64"))
        self.invalid.assign_add(ops.cast(invalid, "float64"))

    def _per_class(self):
        cm = ops.convert_to_tensor(self.confusion)
        tp = ops.diagonal(cm)
        fp = ops.sum(cm, axis=0) - tp
        fn = ops.sum(cm, axis=1) - tp
        if self._score == "dice":
            num, den = 2.0 * tp, 2.0 * tp + fp + fn
        else:
            num, den = tp, tp + fp + fn
        safe = ops.where(ops.greater(den, 0), den, ops.ones_like(den))
        nan = ops.full_like(den, float("nan"))
        return ops.where(ops.greater(den, 0), num / safe, nan)

    def result(self):
        scores = self._per_class()
        if self.class_id is not None:
            value = scores[self.class_id]
        else:
            present = ops.logical_not(ops.isnan(scores))
            total = ops.sum(ops.where(present, scores, ops.zeros_like(scores)))
            count = ops.sum(ops.cast(present, "float64"))
            value = total / count  # 0/0 = nan when no class is present
        value = ops.where(ops.greater(self.invalid, 0), ops.convert_to_tensor(float("nan"), "float64"), value)
        return ops.cast(value, self.dtype)

    def reset_state(self):
        self.confusion.assign(ops.zeros((self.num_classes, self.num_classes), dtype="float64"))
        self.invalid.assign(ops.zeros((), dtype="float64"))

    @property
    def matrix(self):
        """The accumulated confusion matrix as an int64 NumPy ``(C, C)`` (eager only)."""
        import numpy as np

        return np.asarray(self.confusion.numpy()).round().astype(np.int64)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.requested_num_classes, class_id=self.class_id,
                      ignore_index=self.ignore_index, threshold=self.threshold)
        return config


@keras.saving.register_keras_serializable(package="course_utils")
class DiceScore(_ConfusionMatrixScore):
    """Dice ``2 TP / (2 TP + FP + FN)`` over all pixels seen since the last reset.

    Args:
        num_classes: C (the model's output channels).
        class_id: report this class only; ``None`` = mean over the classes present
            (NaN for a class absent from truth and prediction, like
            ``course_utils.metrics.mean_dice``).
        ignore_index: true label whose pixels are not counted.
        name: the name in the logs (``"dice"``, ``"val_dice"``).
        threshold: for a single-channel output (the seed's 1-logit/sigmoid model; pass
            ``num_classes`` 1 or 2): foreground where the output is ``> threshold``,
            0.0 for logits (default), 0.5 for sigmoid probabilities.

    ``update_state(y_true (B, H, W) int, y_pred (B, H, W, C) logits)``.
    """

    _score = "dice"

    def __init__(self, num_classes, class_id=None, ignore_index=None, name="dice", dtype=None, threshold=0.0):
        super().__init__(num_classes, class_id=class_id, ignore_index=ignore_index, name=name, dtype=dtype,
                         threshold=threshold)


@keras.saving.register_keras_serializable(package="course_utils")
class IoUScore(_ConfusionMatrixScore):
    """IoU (Jaccard) ``TP / (TP + FP + FN)`` over all pixels seen since the last reset.

    Same arguments as :class:`DiceScore`; default name ``"iou"``.
    """

    _score = "iou"

    def __init__(self, num_classes, class_id=None, ignore_index=None, name="iou", dtype=None, threshold=0.0):
        super().__init__(num_classes, class_id=class_id, ignore_index=ignore_index, name=name, dtype=dtype,
                         threshold=threshold)
