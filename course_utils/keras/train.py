"""Training helpers for Keras 3: compile, callbacks, prediction.

Keras already has the training loop (``model.fit``) and its progress bar;
these helpers only fix the course's choices in one place so that lecture 03
and the PyTorch side (:mod:`course_utils.torch.train`) agree:

- :func:`compile_model`: Adam, the course's cross-entropy on logits, and
  Dice/IoU metrics named ``"dice"``/``"iou"`` (so the history has
  ``val_dice``/``val_iou`` like PyTorch's ``fit``). Binary problems score the
  foreground class 1, multi-class problems the mean over classes.
- :func:`training_callbacks`: early stopping and a best-only checkpoint on the
  monitored metric; the best weights are loaded back at the end of ``fit``; a
  loss that becomes NaN/inf stops training with an error (:class:`StopOnNonFiniteLoss`).
- :class:`EpochLog`: one short line per epoch (use with ``fit(..., verbose=0)``).
- :func:`predict` / :func:`predict_masks`: NumPy NHWC logits / class masks.

Shapes: images (N, H, W, C) float32 in [0, 1], masks (N, H, W) int, logits
(N, H, W, K).
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from ..data import check_image_batch

__all__ = [
    "compile_model",
    "install_dry_run_cap",
    "training_callbacks",
    "RestoreBestCheckpoint",
    "StopOnNonFiniteLoss",
    "EpochLog",
    "load_checkpoint",
    "predict",
    "predict_masks",
]


def install_dry_run_cap() -> None:
    """In a dry run (``COURSE_DRY_RUN=1``), cap every ``keras.Model.fit`` to 1 epoch of a few steps.

    Called when ``course_utils.keras`` is imported, so notebooks need no edits:
    ``epochs`` becomes 1 (after ``initial_epoch``), ``steps_per_epoch`` and
    ``validation_steps`` at most ``env.DRY_RUN_STEPS``. Does nothing outside a dry run.
    """
    import functools
    import inspect

    from .. import env

    if not env.is_dry_run() or getattr(keras.Model.fit, "_course_dry_run", False):
        return
    original = keras.Model.fit
    signature = inspect.signature(original)

    def capped_steps(steps, data, batch_size):
        # A data set of no more batches than the cap runs whole: asking it for more makes Keras warn that
        # the input "ran out of data", a warning that the dry run itself would have caused.
        if steps is None and (batches := _batch_count(data, batch_size)) is not None \
                and batches <= env.DRY_RUN_STEPS:
            return None
        return env.dry_run_cap(1, steps)[1]

    @functools.wraps(original)
    def fit(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        arguments = bound.arguments
        epochs, _ = env.dry_run_cap(arguments.get("epochs", 1))
        arguments["epochs"] = int(arguments.get("initial_epoch", 0) or 0) + epochs
        batch_size = arguments.get("batch_size")
        arguments["steps_per_epoch"] = capped_steps(arguments.get("steps_per_epoch"), arguments.get("x"), batch_size)
        validation = arguments.get("validation_data")
        if validation is not None:
            first = validation[0] if isinstance(validation, (tuple, list)) else validation
            arguments["validation_steps"] = capped_steps(arguments.get("validation_steps"), first,
                                                         arguments.get("validation_batch_size") or batch_size)
        return original(*bound.args, **bound.kwargs)

    fit._course_dry_run = True
    keras.Model.fit = fit


def _batch_count(data, batch_size=None) -> int | None:
    """Batches in one pass over what ``fit`` was given, or None when that is not known up front.

    A ``tf.data.Dataset`` (its cardinality; infinite or unknown gives None), a ``keras.utils.PyDataset``
    (its length) or an array of N samples (ceil(N / batch_size), Keras' default batch size being 32).
    """
    if data is None:
        return None
    if hasattr(data, "cardinality") and callable(data.cardinality):
        count = int(data.cardinality())
        return count if count >= 0 else None
    if isinstance(data, keras.utils.PyDataset):
        return len(data)
    shape = getattr(data, "shape", None)
    if shape:
        return -(-int(shape[0]) // int(batch_size or 32))
    return None


def _score_class_id(num_classes: int):
    """Foreground class 1 for binary problems, the mean over classes otherwise."""
    return 1 if num_classes <= 2 else None


def _output_threshold(model) -> float:
    """Where a single-output model switches to foreground: 0.5 after a sigmoid, else 0 (logits)."""
    layers = getattr(model, "layers", None)
    activation = getattr(layers[-1], "activation", None) if layers else None
    return 0.5 if getattr(activation, "__name__", "") == "sigmoid" else 0.0


def _mode_for(monitor: str) -> str:
    return "min" if "loss" in monitor else "max"


def compile_model(model, num_classes: int, loss=None, learning_rate: float = 1e-3, jit_compile="auto"):
    """Compile ``model`` with the course's defaults and return it.

    Args:
        model: a Keras model returning logits (B, H, W, num_classes).
        num_classes: K; 2 for the membranes (Dice/IoU then score class 1, the membrane).
        loss: a Keras loss taking ``(y_true (B, H, W) int, logits (B, H, W, K))``;
            None -> ``course_utils.keras.losses.CrossEntropyLoss()``. Its
            ``ignore_index`` (if any) is also left out of Dice/IoU.
        learning_rate: Adam's learning rate (the optimiser is :func:`course_utils.keras.optim.make_adam`:
            epsilon 1e-8 as in ``torch.optim.Adam``).
        jit_compile: XLA compilation of the training step: "auto" (Keras' default: on
            where a GPU is found), True or False. The tests pass True to run the GPU's
            code path on the CPU.

    Returns:
        The same model, compiled with metrics ``dice`` and ``iou``.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}.")
    try:
        output_channels = model.output_shape[-1]
    except (AttributeError, ValueError, TypeError, IndexError):  # not built yet, or several outputs
        output_channels = None
    if isinstance(output_channels, int) and output_channels != num_classes:
        raise ValueError(
            f"the model outputs {output_channels} channels but num_classes={num_classes}: "
            f"pass num_classes={output_channels} or build the model with num_classes={num_classes}."
        )
    from .metrics import DiceScore, IoUScore  # course metrics (confusion matrix over the epoch)

    if loss is None:
        from .losses import CrossEntropyLoss

        loss = CrossEntropyLoss()
    ignore_index = getattr(loss, "ignore_index", None)
    class_id = _score_class_id(num_classes)
    threshold = _output_threshold(model)  # only used by single-output (binary) models
    metrics = [
        DiceScore(num_classes, class_id=class_id, ignore_index=ignore_index, threshold=threshold, name="dice"),
        IoUScore(num_classes, class_id=class_id, ignore_index=ignore_index, threshold=threshold, name="iou"),
    ]
    from .optim import make_adam  # Adam with epsilon 1e-8, as torch's (see course_utils.keras.optim)

    model.compile(optimizer=make_adam(learning_rate), loss=loss, metrics=metrics, jit_compile=jit_compile)
    return model


