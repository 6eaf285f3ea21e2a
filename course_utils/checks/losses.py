"""Checks for lecture 05 (loss functions): soft Dice and CE + Dice, in Keras or PyTorch.

The student's function takes

* ``framework="keras"``: ``fn(y_true, logits)`` (Keras order), ``y_true`` int32 ``(B, H, W)``,
  ``logits`` float32 ``(B, H, W, C)`` (class axis last);
* ``framework="torch"``: ``fn(logits, target)`` (PyTorch order), ``logits`` float32
  ``(B, C, H, W)``, ``target`` int64 ``(B, H, W)``;

and returns a scalar loss tensor. The expected values come from the NumPy references in
:mod:`course_utils.losses` with ``smooth=1`` and all classes (background included).
TensorFlow/PyTorch are imported only when a check runs.
"""

from __future__ import annotations

import numpy as np

from .. import losses as ref
from ._common import check, fail, function_name, not_written, passed

__all__ = ["check_soft_dice", "check_ce_dice", "check_focal", "check_tversky"]

_FRAMEWORKS = ("keras", "torch")
_ORDER = {"keras": "fn(y_true, logits) with logits (B, H, W, C)", "torch": "fn(logits, target) with logits (B, C, H, W)"}


# --------------------------------------------------------------------------- known cases (NumPy, NHWC)
def _random_case(seed=0, num_classes=3, shape=(2, 8, 8)):
    rng = np.random.default_rng(seed)
    logits = (2.0 * rng.normal(size=shape + (num_classes,))).astype(np.float32)
    target = rng.integers(0, num_classes, size=shape).astype(np.int64)
    return logits, target


def _empty_case(num_classes=3, shape=(2, 8, 8)):
    """Only background in the truth, and a very confident background prediction: the other
    classes have zero true AND (numerically) zero predicted mass, so Dice without smoothing is 0/0."""
    target = np.zeros(shape, dtype=np.int64)
    logits = np.zeros(shape + (num_classes,), dtype=np.float32)
    logits[..., 0] = 200.0
    return logits, target


def _perfect_case(num_classes=3, shape=(2, 8, 8), seed=1):
    target = np.random.default_rng(seed).integers(0, num_classes, size=shape).astype(np.int64)
    return (40.0 * np.eye(num_classes, dtype=np.float32)[target]), target


# --------------------------------------------------------------------------- typical mistakes (NumPy)
def _dice_from_probs(p, target, smooth=1.0, num_smooth=True, den_smooth=True, per_image=False, background=True):
    g = np.eye(p.shape[-1])[target]
    axes = (1, 2) if per_image else (0, 1, 2)
    inter, psum, gsum = (p * g).sum(axes), p.sum(axes), g.sum(axes)
    with np.errstate(divide="ignore", invalid="ignore"):
        d = (2 * inter + (smooth if num_smooth else 0.0)) / (psum + gsum + (smooth if den_smooth else 0.0))
    if not background:
        d = d[..., 1:]
    return float(1.0 - d.mean())


_SPATIAL = ("the softmax runs over the wrong axis (a spatial axis, height or width): normalise over the class axis, "
            "which is last in Keras (NHWC, axis=-1) and 1 in PyTorch (NCHW, dim=1).")


def _binary_ce(z, target):
    """Mean binary cross-entropy of a sigmoid per channel against the one-hot truth (a sigmoid head)."""
    g = np.eye(z.shape[-1])[target]
    return float(np.mean(np.maximum(z, 0) - z * g + np.log1p(np.exp(-np.abs(z)))))


