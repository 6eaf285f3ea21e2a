"""The lecture-05 checks accept right implementations and name typical mistakes."""

from __future__ import annotations

import pytest

from course_utils.checks import CheckFailed, check_ce_dice, check_soft_dice

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
from keras import ops  # noqa: E402


# ----------------------------------------------------------------------------- torch implementations
def t_dice(logits, target, smooth=1.0, softmax=True, dim=1, per_image=False, background=True, smooth_num=True,
           permute=True):
    p = torch.softmax(logits, dim=dim) if softmax else logits
    g = torch.nn.functional.one_hot(target, logits.shape[1]).float()
    g = g.permute(0, 3, 1, 2) if permute else g
    dims = (2, 3) if per_image else (0, 2, 3)
    inter, psum, gsum = (p * g).sum(dims), p.sum(dims), g.sum(dims)
    d = (2 * inter + (smooth if smooth_num else 0.0)) / (psum + gsum + smooth)
    if not background:
        d = d[..., 1:]
    return 1 - d.mean()


def t_ce_dice(logits, target, **kw):
    return torch.nn.functional.cross_entropy(logits, target) + t_dice(logits, target, **kw)


# ----------------------------------------------------------------------------- keras implementations
def k_dice(y_true, logits, smooth=1.0, softmax=True, axis=-1):
    p = ops.softmax(logits, axis=axis) if softmax else logits
    g = ops.one_hot(ops.cast(y_true, "int32"), ops.shape(logits)[-1])
    inter, psum, gsum = ops.sum(p * g, (0, 1, 2)), ops.sum(p, (0, 1, 2)), ops.sum(g, (0, 1, 2))
    return 1 - ops.mean((2 * inter + smooth) / (psum + gsum + smooth))


def k_dice_float64(y_true, logits):
    p = ops.softmax(ops.cast(logits, "float64"), axis=-1)
    g = ops.one_hot(ops.cast(y_true, "int32"), ops.shape(logits)[-1], dtype="float64")
    inter, psum, gsum = ops.sum(p * g, (0, 1, 2)), ops.sum(p, (0, 1, 2)), ops.sum(g, (0, 1, 2))
    return 1 - ops.mean((2 * inter + 1.0) / (psum + gsum + 1.0))


def k_ce(y_true, logits):
    return ops.mean(keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True))


def k_ce_dice(y_true, logits, **kw):
    return k_ce(y_true, logits) + k_dice(y_true, logits, **kw)


def test_right_implementations_pass(capsys):
    check_soft_dice(t_dice, "torch")
    check_soft_dice(k_dice, "keras")
    check_ce_dice(t_ce_dice, "torch")
    check_ce_dice(k_ce_dice, "keras")
    out = capsys.readouterr().out
    assert out.count("\N{HEAVY CHECK MARK}") == 4


def test_course_losses_pass_the_checks():
    from course_utils.keras.losses import CEDiceLoss as KCEDice, DiceLoss as KDice
    from course_utils.torch.losses import CEDiceLoss as TCEDice, DiceLoss as TDice

    check_soft_dice(TDice(), "torch")
    check_soft_dice(KDice(), "keras")
    check_ce_dice(TCEDice(), "torch")
    check_ce_dice(KCEDice(), "keras")


@pytest.mark.parametrize(
    "fn,framework,message",
    [
        (lambda z, t: t_dice(z, t, smooth=0.0), "torch", "add smooth"),
        (lambda y, z: k_dice(y, z, smooth=0.0), "keras", "add smooth"),
        (lambda z, t: t_dice(z, t, smooth_num=False), "torch", "numerator"),
        (lambda z, t: t_dice(z, t, softmax=False), "torch", "raw logits"),
        (lambda y, z: k_dice(y, z, softmax=False), "keras", "raw logits"),
        (lambda z, t: t_dice(z, t, dim=0), "torch", "batch axis"),
        (lambda z, t: t_dice(z, t, dim=-1), "torch", "wrong axis"),
        (lambda y, z: k_dice(y, z, axis=1), "keras", "wrong axis"),
        (lambda z, t: t_dice(z, t, per_image=True), "torch", "whole batch"),
        (lambda z, t: t_dice(z, t, background=False), "torch", "background"),
        (lambda z, t: 1 - t_dice(z, t), "torch", "coefficient"),
        (lambda z, t: t_dice(z, t).item(), "torch", "not a tensor"),
        (lambda z, t: t_dice(z, t.float() * 1, ), "torch", "raised"),
        (lambda z, t: t_dice(z.argmax(1, keepdim=True).float().expand_as(z), t), "torch", "gradient"),
        (lambda z, t: t_dice(z.permute(0, 2, 3, 1), t), "torch", "NCHW"),
        (lambda z, t: t_dice(z, t, permute=False), "torch", r"permute\(0, 3, 1, 2\)"),
        (lambda y, z: k_dice(y, z, axis=2), "keras", "spatial axis"),
        (lambda z, t: t_dice(z.double(), t), "torch", None),  # float64 inside: a correct variant
        (k_dice_float64, "keras", None),
    ],
)
def test_soft_dice_mistakes_are_named(fn, framework, message):
    if message is None:
        check_soft_dice(fn, framework)
        return
    with pytest.raises(CheckFailed, match=message) as info:
        check_soft_dice(fn, framework)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "fn,framework,message",
    [
        (lambda z, t: torch.nn.functional.cross_entropy(z, t), "torch", "only the cross-entropy"),
        (lambda y, z: k_dice(y, z), "keras", "only the Dice"),
        (lambda y, z: k_ce(y, z) + k_dice(y, z, smooth=0.0), "keras", "add smooth"),
        (lambda z, t: torch.nn.functional.cross_entropy(torch.softmax(z, 1), t) + t_dice(z, t), "torch",
         "softmax applied twice"),
        (lambda z, t: torch.nn.functional.cross_entropy(z, t, reduction="sum") + t_dice(z, t), "torch", "summed"),
        (lambda z, t: t_ce_dice(z, t, softmax=False), "torch", "raw logits"),
        (lambda z, t: 0.5 * t_ce_dice(z, t), "torch", "averages the two terms"),
        (lambda y, z: k_ce_dice(z, y), "keras", "raised"),
        (lambda z, t: torch.nn.functional.binary_cross_entropy_with_logits(
            z, torch.nn.functional.one_hot(t, z.shape[1]).permute(0, 3, 1, 2).float()) + t_dice(z, t), "torch",
         "sigmoid per channel"),
        (lambda y, z: ops.mean(keras.losses.binary_crossentropy(ops.one_hot(y, ops.shape(z)[-1]), z, from_logits=True))
         + k_dice(y, z), "keras", "sigmoid per channel"),
    ],
)
def test_ce_dice_mistakes_are_named(fn, framework, message):
    with pytest.raises(CheckFailed, match=message) as info:
        check_ce_dice(fn, framework)
    assert "\n" not in str(info.value)


