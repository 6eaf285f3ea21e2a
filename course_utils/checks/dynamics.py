"""Checks for lecture 08 (training dynamics): predict, run, explain; a diverging rate; a drowned rare class.

Predict, run, explain. The student writes a prediction in a cell (``"up"``, ``"same"`` or ``"down"``);
the experiment cell first calls :func:`record_prediction`, which refuses to go on while the prediction is
empty and keeps the value written *before* the run; after the run :func:`check_direction` compares that
recorded value with what the run measured. A change counts as "up" or "down" only when it is larger than a
tolerance that sits above the seed noise of that experiment (:func:`tolerance_from_seeds`, from the committed
per-seed runs of the same experiment); the explanation shown is the one for the *measured* outcome. A wrong
prediction is recorded as failed (as in exercises 01-07), with what happened and why.

:func:`check_learning_rate_fix` checks the repair of a run that diverged (its rate, read off a range test, and
the run that rate gives); :func:`check_rare_class_repair` checks class weights that must make a rare class
count (the weights, and the repaired run's Dice of that class). No framework is imported.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._common import CheckFailed, NotWrittenYet, check, fail, passed

__all__ = ["OUTCOMES", "outcome", "RecordedPrediction", "record_prediction", "tolerance_from_seeds",
           "check_direction", "check_learning_rate_fix", "check_rare_class_repair", "check_rare_class_weights"]

#: The choices a prediction about a change can take.
OUTCOMES = ("up", "same", "down")


class RecordedPrediction(NamedTuple):
    """A prediction as it was written before the experiment ran: the variable's name and the choice."""

    name: str
    choice: str


def outcome(before: float, after: float, tolerance: float) -> str:
    """"up", "down" or "same": did ``after`` move away from ``before`` by more than ``tolerance``?

    ``tolerance`` sits above the seed noise of the experiment (:func:`tolerance_from_seeds`); a change
    smaller than it cannot be told apart from running another seed, so it counts as "same". A non-finite
    ``after`` (a diverged run) counts as "down".
    """
    if not math.isfinite(after):
        return "down"
    if after - before > tolerance:
        return "up"
    if before - after > tolerance:
        return "down"
    return "same"


def tolerance_from_seeds(before, after, factor: float = 1.0, floor: float = 0.02) -> float:
    """The tolerance for one run's change, from the same experiment run with several seeds.

    ``before`` and ``after`` are per-seed scores of the two settings in the same seed order (e.g. the committed
    rows of lecture 08's benchmark). The seed noise of the change is the standard deviation of the per-seed
    differences ``after - before``: how much the change itself varies from one seed to the next. The tolerance
    is ``factor`` times it, at least ``floor``, rounded **up** to 0.01, so it never sits below that noise.
    """
    before, after = np.asarray(before, dtype=float), np.asarray(after, dtype=float)
    if before.shape != after.shape or before.ndim != 1 or before.size < 3:
        raise ValueError("before and after must be per-seed scores of the same seeds, at least 3 of them "
                         f"(got shapes {before.shape} and {after.shape}).")
    difference = after - before
    difference = difference[np.isfinite(difference)]
    if difference.size < 3:
        raise ValueError("fewer than 3 seeds have finite scores on both sides: the seed noise cannot be measured.")
    return float(math.ceil(max(floor, factor * float(np.std(difference, ddof=1))) * 100 - 1e-9) / 100)


def _choice(prediction, name: str) -> str:
    if prediction is None or prediction is Ellipsis:  # "not attempted" for ./course grade
        raise NotWrittenYet(f"{name} is still empty: write your prediction, one of {OUTCOMES}, in the cell above "
                            "and run it; this experiment does not run before you have predicted its result.")
    if not isinstance(prediction, str) or prediction.strip().lower() not in OUTCOMES:
        raise CheckFailed(f"{name} = {prediction!r} is not a prediction I can compare: use one of {OUTCOMES} "
                          "(a string, e.g. \"down\").")
    return prediction.strip().lower()


def record_prediction(prediction, name: str) -> RecordedPrediction:
    """Keep the prediction written *before* the experiment; call it first in the experiment's cell.

    Raises :class:`NotWrittenYet` while ``prediction`` is None (the cell then stops before anything is
    trained) and :class:`CheckFailed` for a value that is not one of :data:`OUTCOMES`. Returns the recorded
    prediction, which :func:`check_direction` compares with the measurement: changing the variable after the
    run does not change what was predicted.
    """
    return RecordedPrediction(name, _choice(prediction, name))


