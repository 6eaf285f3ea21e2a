"""Checks for lecture 02 (from classification to dense prediction).

The student writes ``conv_output_size``, ``transposed_conv_output_size`` and
``receptive_field``; each check runs them on known cases, and on the first
wrong answer names the case, the expected value and a hint that fits the
mistake (e.g. forgotten dilation, padding added once, ceil instead of floor).
Framework-free (the reference values come from :mod:`course_utils.sizes`).
"""

from __future__ import annotations

import math
import numbers

from .. import sizes
from ._common import check, fail, function_name, not_written, passed

__all__ = ["check_conv_output_size", "check_transposed_conv_output_size", "check_receptive_field"]


def _call(fn, name, args):
    call = f"{name}({', '.join(str(a) for a in args)})"
    try:
        return call, fn(*args)
    except NotImplementedError:
        raise not_written(function_name(fn, name)) from None
    except Exception as error:  # noqa: BLE001 - report any error of the student's code in one sentence
        fail(f"{call} raised {type(error).__name__}: {error} - it must work for these arguments.")


def _check_integer(call, value, expected):
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        fail(f"{call} returned {value!r} of type {type(value).__name__} but expected the integer {expected}.")
    if not isinstance(value, numbers.Integral):
        if value == expected:
            fail(f"{call} returned {value!r}, a float: sizes are whole numbers, use // instead of / and return an int.")
        return False
    return int(value) == expected


# ---------------------------------------------------------------- conv_output_size
_CONV_CASES = [  # (n, kernel, stride, padding, dilation)
    (64, 3, 1, 0, 1), (64, 5, 1, 0, 1), (32, 1, 1, 0, 1),
    (64, 3, 1, 1, 1), (64, 5, 1, 2, 1), (28, 3, 1, 2, 1),
    (64, 2, 2, 0, 1), (65, 2, 2, 0, 1), (64, 3, 2, 1, 1), (224, 7, 2, 3, 1), (33, 3, 3, 0, 1),
    (64, 3, 1, 2, 2), (64, 3, 1, 0, 2), (64, 3, 1, 6, 6), (50, 5, 2, 1, 3),
]


def _conv_variants():
    def e(k, d):
        return d * (k - 1) + 1

    return [
        (lambda n, k, s, p, d: (n + 2 * p - e(k, d)) // s,
         "you forgot the + 1 (a kernel that fits exactly once still gives one output)"),
        (lambda n, k, s, p, d: math.ceil((n + 2 * p - e(k, d)) / s) + 1,
         "round down, not up: a kernel position that sticks out of the (padded) input does not count - use //"),
        (lambda n, k, s, p, d: (n + p - e(k, d)) // s + 1,
         "padding is added on both sides, so the padded length is n + 2*padding"),
        (lambda n, k, s, p, d: (n + 2 * p - k) // s + 1,
         "a kernel with dilation d spans d*(kernel-1)+1 pixels - use that instead of kernel"),
        (lambda n, k, s, p, d: n + 2 * p - e(k, d) + 1,
         "divide by the stride: only every stride-th kernel position is used"),
    ]


def _diagnose(fn, cases, args, value, variants, default):
    """Hint of the typical mistake that explains ``fn``: first one matching on every case, else on this one."""
    outputs = []
    for case in cases:
        try:
            outputs.append(fn(*case))
        except Exception:  # noqa: BLE001
            outputs.append(None)
    for variant, hint in variants:
        if all(out == variant(*case) for out, case in zip(outputs, cases)):
            return hint
    for variant, hint in variants:
        if value == variant(*args):
            return hint
    return default


@check
def check_conv_output_size(conv_output_size) -> None:
    """Check ``conv_output_size(n, kernel, stride, padding, dilation)`` on known cases."""
    if not callable(conv_output_size):
        fail(f"check_conv_output_size needs your function, got {conv_output_size!r}: pass conv_output_size itself.")
    for args in _CONV_CASES:
        expected = sizes.output_size(*args)
        call, value = _call(conv_output_size, "conv_output_size", args)
        if not _check_integer(call, value, expected):
            hint = _diagnose(conv_output_size, _CONV_CASES, args, value, _conv_variants(),
                             "use floor((n + 2*padding - dilation*(kernel-1) - 1) / stride) + 1")
            fail(f"{call} returned {value} but expected {expected}: {hint}.")
    passed(f"conv_output_size is right on {len(_CONV_CASES)} cases (kernel, padding, stride, dilation).")


# ---------------------------------------------------------------- transposed_conv_output_size
_TRANSPOSED_CASES = [  # (n, kernel, stride, padding, dilation, output_padding)
    (5, 3, 1, 0, 1, 0), (8, 1, 1, 0, 1, 0),
    (32, 2, 2, 0, 1, 0), (32, 3, 2, 0, 1, 0), (16, 4, 4, 0, 1, 0),
    (32, 4, 2, 1, 1, 0), (32, 3, 1, 1, 1, 0),
    (32, 3, 2, 1, 1, 1), (15, 5, 3, 2, 1, 2),
    (5, 3, 1, 0, 2, 0), (10, 3, 2, 2, 2, 1),
]


