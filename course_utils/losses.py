"""Segmentation losses in plain NumPy: the course's ground truth (forward values only).

``course_utils.keras.losses`` and ``course_utils.torch.losses`` implement the
same losses with the same class names and arguments; the tests check that both
agree with these functions (and with each other) to 1e-5.

Shapes and conventions
----------------------
* ``logits``: float array ``(N, H, W, C)`` (class axis LAST, as in NumPy and
  Keras; the PyTorch classes take ``(N, C, H, W)``). A model with a single
  output channel ``(N, H, W, 1)`` is a *binary* (sigmoid) model.
* ``target``: integer class indices ``(N, H, W)``.
* ``ignore_index`` (e.g. 255): pixels whose target equals it are removed from
  every sum, in the numerator and in the denominator.
* Reduction: the mean over the non-ignored pixels of all images together. With
  per-class weights ``w`` (``class_weights``, shape ``(C,)``) the weighted
  cross-entropy is ``sum_i w[y_i] ce_i / sum_i w[y_i]`` (what
  ``torch.nn.functional.cross_entropy(weight=...)`` does), so uniform weights
  change nothing and the value stays on the scale of an unweighted CE.
* Bad input gets the course's one-sentence errors (:mod:`course_utils.data` validators): NaN or infinite
  logits, channels-first logits, and labels outside ``0..C-1`` that are not ``ignore_index``.
* When every pixel is ignored the pixel-averaged losses return 0.0 (torch's
  ``cross_entropy`` would return NaN); a batch without labels then does not
  break training.

Soft Dice (per class ``c``, sums over all valid pixels ``i`` of the whole batch)::

    p_ic = softmax(logits)_ic,  g_ic = 1 if target_i == c else 0
    dice_c = (2 * sum_i p_ic g_ic + smooth) / (sum_i p_ic + sum_i g_ic + smooth)
    DiceLoss = 1 - mean_c dice_c        (c over all classes, or 1.. C-1 without background)

``smooth`` (default 1.0) keeps an absent class (both sums 0) finite: it then
scores dice_c = 1 (nothing to find, nothing predicted) instead of 0/0.
Binary models (one logit channel) use ``p = sigmoid(z)`` and the two "classes"
background ``1 - p`` and foreground ``p``; this equals the two-class softmax
with logits ``[0, z]``. ``include_background=False`` keeps the foreground only.
"""

from __future__ import annotations

import numpy as np

from .data import check_class_axis, check_logits, label_range_message

__all__ = [
    "softmax",
    "sigmoid",
    "log_softmax",
    "class_probabilities",
    "cross_entropy",
    "binary_cross_entropy",
    "soft_dice_per_class",
    "dice_loss",
    "ce_dice_loss",
    "focal_loss",
    "tversky_loss",
]


# --------------------------------------------------------------------------- helpers
def log_softmax(logits, axis: int = -1) -> np.ndarray:
    """Numerically stable log-softmax along ``axis`` (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=axis, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=axis, keepdims=True))


def softmax(logits, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis`` (float64)."""
    return np.exp(log_softmax(logits, axis))


def sigmoid(z) -> np.ndarray:
    """Logistic function 1 / (1 + exp(-z)) (float64, stable for large |z|)."""
    z = np.asarray(z, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -z))


def _softplus(z):
    return np.logaddexp(0.0, z)


def _check(logits, target, ignore_index=None, binary_ok=True):
    # The course's validators (course_utils.data): finite numeric logits, channels-first logits named as such.
    logits = check_logits(logits, "logits", ndim=None).astype(np.float64)
    target = np.asarray(target)
    check_class_axis(logits.shape, target.shape, "NHWC")
    if logits.ndim != 4:
        raise ValueError(f"logits must be (N, H, W, C) (class axis last), got shape {logits.shape}: "
                         "add the batch axis with logits[None] or move the class axis last.")
    if target.dtype.kind not in "biu":
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}: use .astype(np.int64).")
    if target.shape != logits.shape[:3]:
        raise ValueError(f"target shape {target.shape} does not match logits {logits.shape}: "
                         "target must be (N, H, W) class indices for logits (N, H, W, C).")
    if logits.shape[-1] == 1 and not binary_ok:
        raise ValueError("this loss needs C >= 2 logits per pixel, got 1: use BinaryCrossEntropyLoss for a "
                         "1-logit (sigmoid) model, or give the model 2 output channels.")
    valid = np.ones(target.shape, dtype=bool) if ignore_index is None else target != ignore_index
    safe = np.where(valid, target, 0).astype(np.int64)
    C = max(logits.shape[-1], 2)
    if safe.size and (safe.min() < 0 or safe.max() >= C):
        raise ValueError(label_range_message("target", int(safe.min()), int(safe.max()), C))
    return logits, safe, valid