@check
def check_direction(prediction, before: float, after: float, tolerance: float, explanations: dict,
                    what: str = "Dice", name: str = "PREDICTION") -> None:
    """Compare a recorded prediction with the measured direction of a change; explain the measured one.

    Args:
        prediction: the :class:`RecordedPrediction` that :func:`record_prediction` returned before the run.
        before, after: the metric of the run before and after the change (one seed each).
        tolerance: changes up to this size count as "same" (above the seed noise: :func:`tolerance_from_seeds`).
        explanations: ``{"up": ..., "same": ..., "down": ...}``, why each outcome happens; the one for the
            measured outcome is shown.
        what: the metric's name in the message; name: the prediction's variable (for grading).

    Passes when the prediction matches the measurement; fails (recorded as failed) when it does not, with
    what was measured and why; "not attempted" while no prediction was written.
    """
    if prediction is None or prediction is Ellipsis:
        raise NotWrittenYet(f"{name} is still empty: write your prediction, one of {OUTCOMES}, and run the "
                            "experiment again.")
    if not isinstance(prediction, RecordedPrediction):
        fail(f"{name} must be recorded before the run: the experiment cell starts with "
             f"`recorded = checks.record_prediction({name}, name=\"{name}\")` and passes `recorded` to the check.")
    try:
        before, after, tolerance = float(before), float(after), float(tolerance)
    except (TypeError, ValueError):
        fail(f"before, after and tolerance must be numbers, got {before!r}, {after!r}, {tolerance!r}.")
    if not math.isfinite(before) or not math.isfinite(tolerance) or tolerance < 0:
        fail(f"before ({before}) and tolerance ({tolerance}) must be finite and the tolerance >= 0: "
             "take them from a run that did not diverge.")
    missing = [o for o in OUTCOMES if not isinstance(explanations, dict) or not explanations.get(o)]
    if missing:
        fail(f"explanations needs one sentence for each outcome; missing: {missing}.")
    measured = outcome(before, after, tolerance)
    shown_after = f"{after:.3f}" if math.isfinite(after) else "no number (the run diverged)"
    text = (f"{what} went from {before:.3f} to {shown_after} (changes within ±{tolerance:.2f}, the seed noise of "
            f"this experiment, count as 'same'): measured '{measured}'")
    why = explanations[measured]
    if prediction.choice == measured:
        passed(f"{prediction.name}: you predicted '{prediction.choice}' and {text}. Why: {why}")
        return
    fail(f"{prediction.name}: you predicted '{prediction.choice}', but {text}. Why: {why}")


def _range_test_points(rates, losses):
    from .. import dynamics as dyn

    rates = np.asarray(rates, dtype=float)
    losses = np.asarray(losses, dtype=float)
    if rates.shape != losses.shape or rates.ndim != 1 or len(rates) < 5:
        fail("rates and losses must be the range test's two lists (lr_range_test(...)['rates'], ['losses']).")
    finite = np.isfinite(losses)
    stop = len(losses) if finite.all() else int(np.argmin(finite))  # the losses before the first NaN/inf
    if stop < 5:
        fail("the range test's loss was not finite within its first 5 steps: start it at a smaller min_lr.")
    suggestion = dyn.suggest_learning_rate(rates[:stop], losses[:stop])
    raw_min = float(rates[int(np.argmin(losses[:stop]))])
    smooth_min = float(rates[int(np.argmin(dyn.smooth_losses(losses[:stop])))])
    return suggestion, min(raw_min, smooth_min)


