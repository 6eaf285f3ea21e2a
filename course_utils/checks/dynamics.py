"""Checks for lecture 08 (training dynamics): predictions, a diverging rate, a drowned rare class.

Predict, run, explain: the student writes a prediction in a cell (a choice such as ``"down"``),
runs the experiment, and :func:`check_direction` compares the prediction with what the run
measured, against the seed spread: a wrong prediction is not an error (it prints what happened and
why), a missing or malformed one is. :func:`check_learning_rate_fix` and
:func:`check_rare_class_weights` check the repairs of the two broken runs. No framework is imported.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import NotWrittenYet, check, fail, passed

__all__ = ["OUTCOMES", "outcome", "check_direction", "check_learning_rate_fix", "check_rare_class_weights"]

#: The choices a prediction about a change can take.
OUTCOMES = ("up", "same", "down")


def outcome(before: float, after: float, spread: float) -> str:
    """"up", "down" or "same": did ``after`` move away from ``before`` by more than ``spread``?

    ``spread`` is the seed-to-seed spread (e.g. the standard deviation over seeds); a change smaller
    than it cannot be told apart from a different seed, so it counts as "same". A NaN ``after``
    (a diverged run) counts as "down".
    """
    if not math.isfinite(after):
        return "down"
    if after - before > spread:
        return "up"
    if before - after > spread:
        return "down"
    return "same"


def _check_choice(prediction, name: str):
    if prediction is None or prediction is Ellipsis:  # "not attempted" for ./course grade
        raise NotWrittenYet(f"{name} is still empty: write your prediction, one of {OUTCOMES}, before running "
                            "the experiment.")
    if not isinstance(prediction, str) or prediction.strip().lower() not in OUTCOMES:
        fail(f"{name} = {prediction!r} is not a prediction I can compare: use one of {OUTCOMES} "
             "(a string, e.g. \"down\").")
    return prediction.strip().lower()


@check
def check_direction(prediction, before: float, after: float, spread: float, what: str = "Dice",
                     why: str = "", name: str = "PREDICTION") -> bool:
    """Compare a predicted direction with the measured one; return whether they agree.

    Args:
        prediction: the student's choice, one of :data:`OUTCOMES`.
        before, after: the metric before and after the change (e.g. mean Dice over seeds).
        spread: the seed spread; smaller changes count as "same".
        what: the metric's name in the message; why: one sentence of explanation shown either way.

    Fails (:class:`CheckFailed`) only when the prediction is missing or not one of the choices, or the
    numbers are not numbers. A wrong prediction prints what happened instead.
    """
    choice = _check_choice(prediction, name)
    try:
        before, after, spread = float(before), float(after), float(spread)
    except (TypeError, ValueError):
        fail(f"before, after and spread must be numbers (e.g. the mean Dice of two settings and the seed spread), "
             f"got {before!r}, {after!r}, {spread!r}.")
    if not math.isfinite(before) or not math.isfinite(spread) or spread < 0:
        fail(f"before ({before}) and spread ({spread}) must be finite and the spread >= 0: "
             "take them from a run that did not diverge.")
    measured = outcome(before, after, spread)
    text = f"{what} went from {before:.3f} to {after:.3f} (seed spread {spread:.3f}): measured '{measured}'"
    if choice == measured:
        passed(f"Your prediction '{choice}' was right: {text}. {why}".strip())
        return True
    print(f"\N{BLACK RIGHT-POINTING TRIANGLE} Your prediction '{choice}' differs from the run: {text}. {why}".strip())
    return False


@check
def check_learning_rate_fix(lr, rates, losses, history_loss=None, per_class_dice=None,
                            budget_factor: float = 100.0) -> None:
    """Check a repaired learning rate against a range test and, optionally, the run it gave.

    Args:
        lr: the student's learning rate.
        rates, losses: the range test's record (``lr_range_test(...)["rates"]``, ``["losses"]``).
        history_loss: the training losses per epoch of the run with ``lr`` (optional).
        per_class_dice: the held-out Dice per class of that run (optional; class 0 = background).
        budget_factor: rates more than this factor below the range test's suggestion are "too slow".
    """
    from .. import dynamics as dyn

    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        fail(f"the learning rate must be a positive number such as 3e-3, got {lr!r}.")
    rates = np.asarray(rates, dtype=float)
    losses = np.asarray(losses, dtype=float)
    if rates.shape != losses.shape or rates.ndim != 1 or len(rates) < 5:
        fail("rates and losses must be the range test's two lists (lr_range_test(...)['rates'], ['losses']).")
    suggestion = dyn.suggest_learning_rate(rates, losses)
    finite = np.isfinite(losses)
    stop = len(losses) if finite.all() else int(np.argmin(finite))  # the losses before the first NaN/inf
    lowest = int(np.argmin(dyn.smooth_losses(losses[:stop])))
    blow_up = float(rates[lowest])  # past the minimum of the range test the loss rises again
    if lr >= blow_up:
        fail(f"lr = {lr:g} is at or past the range test's minimum ({blow_up:.2g}), where the loss starts to rise: "
             f"training there oscillates or diverges. Go about ten times lower (the suggestion is {suggestion:.2g}).")
    if lr < suggestion / budget_factor:
        fail(f"lr = {lr:g} is more than {budget_factor:g} times below the suggestion {suggestion:.2g}: the run "
             "will hardly move within the budget (too slow, not unstable). Take a rate near the steep part of the curve.")
    if history_loss is not None:
        history_loss = [float(v) for v in history_loss]
        if not history_loss or not all(math.isfinite(v) for v in history_loss):
            fail("the run with your rate produced a non-finite loss (NaN/inf): the rate is still too large.")
        if len(history_loss) > 1 and history_loss[-1] >= history_loss[0]:
            fail(f"with lr = {lr:g} the training loss did not fall ({history_loss[0]:.3f} -> {history_loss[-1]:.3f}): "
                 "look at the range test again and pick a rate where its loss falls steeply.")
    if per_class_dice is not None:
        foreground = np.asarray(per_class_dice, dtype=float)[1:]
        if not np.any(np.nan_to_num(foreground) > 0.01):
            fail(f"with lr = {lr:g} the training loss fell, but the held-out prediction is background only (Dice of "
                 "every other class about 0): on a short budget this rate is still on the high side (batch "
                 "normalisation's running statistics lag behind weights that change fast). Go about ten times lower.")
    passed(f"lr = {lr:g} lies in the range test's good region (suggestion {suggestion:.2g}, loss rises from "
           f"{blow_up:.2g})" + (", and the run's loss fell" if history_loss is not None else "")
           + (" and it finds more than the background." if per_class_dice is not None else "."))


@check
def check_rare_class_weights(weights, frequencies, rare_class: int) -> None:
    """Check class weights for a cross-entropy that must not drown ``rare_class``.

    Args:
        weights: the student's weights, one per class (C,).
        frequencies: the share of each class in the training pixels (C,), e.g. ``data.class_frequencies``.
        rare_class: the class that must not weigh less than any more frequent class.

    Passes when every weight is positive and finite and the rare class weighs at least as much as every
    more frequent class (its pixels, being few, then still count in the loss).
    """
    frequencies = np.asarray(frequencies, dtype=float)
    try:
        weights = np.asarray(weights, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        fail(f"weights must be a list of numbers, one per class, got {weights!r}.")
    if weights.shape != frequencies.shape:
        fail(f"weights needs one number per class: {len(frequencies)} classes, got {weights.size} weights.")
    if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
        fail(f"every class weight must be a positive number, got {np.round(weights, 4).tolist()}: a weight of 0 "
             "removes the class from the loss entirely.")
    rare_weight = weights[rare_class]
    heavier = [c for c in range(len(weights)) if c != rare_class and weights[c] > rare_weight
               and frequencies[c] >= frequencies[rare_class]]
    if heavier:
        share = frequencies[rare_class] * rare_weight / float(np.sum(frequencies * weights))
        fail(f"class {rare_class} (the rare class, {frequencies[rare_class]:.1%} of the pixels) still weighs less "
             f"than the more common class(es) {heavier}: it makes only {share:.2%} of the weighted loss, so the "
             "network can ignore it. Give it at least as much weight, e.g. inverse class frequency.")
    share = frequencies[rare_class] * rare_weight / float(np.sum(frequencies * weights))
    passed(f"class {rare_class} now makes {share:.1%} of the weighted loss (it is {frequencies[rare_class]:.1%} "
           "of the pixels): the network can no longer ignore it.")