def _dice_mistakes(logits, target):
    """(value, hint) pairs for typical wrong soft-Dice implementations, in the order they are checked."""
    z = logits.astype(np.float64)
    p = ref.softmax(z, axis=-1)
    out = [
        (1.0 - ref.dice_loss(z, target), "it returned the Dice coefficient instead of the loss: return 1 - mean Dice."),
        (_dice_from_probs(1.0 / (1.0 + np.exp(-z)), target),
         "it applies a sigmoid per channel: use a softmax over the class axis for multi-class logits."),
        (_dice_from_probs(z, target), "it uses the raw logits as probabilities: apply a softmax over the class axis first."),
        (_dice_from_probs(ref.softmax(z, axis=1), target), _SPATIAL),
        (_dice_from_probs(ref.softmax(z, axis=2), target), _SPATIAL),
        (_dice_from_probs(ref.softmax(z, axis=0), target),
         "the softmax runs over the batch axis: normalise over the class axis."),
        (_dice_from_probs(p, target, per_image=True),
         "it averages a Dice per image: sum intersection and masses over the whole batch (all images), then divide."),
        (_dice_from_probs(p, target, background=False),
         "it leaves out the background class: average the Dice over all classes (background included)."),
        (_dice_from_probs(p, target, num_smooth=False),
         "the smoothing term is missing in the numerator: add smooth to numerator and denominator."),
        (_dice_from_probs(p, target, den_smooth=False),
         "the smoothing term is missing in the denominator: add smooth to numerator and denominator."),
        (_dice_from_probs(p, target, smooth=2.0),
         "the smoothing term is counted twice: add smooth once to numerator and once to denominator."),
    ]
    return out


def _ce_dice_mistakes(logits, target):
    z = logits.astype(np.float64)
    ce = ref.cross_entropy(z, target)
    dice = ref.dice_loss(z, target)
    p = ref.softmax(z)
    n_pixels = target.size
    out = [
        (ce, "it returns only the cross-entropy: add the soft Dice loss (CE + Dice)."),
        (_binary_ce(z, target) + dice,
         "the cross-entropy uses a sigmoid per channel (binary CE on a one-hot): the classes are exclusive, so use "
         "the softmax cross-entropy (sparse_categorical_crossentropy / F.cross_entropy) on the logits."),
        (dice, "it returns only the Dice loss: add the cross-entropy (CE + Dice)."),
        (ce + (1.0 - dice), "the Dice term is the coefficient, not the loss: add 1 - mean Dice."),
        (ce - dice, "the Dice loss is subtracted: the combined loss is CE + Dice."),
        (ref.cross_entropy(p, target) + dice,
         "the cross-entropy is computed from probabilities, not logits (softmax applied twice): pass the logits to CE."),
        (ce * n_pixels + dice, "the cross-entropy is summed over pixels: take the mean over pixels."),
        (0.5 * (ce + dice), "it averages the two terms: the combined loss is the sum CE + Dice (both weights 1)."),
    ]
    for value, hint in _dice_mistakes(logits, target):
        out.append((ce + value, "in the Dice term " + hint))
    return out


# --------------------------------------------------------------------------- calling the student's function
def _check_framework(framework):
    if framework not in _FRAMEWORKS:
        raise ValueError(f"framework must be 'keras' or 'torch', got {framework!r}.")


def _raised(name, framework, exc):
    if isinstance(exc, NotImplementedError):
        raise not_written(name) from None
    if framework == "torch" and "must match the size of tensor" in str(exc):
        fail(f"{name}(logits, target) multiplies tensors of different layouts ({str(exc).strip()[:120]}): "
             "F.one_hot puts the class axis last (B, H, W, C, NHWC) but the logits are (B, C, H, W) (NCHW): "
             "permute the one-hot with .permute(0, 3, 1, 2).")
    args = "(logits, target)" if framework == "torch" else "(y_true, logits)"
    labels = "target (B, H, W) int64" if framework == "torch" else "y_true (B, H, W) int"
    detail = (str(exc).strip().splitlines() or [""])[0][:160]
    fail(f"{name}{args} raised {type(exc).__name__} ({detail}) - it must take {_ORDER[framework]} and {labels}.")


