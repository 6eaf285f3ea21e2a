"""Lecture 02 checks: right implementations pass, typical wrong ones fail with a fitting hint."""

import math

import pytest

from course_utils import checks
from course_utils.checks import CheckFailed


# ------------------------------------------------------------ conv_output_size
def conv_right(n, kernel, stride=1, padding=0, dilation=1):
    return (n + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def test_conv_output_size_right_passes(capsys):
    checks.check_conv_output_size(conv_right)
    assert capsys.readouterr().out.startswith("\N{HEAVY CHECK MARK} conv_output_size is right")


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) // s, r"returned 61 but expected 62: you forgot the \+ 1"),
        (lambda n, k, s, p, d: math.ceil((n + 2 * p - d * (k - 1) - 1) / s) + 1, "round down, not up"),
        (lambda n, k, s, p, d: (n + p - d * (k - 1) - 1) // s + 1, "padding is added on both sides"),
        (lambda n, k, s, p, d: (n + 2 * p - k) // s + 1, r"conv_output_size\(64, 3, 1, 2, 2\) returned 66 but "
                                                           r"expected 64: a kernel with dilation d spans"),
        (lambda n, k, s, p, d: n + 2 * p - d * (k - 1), "divide by the stride"),
        (lambda n, k, s, p, d: (n + 2 * p - d * (k - 1) - 1) / s + 1, "a float: sizes are whole numbers"),
        (lambda n, k, s, p, d: n, r"conv_output_size\(64, 3, 1, 0, 1\) returned 64 but expected 62: use floor"),
        (lambda n, k, s, p, d: None, "returned None of type NoneType"),
    ],
)
def test_conv_output_size_wrong_fails_with_hint(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_conv_output_size(wrong)


def test_conv_output_size_not_implemented_and_errors():
    def todo(n, kernel, stride, padding, dilation):
        raise NotImplementedError

    with pytest.raises(CheckFailed, match="todo is not written yet"):
        checks.check_conv_output_size(todo)
    with pytest.raises(CheckFailed, match="raised TypeError"):
        checks.check_conv_output_size(lambda n, kernel: n)
    with pytest.raises(CheckFailed, match="pass conv_output_size itself"):
        checks.check_conv_output_size(62)


# ------------------------------------------------------------ transposed_conv_output_size
def transposed_right(n, kernel, stride=1, padding=0, dilation=1, output_padding=0):
    return (n - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def test_transposed_right_passes(capsys):
    checks.check_transposed_conv_output_size(transposed_right)
    assert "transposed_conv_output_size is right" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (lambda n, k, s, p, d, op: (n - 1) * s - 2 * p + d * (k - 1) + 1, "forgot to add output_padding"),
        (lambda n, k, s, p, d, op: n * s - 2 * p + d * (k - 1) + op, r"\(n - 1\) strides apart"),
        (lambda n, k, s, p, d, op: (n - 1) * s - p + d * (k - 1) + op + 1, "subtract 2\\*padding"),
        (lambda n, k, s, p, d, op: (n - 1) * s + d * (k - 1) + op + 1, "padding removes pixels"),
        (lambda n, k, s, p, d, op: (n - 1) * s - 2 * p + k + op, "dilation d spans"),
        (lambda n, k, s, p, d, op: (n - 1) * s - 2 * p + d * (k - 1) + 2 * op + 1, "once, not twice"),
        (lambda n, k, s, p, d, op: n * s, r"returned 5 but expected 7"),
    ],
)
def test_transposed_wrong_fails_with_hint(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_transposed_conv_output_size(wrong)


# ------------------------------------------------------------ receptive_field
def rf_right(layers):
    rf, jump = 1, 1
    for kernel, stride, dilation in layers:
        rf += dilation * (kernel - 1) * jump
        jump *= stride
    return rf


def rf_no_jump(layers):
    return 1 + sum(d * (k - 1) for k, s, d in layers)


def rf_jump_first(layers):
    rf, jump = 1, 1
    for k, s, d in layers:
        jump *= s
        rf += d * (k - 1) * jump
    return rf


def rf_no_dilation(layers):
    rf, jump = 1, 1
    for k, s, d in layers:
        rf += (k - 1) * jump
        jump *= s
    return rf


def rf_sum_kernels(layers):
    return sum(k for k, s, d in layers) if layers else 1


def rf_starts_at_zero(layers):
    return rf_right(layers) - 1


def test_receptive_field_right_passes(capsys):
    checks.check_receptive_field(rf_right)
    assert "receptive_field is right" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong, message",
    [
        (rf_no_jump, r"receptive_field\(\[\(3, 1, 1\), \(2, 2, 1\), \(3, 1, 1\)\]\) returned 6 but expected 8: "
                     "after a layer with stride s"),
        (rf_jump_first, "update the jump AFTER"),
        (rf_no_dilation, "dilation\\*\\(kernel-1\\)\\*jump, not"),
        (rf_sum_kernels, "each layer adds \\(kernel-1\\) pixels"),
        (rf_starts_at_zero, "returned 2 but expected 3: start from rf = 1"),
    ],
)
def test_receptive_field_wrong_fails_with_hint(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_receptive_field(wrong)


def test_receptive_field_empty_stack():
    def no_empty(layers):
        return rf_right(layers) if layers else 0

    with pytest.raises(CheckFailed, match="with no layers each output pixel sees just itself"):
        checks.check_receptive_field(no_empty)