class RestoreBestCheckpoint(keras.callbacks.Callback):
    """At the end of ``fit``, load the weights saved by a best-only ``ModelCheckpoint``.

    The PyTorch ``fit`` does the same, so after training both frameworks hold
    the best epoch's weights, not the last epoch's.
    """

    def __init__(self, checkpoint_path):
        super().__init__()
        self.checkpoint_path = str(checkpoint_path)

    def on_train_end(self, logs=None):
        if Path(self.checkpoint_path).exists():
            self.model.load_weights(self.checkpoint_path)


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop ``fit`` with :class:`course_utils.dynamics.TrainingDivergedError` when the loss becomes NaN or inf.

    After every batch it reads the loss Keras logs (the running mean over the epoch, which turns NaN/inf at
    the first bad batch and stays so) and raises an error naming the epoch, the step (both 1-based) and the
    usual causes, the same error as the PyTorch ``fit``. ``keras.callbacks.TerminateOnNaN`` only stops
    quietly, leaving a history that ends in NaN and nothing said. ``history`` on the error holds the
    metrics of the epochs that finished.
    """

    def __init__(self):
        super().__init__()
        self._epoch = 0
        self._history = {}

    def on_train_begin(self, logs=None):
        self._epoch, self._history = 0, {}

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = int(epoch)

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self._history.setdefault(key, []).append(float(value))

    def on_train_batch_end(self, batch, logs=None):
        import math

        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if math.isfinite(loss):
            return
        from ..dynamics import TrainingDivergedError, divergence_message

        self.model.stop_training = True
        policy = keras.config.dtype_policy().name if hasattr(keras.config, "dtype_policy") else ""
        mixed = policy.startswith("mixed")
        epoch, step = self._epoch + 1, int(batch) + 1
        raise TrainingDivergedError(divergence_message(loss, epoch, step, mixed_precision=mixed, framework="keras"),
                                    epoch=epoch, step=step, loss=loss, history=self._history)


class EpochLog(keras.callbacks.Callback):
    """Print one compact line per epoch, e.g.::

        epoch  3/8  loss 0.377  dice 0.648  iou 0.479 | val loss 0.548  dice 0.276  iou 0.160 | 1.1 s

    Use it with ``model.fit(..., verbose=0, callbacks=[..., EpochLog()])``. Keras' own per-epoch log
    (``verbose=2``) writes every metric with its full name, four decimals and ``0.0000e+00`` for zeros on a
    single line of about 130 characters, which a notebook's output area wraps in the middle of numbers; the
    progress bar (``verbose=1``) does the same on every update.

    Args:
        digits: decimals per value (fixed-point, never scientific notation).
        print_fn: where the lines go (``print``; a list's ``append`` in tests).
    """

    def __init__(self, digits: int = 3, print_fn=print):
        super().__init__()
        self.digits = int(digits)
        self.print_fn = print_fn
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        import time

        self._start = time.perf_counter()

    def _values(self, logs, val: bool) -> str:
        names = [k for k in logs if k.startswith("val_") == val]
        names = [k for k in names if k.endswith("loss")] + [k for k in names if not k.endswith("loss")]
        return "  ".join(f"{k.removeprefix('val_')} {float(logs[k]):.{self.digits}f}" for k in names)

    def on_epoch_end(self, epoch, logs=None):
        import time

        logs = dict(logs or {})
        logs.pop("learning_rate", None)
        epochs = self.params.get("epochs") if self.params else None
        width = len(str(epochs)) if epochs else 1
        parts = [f"epoch {epoch + 1:>{width}}/{epochs}" if epochs else f"epoch {epoch + 1}", self._values(logs, False)]
        if any(k.startswith("val_") for k in logs):
            parts[-1] += " | val " + self._values(logs, True)
        self.print_fn("  ".join(parts) + f" | {time.perf_counter() - self._start:.1f} s")


def training_callbacks(checkpoint_path=None, patience=None, monitor: str = "val_dice",
                       stop_on_nonfinite: bool = True) -> list:
    """Callbacks for ``model.fit``: checkpoint of the best epoch, early stopping, a stop on a NaN/inf loss.

    The checkpoint's folder is created and checked for writing here, before ``fit`` starts
    (:func:`course_utils.results.check_writable_folder`), not when the first epoch ends.

    Args:
        checkpoint_path: a ``.keras`` file (whole model) or ``.weights.h5`` file
            (weights only) for the best epoch on ``monitor``; None = no checkpoint.
            The best weights are loaded back into the model when ``fit`` ends.
        patience: stop after this many epochs without improvement (None = never).
        monitor: "val_dice"/"val_iou" (higher is better) or "val_loss"/"loss" (lower is better).
        stop_on_nonfinite: add :class:`StopOnNonFiniteLoss` (stop with an error naming the epoch and
            step when the loss becomes NaN or inf).

    Returns:
        A list to pass as ``model.fit(..., callbacks=...)``: the checkpoint and
        :class:`RestoreBestCheckpoint`, early stopping, then :class:`StopOnNonFiniteLoss` (each when asked for).
    """
    mode = _mode_for(monitor)
    callbacks = []
    if checkpoint_path is not None:
        path = Path(checkpoint_path)
        if not (path.name.endswith(".keras") or path.name.endswith(".weights.h5")):
            raise ValueError(
                f"checkpoint_path {str(path)!r} must end in .keras (whole model) or .weights.h5 "
                "(weights only), as Keras 3 requires: e.g. 'checkpoints/unet.keras'."
            )
        if path.is_dir():
            raise ValueError(f"checkpoint_path {str(path)!r} is a folder: pass a file name such as 'checkpoints/unet.keras'.")
        from ..results import check_writable_folder

        check_writable_folder(path.parent, "the checkpoint folder")
        callbacks.append(
            keras.callbacks.ModelCheckpoint(
                str(path), monitor=monitor, mode=mode, save_best_only=True,
                save_weights_only=path.name.endswith(".weights.h5"),
            )
        )
        callbacks.append(RestoreBestCheckpoint(path))
    if patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=patience, restore_best_weights=True, verbose=1
            )
        )
    if stop_on_nonfinite:
        callbacks.append(StopOnNonFiniteLoss())
    return callbacks


def load_checkpoint(model, path):
    """Load weights saved by the checkpoint callback (``.keras`` or ``.weights.h5``) into ``model``; return it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {path}: pass the checkpoint_path given to training_callbacks "
            "(it is written only when the monitored metric improved at least once)."
        )
    model.load_weights(str(path))
    return model


