"""Is the input pipeline fast enough? Measure it against the training step (framework-free).

A GPU is only as fast as the data it is fed. Two numbers answer the question:

- :func:`measure_input_pipeline`: images per second that a ``tf.data.Dataset`` or a PyTorch
  ``DataLoader`` (any iterable of batches) delivers, with no model attached;
- :func:`measure_train_step`: images per second that one training step consumes, always fed the
  same batch that is already in memory (so the data pipeline plays no part).

:func:`pipeline_report` compares them: when the pipeline delivers fewer images per second than the
step consumes, the accelerator waits for data part of the time, and a bigger GPU would not help.
Warm-up batches/steps (worker start-up, graph tracing, cuDNN autotuning) are excluded.

A batch is ``(images, masks)`` (or any tuple/list/dict whose first entry is the image batch, or the
image batch itself); its size is ``len`` / ``shape[0]`` of the images.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, Iterable

__all__ = ["batch_size_of", "measure_input_pipeline", "measure_train_step", "pipeline_report", "PipelineReport"]


def batch_size_of(batch) -> int:
    """Number of images in ``batch``: (images, masks) tuple/list, dict (first value) or an array/tensor."""
    first = batch
    if isinstance(batch, dict):
        if not batch:
            raise ValueError("got an empty dict as a batch: yield (images, masks).")
        first = next(iter(batch.values()))
    elif isinstance(batch, (tuple, list)):
        if not batch:
            raise ValueError("got an empty tuple as a batch: yield (images, masks).")
        first = batch[0]
    shape = getattr(first, "shape", None)
    if shape is not None and len(shape) > 0 and shape[0] is not None:
        return int(shape[0])
    try:
        return len(first)
    except TypeError:
        raise TypeError(
            f"cannot tell how many images a batch of type {type(first).__name__} holds: "
            "yield (images, masks) with images of shape (B, ...)."
        ) from None


def _positive_int(name, value, allow_zero=False):
    low = 0 if allow_zero else 1
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}.")


def _dry_run_counts(warmup: int, count: int) -> tuple[int, int]:
    """``(warmup, count)``, or at most one warm-up and ``env.DRY_RUN_STEPS`` timed steps in a dry run."""
    from . import env

    if not env.is_dry_run():
        return warmup, count
    return min(warmup, 1), min(count, env.DRY_RUN_STEPS)


def measure_input_pipeline(iterable: Iterable, num_batches: int, warmup: int = 2,
                           clock: Callable[[], float] = time.perf_counter) -> float:
    """Images per second delivered by ``iterable`` (a ``tf.data.Dataset``, a ``DataLoader``, ...).

    Draws ``warmup`` batches untimed, then times ``num_batches`` batches and counts their images.
    When the iterable is exhausted it is iterated again (the next epoch), like training does; a
    one-shot iterator that runs dry raises ValueError.

    clock: the timer (``time.perf_counter``); tests pass a fake one.
    """
    _positive_int("num_batches", num_batches)
    _positive_int("warmup", warmup, allow_zero=True)
    warmup, num_batches = _dry_run_counts(warmup, num_batches)
    iterator = iter(iterable)
    restarted_empty = False

    def next_batch():
        nonlocal iterator, restarted_empty
        try:
            return next(iterator)
        except StopIteration:
            iterator = iter(iterable)  # next epoch
            try:
                return next(iterator)
            except StopIteration:
                raise ValueError(
                    "the pipeline ran out of batches and yields nothing when iterated again: pass the "
                    "Dataset/DataLoader itself (not iter(...)), or a smaller num_batches + warmup."
                ) from None

    for _ in range(warmup):
        next_batch()
    images = 0
    start = clock()
    for _ in range(num_batches):
        images += batch_size_of(next_batch())
    elapsed = clock() - start
    return images / max(elapsed, 1e-12)


def _auto_sync():
    """Wait for queued CUDA work when PyTorch is loaded and on a GPU (GPU calls return before finishing)."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.synchronize()


def measure_train_step(step_fn: Callable, batch, num_steps: int, warmup: int = 2,
                       sync: Callable[[], None] | None | str = "auto",
                       clock: Callable[[], float] = time.perf_counter) -> float:
    """Images per second consumed by ``step_fn(batch)``, one training step on a batch already in memory.

    Runs ``warmup`` untimed steps (tracing, autotuning), then times ``num_steps`` steps.
    sync: called before reading the clock so queued GPU work is counted; "auto" waits for CUDA when
          PyTorch is loaded (Keras's ``train_on_batch`` already returns finished numbers); None = no sync.
    clock: the timer (``time.perf_counter``); tests pass a fake one.
    """
    _positive_int("num_steps", num_steps)
    _positive_int("warmup", warmup, allow_zero=True)
    warmup, num_steps = _dry_run_counts(warmup, num_steps)
    if not callable(step_fn):
        raise TypeError(f"step_fn must be a function taking a batch, got {type(step_fn).__name__}.")
    if sync == "auto":
        sync = _auto_sync
    sync = sync or (lambda: None)
    size = batch_size_of(batch)
    for _ in range(warmup):
        step_fn(batch)
    sync()
    start = clock()
    for _ in range(num_steps):
        step_fn(batch)
    sync()
    elapsed = clock() - start
    return size * num_steps / max(elapsed, 1e-12)


@dataclass(frozen=True)
class PipelineReport:
    """Input pipeline vs training step, in images per second (see :func:`pipeline_report`)."""

    pipeline_images_per_s: float
    step_images_per_s: float
    name: str = ""

    @property
    def ratio(self) -> float:
        """Pipeline speed / step speed (< 1: the accelerator waits for data)."""
        return self.pipeline_images_per_s / self.step_images_per_s

    @property
    def accelerator_waits(self) -> bool:
        return self.ratio < 1.0

    @property
    def wait_fraction(self) -> float:
        """Fraction of the time the accelerator would wait, if loading overlaps with training (prefetching)."""
        return max(0.0, 1.0 - self.ratio)

    def __str__(self) -> str:
        who = f"{self.name}: " if self.name else ""
        p, s = self.pipeline_images_per_s, self.step_images_per_s
        if self.accelerator_waits:
            return (
                f"{who}the input pipeline delivers {p:,.0f} images/s but a training step consumes {s:,.0f} images/s: "
                f"the accelerator would wait for data about {self.wait_fraction:.0%} of the time. Speed up the "
                "pipeline: more DataLoader workers (num_workers) / a parallel tf.data map with prefetch, cache "
                "decoded and resized images, cheaper augmentation."
            )
        margin = " (only just)" if self.ratio < 1.2 else ""
        return (
            f"{who}the input pipeline delivers {p:,.0f} images/s, {self.ratio:.1f}x what a training step consumes "
            f"({s:,.0f} images/s): the accelerator does not wait for data{margin}."
        )

    def _repr_pretty_(self, printer, cycle):  # IPython shows the sentence
        printer.text(str(self))


def pipeline_report(pipeline_images_per_s: float, step_images_per_s: float, name: str = "") -> PipelineReport:
    """Compare pipeline and training-step throughput; ``str(report)`` says whether the accelerator waits.

    Both in images per second, e.g. from :func:`measure_input_pipeline` and :func:`measure_train_step`.
    Assumes loading overlaps with training (``prefetch`` / DataLoader workers); without overlap the two
    times add up and the step always waits for loading.
    """
    for label, value in (("pipeline_images_per_s", pipeline_images_per_s), ("step_images_per_s", step_images_per_s)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise ValueError(f"{label} must be a positive number of images per second, got {value!r}.")
    return PipelineReport(float(pipeline_images_per_s), float(step_images_per_s), name)
