"""Training helpers for PyTorch: the loop of lecture 04 as reusable functions.

Lecture 04 first writes the training loop inline (epochs, batches, forward,
loss, backward, step, validation); :func:`fit` is the same loop with the
extras a real run needs, each of which is a few readable lines:

- a ``tqdm`` progress bar per epoch with the running loss (``progress=False``
  turns it off),
- validation loss, Dice and IoU after every epoch (from a confusion matrix
  accumulated over all validation pixels, as Keras's metrics do),
- a history dict with the keys of Keras's ``History.history``
  (``loss``, ``val_loss``, ``val_dice``, ``val_iou``), so
  :func:`course_utils.viz.plot_history` draws both frameworks the same way,
- saving the best weights (``state_dict``) on the monitored metric and
  reloading them at the end, early stopping, a learning-rate scheduler,
- mixed precision (``torch.autocast`` + ``GradScaler``) and channels-last
  memory layout, both switched on automatically only on a CUDA GPU.

On the CPU nothing random happens inside these functions: with the same seed,
data order and model, two runs give the same history.

Shapes: loaders yield ``(images (B, C, H, W) float32, masks (B, H, W) int64)``;
models return logits ``(B, K, H, W)``; :func:`predict` takes and returns NumPy
in NHWC, ``(N, H, W, C)`` -> ``(N, H, W, K)``, like the Keras side.

Dice and IoU: for a binary problem (``num_classes`` 2, or 1 for a single-logit
model) the score of the foreground class 1; otherwise the mean over classes.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
from pathlib import Path

import numpy as np
import torch

from ..data import check_image_batch

__all__ = [
    "fit",
    "train_one_epoch",
    "evaluate",
    "predict",
    "predict_masks",
    "load_checkpoint",
    "save_checkpoint",
    "resolve_device",
]

#: How often (in steps) the progress bar's loss is refreshed: reading a value
#: from the GPU waits for it, so doing it every step would slow training down.
POSTFIX_EVERY = 10


# ----------------------------------------------------------------------------- small helpers
def resolve_device(device=None) -> torch.device:
    """``device`` as a ``torch.device``; None picks CUDA, then MPS, then the CPU."""
    if device is None:
        from course_utils import env

        return env.torch_device()
    return torch.device(device)


def _model_device(model, device=None) -> torch.device:
    """``device`` if given, else where the model's parameters are (CPU for a model without any)."""
    if device is not None:
        return torch.device(device)
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def _resolve_flag(value, device: torch.device, name: str) -> bool:
    """'auto' -> True only on CUDA; True/False as given (True needs CUDA)."""
    if value == "auto":
        return device.type == "cuda"
    if isinstance(value, bool):
        if value and device.type != "cuda":
            raise ValueError(
                f"{name}=True needs a CUDA GPU but the device is {device.type}: "
                f'pass {name}="auto" (on only where it helps) or {name}=False.'
            )
        return value
    raise ValueError(f'{name} must be "auto", True or False, got {value!r}.')


def _autocast(device: torch.device, enabled: bool):
    """Autocast when enabled (float16 on CUDA, bfloat16 elsewhere), otherwise a no-op context.

    ``fit`` switches it on only on CUDA; the bfloat16 branch lets the tests run
    the same mixed-precision code path on the CPU.
    """
    if not enabled:
        return contextlib.nullcontext()
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _to_device(images, masks, device, channels_last: bool):
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    images = images.to(device, non_blocking=True, memory_format=memory_format)
    masks = masks.to(device, non_blocking=True)
    return images, masks