def class_probabilities(logits) -> np.ndarray:
    """Per-class probabilities ``(N, H, W, C)``: softmax, or ``[1 - p, p]`` with ``p = sigmoid`` for one channel."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.shape[-1] == 1:
        p = sigmoid(logits[..., 0])
        return np.stack([1.0 - p, p], axis=-1)
    return softmax(logits, axis=-1)


def _weights(class_weights, num_classes, name):
    if class_weights is None:
        return np.ones(num_classes)
    w = np.asarray(class_weights, dtype=np.float64).reshape(-1)
    if w.size != num_classes:
        raise ValueError(f"{name}: class_weights has {w.size} entries but the logits have {num_classes} classes: "
                         "give one weight per class.")
    return w


def _weighted_mean(values, weights) -> float:
    den = weights.sum()
    return float((values * weights).sum() / den) if den > 0 else 0.0


# --------------------------------------------------------------------------- losses
def cross_entropy(logits, target, class_weights=None, ignore_index=None) -> float:
    """Multi-class cross-entropy from logits ``(N,H,W,C)`` and targets ``(N,H,W)``.

    ``sum_i w[y_i] * (-log softmax(z_i)[y_i]) / sum_i w[y_i]`` over non-ignored pixels
    (``w`` = ``class_weights`` (C,) or all ones).
    """
    logits, safe, valid = _check(logits, target, ignore_index, binary_ok=False)
    logp = log_softmax(logits)
    ce = -np.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
    w = _weights(class_weights, logits.shape[-1], "cross_entropy")
    return _weighted_mean(ce, w[safe] * valid)


def binary_cross_entropy(logits, target, pos_weight=None, ignore_index=None) -> float:
    """Binary cross-entropy of a 1-logit model: logits ``(N,H,W,1)``, targets ``(N,H,W)`` in {0, 1}.

    Per pixel ``pos_weight * y * softplus(-z) + (1 - y) * softplus(z)`` (torch's
    ``binary_cross_entropy_with_logits``), then the plain mean over non-ignored pixels.
    """
    logits, safe, valid = _check(logits, target, ignore_index)
    if logits.shape[-1] != 1:
        raise ValueError(f"BinaryCrossEntropyLoss needs one logit channel, got {logits.shape[-1]}: "
                         "use CrossEntropyLoss for multi-class logits.")
    z = logits[..., 0]
    y = safe.astype(np.float64)
    pw = 1.0 if pos_weight is None else float(pos_weight)
    bce = pw * y * _softplus(-z) + (1.0 - y) * _softplus(z)
    return _weighted_mean(bce, valid.astype(np.float64))


def _sums(logits, target, ignore_index):
    """Per-class soft intersection, predicted mass and true mass over valid pixels: three (C,) arrays."""
    logits, safe, valid = _check(logits, target, ignore_index)
    p = class_probabilities(logits)
    g = np.eye(p.shape[-1])[safe]
    m = valid[..., None].astype(np.float64)
    p, g = p * m, g * m
    axes = (0, 1, 2)
    return (p * g).sum(axes), p.sum(axes), g.sum(axes)


def soft_dice_per_class(logits, target, smooth=1.0, ignore_index=None) -> np.ndarray:
    """Soft Dice coefficient per class, float64 (C,) (2 for a 1-logit model): see the module docstring."""
    inter, psum, gsum = _sums(logits, target, ignore_index)
    return (2.0 * inter + smooth) / (psum + gsum + smooth)


def _mean_over_classes(per_class, include_background):
    return float(per_class.mean() if include_background else per_class[1:].mean())


def dice_loss(logits, target, smooth=1.0, include_background=True, ignore_index=None) -> float:
    """Soft Dice loss ``1 - mean_c dice_c`` (classes from 1 when ``include_background=False``)."""
    return 1.0 - _mean_over_classes(soft_dice_per_class(logits, target, smooth, ignore_index), include_background)


def ce_dice_loss(logits, target, ce_weight=1.0, dice_weight=1.0, class_weights=None, smooth=1.0,
                 include_background=True, ignore_index=None) -> float:
    """``ce_weight * cross_entropy + dice_weight * dice_loss`` (multi-class logits, C >= 2)."""
    ce = cross_entropy(logits, target, class_weights, ignore_index)
    dice = dice_loss(logits, target, smooth, include_background, ignore_index)
    return ce_weight * ce + dice_weight * dice


def focal_loss(logits, target, gamma=2.0, class_weights=None, ignore_index=None) -> float:
    """Focal loss (Lin et al. 2017): ``sum_i w[y_i] (1 - p_i)^gamma ce_i / sum_i w[y_i]``.

    ``p_i`` = softmax probability of the true class; ``class_weights`` are the paper's alpha_t
    (per class, (C,)). ``gamma = 0`` gives exactly :func:`cross_entropy`.
    """
    logits, safe, valid = _check(logits, target, ignore_index, binary_ok=False)
    logp = np.take_along_axis(log_softmax(logits), safe[..., None], axis=-1)[..., 0]
    focal = (1.0 - np.exp(logp)) ** gamma * (-logp)
    w = _weights(class_weights, logits.shape[-1], "focal_loss")
    return _weighted_mean(focal, w[safe] * valid)


def tversky_loss(logits, target, alpha=0.5, beta=0.5, smooth=1.0, include_background=True, ignore_index=None) -> float:
    """Tversky loss ``1 - mean_c (TP_c + smooth) / (TP_c + alpha FP_c + beta FN_c + smooth)`` (soft counts).

    ``alpha`` weighs false positives, ``beta`` false negatives (beta > alpha favours recall).
    With ``alpha = beta = 0.5`` it equals ``dice_loss(smooth=2 * smooth)`` (exactly Dice when smooth=0).
    """
    tp, psum, gsum = _sums(logits, target, ignore_index)
    fp, fn = psum - tp, gsum - tp
    ti = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)
    return 1.0 - _mean_over_classes(ti, include_background)
