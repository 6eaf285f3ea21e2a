"""Segmentation losses for Keras 3 (``keras.losses.Loss`` subclasses), mirroring ``course_utils.torch.losses``.

Every loss is called as ``loss(y_true, y_pred)`` (Keras order) and works inside
``model.fit`` (graph mode):

* ``y_true``: integer class indices ``(B, H, W)`` (exactly what
  ``course_utils.keras.data.make_dataset`` yields; Keras 3 hands it to the loss
  unchanged, without adding or squeezing a channel axis). A trailing channel
  axis ``(B, H, W, 1)`` is rejected with a message rather than silently squeezed.
* ``y_pred``: logits ``(B, H, W, C)`` (no softmax); ``C = 1`` = binary (sigmoid) model.
* ``sample_weight`` (optional, what ``model.fit(..., sample_weight=...)`` passes):
  ``(B,)`` per image or ``(B, H, W)`` per pixel; it multiplies each pixel's weight
  (in the CE/focal averages, and in the Dice/Tversky sums).
* returns a scalar: the mean over the non-ignored pixels of the batch (weighted CE:
  ``sum_i w[y_i] ce_i / sum_i w[y_i]``, the same as torch), or ``1 - mean_c dice_c``
  for the overlap losses. A batch with every pixel ignored gives 0 (not NaN).

Why not ``model.fit(class_weight=...)``? Keras' ``class_weight`` only supports one
class label per sample, not per-pixel targets ``(B, H, W)``: class weighting of a
segmentation loss goes through the loss (``class_weights=``) or through a per-pixel
``sample_weight``.

Formulas and NumPy ground truth: :mod:`course_utils.losses`.

Input checks (the same in :mod:`course_utils.torch.losses`): a label outside ``0..C-1`` that is not
``ignore_index`` is refused with one sentence, by an explicit check (eagerly a ValueError; inside
``model.fit`` a failed assertion with the same sentence; under XLA, which drops assertions, a NaN loss)
rather than by TensorFlow's gather, which fails with a raw ``GatherV2`` error on the CPU and returns 0 on a
GPU; channels-first logits get the ``transpose`` that fixes them. NaN logits are not refused: they come
from a model that diverged, and the NaN loss is how training sees that.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ..data import check_class_axis, label_range_message

__all__ = [
    "CrossEntropyLoss",
    "BinaryCrossEntropyLoss",
    "DiceLoss",
    "CEDiceLoss",
    "FocalLoss",
    "TverskyLoss",
    "soft_dice_per_class",
]


def _weights_list(class_weights):
    if class_weights is None:
        return None
    values = [float(w) for w in np.asarray(class_weights, dtype=np.float64).reshape(-1)]
    if any(w < 0 for w in values):
        raise ValueError("class_weights must be >= 0: pass e.g. course_utils.data.class_weights(masks, num_classes).")
    return values


def _label_guard(y_true, num_classes, ignore_index, name):
    """Explicit label-range check of ``y_true`` (int32); returns a float32 scalar to add to the logits.

    Eagerly: a ValueError with the sentence every loss gives (:func:`course_utils.data.label_range_message`).
    Inside ``model.fit`` (a graph): ``tf.debugging.Assert`` with the same sentence fails the step; under XLA
    (``jit_compile``, Keras' default on a GPU), which drops assertions, the returned value is NaN instead
    of 0, so the loss becomes NaN rather than silently wrong (a GPU gather returns 0 for an out-of-range
    index, which is what made the loss look fine before).
    """
    labels = y_true if ignore_index is None else ops.where(ops.equal(y_true, ignore_index), ops.zeros_like(y_true),
                                                         y_true)
    bad = ops.logical_or(ops.less(labels, 0), ops.greater_equal(labels, num_classes))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if not tf.executing_eagerly():
            any_bad = tf.reduce_any(bad)
            check = tf.debugging.Assert(
                tf.logical_not(any_bad),
                [f"{name}: target values must be in 0..{num_classes - 1} (or ignore_index), found",
                 tf.reduce_min(labels), "..", tf.reduce_max(labels),
                 ": map labels to class indices or pass ignore_index."],
            )
            with tf.control_dependencies([check]):
                return tf.where(any_bad, tf.constant(float("nan")), tf.constant(0.0))
    values = ops.convert_to_numpy(labels)
    if values.size and ((values < 0) | (values >= num_classes)).any():
        raise ValueError(f"{name}: " + label_range_message("target", int(values.min()), int(values.max()),
                                                            num_classes))
    return 0.0


def _check(y_true, y_pred, name, binary_ok=True, ignore_index=None):
    """Checks (static shapes at trace time, labels when the values exist). Returns (y_true int32, logits float32)."""
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.convert_to_tensor(y_true)
    check_class_axis(tuple(y_pred.shape), tuple(y_true.shape), "NHWC", "y_pred")
    if len(y_pred.shape) != 4:
        raise ValueError(f"{name}: y_pred must be logits (B, H, W, C), got shape {tuple(y_pred.shape)}: "
                         "add the batch axis or check the model output.")
    if len(y_true.shape) != 3:
        raise ValueError(f"{name}: y_true must be class indices (B, H, W), got shape {tuple(y_true.shape)}: "
                         "store masks without a channel axis (e.g. masks[..., 0]), not one-hot.")
    for a, b in zip(tuple(y_true.shape), tuple(y_pred.shape)[:3]):
        if a is not None and b is not None and a != b:
            raise ValueError(f"{name}: y_true shape {tuple(y_true.shape)} does not match y_pred "
                             f"{tuple(y_pred.shape)}: masks must have the image's (B, H, W).")
    if y_pred.shape[-1] == 1 and not binary_ok:
        raise ValueError(f"{name} needs C >= 2 logits per pixel, got 1: use BinaryCrossEntropyLoss for a 1-logit "
                         "(sigmoid) model, or give the model 2 output channels.")
    if (y_true.dtype is not None and ("float" in str(y_true.dtype) or "bool" in str(y_true.dtype))
            and not _in_symbolic_build()):
        raise TypeError(f"{name}: y_true must hold integer class indices, got dtype {y_true.dtype}: "
                        "use masks.astype('int64') (or ops.cast(y_true, 'int32')).")
    y_true = ops.cast(y_true, "int32")
    logits = ops.cast(y_pred, "float32")
    num_classes = max(int(y_pred.shape[-1]), 2) if y_pred.shape[-1] is not None else None
    if num_classes is not None:
        logits = logits + _label_guard(y_true, num_classes, ignore_index, name)
    return y_true, logits


def _in_symbolic_build() -> bool:
    """True while Keras only computes output specs (``model.fit``'s symbolic build of the loss).

    Under a ``tf.distribute`` strategy Keras builds the compiled loss with a float placeholder for ``y_true``
    whatever the data's dtype; no value flows then, so the dtype check waits for the real batches.
    """
    try:
        from keras.src.backend.common.symbolic_scope import in_symbolic_scope
    except ImportError:  # a Keras without it: keep the check
        return False
    return in_symbolic_scope()


def _valid_weights(y_true, ignore_index, sample_weight):
    """(valid float mask (B,H,W) times sample_weight, class indices with ignored pixels set to 0)."""
    if ignore_index is None:
        valid = ops.ones_like(y_true, dtype="float32")
        safe = y_true
    else:
        keep = ops.not_equal(y_true, ignore_index)
        valid = ops.cast(keep, "float32")
        safe = ops.where(keep, y_true, ops.zeros_like(y_true))
    if sample_weight is not None:
        sw = ops.cast(ops.convert_to_tensor(sample_weight), "float32")
        if len(sw.shape) == 1:
            sw = ops.reshape(sw, (-1, 1, 1))
        elif len(sw.shape) == 4 and sw.shape[-1] == 1:
            sw = sw[..., 0]
        elif len(sw.shape) != 3:
            raise ValueError(f"sample_weight must be (B,) or (B, H, W), got shape {tuple(sw.shape)}.")
        valid = valid * sw
    return valid, safe


def _weighted_mean(values, weights):
    return ops.sum(values * weights) / ops.maximum(ops.sum(weights), 1e-12)


def _class_probabilities(logits):
    if logits.shape[-1] == 1:
        p = ops.sigmoid(logits)
        return ops.concatenate([1.0 - p, p], axis=-1)
    return ops.softmax(logits, axis=-1)


def _soft_sums(y_true, logits, ignore_index, sample_weight=None):
    probs = _class_probabilities(logits)
    num_classes = probs.shape[-1]
    valid, safe = _valid_weights(y_true, ignore_index, sample_weight)
    onehot = ops.one_hot(safe, num_classes, dtype="float32")
    m = ops.expand_dims(valid, -1)
    probs, onehot = probs * m, onehot * m
    axes = (0, 1, 2)
    return ops.sum(probs * onehot, axis=axes), ops.sum(probs, axis=axes), ops.sum(onehot, axis=axes)


def soft_dice_per_class(y_true, y_pred, smooth=1.0, ignore_index=None):
    """Soft Dice per class ``(2 I_c + smooth) / (P_c + G_c + smooth)``, tensor (C,) (2 for one logit)."""
    y_true, logits = _check(y_true, y_pred, "soft_dice_per_class", ignore_index=ignore_index)
    inter, psum, gsum = _soft_sums(y_true, logits, ignore_index)
    return (2.0 * inter + smooth) / (psum + gsum + smooth)


def _scale_for_distribution(value):
    """Divide by the number of replicas under a ``tf.distribute`` strategy, as Keras' own ``Loss.__call__`` does.

    Keras sums the replicas' gradients and, for its tracker, multiplies the loss back; a loss that skipped this
    step would train with ``num_replicas`` times the gradient (and log ``num_replicas`` times the loss) under
    ``MirroredStrategy``. Outside a strategy (one replica) the value is unchanged.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            value = value * ops.cast(1.0 / replicas, value.dtype)
    return value


class _SegmentationLoss(keras.losses.Loss):
    """Base class: keeps integer labels (Keras' Loss.__call__ would cast them to float) and
    computes the whole reduction itself, so the value equals the PyTorch twin."""

    def __init__(self, ignore_index=None, name=None, reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.ignore_index = None if ignore_index is None else int(ignore_index)

    def __call__(self, y_true, y_pred, sample_weight=None):
        return _scale_for_distribution(self.compute(y_true, y_pred, sample_weight))

    def call(self, y_true, y_pred):  # Keras API: the loss value (scalar) without sample weights
        return self.compute(y_true, y_pred, None)

    def compute(self, y_true, y_pred, sample_weight=None):  # pragma: no cover - abstract
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, "ignore_index": self.ignore_index}


def _ce_terms(y_true, logits, class_weights, ignore_index, sample_weight, name="CrossEntropyLoss"):
    if class_weights is not None and logits.shape[-1] is not None and len(class_weights) != logits.shape[-1]:
        n, c = len(class_weights), logits.shape[-1]
        raise ValueError(f"{name}: class_weights has {n} entries but the logits have {c} classes: give one weight per class.")
    valid, safe = _valid_weights(y_true, ignore_index, sample_weight)
    logp = ops.log_softmax(logits, axis=-1)
    logp_true = ops.squeeze(ops.take_along_axis(logp, ops.expand_dims(safe, -1), axis=-1), -1)
    w = valid
    if class_weights is not None:
        w = w * ops.take(ops.convert_to_tensor(class_weights, dtype="float32"), safe)
    return logp_true, w


@keras.saving.register_keras_serializable(package="course_utils")
class CrossEntropyLoss(_SegmentationLoss):
    """Pixel-wise multi-class cross-entropy from logits.

    Args:
        class_weights: optional per-class weights (C,) (e.g. ``course_utils.data.class_weights``);
            reduction ``sum_i w[y_i] ce_i / sum_i w[y_i]`` (as torch's ``weight=``).
        ignore_index: label whose pixels are left out (e.g. 255), or None.

    Call: ``loss(y_true (B, H, W) int, y_pred logits (B, H, W, C))`` -> scalar.
    """

    def __init__(self, class_weights=None, ignore_index=None, name="cross_entropy", **kwargs):
        super().__init__(ignore_index=ignore_index, name=name, **kwargs)
        self.class_weights = _weights_list(class_weights)

    def compute(self, y_true, y_pred, sample_weight=None):
        y_true, logits = _check(y_true, y_pred, "CrossEntropyLoss", binary_ok=False, ignore_index=self.ignore_index)
        logp, w = _ce_terms(y_true, logits, self.class_weights, self.ignore_index, sample_weight)
        return _weighted_mean(-logp, w)

    def get_config(self):
        return {**super().get_config(), "class_weights": self.class_weights}


@keras.saving.register_keras_serializable(package="course_utils")
class BinaryCrossEntropyLoss(_SegmentationLoss):
    """Binary cross-entropy for a 1-logit (sigmoid) model.

    Args:
        pos_weight: optional weight of positive (foreground) pixels, e.g. #negative / #positive.
        ignore_index: label whose pixels are left out, or None.

    Call: ``loss(y_true (B, H, W) in {0, 1}, y_pred logits (B, H, W, 1))`` -> scalar (plain mean
    over the valid pixels, like torch's ``binary_cross_entropy_with_logits(pos_weight=...)``).
    """

    def __init__(self, pos_weight=None, ignore_index=None, name="binary_cross_entropy", **kwargs):
        super().__init__(ignore_index=ignore_index, name=name, **kwargs)
        self.pos_weight = None if pos_weight is None else float(pos_weight)

    def compute(self, y_true, y_pred, sample_weight=None):
        y_true, logits = _check(y_true, y_pred, "BinaryCrossEntropyLoss", ignore_index=self.ignore_index)
        if logits.shape[-1] != 1:
            raise ValueError(f"BinaryCrossEntropyLoss needs logits (B, H, W, 1), got {logits.shape[-1]} channels: "
                             "use CrossEntropyLoss for multi-class logits.")
        valid, safe = _valid_weights(y_true, self.ignore_index, sample_weight)
        z = logits[..., 0]
        y = ops.cast(safe, "float32")
        pw = 1.0 if self.pos_weight is None else self.pos_weight
        bce = pw * y * ops.softplus(-z) + (1.0 - y) * ops.softplus(z)
        return _weighted_mean(bce, valid)

    def get_config(self):
        return {**super().get_config(), "pos_weight": self.pos_weight}


@keras.saving.register_keras_serializable(package="course_utils")
class DiceLoss(_SegmentationLoss):
    """Soft Dice loss ``1 - mean_c dice_c`` from softmax probabilities (sigmoid for one channel).

    ``dice_c = (2 sum p_c g_c + smooth) / (sum p_c + sum g_c + smooth)``, sums over all valid
    pixels of the whole batch (``ignore_index`` pixels removed from both sums).

    Args:
        smooth: added to numerator and denominator; keeps an empty class finite (dice_c -> 1).
        include_background: False -> mean over classes 1..C-1 only.
        ignore_index: label whose pixels are left out, or None.
    """

    def __init__(self, smooth=1.0, include_background=True, ignore_index=None, name="dice_loss", **kwargs):
        super().__init__(ignore_index=ignore_index, name=name, **kwargs)
        self.smooth = float(smooth)
        self.include_background = bool(include_background)

    def compute(self, y_true, y_pred, sample_weight=None):
        y_true, logits = _check(y_true, y_pred, "DiceLoss", ignore_index=self.ignore_index)
        inter, psum, gsum = _soft_sums(y_true, logits, self.ignore_index, sample_weight)
        dice = (2.0 * inter + self.smooth) / (psum + gsum + self.smooth)
        if not self.include_background:
            dice = dice[1:]
        return 1.0 - ops.mean(dice)

    def get_config(self):
        return {**super().get_config(), "smooth": self.smooth, "include_background": self.include_background}


@keras.saving.register_keras_serializable(package="course_utils")
class CEDiceLoss(_SegmentationLoss):
    """``ce_weight * CrossEntropyLoss + dice_weight * DiceLoss`` (multi-class logits)."""

    def __init__(self, ce_weight=1.0, dice_weight=1.0, class_weights=None, smooth=1.0, include_background=True,
                 ignore_index=None, name="ce_dice_loss", **kwargs):
        super().__init__(ignore_index=ignore_index, name=name, **kwargs)
        self.ce_weight, self.dice_weight = float(ce_weight), float(dice_weight)
        self.ce = CrossEntropyLoss(class_weights=class_weights, ignore_index=ignore_index)
        self.dice = DiceLoss(smooth=smooth, include_background=include_background, ignore_index=ignore_index)

    def compute(self, y_true, y_pred, sample_weight=None):
        _check(y_true, y_pred, "CEDiceLoss", binary_ok=False, ignore_index=self.ignore_index)  # errors name this loss
        return (self.ce_weight * self.ce.compute(y_true, y_pred, sample_weight)
                + self.dice_weight * self.dice.compute(y_true, y_pred, sample_weight))

    def get_config(self):
        return {**super().get_config(), "ce_weight": self.ce_weight, "dice_weight": self.dice_weight,
                "class_weights": self.ce.class_weights, "smooth": self.dice.smooth,
                "include_background": self.dice.include_background}


@keras.saving.register_keras_serializable(package="course_utils")
class FocalLoss(_SegmentationLoss):
    """Focal loss (Lin et al. 2017): cross-entropy scaled by ``(1 - p_true)^gamma``.

    Reduction ``sum_i w[y_i] (1 - p_i)^gamma ce_i / sum_i w[y_i]``; ``gamma=0`` is CrossEntropyLoss.

    Args:
        gamma: focusing parameter (0 = plain CE; 2 in the paper).
        class_weights: optional per-class weights (C,) (the paper's alpha_t).
        ignore_index: label whose pixels are left out, or None.
    """

    def __init__(self, gamma=2.0, class_weights=None, ignore_index=None, name="focal_loss", **kwargs):
        super().__init__(ignore_index=ignore_index, name=name, **kwargs)
        self.gamma = float(gamma)
        self.class_weights = _weights_list(class_weights)

    def compute(self, y_true, y_pred, sample_weight=None):
        y_true, logits = _check(y_true, y_pred, "FocalLoss", binary_ok=False, ignore_index=self.ignore_index)
        logp, w = _ce_terms(y_true, logits, self.class_weights, self.ignore_index, sample_weight, "FocalLoss")
        focal = ops.power(ops.maximum(1.0 - ops.exp(logp), 0.0), self.gamma) * (-logp)
        return _weighted_mean(focal, w)

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma, "class_weights": self.class_weights}


@keras.saving.register_keras_serializable(package="course_utils")
class TverskyLoss(_SegmentationLoss):
    """Tversky loss ``1 - mean_c (TP + smooth) / (TP + alpha FP + beta FN + smooth)`` (soft counts).

    ``beta > alpha`` punishes missed foreground more (higher recall). ``alpha = beta = 0.5``
    equals ``DiceLoss(smooth=2 * smooth)``.
    """

    def __init__(self, alpha=0.5, beta=0.5, smooth=1.0, include_background=True, ignore_index=None,
                 name="tversky_loss", **kwargs):
        super().__init__(ignore_index=ignore_index, name=name, **kwargs)
        self.alpha, self.beta, self.smooth = float(alpha), float(beta), float(smooth)
        self.include_background = bool(include_background)

    def compute(self, y_true, y_pred, sample_weight=None):
        y_true, logits = _check(y_true, y_pred, "TverskyLoss", ignore_index=self.ignore_index)
        tp, psum, gsum = _soft_sums(y_true, logits, self.ignore_index, sample_weight)
        ti = (tp + self.smooth) / (tp + self.alpha * (psum - tp) + self.beta * (gsum - tp) + self.smooth)
        if not self.include_background:
            ti = ti[1:]
        return 1.0 - ops.mean(ti)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "beta": self.beta, "smooth": self.smooth,
                "include_background": self.include_background}
