"""Segmentation losses for PyTorch (``nn.Module``), mirroring ``course_utils.keras.losses``.

Every loss is called as ``loss_fn(logits, target)``:

* ``logits``: float tensor ``(N, C, H, W)`` straight from the model (no softmax);
  one channel ``(N, 1, H, W)`` means a binary (sigmoid) model.
* ``target``: integer (long) tensor ``(N, H, W)`` of class indices.
* returns a scalar tensor: the mean over the non-ignored pixels of the batch
  (weighted CE: ``sum_i w[y_i] ce_i / sum_i w[y_i]``, exactly
  ``torch.nn.functional.cross_entropy(weight=..., ignore_index=...)``), or
  ``1 - mean_c dice_c`` for the overlap losses. A batch in which every pixel is
  ignored gives 0 (not NaN).

The formulas and their NumPy ground truth are in :mod:`course_utils.losses`.
Each loss has an ``ignore_index`` attribute (``course_utils.torch.train`` reads
it to leave the same pixels out of Dice/IoU).

Input checks (the same in :mod:`course_utils.keras.losses` and :mod:`course_utils.losses`): every loss
refuses a target label outside ``0..C-1`` that is not ``ignore_index`` with one sentence
(:func:`course_utils.data.label_range_message`), by an explicit check rather than by letting ``gather``
fail (on a GPU that is a device-side assert), and channels-last logits with the ``permute`` that fixes
them. NaN or infinite logits are *not* refused: they come from a model that diverged (too high a
learning rate), and the NaN loss is how ``fit`` and a learning-rate range test see that.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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


def _weights_tensor(class_weights):
    if class_weights is None:
        return None
    w = torch.as_tensor(class_weights, dtype=torch.float32).flatten().clone()
    if (w < 0).any():
        raise ValueError("class_weights must be >= 0: pass e.g. course_utils.data.class_weights(masks, num_classes).")
    return w


def _check(logits, target, name, binary_ok=True):
    if not torch.is_tensor(logits) or not torch.is_tensor(target):
        raise TypeError(f"{name} expects torch tensors (logits, target), got {type(logits).__name__} and "
                        f"{type(target).__name__}: convert with torch.as_tensor.")
    if logits.ndim != 4:
        raise ValueError(f"{name}: logits must be (N, C, H, W), got shape {tuple(logits.shape)}: "
                         "add the batch axis with logits.unsqueeze(0).")
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise TypeError(f"{name}: target must hold integer class indices, got dtype {target.dtype}: use target.long().")
    check_class_axis(tuple(logits.shape), tuple(target.shape), "NCHW")  # channels-last logits: say permute
    if target.ndim != 3 or tuple(target.shape) != (logits.shape[0],) + tuple(logits.shape[2:]):
        raise ValueError(f"{name}: target shape {tuple(target.shape)} does not match logits {tuple(logits.shape)}: "
                         "target must be (N, H, W) for logits (N, C, H, W) (squeeze a channel axis of size 1).")
    if logits.shape[1] == 1 and not binary_ok:
        raise ValueError(f"{name} needs C >= 2 logits per pixel, got 1: use BinaryCrossEntropyLoss for a 1-logit "
                         "(sigmoid) model, or give the model 2 output channels.")


def _check_weights(class_weights, num_classes, name):
    if class_weights is not None and class_weights.numel() != num_classes:
        n, c = class_weights.numel(), num_classes
        raise ValueError(f"{name}: class_weights has {n} entries but the logits have {c} classes: give one weight per class.")


def _valid_and_safe(target, ignore_index, num_classes, name):
    """(valid pixels, labels with ignored pixels set to 0), after an explicit label-range check.

    The check is explicit (one ``.any()``) rather than left to ``gather``/``one_hot``: on a GPU an
    out-of-range index is a device-side assert that kills the session, and a void label (e.g. 11 of 12
    classes, or 255 without ``ignore_index``) must get the same sentence everywhere.
    """
    target = target.long()
    if ignore_index is None:
        valid, safe = torch.ones_like(target, dtype=torch.bool), target
    else:
        valid = target != ignore_index
        safe = torch.where(valid, target, torch.zeros_like(target))
    if safe.numel() and bool(((safe < 0) | (safe >= num_classes)).any()):
        raise ValueError(f"{name}: " + label_range_message("target", int(safe.min()), int(safe.max()), num_classes))
    return valid, safe


def _weighted_mean(values, weights):
    # sum(w * v) / sum(w); 0 when every weight is 0 (all pixels ignored).
    return (values * weights).sum() / weights.sum().clamp_min(1e-12)


def _class_probabilities(logits):
    """(N, C, H, W) per-class probabilities: softmax, or [1 - p, p] for one sigmoid channel."""
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits)
        return torch.cat([1.0 - p, p], dim=1)
    return torch.softmax(logits, dim=1)


def _soft_sums(logits, target, ignore_index, name="soft_dice_per_class"):
    """Soft intersection, predicted and true mass per class over all valid pixels: three (C,) tensors."""
    probs = _class_probabilities(logits.float())
    num_classes = probs.shape[1]
    valid, safe = _valid_and_safe(target, ignore_index, num_classes, name)
    onehot = F.one_hot(safe, num_classes).permute(0, 3, 1, 2).to(probs.dtype)
    m = valid.unsqueeze(1).to(probs.dtype)
    probs, onehot = probs * m, onehot * m
    dims = (0, 2, 3)
    return (probs * onehot).sum(dims), probs.sum(dims), onehot.sum(dims)


def soft_dice_per_class(logits, target, smooth=1.0, ignore_index=None):
    """Soft Dice per class ``(2 I_c + smooth) / (P_c + G_c + smooth)``, tensor (C,) (2 for one logit)."""
    inter, psum, gsum = _soft_sums(logits, target, ignore_index)
    return (2.0 * inter + smooth) / (psum + gsum + smooth)


class CrossEntropyLoss(nn.Module):
    """Pixel-wise multi-class cross-entropy from logits.

    Args:
        class_weights: optional per-class weights (C,) (e.g. ``course_utils.data.class_weights``);
            reduction ``sum_i w[y_i] ce_i / sum_i w[y_i]`` like torch's ``weight=``.
        ignore_index: target value whose pixels are left out (e.g. 255), or None.

    Call: ``loss_fn(logits (N, C, H, W), target (N, H, W) long)`` -> scalar.
    """

    def __init__(self, class_weights=None, ignore_index=None):
        super().__init__()
        self.ignore_index = ignore_index
        self.register_buffer("class_weights", _weights_tensor(class_weights), persistent=False)

    def forward(self, logits, target):
        _check(logits, target, "CrossEntropyLoss", binary_ok=False)
        valid, safe = _valid_and_safe(target, self.ignore_index, logits.shape[1], "CrossEntropyLoss")
        _check_weights(self.class_weights, logits.shape[1], "CrossEntropyLoss")
        logp = F.log_softmax(logits.float(), dim=1)
        ce = -logp.gather(1, safe.unsqueeze(1)).squeeze(1)
        w = valid.to(ce.dtype)
        if self.class_weights is not None:
            w = w * self.class_weights.to(ce.device)[safe]
        return _weighted_mean(ce, w)

    def extra_repr(self):
        return f"class_weights={self.class_weights}, ignore_index={self.ignore_index}"


class BinaryCrossEntropyLoss(nn.Module):
    """Binary cross-entropy for a 1-logit (sigmoid) model.

    Args:
        pos_weight: optional weight of the positive (foreground) pixels, e.g. #negative / #positive.
        ignore_index: target value whose pixels are left out, or None.

    Call: ``loss_fn(logits (N, 1, H, W), target (N, H, W) in {0, 1})`` -> scalar (plain mean
    over the valid pixels, like ``binary_cross_entropy_with_logits(pos_weight=...)``).
    """

    def __init__(self, pos_weight=None, ignore_index=None):
        super().__init__()
        self.pos_weight = None if pos_weight is None else float(pos_weight)
        self.ignore_index = ignore_index

    def forward(self, logits, target):
        _check(logits, target, "BinaryCrossEntropyLoss")
        if logits.shape[1] != 1:
            raise ValueError(f"BinaryCrossEntropyLoss needs logits (N, 1, H, W), got {logits.shape[1]} channels: "
                             "use CrossEntropyLoss for multi-class logits.")
        valid, safe = _valid_and_safe(target, self.ignore_index, 2, "BinaryCrossEntropyLoss")
        z = logits[:, 0].float()
        y = safe.to(z.dtype)
        pw = 1.0 if self.pos_weight is None else self.pos_weight
        bce = pw * y * F.softplus(-z) + (1.0 - y) * F.softplus(z)
        return _weighted_mean(bce, valid.to(z.dtype))


class DiceLoss(nn.Module):
    """Soft Dice loss ``1 - mean_c dice_c`` from softmax probabilities (sigmoid for one channel).

    ``dice_c = (2 sum p_c g_c + smooth) / (sum p_c + sum g_c + smooth)`` with the sums over all
    valid pixels of the whole batch (``ignore_index`` pixels are removed from both sums).

    Args:
        smooth: added to numerator and denominator; keeps an empty class finite (dice_c -> 1).
        include_background: False -> mean over classes 1..C-1 only.
        ignore_index: target value whose pixels are left out, or None.
    """

    def __init__(self, smooth=1.0, include_background=True, ignore_index=None):
        super().__init__()
        self.smooth = float(smooth)
        self.include_background = bool(include_background)
        self.ignore_index = ignore_index

    def forward(self, logits, target):
        _check(logits, target, "DiceLoss")
        inter, psum, gsum = _soft_sums(logits, target, self.ignore_index, "DiceLoss")
        dice = (2.0 * inter + self.smooth) / (psum + gsum + self.smooth)
        if not self.include_background:
            dice = dice[1:]
        return 1.0 - dice.mean()


class CEDiceLoss(nn.Module):
    """``ce_weight * CrossEntropyLoss + dice_weight * DiceLoss`` (multi-class logits).

    Args: ce_weight, dice_weight, class_weights (for the CE term), smooth, include_background
    (for the Dice term), ignore_index (both terms).
    """

    def __init__(self, ce_weight=1.0, dice_weight=1.0, class_weights=None, smooth=1.0,
                 include_background=True, ignore_index=None):
        super().__init__()
        self.ce_weight, self.dice_weight = float(ce_weight), float(dice_weight)
        self.ignore_index = ignore_index
        self.ce = CrossEntropyLoss(class_weights=class_weights, ignore_index=ignore_index)
        self.dice = DiceLoss(smooth=smooth, include_background=include_background, ignore_index=ignore_index)

    def forward(self, logits, target):
        _check(logits, target, "CEDiceLoss", binary_ok=False)  # so that errors name this loss
        _valid_and_safe(target, self.ignore_index, logits.shape[1], "CEDiceLoss")
        return self.ce_weight * self.ce(logits, target) + self.dice_weight * self.dice(logits, target)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017): cross-entropy scaled by ``(1 - p_true)^gamma``.

    Reduction ``sum_i w[y_i] (1 - p_i)^gamma ce_i / sum_i w[y_i]``; ``gamma=0`` is CrossEntropyLoss.

    Args:
        gamma: focusing parameter (0 = plain CE; 2 in the paper).
        class_weights: optional per-class weights (C,) (the paper's alpha_t).
        ignore_index: target value whose pixels are left out, or None.
    """

    def __init__(self, gamma=2.0, class_weights=None, ignore_index=None):
        super().__init__()
        self.gamma = float(gamma)
        self.ignore_index = ignore_index
        self.register_buffer("class_weights", _weights_tensor(class_weights), persistent=False)

    def forward(self, logits, target):
        _check(logits, target, "FocalLoss", binary_ok=False)
        valid, safe = _valid_and_safe(target, self.ignore_index, logits.shape[1], "FocalLoss")
        _check_weights(self.class_weights, logits.shape[1], "FocalLoss")
        logp = F.log_softmax(logits.float(), dim=1).gather(1, safe.unsqueeze(1)).squeeze(1)
        focal = (1.0 - logp.exp()).clamp_min(0.0).pow(self.gamma) * (-logp)
        w = valid.to(focal.dtype)
        if self.class_weights is not None:
            w = w * self.class_weights.to(focal.device)[safe]
        return _weighted_mean(focal, w)


class TverskyLoss(nn.Module):
    """Tversky loss ``1 - mean_c (TP + smooth) / (TP + alpha FP + beta FN + smooth)`` (soft counts).

    ``beta > alpha`` punishes missed foreground more (higher recall). ``alpha = beta = 0.5``
    equals ``DiceLoss(smooth=2 * smooth)``.
    """

    def __init__(self, alpha=0.5, beta=0.5, smooth=1.0, include_background=True, ignore_index=None):
        super().__init__()
        self.alpha, self.beta, self.smooth = float(alpha), float(beta), float(smooth)
        self.include_background = bool(include_background)
        self.ignore_index = ignore_index

    def forward(self, logits, target):
        _check(logits, target, "TverskyLoss")
        tp, psum, gsum = _soft_sums(logits, target, self.ignore_index, "TverskyLoss")
        ti = (tp + self.smooth) / (tp + self.alpha * (psum - tp) + self.beta * (gsum - tp) + self.smooth)
        if not self.include_background:
            ti = ti[1:]
        return 1.0 - ti.mean()