def test_unknown_framework_is_a_value_error():
    with pytest.raises(ValueError, match="keras"):
        check_soft_dice(t_dice, "jax")


def test_unwritten_exercise_says_so():
    def soft_dice_loss(y_true, logits):
        raise NotImplementedError("Exercise: write this part, then run the check below.")

    def soft_dice_loss_torch(logits, target):
        raise NotImplementedError("Exercise: write this part, then run the check below.")

    with pytest.raises(CheckFailed, match="^soft_dice_loss is not written yet"):
        check_soft_dice(soft_dice_loss, "keras")
    with pytest.raises(CheckFailed, match="^soft_dice_loss_torch is not written yet"):
        check_soft_dice(soft_dice_loss_torch, "torch")
    with pytest.raises(CheckFailed, match="not written yet"):
        check_ce_dice(lambda z, t: soft_dice_loss(t, z), "torch")


# ----------------------------------------------------------------------------- focal and Tversky (torch)
from course_utils.checks import check_focal, check_tversky  # noqa: E402


def t_focal(logits, target, gamma=2.0, mistake=None):
    logp = torch.log_softmax(logits, dim=1).gather(1, target[:, None])[:, 0]
    pt, ce = logp.exp(), -logp
    factor = {"no_factor": 1.0, "pt": pt ** gamma, "times": (1 - pt) * gamma}.get(mistake, (1 - pt) ** gamma)
    values = factor * ce if mistake != "no_ce" else (1 - pt) ** gamma
    return values.sum() if mistake == "sum" else values.mean()


def t_tversky(logits, target, alpha=0.3, beta=0.7, smooth=1.0, mistake=None):
    if mistake == "swapped":
        alpha, beta = beta, alpha
    p = torch.softmax(logits, dim=1)
    g = torch.nn.functional.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).float()
    dims = (2, 3) if mistake == "per_image" else (0, 2, 3)
    tp = (p * g).sum(dims)
    fp, fn = (p * (1 - g)).sum(dims), ((1 - p) * g).sum(dims)
    index = (tp + smooth) / (tp + alpha * fp + beta * fn + smooth)
    if mistake == "no_background":
        index = index[..., 1:]
    return index.mean() if mistake == "index" else 1 - index.mean()


def test_focal_and_tversky_right_ones_pass(capsys):
    check_focal(t_focal, "torch")
    check_tversky(t_tversky, "torch")
    assert capsys.readouterr().out.count("\N{HEAVY CHECK MARK}") == 2


@pytest.mark.parametrize("mistake, message", [
    (None, None),
    ("no_factor", "plain cross-entropy"),
    ("pt", r"weights by p_t\*\*gamma"),
    ("times", "multiplies by gamma"),
    ("no_ce", "cross-entropy factor is missing"),
    ("sum", "sums over the pixels"),
])
def test_focal_mistakes_are_named(mistake, message):
    def focal_loss_torch(logits, target, gamma=2.0):
        return t_focal(logits, target, gamma, mistake)

    if message is None:
        check_focal(focal_loss_torch, "torch")
        return
    with pytest.raises(CheckFailed, match=message) as info:
        check_focal(focal_loss_torch, "torch")
    assert str(info.value).startswith("focal_loss_torch returned")


@pytest.mark.parametrize("mistake, message", [
    ("swapped", "alpha and beta are swapped"),
    ("index", "Tversky index instead of the loss"),
    ("per_image", "an index per image"),
    ("no_background", "leaves out the background"),
])
def test_tversky_mistakes_are_named(mistake, message):
    with pytest.raises(CheckFailed, match=message):
        check_tversky(lambda z, t: t_tversky(z, t, mistake=mistake), "torch")
    with pytest.raises(CheckFailed, match="add smooth"):
        check_tversky(lambda z, t: t_tversky(z, t, smooth=0.0), "torch")
    with pytest.raises(CheckFailed, match="it is the Dice loss"):
        check_tversky(lambda z, t: t_tversky(z, t, alpha=0.5, beta=0.5), "torch")


def test_course_focal_and_tversky_pass_in_keras_too():
    from course_utils.keras.losses import FocalLoss, TverskyLoss

    check_focal(FocalLoss(gamma=2.0), "keras")
    check_tversky(TverskyLoss(alpha=0.3, beta=0.7), "keras")