@check
def check_learning_rate_fix(lr, rates, losses, history_loss=None, per_class_dice=None, diverged: bool = False,
                            background_dice: float | None = None, margin: float = 0.05,
                            budget_factor: float = 100.0) -> None:
    """Check a repaired learning rate against a range test and the run it gave.

    Args:
        lr: the student's learning rate.
        rates, losses: the range test's record (``lr_range_test(...)["rates"]``, ``["losses"]``).
        history_loss: the training losses per epoch of the run with ``lr``.
        per_class_dice: the held-out Dice per class of that run (class 0 = background).
        diverged: True when that run stopped with a NaN/inf loss.
        background_dice: the mean Dice of predicting background everywhere; the run must beat it by ``margin``.
        budget_factor: rates more than this factor below the range test's suggestion are "too slow".

    Fails for a rate at the range test's minimum or within a factor 2 below it (that is where the loss is
    about to blow up; the usual advice is several times lower, on the steep part of the curve), for a rate far below the suggestion, and for a
    run that diverged, whose loss did not fall, or that predicts (almost) only the background.
    """
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        fail(f"the learning rate must be a positive number such as 3e-3, got {lr!r}.")
    suggestion, minimum = _range_test_points(rates, losses)
    if lr > minimum / 2:
        fail(f"lr = {lr:g} is at or near the range test's minimum ({minimum:.2g}): the minimum is where the loss "
             "is about to turn up and explode, not where training is stable. Take several times less than the "
             f"minimum, on the steep part of the curve (the suggestion is {suggestion:.2g}).")
    if lr < suggestion / budget_factor:
        fail(f"lr = {lr:g} is more than {budget_factor:g} times below the suggestion {suggestion:.2g}: the run "
             "will hardly move within the budget (too slow, not unstable). Take a rate near the steep part of the curve.")
    if diverged or (history_loss is not None and not all(math.isfinite(float(v)) for v in history_loss)):
        fail(f"the run with lr = {lr:g} diverged (its loss became NaN/inf): the rate is still too large.")
    if history_loss is not None:
        history_loss = [float(v) for v in history_loss]
        if len(history_loss) > 1 and history_loss[-1] >= history_loss[0]:
            fail(f"with lr = {lr:g} the training loss did not fall ({history_loss[0]:.3f} -> {history_loss[-1]:.3f}): "
                 "look at the range test again and pick a rate where its loss falls steeply.")
    if per_class_dice is not None:
        per_class = np.nan_to_num(np.asarray(per_class_dice, dtype=float))
        score = float(per_class.mean())
        floor = (background_dice if background_dice is not None else 0.0) + margin
        if score <= floor:
            fail(f"with lr = {lr:g} the loss fell, but the held-out mean Dice is {score:.3f}, hardly above predicting "
                 f"the background everywhere ({floor - margin:.3f}): at this budget the rate is too small or still on "
                 "the high side. Try the suggestion of the range test.")
    passed(f"lr = {lr:g} lies on the range test's steep part (suggestion {suggestion:.2g}, minimum {minimum:.2g})"
           + (", the run's loss fell" if history_loss is not None else "")
           + (" and it segments more than the background." if per_class_dice is not None else "."))


def _weights(weights, frequencies):
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
    return weights, frequencies


def _rare_share(weights, frequencies, rare_class: int, min_gain: float) -> float:
    weights, frequencies = _weights(weights, frequencies)
    share = frequencies[rare_class] * weights[rare_class] / float(np.sum(frequencies * weights))
    pixels = float(frequencies[rare_class])
    if share < min_gain * pixels:
        kind = ("makes it lighter than the common classes, so it drowns" if share < pixels * 0.99 else
                "leaves it at about its share of the pixels, as plain cross-entropy does")
        fail(f"class {rare_class} (the rare class, {pixels:.2%} of the pixels) makes {share:.2%} of the weighted loss: "
             f"the weighting {kind}. Weigh each class by how rare it is, e.g. the inverse of its frequency "
             "(data.class_weights(..., 'inverse_frequency')).")
    return share


@check
def check_rare_class_weights(weights, frequencies, rare_class: int, min_gain: float = 3.0) -> None:
    """Check class weights for a cross-entropy that must make ``rare_class`` count.

    The rare class's share of the weighted loss, ``f_r w_r / sum_c f_c w_c``, must be at least ``min_gain``
    times its share of the pixels ``f_r``: weights that leave it at about its pixel share (all ones, or every
    class alike) change nothing for it, and weights that make it lighter than the common classes drown it.
    """
    share = _rare_share(weights, frequencies, rare_class, min_gain)
    passed(f"class {rare_class} now makes {share:.1%} of the weighted loss "
           f"(it is {float(np.asarray(frequencies)[rare_class]):.2%} of the pixels).")


@check
def check_rare_class_repair(weights, frequencies, rare_class: int, rare_dice_before: float,
                            rare_dice_after: float, tolerance: float, min_gain: float = 3.0) -> None:
    """Check the repair of a loss that drowned ``rare_class``: the weights, and the repaired run's result.

    Args:
        weights: the student's class weights (C,); frequencies: each class's share of the training pixels (C,).
        rare_dice_before, rare_dice_after: the rare class's held-out Dice with the broken and the repaired weights.
        tolerance: the rise must exceed it (above the seed noise of the rare class's Dice).

    Fails when the weights leave the rare class at about its pixel share or below (see
    :func:`check_rare_class_weights`), or when the repaired run's Dice of the rare class did not rise by more
    than ``tolerance``.
    """
    share = _rare_share(weights, frequencies, rare_class, min_gain)
    before, after = float(rare_dice_before), float(rare_dice_after)
    after = after if math.isfinite(after) else 0.0
    if after - before <= tolerance:
        fail(f"the weights give class {rare_class} {share:.1%} of the loss, but the repaired run's Dice of that class "
             f"is {after:.3f} against {before:.3f} with the broken weights: not a rise beyond the seed noise "
             f"({tolerance:.2f}). Weigh it more, or check that the run used your weights.")
    passed(f"class {rare_class} makes {share:.1%} of the weighted loss, and the repaired run finds it: its Dice rose "
           f"from {before:.3f} to {after:.3f} (more than the seed noise, {tolerance:.2f}).")