def _call(fn, name, framework, logits, target, grad=False):
    """Run fn on the case in the framework's layout; returns (float value, gradient or None, has_grad)."""
    if framework == "torch":
        import torch

        x = torch.tensor(np.moveaxis(logits, -1, 1).copy(), requires_grad=True)
        t = torch.tensor(target, dtype=torch.int64)
        try:
            out = fn(x, t)
        except Exception as exc:  # noqa: BLE001 - the student's code may raise anything
            _raised(name, framework, exc)
        if not torch.is_tensor(out):
            fail(f"{name} returned {type(out).__name__}, not a tensor: return the loss as a torch scalar "
                 "(no .item(), no NumPy) so it can be backpropagated.")
        if out.numel() != 1:
            fail(f"{name} returned shape {tuple(out.shape)} but a loss must be one number: average over the classes.")
        value = float(out.detach())
        if not grad:
            return value, None
        if not out.requires_grad:
            fail(f"{name} returned a value without a gradient: compute it from softmax probabilities with torch "
                 "operations (no argmax, no .numpy(), no .detach()).")
        (g,) = torch.autograd.grad(out.reshape(()), x, allow_unused=True)
        return value, None if g is None else g.numpy()
    import keras
    from keras import ops

    y = ops.convert_to_tensor(target.astype(np.int32))
    backend = keras.backend.backend()
    if grad and backend == "tensorflow":
        import tensorflow as tf

        x = tf.Variable(logits)
        try:
            with tf.GradientTape() as tape:
                out = fn(y, x)
        except Exception as exc:  # noqa: BLE001
            _raised(name, framework, exc)
        g = tape.gradient(out, x)
        value = _keras_scalar(out, name)
        if g is None:
            fail(f"{name} returned a value without a gradient: compute it from softmax probabilities with keras.ops "
                 "(no argmax, no NumPy).")
        return value, g.numpy()
    try:
        out = fn(y, ops.convert_to_tensor(logits))
    except Exception as exc:  # noqa: BLE001
        _raised(name, framework, exc)
    return _keras_scalar(out, name), None


def _keras_scalar(out, name):
    from keras import ops

    arr = np.asarray(ops.convert_to_numpy(out))
    if arr.size != 1:
        fail(f"{name} returned shape {arr.shape} but a loss must be one number: average over the classes.")
    return float(arr.reshape(()))


def _focal_mistakes(logits, target, gamma=2.0):
    z = logits.astype(np.float64)
    logp = np.take_along_axis(ref.log_softmax(z), target[..., None], axis=-1)[..., 0]
    pt, ce = np.exp(logp), -logp
    return [
        (ref.cross_entropy(z, target),
         "it is the plain cross-entropy: multiply each pixel's CE by the focal factor (1 - p_t)**gamma."),
        (float(np.mean(pt ** gamma * ce)),
         "it weights by p_t**gamma: the focal factor is (1 - p_t)**gamma, small for pixels that are already right."),
        (float(np.mean((1 - pt) * gamma * ce)),
         "it multiplies by gamma: raise (1 - p_t) to the power gamma, (1 - p_t)**gamma."),
        (float(np.mean((1 - pt) ** gamma)),
         "the cross-entropy factor is missing: the loss is (1 - p_t)**gamma * (-log p_t)."),
        (float(np.sum((1 - pt) ** gamma * ce)),
         "it sums over the pixels: take the mean over pixels."),
        (-float(np.mean((1 - pt) ** gamma * ce)), "the sign is wrong: the loss is -(1 - p_t)**gamma log p_t >= 0."),
        (float(np.mean((1 - ref.softmax(z)) ** gamma * -ref.log_softmax(z) * np.eye(z.shape[-1])[target]) * z.shape[-1]),
         "it does not pick the true class's probability well: use p_t = softmax(logits)[true class] per pixel."),
    ]


def _tversky_from_probs(p, target, alpha, beta, smooth=1.0, per_image=False, background=True):
    g = np.eye(p.shape[-1])[target]
    axes = (1, 2) if per_image else (0, 1, 2)
    tp, psum, gsum = (p * g).sum(axes), p.sum(axes), g.sum(axes)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (tp + smooth) / (tp + alpha * (psum - tp) + beta * (gsum - tp) + smooth)
    if not background:
        t = t[..., 1:]
    return float(1.0 - t.mean())