def _check_batch(images, masks) -> None:
    """Fail early, with the fix, on the most common loader mistakes."""
    if not (torch.is_tensor(images) and torch.is_tensor(masks)):
        raise TypeError(
            "the loader must yield (images, masks) tensors, got "
            f"({type(images).__name__}, {type(masks).__name__}): use course_utils.torch.data.make_loader."
        )
    if images.ndim != 4:
        raise ValueError(
            f"images must be (B, C, H, W), got shape {tuple(images.shape)}: "
            "PyTorch wants channels first (permute NHWC with .permute(0, 3, 1, 2))."
        )
    if masks.ndim == 3 and masks.shape[1:] == images.shape[1:3] and masks.shape[1:] != images.shape[2:]:
        raise ValueError(
            f"images look channels-last (NHWC) {tuple(images.shape)} for masks {tuple(masks.shape)}: "
            "PyTorch wants (B, C, H, W); permute with images.permute(0, 3, 1, 2) "
            "or use course_utils.torch.data.make_loader."
        )
    if masks.ndim != 3 or masks.shape[0] != images.shape[0] or masks.shape[1:] != images.shape[2:]:
        raise ValueError(
            f"masks must be (B, H, W) matching images {tuple(images.shape)}, got {tuple(masks.shape)}: "
            "pass integer class indices without a channel axis (mask.squeeze(1) if needed)."
        )
    if masks.is_floating_point():
        raise TypeError(
            f"masks must hold integer class indices, got dtype {masks.dtype}: convert with masks.long()."
        )


def _progress_bar(iterable, enabled: bool, description: str, total=None):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=description, leave=True, dynamic_ncols=True, total=total)


