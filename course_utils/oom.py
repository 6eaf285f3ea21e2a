"""Retry training with a smaller batch when the GPU runs out of memory (framework-free).

On a GPU the batch size is usually limited by memory: too large a batch stops
training with ``torch.cuda.OutOfMemoryError`` (PyTorch) or
``tf.errors.ResourceExhaustedError`` (TensorFlow/Keras). :func:`fit_with_oom_retry`
catches exactly those, frees the memory, halves the batch size and starts
again::

    def train(batch_size):
        loader = make_loader(images, masks, batch_size=batch_size)   # rebuilt for every try
        model = UNet(...)
        return fit(model, loader, ...)

    history = fit_with_oom_retry(train, batch_size=32)

``train_fn`` must build everything that depends on the batch size (data
pipeline, and preferably the model and optimizer) itself: after a failure
the partly trained state is thrown away. Detection is by the error's class
name and message, so this module imports neither framework.
"""

from __future__ import annotations

import gc
import sys
from typing import Callable

__all__ = ["fit_with_oom_retry", "is_out_of_memory_error", "free_accelerator_memory", "OutOfMemoryRetryError"]

#: Class names of the frameworks' out-of-memory errors.
OOM_CLASS_NAMES = ("OutOfMemoryError", "ResourceExhaustedError")
#: Messages that mean "the accelerator ran out of memory" (checked in lower case).
OOM_MESSAGES = ("out of memory", "resource_exhausted", "resource exhausted", "oom when allocating")


class OutOfMemoryRetryError(RuntimeError):
    """Still out of memory at the smallest batch size allowed."""


def is_out_of_memory_error(error: BaseException) -> bool:
    """True for an accelerator out-of-memory error of PyTorch or TensorFlow (also when wrapped in another error).

    Recognised: a class named ``OutOfMemoryError`` or ``ResourceExhaustedError`` anywhere in the error's
    class hierarchy, or a message containing "out of memory" / "RESOURCE_EXHAUSTED" / "OOM when allocating"
    (PyTorch's older ``RuntimeError: CUDA out of memory``), following ``__cause__`` / ``__context__``.
    Python's own ``MemoryError`` (the computer's RAM, not the GPU) is not one: a smaller batch rarely fixes it.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if not isinstance(error, MemoryError):
            names = {cls.__name__ for cls in type(error).__mro__}
            if names.intersection(OOM_CLASS_NAMES):
                return True
            message = str(error).lower()
            if any(text in message for text in OOM_MESSAGES):
                return True
        error = error.__cause__ or error.__context__
    return False


def free_accelerator_memory() -> None:
    """Release what can be released: Python garbage, PyTorch's CUDA cache, Keras's global state.

    Only frameworks that are already imported are touched (nothing is imported here).
    """
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:  # pragma: no cover - a broken CUDA set-up must not hide the real problem
            pass
    keras = sys.modules.get("keras")
    if keras is not None:
        try:
            keras.backend.clear_session()  # drops Keras's graph/layer-name state of earlier models
        except Exception:  # pragma: no cover
            pass
    gc.collect()


def fit_with_oom_retry(train_fn: Callable[[int], object], batch_size: int, min_batch_size: int = 1,
                       log: Callable[[str], None] = print):
    """Call ``train_fn(batch_size)``; on an out-of-GPU-memory error free memory, halve the batch size, retry.

    Args:
        train_fn: ``train_fn(batch_size)`` trains and returns anything (a history, a model, ...). It must
            rebuild its data pipeline (and preferably the model and optimizer) with the batch size it is given.
        batch_size: the batch size to try first.
        min_batch_size: the smallest batch size to try; below it, give up.
        log: where to say what happens (``print`` by default; e.g. ``logging.warning``).

    Returns:
        Whatever the successful ``train_fn`` call returned.

    Raises:
        OutOfMemoryRetryError: still out of memory at ``min_batch_size`` (from the last OOM error).
        Any other error of ``train_fn`` unchanged (only out-of-memory errors are retried).
    """
    for name, value in (("batch_size", batch_size), ("min_batch_size", min_batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if min_batch_size > batch_size:
        raise ValueError(
            f"min_batch_size={min_batch_size} is larger than batch_size={batch_size}: "
            "pass a min_batch_size no larger than the first batch size."
        )
    if not callable(train_fn):
        raise TypeError(f"train_fn must be a function taking the batch size, got {type(train_fn).__name__}.")

    current = batch_size
    while True:
        try:
            return train_fn(current)
        except Exception as error:  # noqa: BLE001 - re-raised below unless it is an OOM
            if not is_out_of_memory_error(error):
                raise
            smaller = current // 2
            if smaller < min_batch_size:
                message = (
                    f"Out of GPU memory even at batch size {current} (min_batch_size={min_batch_size}): "
                    "use smaller images or crops, a smaller model (base_filters, depth), mixed precision, "
                    "or free the GPU (close other notebooks, restart the kernel)."
                )
                log(message)
                first_line = str(error).splitlines()[0][:300] if str(error) else ""
                raise OutOfMemoryRetryError(f"{message} Last error: {type(error).__name__}: {first_line}") from error
        # Outside the except block the error and its traceback (whose frames hold tensors) are released,
        # so the memory they pin can really be freed now.
        log(f"Out of GPU memory at batch size {current}: retrying with {smaller}.")
        free_accelerator_memory()
        current = smaller
