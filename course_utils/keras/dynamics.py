"""Training dynamics in Keras: the learning-rate range test, per-step schedules, one scored run.

Mirrors :mod:`course_utils.torch.dynamics` (same names, arguments and defaults). The
framework-free parts (schedules as functions of the step, reading the range test, sweep tables)
are in :mod:`course_utils.dynamics`.

Shapes: datasets yield ``(images (B, H, W, C) float32, masks (B, H, W) int)``, as
``course_utils.keras.data.make_dataset`` makes them; models return logits ``(B, H, W, K)``.
"""

from __future__ import annotations

import itertools
import math

import keras
import numpy as np

from .. import dynamics as _dyn
from .. import metrics as _metrics

__all__ = ["lr_range_test", "StepSchedule", "make_loss", "train_and_score"]


def _default_optimizer(lr):
    from .optim import make_adam  # the course's Adam: epsilon 1e-8, as torch.optim.Adam

    return make_adam(lr)


def lr_range_test(model, data, loss_fn, min_lr: float = 1e-6, max_lr: float = 1.0, num_steps: int = 100,
                  optimizer_fn=None, stop_factor: float = 10.0, device=None) -> dict:
    """Learning-rate range test (Smith 2017): raise the rate every step, record the loss.

    Trains ``model`` for up to ``num_steps`` mini-batches (cycling through ``data``), the rate
    growing geometrically from ``min_lr`` to ``max_lr``, and stops early once the loss exceeds
    ``stop_factor`` times the lowest loss so far (or is not finite). The weights are restored
    afterwards: the test only *measures*. The model is left compiled with the test's optimizer:
    compile it again (e.g. ``course_utils.keras.train.compile_model``) before training.

    Args:
        model: a Keras model mapping (B, H, W, C) to logits (B, H, W, K).
        data: an iterable of ``(images, masks)`` batches, e.g. ``course_utils.keras.data.make_dataset(...)``.
        loss_fn: a Keras loss taking ``(y_true, logits)``, e.g. ``course_utils.keras.losses.CrossEntropyLoss()``.
        optimizer_fn: ``optimizer_fn(lr)`` -> Keras optimizer; default Adam.
        device: accepted for the same signature as PyTorch's; Keras places the model itself.

    Returns:
        ``{"rates": [...], "losses": [...]}`` (one value per step taken); read it with
        :func:`course_utils.dynamics.suggest_learning_rate`.
    """
    rates = _dyn.range_test_rates(min_lr, max_lr, num_steps)
    saved = [w.copy() for w in model.get_weights()]
    optimizer = (optimizer_fn or _default_optimizer)(float(rates[0]))
    model.compile(optimizer=optimizer, loss=loss_fn)
    out_rates, out_losses, best = [], [], math.inf
    batches = itertools.cycle(data)
    try:
        for lr in rates:
            images, masks = next(batches)
            model.optimizer.learning_rate.assign(float(lr))
            value = float(np.asarray(model.train_on_batch(images, masks)).reshape(-1)[0])
            out_rates.append(float(lr))
            out_losses.append(value)
            # train_on_batch has already applied this step; the loss it returns is from before it
            if not math.isfinite(value) or value > stop_factor * best:
                break
            best = min(best, value)
    finally:
        model.set_weights(saved)
    return {"rates": out_rates, "losses": out_losses}


class StepSchedule(keras.callbacks.Callback):
    """Set the optimizer's learning rate to ``schedule(step)`` before every training batch.

    ``schedule`` is a function of the step (:mod:`course_utils.dynamics`), shared with PyTorch's
    :class:`course_utils.torch.dynamics.StepSchedule`, so both frameworks follow the same rates.
    Pass it in ``model.fit(..., callbacks=[StepSchedule(schedule)])``; ``rates`` records the rate
    of every step.
    """

    def __init__(self, schedule):
        super().__init__()
        if not callable(schedule):
            raise TypeError("schedule must be a function of the step, e.g. course_utils.dynamics.cosine_schedule(...).")
        self.schedule, self.step, self.rates = schedule, 0, []

    def on_train_batch_begin(self, batch, logs=None):
        lr = float(self.schedule(self.step))
        self.model.optimizer.learning_rate.assign(lr)
        self.rates.append(lr)
        self.step += 1


def make_loss(loss: str = "ce", num_classes: int = 2, ce_weight: float = 1.0, dice_weight: float = 1.0,
              class_weights=None):
    """The lab's losses by name: "ce" (optionally class-weighted), "dice", "ce+dice" (the weights
    ``ce_weight``/``dice_weight``, e.g. ``1 - lam`` and ``lam``)."""
    from .losses import CEDiceLoss, CrossEntropyLoss, DiceLoss

    if loss == "ce":
        return CrossEntropyLoss(class_weights=class_weights)
    if loss == "dice":
        return DiceLoss()
    if loss == "ce+dice":
        return CEDiceLoss(ce_weight=ce_weight, dice_weight=dice_weight, class_weights=class_weights)
    raise ValueError(f'loss must be "ce", "dice" or "ce+dice", got {loss!r}.')


def train_and_score(x_train, y_train, x_val, y_val, *, num_classes: int, lr: float = 1e-3, batch_size: int = 8,
                    epochs: int = 5, schedule: str = "constant", loss: str = "ce", ce_weight: float = 1.0,
                    dice_weight: float = 1.0, class_weights=None, base_filters: int = 8, depth: int = 2,
                    norm: str | None = "batch", augment=False, seed: int = 0, rare_class: int | None = None,
                    progress: bool = False) -> dict:
    """Train the course's U-Net once with Keras's ``fit`` and score it on the validation set.

    The same arguments and results as :func:`course_utils.torch.dynamics.train_and_score`
    (the same data order for the same seed; the initial weights differ between frameworks).

    Returns:
        ``{"dice": mean Dice over classes (binary: foreground) on x_val, "per_class_dice": [...],
        "final_loss": last epoch's training loss, "history": fit's history dict, ["rare_dice"]}``.
    """
    from course_utils import env

    from .data import make_dataset
    from .train import predict_masks
    from .unet import build_unet

    env.seed_everything(seed)
    model = build_unet((None, None, x_train.shape[-1]), num_classes=num_classes, base_filters=base_filters,
                       depth=depth, norm=norm)
    dataset = make_dataset(x_train, y_train, batch_size=batch_size, shuffle=True, augment=augment, seed=seed)
    steps = epochs * math.ceil(len(x_train) / batch_size)
    model.compile(optimizer=_default_optimizer(lr),
                  loss=make_loss(loss, num_classes, ce_weight, dice_weight, class_weights))
    callback = StepSchedule(_dyn.make_schedule(schedule, lr, steps))
    history = model.fit(dataset, epochs=epochs, callbacks=[callback], verbose=1 if progress else 0).history
    history = {k: [float(v) for v in values] for k, values in history.items()}
    pred = predict_masks(model, x_val, batch_size=32)
    per_class = _metrics.dice_per_class(y_val, pred, num_classes)
    dice = float(per_class[1]) if num_classes == 2 else float(np.nanmean(per_class))
    result = {"dice": dice, "per_class_dice": [float(d) for d in per_class], "final_loss": float(history["loss"][-1]),
              "history": history}
    if rare_class is not None:
        result["rare_dice"] = float(per_class[rare_class])
    return result
