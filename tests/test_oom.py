"""course_utils.oom: halve the batch size on out-of-GPU-memory errors, re-raise everything else."""

from __future__ import annotations

import subprocess
import sys

import pytest

from course_utils import oom


# Stand-ins named like the frameworks' errors (the module recognises them by name and message).
class OutOfMemoryError(RuntimeError):
    """Like torch.cuda.OutOfMemoryError (a RuntimeError subclass)."""


class ResourceExhaustedError(Exception):
    """Like tf.errors.ResourceExhaustedError."""


class TorchCudaError(RuntimeError):
    pass


def _failing_above(limit, error_factory):
    calls = []

    def train_fn(batch_size):
        calls.append(batch_size)
        if batch_size > limit:
            raise error_factory(batch_size)
        return {"batch_size": batch_size}

    return train_fn, calls


@pytest.mark.parametrize(
    "factory",
    [
        lambda b: OutOfMemoryError(f"CUDA out of memory. Tried to allocate {b} MiB"),
        lambda b: ResourceExhaustedError("OOM when allocating tensor with shape[32,64,256,256]"),
        lambda b: RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"),  # torch < 1.13
        lambda b: ValueError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate"),  # XLA
    ],
    ids=["torch-OutOfMemoryError", "tf-ResourceExhaustedError", "old-torch-RuntimeError", "xla-message"],
)
def test_halves_until_it_fits_and_says_so(factory):
    train_fn, calls = _failing_above(8, factory)
    messages = []
    result = oom.fit_with_oom_retry(train_fn, 32, log=messages.append)
    assert result == {"batch_size": 8}
    assert calls == [32, 16, 8]
    assert messages == [
        "Out of GPU memory at batch size 32: retrying with 16.",
        "Out of GPU memory at batch size 16: retrying with 8.",
    ]


def test_first_try_that_fits_runs_once_and_logs_nothing():
    train_fn, calls = _failing_above(64, lambda b: OutOfMemoryError("out of memory"))
    messages = []
    assert oom.fit_with_oom_retry(train_fn, 16, log=messages.append) == {"batch_size": 16}
    assert calls == [16] and messages == []


def test_other_errors_are_re_raised_unchanged():
    calls = []

    def train_fn(batch_size):
        calls.append(batch_size)
        raise ValueError("masks must be (B, H, W)")

    with pytest.raises(ValueError, match="masks must be"):
        oom.fit_with_oom_retry(train_fn, 32, log=lambda m: None)
    assert calls == [32]  # no retry for a bug
    with pytest.raises(KeyError):
        oom.fit_with_oom_retry(lambda b: {}["missing"], 4, log=lambda m: None)
    with pytest.raises(MemoryError):  # the computer's RAM: a smaller batch is not the fix
        oom.fit_with_oom_retry(lambda b: (_ for _ in ()).throw(MemoryError()), 4, log=lambda m: None)


def test_gives_up_below_min_batch_size_with_a_clear_message():
    train_fn, calls = _failing_above(0, lambda b: OutOfMemoryError("CUDA out of memory"))
    messages = []
    with pytest.raises(oom.OutOfMemoryRetryError, match="even at batch size 4 \\(min_batch_size=4\\)") as info:
        oom.fit_with_oom_retry(train_fn, 16, min_batch_size=4, log=messages.append)
    assert calls == [16, 8, 4]
    assert isinstance(info.value.__cause__, OutOfMemoryError)
    assert "smaller images" in str(info.value)
    assert messages[-1].startswith("Out of GPU memory even at batch size 4")
    # With the default min_batch_size the last try is batch size 1.
    train_fn, calls = _failing_above(0, lambda b: ResourceExhaustedError("OOM"))
    with pytest.raises(oom.OutOfMemoryRetryError):
        oom.fit_with_oom_retry(train_fn, 6, log=lambda m: None)
    assert calls == [6, 3, 1]


def test_wrapped_oom_is_recognised():
    def train_fn(batch_size):
        if batch_size > 2:
            try:
                raise OutOfMemoryError("CUDA out of memory")
            except OutOfMemoryError as inner:
                raise RuntimeError("training step failed") from inner
        return batch_size

    assert oom.fit_with_oom_retry(train_fn, 4, log=lambda m: None) == 2
    assert not oom.is_out_of_memory_error(TorchCudaError("device-side assert triggered"))


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        oom.fit_with_oom_retry(lambda b: b, 0)
    with pytest.raises(ValueError, match="larger than batch_size"):
        oom.fit_with_oom_retry(lambda b: b, 4, min_batch_size=8)
    with pytest.raises(TypeError, match="train_fn"):
        oom.fit_with_oom_retry(None, 4)


def test_free_memory_imports_no_framework():
    code = (
        "import sys\n"
        "from course_utils import oom\n"
        "oom.free_accelerator_memory()\n"
        "print(','.join(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