def _binary_view(logits: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) single-logit output -> (B, 2, H, W) whose argmax is ``logit > 0``."""
    return torch.cat([torch.zeros_like(logits), logits], dim=1)


def _score_class_id(num_classes: int):
    """Foreground class 1 for binary problems, the mean over classes otherwise."""
    return 1 if num_classes <= 2 else None


def _confusion_matrix(num_classes: int, ignore_index):
    from course_utils.torch.metrics import ConfusionMatrix  # lazy: keeps this module's import light

    return ConfusionMatrix(max(num_classes, 2), ignore_index=ignore_index)


def _mode_for(monitor: str) -> str:
    return "min" if "loss" in monitor else "max"


def _improved(value: float, best: float | None, mode: str) -> bool:
    if value is None or math.isnan(value):
        return False
    if best is None:
        return True
    return value < best if mode == "min" else value > best


class _FirstBatches:
    """The first ``steps`` batches of a loader, every time it is iterated (dry runs: ``env.dry_run_cap``)."""

    def __init__(self, loader, steps: int):
        self.loader, self.steps = loader, steps

    def __iter__(self):
        import itertools

        return itertools.islice(iter(self.loader), self.steps)

    def __len__(self):
        try:
            return min(len(self.loader), self.steps)
        except TypeError:
            return self.steps


def _stop_if_nonfinite(pending: list, last_step: int, epoch, amp: bool, bar) -> None:
    """Raise TrainingDivergedError at the first NaN/inf among the ``pending`` losses (steps up to ``last_step``)."""
    values = torch.stack([value.float() for value in pending])
    finite = torch.isfinite(values)
    if bool(finite.all()):
        return
    first = int((~finite).nonzero()[0, 0])
    step = last_step - len(pending) + first + 2  # 1-based, within the epoch (last_step is 0-based)
    if bar is not None:
        bar.close()
    from course_utils.dynamics import TrainingDivergedError, divergence_message

    loss = float(values[first])
    raise TrainingDivergedError(divergence_message(loss, epoch, step, mixed_precision=amp, framework="torch"),
                                epoch=epoch, step=step, loss=loss)


# ----------------------------------------------------------------------------- one epoch
def train_one_epoch(
    model,
    loader,
    loss_fn,
    optimizer,
    device=None,
    *,
    scaler=None,
    amp: bool = False,
    channels_last: bool = False,
    progress: bool = False,
    description: str = "train",
    steps: int | None = None,
    epoch: int | None = None,
    stop_on_nonfinite: bool = True,
) -> float:
    """Train ``model`` for one pass over ``loader``; return the mean loss per image.

    The five lines every PyTorch training step has: move the batch to the
    device, ``zero_grad``, forward, ``backward``, ``step``. ``amp=True`` runs
    the forward pass in float16 (CUDA only) and uses ``scaler`` (a
    ``torch.amp.GradScaler``) to keep small gradients from underflowing.

    Args:
        model: ``nn.Module`` mapping (B, C, H, W) to logits (B, K, H, W).
        loader: yields (images (B, C, H, W) float32, masks (B, H, W) int64).
        loss_fn: ``loss_fn(logits, masks)`` -> scalar tensor.
        optimizer: a ``torch.optim`` optimizer over ``model``'s parameters.
        device: where to compute (None: where the model's parameters are).
        progress: show a progress bar with the running loss.
        steps: stop after this many batches (None: one full pass over ``loader``).
        epoch: the epoch number (1-based) named in the divergence error (``fit`` passes it).
        stop_on_nonfinite: raise :class:`course_utils.dynamics.TrainingDivergedError`, naming the epoch,
            the step and the usual causes, as soon as a batch's loss is NaN or infinite (True), or train on
            (False: the mean loss is then NaN/inf). On the CPU every step is checked; on a GPU the losses are
            read every ``POSTFIX_EVERY`` steps (reading one waits for the GPU) and the first bad step is named.

    Returns:
        The loss averaged over all images of the epoch (a Python float).
    """
    device = _model_device(model, device)
    model.train()
    total = torch.zeros((), device=device)  # summed on the device: no GPU->CPU wait per step
    count = 0
    if steps is not None:
        loader = itertools.islice(loader, int(steps))
    bar = _progress_bar(loader, progress, description, total=steps)
    check_every = 1 if device.type == "cpu" else POSTFIX_EVERY
    pending = []  # (step, loss) not yet checked for NaN/inf
    for step, (images, masks) in enumerate(bar if bar is not None else loader):
        if step == 0:
            _check_batch(images, masks)
        images, masks = _to_device(images, masks, device, channels_last)

        optimizer.zero_grad(set_to_none=True)
        with _autocast(device, amp):
            logits = model(images)
            loss = loss_fn(logits, masks)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()

        total += loss.detach().float() * images.shape[0]
        count += images.shape[0]
        if stop_on_nonfinite:
            pending.append(loss.detach())
            if len(pending) >= check_every:
                _stop_if_nonfinite(pending, step, epoch, amp, bar)
                pending = []
        if bar is not None and step % POSTFIX_EVERY == 0:
            bar.set_postfix(loss=f"{total.item() / count:.4f}")
    if count == 0:
        raise ValueError("the training loader yielded no batches: check the data set size and batch_size.")
    if pending:
        _stop_if_nonfinite(pending, step, epoch, amp, bar)
    mean_loss = total.item() / count
    if bar is not None:
        bar.set_postfix(loss=f"{mean_loss:.4f}")
        bar.close()
    return mean_loss


@torch.inference_mode()
def evaluate(
    model,
    loader,
    loss_fn=None,
    num_classes: int = 2,
    device=None,
    *,
    amp: bool = False,
    channels_last: bool = False,
    ignore_index=None,
) -> dict:
    """Loss, Dice and IoU of ``model`` on ``loader`` (like Keras ``evaluate(return_dict=True)``).

    Dice and IoU come from one confusion matrix over all pixels of the loader,
    so they equal :mod:`course_utils.metrics` on the whole set (not a mean of
    per-batch scores). Binary problems report the foreground class 1.

    Returns:
        ``{"loss": float, "dice": float, "iou": float}`` (no "loss" when
        ``loss_fn`` is None).
    """
    device = _model_device(model, device)
    was_training = model.training
    model.eval()
    if ignore_index is None:
        ignore_index = getattr(loss_fn, "ignore_index", None)
        if ignore_index is not None and ignore_index < 0:  # nn.CrossEntropyLoss's default -100 means "none"
            ignore_index = None
    matrix = _confusion_matrix(num_classes, ignore_index)
    total = torch.zeros((), device=device)
    count = 0
    for step, (images, masks) in enumerate(loader):
        if step == 0:
            _check_batch(images, masks)
        images, masks = _to_device(images, masks, device, channels_last)
        with _autocast(device, amp):
            logits = model(images)
            if loss_fn is not None:
                total += loss_fn(logits, masks).float() * images.shape[0]
        count += images.shape[0]
        if logits.shape[1] == 1:
            logits = _binary_view(logits)
        matrix.update(logits.float(), masks)
    model.train(was_training)
    if count == 0:
        raise ValueError("the validation loader yielded no batches: check the data set size and batch_size.")
    class_id = _score_class_id(num_classes)
    result = {"dice": float(matrix.dice(class_id)), "iou": float(matrix.iou(class_id))}
    if loss_fn is not None:
        result = {"loss": total.item() / count, **result}
    return result


# ----------------------------------------------------------------------------- checkpoints
_CHECKPOINT_SUFFIXES = (".pt", ".pth")


def _check_checkpoint_path(path, writable: bool = True) -> Path:
    """A checkpoint path must name a ``.pt``/``.pth`` file (never a folder or another kind of file) in a folder
    that can be written (created if missing; ``writable=False`` skips that check)."""
    path = Path(path)
    if path.suffix not in _CHECKPOINT_SUFFIXES:
        raise ValueError(
            f"checkpoint_path {str(path)!r} must end in .pt or .pth, e.g. 'checkpoints/unet.pt': the checkpoint "
            "overwrites that file, so it must not be a file of another kind."
        )
    if path.is_dir():
        raise ValueError(f"checkpoint_path {str(path)!r} is a folder: pass a file name such as 'checkpoints/unet.pt'.")
    if writable:
        from ..results import check_writable_folder

        check_writable_folder(path.parent, "the checkpoint folder")
    return path


def save_checkpoint(model, path) -> Path:
    """Save ``model.state_dict()`` to ``path`` (a ``.pt``/``.pth`` file), atomically.

    The state is written to a uniquely named temporary file in the same folder and moved into place with
    ``os.replace`` (:func:`course_utils.safety.atomic_write`): never a half-written checkpoint, and no other
    file is touched. A folder that cannot be written (a file of that name, read-only, full) is a clear
    error (:func:`course_utils.results.check_writable_folder`).
    """
    from ..safety import atomic_write

    path = _check_checkpoint_path(path)
    return atomic_write(path, lambda tmp: torch.save(model.state_dict(), tmp))


def load_checkpoint(model, path):
    """Load a ``state_dict`` saved by :func:`fit` into ``model`` and return the model.

    Uses ``torch.load(..., weights_only=True)``: only tensors are read, never
    arbitrary pickled code, so a checkpoint from elsewhere cannot run code.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"no checkpoint at {path}: pass the checkpoint_path that fit() saved to "
            "(it saves only when the monitored metric improved at least once)."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model


# ----------------------------------------------------------------------------- fit
def _endless(loader):
    """Batches of ``loader`` for ever: each new pass is the loader's next epoch (new order and augmentation)."""
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("the training loader yielded no batches: check the data set size and batch_size.")


def fit(
    model,
    train_loader,
    val_loader,
    loss_fn,
    optimizer,
    epochs: int,
    num_classes: int,
    device=None,
    scheduler=None,
    checkpoint_path=None,
    early_stopping_patience=None,
    monitor: str = "val_dice",
    amp="auto",
    channels_last="auto",
    progress: bool = True,
    steps_per_epoch: int | None = None,
    stop_on_nonfinite: bool = True,
) -> dict:
    """Train ``model`` for up to ``epochs`` epochs; return a Keras-like history dict.

    Each epoch: :func:`train_one_epoch`, then :func:`evaluate` on
    ``val_loader``, then the scheduler step, the checkpoint and the early
    stopping test. At the end the best checkpoint is loaded back into
    ``model`` (when ``checkpoint_path`` is given).

    Args:
        model: ``nn.Module`` mapping (B, C, H, W) to logits (B, K, H, W); moved to ``device``.
        train_loader, val_loader: yield (images (B, C, H, W) float32, masks (B, H, W) int64);
            ``val_loader`` may be None (then only "loss" is recorded and ``monitor`` must be "loss").
        loss_fn: ``loss_fn(logits, masks)`` -> scalar, e.g. ``course_utils.torch.losses.CrossEntropyLoss()``.
            Its ``ignore_index`` (if any) is also left out of Dice/IoU. A loss that is an
            ``nn.Module`` is moved to ``device`` too (e.g. the class weights of
            ``nn.CrossEntropyLoss(weight=...)``).
        optimizer: e.g. ``torch.optim.Adam(model.parameters(), lr=1e-3)``.
        epochs: maximum number of epochs.
        num_classes: K (2 for membranes; Dice/IoU then score the foreground class 1).
        device: None picks CUDA, then MPS, then the CPU.
        scheduler: a ``torch.optim.lr_scheduler`` stepped once per epoch
            (``ReduceLROnPlateau`` receives the monitored value).
        checkpoint_path: where to save the best ``state_dict`` (e.g. "checkpoints/unet.pt").
        early_stopping_patience: stop after this many epochs without improvement (None: never).
        monitor: "val_dice", "val_iou" (higher is better), "val_loss" or "loss" (lower is better).
        amp: mixed precision; "auto" = on only on CUDA.
        channels_last: NHWC memory layout (faster convolutions on tensor cores); "auto" = on only on CUDA.
        progress: show a tqdm bar per epoch.
        steps_per_epoch: batches per epoch, as in Keras's ``model.fit`` (None: one pass over
            ``train_loader``). The batches come from one stream that restarts ``train_loader`` (its next
            epoch) whenever it runs out, so ``epochs * steps_per_epoch`` is a fixed budget of steps
            whatever the data set size.
        stop_on_nonfinite: stop at the first batch whose loss is NaN or infinite with a
            :class:`course_utils.dynamics.TrainingDivergedError` naming the epoch, the step and the usual
            causes (its ``history`` holds the finished epochs); False trains on regardless (a sweep that
            wants to record a diverged run as NaN).

    Before the first step, ``checkpoint_path``'s folder is created and checked for writing, so a bad
    path fails at once, not after the first epoch.

    Returns:
        ``{"loss": [...], "val_loss": [...], "val_dice": [...], "val_iou": [...]}``,
        one value per epoch run, like ``keras.callbacks.History.history``.
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}.")
    if steps_per_epoch is not None and (isinstance(steps_per_epoch, bool) or not isinstance(steps_per_epoch, int)
                                        or steps_per_epoch < 1):
        raise ValueError(f"steps_per_epoch must be a positive integer or None, got {steps_per_epoch!r}.")
    valid_monitors = ("loss",) if val_loader is None else ("loss", "val_loss", "val_dice", "val_iou")
    if monitor not in valid_monitors:
        raise ValueError(
            f"monitor={monitor!r} is not recorded: choose one of {valid_monitors}"
            + (" (without a val_loader only the training loss exists)." if val_loader is None else ".")
        )
    if checkpoint_path is not None:
        _check_checkpoint_path(checkpoint_path)  # before training, not after the first epoch
    from course_utils import env

    epochs, dry_run_steps = env.dry_run_cap(epochs)  # ./course dry-run: 1 epoch of a few steps
    if dry_run_steps is not None:
        train_loader = _FirstBatches(train_loader, dry_run_steps)
        val_loader = None if val_loader is None else _FirstBatches(val_loader, dry_run_steps)
        if steps_per_epoch is not None:
            steps_per_epoch = min(steps_per_epoch, dry_run_steps)
    train_batches = train_loader if steps_per_epoch is None else _endless(train_loader)
    device = resolve_device(device)
    use_amp = _resolve_flag(amp, device, "amp")
    use_channels_last = _resolve_flag(channels_last, device, "channels_last")
    model.to(device)
    if isinstance(loss_fn, torch.nn.Module):
        # A loss with tensors of its own (nn.CrossEntropyLoss(weight=...)) must sit where the logits are.
        loss_fn.to(device)
    if use_channels_last:
        model.to(memory_format=torch.channels_last)
    scaler = torch.amp.GradScaler(device.type) if use_amp else None

    history = {"loss": []}
    if val_loader is not None:
        history.update({"val_loss": [], "val_dice": [], "val_iou": []})
    mode = _mode_for(monitor)
    best, best_epoch, waited = None, None, 0

    for epoch in range(1, epochs + 1):
        try:
            train_loss = train_one_epoch(
                model, train_batches, loss_fn, optimizer, device, steps=steps_per_epoch,
                scaler=scaler, amp=use_amp, channels_last=use_channels_last,
                progress=progress, description=f"Epoch {epoch}/{epochs}",
                epoch=epoch, stop_on_nonfinite=stop_on_nonfinite,
            )
        except FloatingPointError as error:
            if hasattr(error, "history"):  # TrainingDivergedError: hand over what was recorded
                error.history = history
            raise
        history["loss"].append(train_loss)
        if val_loader is not None:
            scores = evaluate(
                model, val_loader, loss_fn, num_classes, device,
                amp=use_amp, channels_last=use_channels_last,
            )
            for name, value in scores.items():
                history[f"val_{name}"].append(value)
        current = history[monitor][-1]

        if scheduler is not None:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step(current)
            else:
                scheduler.step()

        if progress:
            print(f"Epoch {epoch}/{epochs}: " + ", ".join(f"{k}={v[-1]:.4f}" for k, v in history.items()))

        if _improved(current, best, mode):
            best, best_epoch, waited = current, epoch, 0
            if checkpoint_path is not None:
                save_checkpoint(model, checkpoint_path)
        else:
            waited += 1
            if early_stopping_patience is not None and waited >= early_stopping_patience:
                if progress:
                    print(
                        f"Early stopping: {monitor} has not improved for {waited} epochs "
                        f"(best {best:.4f} at epoch {best_epoch})."
                    )
                break

    if checkpoint_path is not None and best_epoch is not None:
        load_checkpoint(model, checkpoint_path)
        if use_channels_last:
            model.to(memory_format=torch.channels_last)
        if progress:
            print(f"Loaded the best weights (epoch {best_epoch}, {monitor}={best:.4f}) from {checkpoint_path}.")
    return history


# ----------------------------------------------------------------------------- prediction
@torch.inference_mode()
def predict(model, images_nhwc, batch_size: int = 8, device=None) -> np.ndarray:
    """Logits for NumPy images, as NumPy: (N, H, W, C) float in [0, 1] -> (N, H, W, K) float32.

    NHWC in and out, like Keras's ``model.predict``, so the result goes straight
    into :mod:`course_utils.metrics` and :mod:`course_utils.viz`. The model's
    train/eval mode is restored afterwards.
    """
    images = check_image_batch(images_nhwc)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    device = _model_device(model, device)
    was_training = model.training
    model.eval()
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size], dtype=np.float32))
        logits = model(batch.permute(0, 3, 1, 2).to(device))
        outputs.append(logits.float().permute(0, 2, 3, 1).cpu().numpy())
    model.train(was_training)
    if not outputs:
        raise ValueError("images is empty: pass at least one image.")
    return np.concatenate(outputs, axis=0)


def predict_masks(model, images_nhwc, batch_size: int = 8, device=None) -> np.ndarray:
    """Predicted class per pixel: (N, H, W, C) images -> (N, H, W) int64.

    Argmax over the K logits; a single-logit (sigmoid-style) model gives ``logit > 0``.
    """
    logits = predict(model, images_nhwc, batch_size=batch_size, device=device)
    if logits.shape[-1] == 1:
        return (logits[..., 0] > 0).astype(np.int64)
    return logits.argmax(axis=-1).astype(np.int64)