TVERSKY_ALPHA, TVERSKY_BETA = 0.3, 0.7


def _tversky_mistakes(logits, target):
    z = logits.astype(np.float64)
    p = ref.softmax(z)
    a, b = TVERSKY_ALPHA, TVERSKY_BETA
    return [
        (_tversky_from_probs(p, target, b, a),
         f"alpha and beta are swapped: alpha ({a}) weighs the false positives sum p (1 - g), beta ({b}) the false "
         "negatives sum (1 - p) g."),
        (1.0 - _tversky_from_probs(p, target, a, b), "it returned the Tversky index instead of the loss: return 1 - mean index."),
        (_tversky_from_probs(p, target, 0.5, 0.5), "it is the Dice loss (alpha = beta = 0.5): use alpha and beta."),
        (_tversky_from_probs(p, target, a, b, smooth=0.0) if np.isfinite(_tversky_from_probs(p, target, a, b, smooth=0.0))
         else np.nan, "the smoothing term is missing: add smooth to numerator and denominator."),
        (_tversky_from_probs(p, target, a, b, per_image=True),
         "it averages an index per image: sum TP, FP and FN over the whole batch, then divide."),
        (_tversky_from_probs(p, target, a, b, background=False),
         "it leaves out the background class: average over all classes."),
        (_tversky_from_probs(z, target, a, b),
         "it uses the raw logits as probabilities: apply a softmax over the class axis first."),
        (_tversky_from_probs(1.0 / (1.0 + np.exp(-z)), target, a, b),
         "it applies a sigmoid per channel: use a softmax over the class axis for multi-class logits."),
    ]


_FORMULAS = {
    "focal_loss": "mean over pixels of -(1 - p_t)**gamma * log p_t, p_t the softmax probability of the true class, "
                  "gamma=2",
    "tversky_loss": f"1 - mean_c (TP_c + smooth) / (TP_c + alpha FP_c + beta FN_c + smooth), soft counts over the "
                    f"whole batch, alpha={TVERSKY_ALPHA}, beta={TVERSKY_BETA}, smooth=1",
    "soft_dice_loss": "1 - mean_c (2 sum p_c g_c + smooth) / (sum p_c + sum g_c + smooth) with sums over the whole batch",
    "ce_dice_loss": "mean pixel cross-entropy from the logits + (1 - mean_c soft Dice_c), smooth=1",
}


def _diagnose(name, value, expected, mistakes, what, formula):
    if abs(value - expected) <= 1e-4:
        return
    for wrong, hint in mistakes:
        if np.isfinite(wrong) and abs(value - wrong) <= 1e-4:
            fail(f"{name} returned {value:.5f} on {what} but expected {expected:.5f}: {hint}")
    fail(f"{name} returned {value:.5f} on {what} but expected {expected:.5f}: compare your formula with "
         f"{formula}.")


def _run_checks(fn, framework, key, reference, mistakes):
    _check_framework(framework)
    name, formula = function_name(fn, key), _FORMULAS[key]
    # 1. the empty-mask case first: the smoothing term is what keeps it finite
    logits, target = _empty_case()
    value, grad = _call(fn, name, framework, logits, target, grad=True)
    if not np.isfinite(value):
        fail(f"{name} returned {value} when a class is absent from the truth and the prediction (0/0): "
             "add smooth (e.g. 1.0) to both the numerator and the denominator"
             + (" of the Dice." if "dice" in key else "."))
    if grad is not None and not np.isfinite(grad).all():
        fail(f"{name} gives NaN/inf gradients when a class is absent: add smooth to numerator and denominator.")
    expected = reference(logits, target)
    _diagnose(name, value, expected, mistakes(logits, target), "a batch with only background", formula)
    # 2. random logits, 3 classes and 2 classes
    for seed, num_classes in ((0, 3), (1, 2), (2, 4)):
        logits, target = _random_case(seed, num_classes)
        value, grad = _call(fn, name, framework, logits, target, grad=(seed == 0))
        _diagnose(name, value, reference(logits, target), mistakes(logits, target),
                  f"random logits with {num_classes} classes", formula)
        if grad is not None and not (np.isfinite(grad).all() and np.abs(grad).max() > 0):
            fail(f"{name} has a zero or non-finite gradient w.r.t. the logits: build it from softmax "
                 "probabilities (a hard argmax has no gradient).")
    # 3. a perfect, very confident prediction
    logits, target = _perfect_case()
    value, _ = _call(fn, name, framework, logits, target)
    _diagnose(name, value, reference(logits, target), mistakes(logits, target), "a perfect prediction", formula)