def _transposed_variants():
    def e(k, d):
        return d * (k - 1) + 1

    return [
        (lambda n, k, s, p, d, op: (n - 1) * s - 2 * p + e(k, d),
         "you forgot to add output_padding (once, on one side)"),
        (lambda n, k, s, p, d, op: (n - 1) * s - 2 * p + e(k, d) + 2 * op, "add output_padding once, not twice"),
        (lambda n, k, s, p, d, op: n * s - 2 * p + e(k, d) + op - 1,
         "the outputs of n inputs are (n - 1) strides apart, not n strides"),
        (lambda n, k, s, p, d, op: (n - 1) * s - p + e(k, d) + op, "padding is removed from both sides: subtract 2*padding"),
        (lambda n, k, s, p, d, op: (n - 1) * s + e(k, d) + op,
         "padding removes pixels in a transposed convolution: subtract 2*padding"),
        (lambda n, k, s, p, d, op: (n - 1) * s - 2 * p + k + op,
         "a kernel with dilation d spans d*(kernel-1)+1 pixels - use that instead of kernel"),
        (lambda n, k, s, p, d, op: n * s,
         "the output is not simply n*stride: count (n-1)*stride + the kernel's extent, minus the padding"),
    ]


@check
def check_transposed_conv_output_size(transposed_conv_output_size) -> None:
    """Check ``transposed_conv_output_size(n, kernel, stride, padding, dilation, output_padding)``."""
    if not callable(transposed_conv_output_size):
        fail("check_transposed_conv_output_size needs your function: pass transposed_conv_output_size itself.")
    for args in _TRANSPOSED_CASES:
        expected = sizes.transposed_output_size(*args)
        call, value = _call(transposed_conv_output_size, "transposed_conv_output_size", args)
        if not _check_integer(call, value, expected):
            hint = _diagnose(transposed_conv_output_size, _TRANSPOSED_CASES, args, value, _transposed_variants(),
                             "use (n - 1)*stride - 2*padding + dilation*(kernel-1) + output_padding + 1")
            fail(f"{call} returned {value} but expected {expected}: {hint}.")
    passed(
        f"transposed_conv_output_size is right on {len(_TRANSPOSED_CASES)} cases "
        "(kernel, stride, padding, dilation, output_padding)."
    )


# ---------------------------------------------------------------- receptive_field
_RF_CASES = [
    [(3, 1, 1)],
    [(5, 1, 1)],
    [(3, 1, 1), (3, 1, 1)],
    [(3, 1, 1), (3, 1, 1), (3, 1, 1)],
    [(3, 1, 1), (2, 2, 1), (3, 1, 1)],
    [(3, 1, 1), (3, 1, 1), (2, 2, 1), (3, 1, 1), (3, 1, 1), (2, 2, 1), (3, 1, 1)],
    [(7, 2, 1), (3, 2, 1), (3, 1, 1)],
    [(3, 1, 2)],
    [(3, 1, 1), (3, 1, 2), (3, 1, 4)],
    [(3, 2, 1), (3, 1, 2)],
    [],
]


def _rf_variants(layers):
    """Receptive fields of typical wrong implementations, with a hint each."""
    no_jump = 1 + sum(d * (k - 1) for k, s, d in layers)
    jump_first, jump = 1, 1
    for k, s, d in layers:
        jump *= s
        jump_first += d * (k - 1) * jump
    no_dilation, jump = 1, 1
    for k, s, d in layers:
        no_dilation += (k - 1) * jump
        jump *= s
    sum_kernels = sum(d * (k - 1) + 1 for k, s, d in layers)
    return [
        (no_jump, "after a layer with stride s, every later kernel step covers s times more input pixels: "
                  "keep the product of the strides so far (the jump) and add (kernel-1)*jump"),
        (jump_first, "update the jump AFTER adding the layer's growth: a layer's own stride does not "
                     "widen its own kernel, only the layers after it"),
        (no_dilation, "a dilated kernel grows the field by dilation*(kernel-1)*jump, not (kernel-1)*jump"),
        (sum_kernels, "each layer adds (kernel-1) pixels (times dilation and jump), not kernel: start from rf = 1"),
    ]


@check
def check_receptive_field(receptive_field) -> None:
    """Check ``receptive_field(layers)`` with ``layers`` a list of (kernel, stride, dilation)."""
    if not callable(receptive_field):
        fail(f"check_receptive_field needs your function, got {receptive_field!r}: pass receptive_field itself.")
    for layers in _RF_CASES:
        expected = sizes.receptive_field(layers)
        call, value = _call(receptive_field, "receptive_field", (list(layers),))
        if not _check_integer(call, value, expected):
            if not layers:
                fail(f"{call} returned {value} but expected 1: with no layers each output pixel sees just "
                     "itself, so start from rf = 1.")
            hint = next((h for wrong, h in _rf_variants(layers) if value == wrong),
                        "start from rf = 1, jump = 1; per layer: rf += dilation*(kernel-1)*jump, then jump *= stride")
            fail(f"{call} returned {value} but expected {expected}: {hint}.")
    passed(f"receptive_field is right on {len(_RF_CASES)} stacks (convolutions, pooling, strides, dilation).")