def predict(model, images, batch_size: int = 8) -> np.ndarray:
    """Logits for NumPy images: (N, H, W, C) float in [0, 1] -> (N, H, W, K) float32 NumPy."""
    images = check_image_batch(images)
    if len(images) == 0:
        raise ValueError("images is empty: pass at least one image.")
    images = images.astype(np.float32, copy=False)
    # Plain calls, not model.predict: predict builds a new tf.function for every model, and a lecture that
    # compares several models would fill the output with TensorFlow's "retracing" warnings.
    logits = [
        keras.ops.convert_to_numpy(model(images[start : start + batch_size], training=False))
        for start in range(0, len(images), batch_size)
    ]
    return np.concatenate(logits).astype(np.float32, copy=False)


def predict_masks(model, images, batch_size: int = 8) -> np.ndarray:
    """Predicted class per pixel: (N, H, W, C) images -> (N, H, W) int64.

    Argmax over the K logits; a single-output model gives ``output > threshold``
    with threshold 0 for logits (0.5 if the model ends in a sigmoid).
    """
    outputs = predict(model, images, batch_size=batch_size)
    if outputs.shape[-1] == 1:
        return (outputs[..., 0] > _output_threshold(model)).astype(np.int64)
    return outputs.argmax(axis=-1).astype(np.int64)
