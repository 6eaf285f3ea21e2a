"""Shared pieces of the exercise checkers."""

from __future__ import annotations


class CheckFailed(AssertionError):
    """Raised by a check when the student's code is not right yet.

    The message is one sentence: what is wrong, and a hint how to fix it.
    """


def fail(message: str) -> None:
    """Stop the check with ``message`` (what is wrong, and a hint)."""
    raise CheckFailed(message)


def passed(message: str) -> None:
    """Report a passed check in one line."""
    print(f"\N{HEAVY CHECK MARK} {message}")
