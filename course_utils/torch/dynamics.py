"""Training dynamics in PyTorch: the learning-rate range test, per-step schedules, one scored run.

Mirrors :mod:`course_utils.keras.dynamics` (same names, arguments and defaults). The
framework-free parts (schedules as functions of the step, reading the range test, sweep tables)
are in :mod:`course_utils.dynamics`.

Shapes: loaders yield ``(images (B, C, H, W) float32, masks (B, H, W) int64)``; the NumPy arrays
given to :func:`train_and_score` are NHWC ``(N, H, W, C)`` and ``(N, H, W)``, as everywhere in the course.
"""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import torch

from .. import dynamics as _dyn
from .. import metrics as _metrics

__all__ = ["lr_range_test", "StepSchedule", "make_loss", "train_and_score"]


def _default_optimizer(params, lr):
    return torch.optim.Adam(params, lr=lr)


def lr_range_test(model, data, loss_fn, min_lr: float = 1e-6, max_lr: float = 1.0, num_steps: int = 100,
                  optimizer_fn=None, stop_factor: float = 10.0, device=None) -> dict:
    """Learning-rate range test (Smith 2017): raise the rate every step, record the loss.

    Trains ``model`` for up to ``num_steps`` mini-batches (cycling through ``data``), the rate
    growing geometrically from ``min_lr`` to ``max_lr``, and stops early once the loss exceeds
    ``stop_factor`` times the lowest loss so far (or is not finite). The model's weights are
    restored afterwards: the test only *measures*.

    Args:
        model: ``nn.Module`` mapping (B, C, H, W) to logits (B, K, H, W).
        data: an iterable of ``(images, masks)`` batches, e.g. ``course_utils.torch.data.make_loader(...)``.
        loss_fn: ``loss_fn(logits, masks)`` -> scalar.
        optimizer_fn: ``optimizer_fn(params, lr)`` -> optimizer; default Adam.

    Returns:
        ``{"rates": [...], "losses": [...]}`` (one value per step taken); read it with
        :func:`course_utils.dynamics.suggest_learning_rate`.
    """
    rates = _dyn.range_test_rates(min_lr, max_lr, num_steps)
    device = next(model.parameters()).device if device is None else torch.device(device)
    model.to(device)
    saved = copy.deepcopy(model.state_dict())
    optimizer = (optimizer_fn or _default_optimizer)(model.parameters(), float(rates[0]))
    was_training = model.training
    model.train()
    out_rates, out_losses, best = [], [], math.inf
    batches = itertools.cycle(data)
    try:
        for lr in rates:
            images, masks = next(batches)
            images, masks = images.to(device), masks.to(device)
            for group in optimizer.param_groups:
                group["lr"] = float(lr)
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(images), masks)
            value = float(loss.detach())
            out_rates.append(float(lr))
            out_losses.append(value)
            if not math.isfinite(value) or value > stop_factor * best:
                break
            best = min(best, value)
            loss.backward()
            optimizer.step()
    finally:
        model.load_state_dict(saved)
        model.train(was_training)
    return {"rates": out_rates, "losses": out_losses}


class StepSchedule:
    """Set the optimizer's learning rate to ``schedule(step)`` before every optimizer step.

    ``schedule`` is a function of the step (:mod:`course_utils.dynamics`), shared with Keras's
    :class:`course_utils.keras.dynamics.StepSchedule`, so both frameworks follow the same rates.
    It hooks into ``optimizer.step`` (``register_step_pre_hook``), so it works with the course's
    ``fit`` (pass ``scheduler=None`` there) or any loop. ``rates`` records the rate of every step;
    ``remove()`` unhooks it.
    """

    def __init__(self, optimizer, schedule):
        if not callable(schedule):
            raise TypeError("schedule must be a function of the step, e.g. course_utils.dynamics.cosine_schedule(...).")
        self.optimizer, self.schedule, self.step, self.rates = optimizer, schedule, 0, []
        self._handle = optimizer.register_step_pre_hook(self._before_step)

    def _before_step(self, optimizer, args, kwargs):
        lr = float(self.schedule(self.step))
        for group in optimizer.param_groups:
            group["lr"] = lr
        self.rates.append(lr)
        self.step += 1

    def remove(self):
        self._handle.remove()


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
    """Train the course's U-Net once with the course's ``fit`` and score it on the validation set.

    One call is one run of a sweep: everything that shapes it is an argument, and the same
    arguments give the same numbers on the CPU (seeded model and data order).

    Args:
        x_train, x_val: images (N, H, W, C) float32 in [0, 1]; y_train, y_val: masks (N, H, W) int.
        schedule: "constant", "step", "cosine" or "one-cycle", stepped after every batch, peak ``lr``.
        loss: "ce", "dice" or "ce+dice" (see :func:`make_loss`).
        norm: "batch", "group" or None (the U-Net's normalisation).
        rare_class: also report this class's Dice as ``"rare_dice"``.

    Returns:
        ``{"dice": mean Dice over classes (binary: foreground) on x_val, "per_class_dice": [...],
        "final_loss": last epoch's training loss, "history": fit's history, ["rare_dice"]}``.
    """
    from course_utils import env

    from .data import make_loader
    from .train import fit, predict_masks
    from .unet import UNet

    env.seed_everything(seed)
    model = UNet(in_channels=x_train.shape[-1], num_classes=num_classes, base_filters=base_filters, depth=depth,
                 norm=norm)
    loader = make_loader(x_train, y_train, batch_size=batch_size, shuffle=True, augment=augment, seed=seed)
    steps = epochs * len(loader)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    hook = StepSchedule(optimizer, _dyn.make_schedule(schedule, lr, steps))
    history = fit(model, loader, None, make_loss(loss, num_classes, ce_weight, dice_weight, class_weights),
                  optimizer, epochs, num_classes, device="cpu", monitor="loss", progress=progress)
    hook.remove()
    pred = predict_masks(model, x_val, batch_size=32)
    per_class = _metrics.dice_per_class(y_val, pred, num_classes)
    dice = float(per_class[1]) if num_classes == 2 else float(np.nanmean(per_class))
    result = {"dice": dice, "per_class_dice": [float(d) for d in per_class], "final_loss": float(history["loss"][-1]),
              "history": history}
    if rare_class is not None:
        result["rare_dice"] = float(per_class[rare_class])
    return result
