"""Predict-run-explain tasks: the student writes a prediction, a cell measures, the check compares and explains.

A task has three cells: the student's prediction (a number or one of a few choices) in a variable, a short
experiment that measures the answer, and ``check_prediction``. A right prediction passes with the reason; a
wrong one fails with the measured value and the reason (the point is the explanation, not the mark); a
missing prediction (``None``) counts as not attempted.
"""

from __future__ import annotations

import math
import numbers

from ._common import CheckFailed, NotWrittenYet, check, passed

__all__ = ["check_prediction", "closest_choice"]


def closest_choice(value: float, choices: dict) -> str:
    """The label in ``choices`` ({label: number}) whose number is closest to ``value``.

    >>> closest_choice(3.97, {"2x": 2, "4x": 4, "8x": 8})
    '4x'
    """
    return min(choices, key=lambda label: abs(float(choices[label]) - float(value)))


def _norm(text) -> str:
    return " ".join(str(text).strip().lower().split())


@check
def check_prediction(prediction, measured, *, name: str, explanation: str, choices=None,
                     tolerance: float | None = None, relative: float | None = None, unit: str = "") -> None:
    """Compare the student's ``prediction`` with the ``measured`` result and explain either way.

    Args:
        prediction: the student's answer; ``None`` means "not written yet".
        measured: what the experiment measured (a number, or one of ``choices``).
        name: the variable the student fills in (e.g. ``"PREDICTION_SKIPS"``), used in messages and grading.
        explanation: one or two sentences saying why the measured result comes out as it does.
        choices: the allowed answers (strings) for a choice question; None for a number.
        tolerance / relative: absolute / relative tolerance for a number (default: exact).
        unit: shown after numbers ("pixels").
    """
    if prediction is None or prediction is Ellipsis:
        raise NotWrittenYet(f"{name} is not written yet: set {name} to your prediction"
                            + (f" (one of {', '.join(repr(c) for c in choices)})" if choices else " (a number)")
                            + " before you run the experiment, then run this check.")
    if choices is not None:
        allowed = {_norm(c): c for c in choices}
        if _norm(prediction) not in allowed:
            raise CheckFailed(f"{name} = {prediction!r} is not one of the choices "
                              f"{', '.join(repr(c) for c in choices)}: pick one of them.")
        right = _norm(prediction) == _norm(measured)
        shown_pred, shown_meas = repr(allowed[_norm(prediction)]), repr(measured)
    else:
        if isinstance(prediction, bool) or not isinstance(prediction, numbers.Real) or not math.isfinite(prediction):
            raise CheckFailed(f"{name} = {prediction!r} is not a number: write your prediction as a number, "
                              f"e.g. {name} = 10.")
        allowed_error = max(tolerance or 0.0, abs(float(measured)) * (relative or 0.0))
        right = abs(float(prediction) - float(measured)) <= allowed_error + 1e-12
        suffix = f" {unit}" if unit else ""
        shown_pred, shown_meas = f"{prediction:g}{suffix}", f"{float(measured):.4g}{suffix}"
    if right:
        passed(f"{name}: you predicted {shown_pred} and the experiment measured {shown_meas}. Why: {explanation}")
        return
    raise CheckFailed(f"{name}: you predicted {shown_pred}, but the experiment measured {shown_meas}. "
                      f"Why: {explanation}")