@check
def check_soft_dice(fn, framework="keras"):
    """Check a soft Dice loss: ``1 - mean_c (2 sum p g + 1) / (sum p + sum g + 1)``, softmax probabilities,
    sums over the whole batch, background included, ``smooth=1``.

    Args:
        fn: ``framework="keras"``: ``fn(y_true (B, H, W) int, logits (B, H, W, C))``;
            ``framework="torch"``: ``fn(logits (B, C, H, W), target (B, H, W) int64)``. Returns a scalar tensor.
        framework: "keras" or "torch".
    """
    _run_checks(fn, framework, "soft_dice_loss", lambda z, t: ref.dice_loss(z, t, smooth=1.0), _dice_mistakes)
    passed(f"soft Dice ({framework}): matches the reference on random batches, is ~0 for a perfect prediction, "
           "stays finite with a gradient when a class is absent.")


@check
def check_ce_dice(fn, framework="keras"):
    """Check a combined loss ``cross-entropy (mean over pixels) + soft Dice loss (smooth=1)``.

    Args:
        fn: ``framework="keras"``: ``fn(y_true (B, H, W) int, logits (B, H, W, C))``;
            ``framework="torch"``: ``fn(logits (B, C, H, W), target (B, H, W) int64)``. Returns a scalar tensor.
        framework: "keras" or "torch".
    """
    _run_checks(fn, framework, "ce_dice_loss", lambda z, t: ref.ce_dice_loss(z, t, smooth=1.0), _ce_dice_mistakes)
    passed(f"CE + Dice ({framework}): matches the reference on random batches and a perfect prediction, "
           "stays finite when a class is absent.")


@check
def check_focal(fn, framework="torch"):
    """Check a focal loss (Lin et al., 2017) with ``gamma=2`` and no class weights: the mean over pixels of
    ``-(1 - p_t)**gamma log p_t``, ``p_t`` the softmax probability of the true class.

    Args:
        fn: ``framework="torch"``: ``fn(logits (B, C, H, W), target (B, H, W) int64)``;
            ``framework="keras"``: ``fn(y_true (B, H, W) int, logits (B, H, W, C))``. Returns a scalar tensor.
        framework: "keras" or "torch".
    """
    _run_checks(fn, framework, "focal_loss", lambda z, t: ref.focal_loss(z, t, gamma=2.0), _focal_mistakes)
    passed(f"focal loss ({framework}): matches the reference on random batches; easy pixels count less than in CE.")


@check
def check_tversky(fn, framework="torch"):
    """Check a Tversky loss with ``alpha=0.3`` (false positives), ``beta=0.7`` (false negatives), ``smooth=1``:
    ``1 - mean_c (TP_c + 1) / (TP_c + 0.3 FP_c + 0.7 FN_c + 1)`` with soft counts over the whole batch.

    Args:
        fn: as for :func:`check_focal`; its defaults must be alpha=0.3, beta=0.7, smooth=1.
        framework: "keras" or "torch".
    """
    _run_checks(fn, framework, "tversky_loss",
                lambda z, t: ref.tversky_loss(z, t, alpha=TVERSKY_ALPHA, beta=TVERSKY_BETA, smooth=1.0),
                _tversky_mistakes)
    passed(f"Tversky loss ({framework}): matches the reference; false negatives cost more than false positives "
           f"(beta {TVERSKY_BETA} > alpha {TVERSKY_ALPHA}).")
