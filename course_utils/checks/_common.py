"""Shared pieces of the exercise checkers: one short block per failure, and a record for grading.

Every public check is wrapped by :func:`check`. The wrapper

* turns a ``NotImplementedError`` anywhere in the student's code into :class:`NotWrittenYet`
  ("``soft_dice_loss_torch`` is not written yet ..."), named after the function the student passed in;
* turns any other unexpected exception of the student's code into one :class:`CheckFailed` sentence;
* raises from a clean frame (``from None``) so that plain Python prints no chained traceback, and
  :class:`CheckFailed` renders in IPython/Jupyter as a short block without the course's internals
  (``_render_traceback_``), so a failing check shows a few lines, not sixty;
* appends one JSON line per check to the file named by ``$COURSE_CHECK_LOG`` when it is set (for tools
  and tests; ``./course grade`` does NOT read it, since the student's code could write that file):
  ``{"check", "target", "status", "message"}`` with status ``passed``, ``failed`` or ``not attempted``;
* when the grader armed the kernel (:func:`arm_grading`, run by ``./course grade`` at kernel start-up,
  before any cell), also shows the same record as a signed output of the cell that called the check
  (mimetype :data:`RECORD_MIME`, an HMAC-SHA256 with a per-run key and a sequence number). The grader
  counts only signed records it sees in the outputs of a cell that it executed and whose code (not a
  comment or string) calls that check. See :mod:`course_utils.grade` for what this does and does not
  guarantee.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import inspect
import json
import os

LOG_ENV = "COURSE_CHECK_LOG"
KEY_FILE_ENV = "COURSE_GRADE_KEY_FILE"
RECORD_MIME = "application/vnd.course-check-record+json"
_GRADING = {"key": None, "seq": 0}
EXERCISE_MARKER = 'raise NotImplementedError("Exercise'


class CheckFailed(AssertionError):
    """Raised by a check when the student's code is not right yet.

    The message is one short block: what is wrong, on which known case, and how to fix it.
    In Jupyter it is shown without the course's internal traceback.
    """

    _HEADER = "\x1b[1;31m\N{HEAVY BALLOT X} Check failed:\x1b[0m"

    def _render_traceback_(self):  # IPython/Jupyter show this instead of the full traceback
        return [f"{self._HEADER} {self}"]


class NotWrittenYet(CheckFailed):
    """The student's function still raises ``NotImplementedError`` (the exercise is not attempted yet)."""

    _HEADER = "\x1b[1;33m\N{LOWER RIGHT PENCIL} To do:\x1b[0m"


def fail(message: str) -> None:
    """Stop the check with ``message`` (what is wrong, and a hint); no chained traceback."""
    raise CheckFailed(message) from None


def passed(message: str) -> None:
    """Report a passed check in one line."""
    print(f"\N{HEAVY CHECK MARK} {message}")


def function_name(obj, default: str = "your function") -> str:
    """The student's own name for ``obj`` (a function or a class), e.g. ``soft_dice_loss_torch``."""
    name = getattr(obj, "__name__", None)
    if not isinstance(name, str) or name == "<lambda>":
        return default
    return name


def not_written(name: str) -> NotWrittenYet:
    return NotWrittenYet(f"{name} is not written yet: replace the `raise NotImplementedError(...)` line "
                         "with your code, run that cell, then run this check again.")


def is_unfinished(fn) -> bool:
    """True when ``fn``'s source still holds the exercise's ``raise NotImplementedError("Exercise...`` line."""
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return False
    return EXERCISE_MARKER in source


def require(*functions) -> None:
    """Stop a cell that uses the student's functions while one of them is not written yet.

    For cells after the exercises (a comparison, a training run): instead of the exercise's own
    "write this part" error, the student reads which function to finish first.
    """
    missing = [function_name(fn) for fn in functions if is_unfinished(fn)]
    if missing:
        raise NotWrittenYet(f"this cell uses {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                            "not written yet: finish that exercise (and its check) above first.") from None


def arm_grading() -> bool:
    """Take the grader's signing key (run by ``./course grade`` in the kernel before the notebook's first cell).

    The key comes from the file named by ``$COURSE_GRADE_KEY_FILE``; the file is deleted and the variable
    removed at once, so the notebook's code cannot read them from disk or from ``os.environ``. Returns
    whether grading is armed. Outside grading (no variable) nothing happens.
    """
    path = os.environ.pop(KEY_FILE_ENV, None)
    if not path:
        return False
    with open(path, "rb") as handle:
        key = handle.read()
    from ..safety import remove

    remove(path, inside=os.path.dirname(os.path.abspath(path)))  # the grader's own key file
    _GRADING.update(key=key, seq=0)
    return True


def sign_record(key: bytes, record: str) -> str:
    """The hex HMAC-SHA256 of a record's JSON text (the grader checks it with the same function)."""
    return hmac.new(key, record.encode("utf-8"), hashlib.sha256).hexdigest()


def _show_signed(record: dict) -> None:
    key = _GRADING["key"]
    if key is None:
        return
    _GRADING["seq"] += 1
    text = json.dumps(dict(record, seq=_GRADING["seq"]), sort_keys=True)
    try:
        from IPython.display import display
    except ImportError:  # not in a kernel: nothing to show
        return
    display({RECORD_MIME: {"record": text, "sig": sign_record(key, text)}}, raw=True)


def _record(check_name: str, target: str, status: str, message: str) -> None:
    _show_signed({"check": check_name, "target": target, "status": status, "message": message})
    path = os.environ.get(LOG_ENV)
    if not path:
        return
    line = json.dumps({"check": check_name, "target": target, "status": status, "message": message})
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


def _target(args, kwargs) -> str:
    """The student's function/class names passed to a check (its callable arguments)."""
    names = [function_name(a, "") for a in list(args) + list(kwargs.values()) if callable(a)]
    if not any(names) and isinstance(kwargs.get("name"), str):  # a prediction task names its variable
        return kwargs["name"]
    return ", ".join(n for n in names if n)


_DEPTH = [0]


def check(fn):
    """Decorator for a public check: clean failures, "not written yet" with the student's name, a record."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _DEPTH[0]:  # a check called by another check (a dispatcher): the outer one reports
            return fn(*args, **kwargs)
        target = _target(args, kwargs)
        _DEPTH[0] += 1
        try:
            result = fn(*args, **kwargs)
        except NotWrittenYet as error:
            _record(fn.__name__, target, "not attempted", str(error))
            raise NotWrittenYet(str(error)) from None
        except CheckFailed as error:
            _record(fn.__name__, target, "failed", str(error))
            raise CheckFailed(str(error)) from None
        except NotImplementedError:
            error = not_written(target.split(",")[0] or "your function")
            _record(fn.__name__, target, "not attempted", str(error))
            raise error from None
        except Exception as error:  # noqa: BLE001 - any error of the student's code becomes one sentence
            if _is_usage_error(error):  # the notebook called the check wrongly: a course bug, not a mistake
                raise
            message = _unexpected(target, error)
            _record(fn.__name__, target, "failed", message)
            raise CheckFailed(message) from None
        finally:
            _DEPTH[0] -= 1
        _record(fn.__name__, target, "passed", "")
        return result

    wrapper.__wrapped_check__ = True
    return wrapper


def _is_usage_error(error) -> bool:
    return isinstance(error, ValueError) and "framework must be" in str(error)


def _unexpected(target: str, error: Exception) -> str:
    detail = (str(error).strip().splitlines() or [""])[0][:200]
    return (f"{target or 'your code'} raised {type(error).__name__}"
            + (f" ({detail})" if detail else "")
            + ": run it on a small example to see where, and fix that first.")
