"""Lecture 08's sweeps: learning rate, batch size, normalisation, schedules, loss weights, the capstone's recipe.

Every setting is trained with several seeds (default 3) through the course's ``fit``
(``course_utils.torch.dynamics.train_and_score``: U-Net, Adam, a per-step schedule) at a small
CPU budget fixed in epochs, and scored on held-out images. One JSON file per section goes to
``benchmarks/results/dynamics_<section>.json`` (rows: setting, seed, metrics, loss history) and a
Markdown summary (mean ± standard deviation over seeds, and the range) to
``benchmarks/results/training_dynamics.md``. Lecture 08 reads both.

Sections (``--only`` picks some):

- ``lr``:       Adam's rate from 1e-5 to 1 (synthetic scenes, 4 classes); ``lr_large``: 10 and 100;
                ``lr_membranes``: 1e-4 to 10 on 64 px tiles of the ISBI 2012 membranes (binary);
- ``batch``:    batch size 2, 8, 32 at the same number of epochs, rate fixed vs scaled linearly;
- ``norm``:     batch size 2 with BatchNorm vs GroupNorm;
- ``schedule``: constant, step, cosine, one-cycle at the same budget and peak rate;
- ``lambda``:   (1 - lambda) CE + lambda Dice from pure CE to pure Dice, and class-weighted CE,
                with the Dice of the rare class;
- ``recipe``, ``recipe_long``: the capstone's ingredients (augmentation, schedule, rate) against a plain
                loop at 5 and 12 epochs, on the Pet-format stand-in the capstone uses in fast mode;
- ``recipe_cpu``: the capstone's fast-mode budget (5 epochs) with 5 seeds (``--seeds 5``), the loss
                (CE vs CE + Dice) added to rate and schedule;
- ``recipe_cpu_more``: more candidates at that budget (a higher constant rate, one-cycle, pure Dice,
                median-frequency class weights);
- ``recipe_cpu_10``: the plain loop and the two best candidates with 10 seeds (``--seeds 10``);
- ``recipe_scenes``, ``recipe_membranes``: the same ingredients (rate, schedule, flips, loss) on the lab's
                synthetic scenes and on the membranes, at the lab's budget;
- ``keras``:    the learning-rate sweep's middle in Keras, to compare with PyTorch within the seed spread.

Usage::

    .venv/bin/python benchmarks/training_dynamics.py                    # all sections (about 25 min, 2 cores)
    .venv/bin/python benchmarks/training_dynamics.py --only lr schedule
    .venv/bin/python benchmarks/training_dynamics.py --quick            # 1 seed, 2 epochs: checks that it runs
    .venv/bin/python benchmarks/training_dynamics.py --reuse            # only rebuild the Markdown summary
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from course_utils import data, dynamics  # noqa: E402

RESULTS = HERE / "results"

# ----------------------------------------------------------------------------- the fixed CPU budget
SCENES = dict(n_train=128, n_val=128, size=48, num_classes=4, rare_class_frequency=0.3, data_seed=1234)
MODEL = dict(base_filters=8, depth=2)
EPOCHS = 8
BATCH = 8
RARE = 3  # the triangle: the rare class of the scenes
SETUP = (f"synthetic scenes {SCENES['n_train']} train + {SCENES['n_val']} held-out images, "
         f"{SCENES['size']} px, 4 classes (triangle rare, p={SCENES['rare_class_frequency']}); "
         f"U-Net depth {MODEL['depth']}, {MODEL['base_filters']} base filters; Adam; "
         f"{EPOCHS} epochs of batch {BATCH} unless the setting says otherwise; 1 CPU thread")

LR_RATES = [1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
LR_LARGE = [10.0, 100.0]  # Adam with BatchNorm still trains at 1: where does it break?
SGD_LR = 0.03  # SGD with momentum 0.9 at batch 8 (the batch_sgd section's reference)
#: The exercise's repairs of the rare class (exercise 08, task 4), at the lab's budget.
DROWNED_WEIGHTS = [1.0, 1.0, 1.0, 0.01]
BASE_LR = 3e-3


def scenes():
    s = SCENES
    x, y = data.make_shapes(s["n_train"] + s["n_val"], size=s["size"], num_classes=s["num_classes"],
                            seed=s["data_seed"], rare_class_frequency=s["rare_class_frequency"])
    n = s["n_train"]
    return x[:n], y[:n], x[n:], y[n:]


def pets_standin():
    """The capstone's fast-mode data: the Pet-format stand-in, 64 px, 3 classes."""
    from course_utils import pets

    work = Path(tempfile.mkdtemp(prefix="dynamics-pets-"))
    pets.register_sample_pets(work / "server", num_trainval=96, num_test=48, seed=0)
    kwargs = dict(root=work / "data", size=64, dataset=pets.SAMPLE_DATASET_NAME)
    x_train, y_train = pets.load_pets(split="trainval", **kwargs)
    x_test, y_test = pets.load_pets(split="test", **kwargs)
    return x_train, y_train.astype(np.int64), x_test, y_test.astype(np.int64)


def membranes():
    """ISBI 2012 slices as 64 x 64 tiles: 128 training tiles from slices 0-24, 64 held-out tiles from 25-29."""
    x, y = data.load_membranes(download=False)

    def tiles(images, masks, count, seed):
        n, h, w, _ = images.shape
        per = (h // 64) * (w // 64)
        xt = images[:, : h // 64 * 64, : w // 64 * 64].reshape(n, h // 64, 64, w // 64, 64, 1)
        yt = masks[:, : h // 64 * 64, : w // 64 * 64].reshape(n, h // 64, 64, w // 64, 64)
        xt = xt.transpose(0, 1, 3, 2, 4, 5).reshape(n * per, 64, 64, 1)
        yt = yt.transpose(0, 1, 3, 2, 4).reshape(n * per, 64, 64)
        pick = np.random.default_rng(seed).choice(len(xt), count, replace=False)
        return np.ascontiguousarray(xt[pick]), np.ascontiguousarray(yt[pick])

    x_train, y_train = tiles(x[:25], y[:25], 128, 0)
    x_val, y_val = tiles(x[25:], y[25:], 64, 1)
    return x_train, y_train, x_val, y_val


def make_runner(framework, x_train, y_train, x_val, y_val, num_classes, epochs_scale=1.0, **fixed):
    """``run(setting, seed)`` for ``dynamics.run_sweep``: trains with ``framework`` ("torch" or "keras")."""
    if framework == "torch":
        from course_utils.torch.dynamics import train_and_score
    else:
        from course_utils.keras.dynamics import train_and_score

    def run(setting, seed):
        kwargs = {"num_classes": num_classes, "lr": BASE_LR, "batch_size": BATCH, "epochs": EPOCHS,
                  **MODEL, **fixed, **setting}
        if epochs_scale != 1.0:
            kwargs["epochs"] = max(1, int(round(kwargs["epochs"] * epochs_scale)))
        result = train_and_score(x_train, y_train, x_val, y_val, seed=seed, **kwargs)
        return {"dice": result["dice"], "rare_dice": result["per_class_dice"][-1] if num_classes > 2 else np.nan,
                "per_class_dice": result["per_class_dice"], "final_loss": result["final_loss"],
                "loss_history": result["history"]["loss"]}

    return run



def _warmup(schedule, warmup_steps: int):
    """``schedule`` with a linear warm-up over the first ``warmup_steps`` steps (Goyal et al. 2017)."""
    if warmup_steps <= 0:
        return schedule
    return lambda step: schedule(step) * min(1.0, (step + 1) / warmup_steps)


def train_extended(x_train, y_train, x_val, y_val, *, num_classes, lr=BASE_LR, batch_size=BATCH, epochs=EPOCHS,
                   schedule="constant", optimizer="adam", momentum=0.9, warmup_epochs=0.0, loss="ce",
                   ce_weight=1.0, dice_weight=1.0, class_weights=None, base_filters=8, depth=2, norm="batch",
                   augment=False, seed=0, rare_class=None) -> dict:
    """One run as ``course_utils.torch.dynamics.train_and_score`` (same model, loader, ``fit``, per-step schedule),
    plus what lecture 08 needs beyond it: SGD with momentum and a linear warm-up, a run that diverges
    (``TrainingDivergedError`` is caught: ``diverged`` is True and the loss history ends with the non-finite
    loss; the model is still scored, as it is), and more metrics: pixel accuracy, the rare class's precision
    and recall, and the mean Dice when batch norm uses the batch's own statistics (``dice_batch_stats``: the
    model in training mode) instead of its running averages (the lag of those averages shows as a gap).

    Images (N, H, W, C) float32, masks (N, H, W) int; returns a dict of floats and the loss history.
    """
    import torch

    from course_utils import env, metrics
    from course_utils.dynamics import TrainingDivergedError
    from course_utils.torch.data import make_loader
    from course_utils.torch.dynamics import StepSchedule, make_loss
    from course_utils.torch.train import fit, predict_masks
    from course_utils.torch.unet import UNet

    env.seed_everything(seed)
    model = UNet(in_channels=x_train.shape[-1], num_classes=num_classes, base_filters=base_filters, depth=depth,
                 norm=norm)
    loader = make_loader(x_train, y_train, batch_size=batch_size, shuffle=True, augment=augment, seed=seed)
    steps = epochs * len(loader)
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=lr)
    hook = StepSchedule(opt, _warmup(dynamics.make_schedule(schedule, lr, steps),
                                     int(round(warmup_epochs * len(loader)))))
    diverged = False
    try:
        history = fit(model, loader, None, make_loss(loss, num_classes, ce_weight, dice_weight, class_weights),
                      opt, epochs, num_classes, device="cpu", monitor="loss", progress=False)
        loss_history = [float(v) for v in history["loss"]]
    except TrainingDivergedError as error:  # the loss became NaN/inf: record it, score the model as it is
        diverged = True
        loss_history = [float(v) for v in ((error.history or {}).get("loss") or [])] + [float(error.loss)]
    finally:
        hook.remove()
    pred = predict_masks(model, x_val, batch_size=32)
    cm = metrics.confusion_matrix(y_val, pred, num_classes)
    per_class = metrics.dice_from_confusion(cm)
    precision, recall = metrics.precision_recall_from_confusion(cm)
    rare = (num_classes - 1) if rare_class is None else rare_class
    dice = float(per_class[1]) if num_classes == 2 else float(np.nanmean(per_class))
    result = {"dice": dice, "rare_dice": float(per_class[rare]) if num_classes > 2 else np.nan,
              "per_class_dice": [float(d) for d in per_class],
              "pixel_accuracy": float(metrics.pixel_accuracy_from_confusion(cm)),
              "rare_precision": float(precision[rare]), "rare_recall": float(recall[rare]),
              "final_loss": loss_history[-1] if loss_history else float("nan"), "loss_history": loss_history,
              "diverged": diverged}
    if norm == "batch":  # the same weights, batch norm on the batch's own statistics
        model.train()
        with torch.no_grad():
            batches = [model(torch.from_numpy(np.ascontiguousarray(x_val[i:i + 32])).permute(0, 3, 1, 2))
                       for i in range(0, len(x_val), 32)]
        pred_bs = torch.cat(batches).argmax(1).numpy()
        bs_dice = metrics.dice_per_class(y_val, pred_bs, num_classes)
        result["dice_batch_stats"] = float(bs_dice[1]) if num_classes == 2 else float(np.nanmean(bs_dice))
    return result


def make_extended_runner(x_train, y_train, x_val, y_val, num_classes, epochs_scale=1.0, **fixed):
    """``run(setting, seed)`` for ``dynamics.run_sweep`` with :func:`train_extended` (PyTorch)."""

    def run(setting, seed):
        kwargs = {"num_classes": num_classes, **MODEL, **fixed, **setting}
        if epochs_scale != 1.0:
            kwargs["epochs"] = max(1, int(round(kwargs.get("epochs", EPOCHS) * epochs_scale)))
        return train_extended(x_train, y_train, x_val, y_val, seed=seed, **kwargs)

    return run

def sections():
    """{name: (description, settings, data, framework)}; settings are {label: train_and_score kwargs}."""
    lr = {f"lr={r:g}": {"lr": r} for r in LR_RATES}
    lr_large = {f"lr={r:g}": {"lr": r} for r in LR_LARGE}
    lr_membranes = {f"lr={r:g}": {"lr": r} for r in (1e-4, 1e-3, 1e-2, 1e-1, 10.0)}
    batch = {}
    for bs in (2, 8, 32):
        batch[f"batch {bs}, lr {BASE_LR:g}"] = {"batch_size": bs, "lr": BASE_LR}
        if bs != BATCH:
            scaled = BASE_LR * bs / BATCH
            batch[f"batch {bs}, lr {scaled:g} (scaled)"] = {"batch_size": bs, "lr": scaled}
    norm = {
        "BatchNorm, batch 2": {"batch_size": 2, "lr": BASE_LR / 4, "norm": "batch"},
        "GroupNorm, batch 2": {"batch_size": 2, "lr": BASE_LR / 4, "norm": "group"},
        "GroupNorm, batch 8": {"batch_size": 8, "lr": BASE_LR, "norm": "group"},
    }
    schedule = {name: {"schedule": name} for name in dynamics.SCHEDULES}
    lam = {f"lambda={v:g}": {"loss": "ce+dice", "ce_weight": 1.0 - v, "dice_weight": v}
           for v in (0.0, 0.25, 0.5, 0.75, 1.0)}
    lam["weighted CE"] = {"loss": "ce", "class_weights": "median"}  # resolved in main()
    plain = {"lr": 2e-3}
    old_capstone = {"lr": 1e-3, "schedule": "cosine", "augment": {"flip": True, "rotate90": False}}
    new_default = {"lr": 3e-3, "schedule": "cosine"}
    flips = {**new_default, "augment": {"flip": True, "rotate90": False}}
    recipe = {f"5 ep: {label}": {"epochs": 5, **config} for label, config in (
        ("plain (Adam 2e-3, constant, no aug)", plain), ("old capstone (1e-3, cosine, flips)", old_capstone),
        ("3e-3, cosine, no aug", new_default))}
    recipe_long = {f"12 ep: {label}": {"epochs": 12, **config} for label, config in (
        ("plain (Adam 2e-3, constant, no aug)", plain), ("3e-3, cosine, no aug", new_default),
        ("3e-3, cosine, flips", flips))}
    keras_lr = {f"lr={r:g}": {"lr": r} for r in (1e-4, 1e-3, 1e-2)}
    # The capstone's fast-mode budget (5 epochs) with more seeds, and the loss as one more ingredient.
    ce_dice = {"loss": "ce+dice", "ce_weight": 1.0, "dice_weight": 1.0}
    recipe_cpu = {f"5 ep: {label}": {"epochs": 5, **config} for label, config in (
        ("plain (Adam 2e-3, constant, CE, no aug)", plain), ("3e-3, cosine, CE", new_default),
        ("2e-3, constant, CE + Dice", {**plain, **ce_dice}), ("3e-3, cosine, CE + Dice", {**new_default, **ce_dice}))}
    # More candidates for the capstone's fast-mode defaults: a higher constant rate, one-cycle, Dice, class weights.
    recipe_cpu_more = {f"5 ep: {label}": {"epochs": 5, **config} for label, config in (
        ("1e-2, constant, CE", {"lr": 1e-2}), ("1e-2, one-cycle, CE + Dice", {"lr": 1e-2, "schedule": "one-cycle", **ce_dice}),
        ("3e-3, constant, Dice", {"lr": 3e-3, "loss": "dice"}),
        ("2e-3, constant, median-frequency weighted CE", {**plain, "class_weights": "median_frequency"}))}
    # The two best candidates and the plain loop with 10 seeds (the standard error of the mean shrinks as 1/sqrt(n)).
    weighted = {"class_weights": "median_frequency"}
    recipe_cpu_10 = {f"5 ep: {label}": {"epochs": 5, **config} for label, config in (
        ("plain (Adam 2e-3, constant, CE, no aug)", plain),
        ("2e-3, constant, median-frequency weighted CE", {**plain, **weighted}),
        ("3e-3, cosine, median-frequency weighted CE", {**new_default, **weighted}))}
    # The same ingredients on the lab's two data sets, at the lab's budget (EPOCHS epochs).
    recipe_other = {label: config for label, config in (
        ("plain (Adam 2e-3, constant, CE, no aug)", plain), ("3e-3, cosine, CE", new_default),
        ("3e-3, cosine, CE, flips", flips), ("2e-3, constant, CE + Dice", {**plain, **ce_dice}),
        ("3e-3, cosine, CE + Dice", {**new_default, **ce_dice}),
        ("2e-3, constant, median-frequency weighted CE", {**plain, **weighted}),
        ("3e-3, cosine, median-frequency weighted CE", {**new_default, **weighted}))}
    batch_sgd = {f"SGD batch 8, lr {SGD_LR:g}": {"batch_size": 8, "lr": SGD_LR}}
    batch_sgd.update({
        f"SGD batch 32, lr {SGD_LR:g} (kept)": {"batch_size": 32, "lr": SGD_LR},
        f"SGD batch 32, lr {SGD_LR * 4:g} (scaled, warm-up)": {"batch_size": 32, "lr": SGD_LR * 4, "warmup_epochs": 1.0},
        f"SGD batch 32, lr {SGD_LR * 4:g} (scaled, no warm-up)": {"batch_size": 32, "lr": SGD_LR * 4}})
    for config in batch_sgd.values():
        config.update(optimizer="sgd", momentum=0.9)
        config.setdefault("warmup_epochs", 0.0)
    norm_paired = {}
    for bs, rate in ((2, BASE_LR / 4), (8, BASE_LR)):
        for label, kind in (("BatchNorm", "batch"), ("GroupNorm", "group")):
            norm_paired[f"{label}, batch {bs}"] = {"batch_size": bs, "lr": rate, "norm": kind}
    # One-cycle as Smith (2018) runs it: a peak above the constant rate (here 1e-2, the best constant rate of the
    # lr sweep being 1e-2 to 3e-3), warm-up over the first 30 % of the steps, then annealing far below.
    schedule_peak = {"constant 3e-3": {"lr": BASE_LR}, "constant 1e-2": {"lr": 1e-2},
                     "one-cycle, peak 3e-3": {"schedule": "one-cycle", "lr": BASE_LR},
                     "one-cycle, peak 1e-2": {"schedule": "one-cycle", "lr": 1e-2}}
    # The capstone's recipe part by part on the Pet-format stand-in: each part added to the plain loop alone,
    # the full recipe, and the full recipe without each part; pixel accuracy and the border's precision too.
    weights_part = {"class_weights": "median_frequency"}
    flips_part = {"augment": {"flip": True, "rotate90": False}}
    recipe_full = {"lr": 3e-3, "schedule": "cosine", **weights_part, **flips_part}
    parts = (("plain (2e-3, constant, CE, no flips)", {"lr": 2e-3}),
             ("plain + rate 3e-3", {"lr": 3e-3}),
             ("plain + cosine", {"lr": 2e-3, "schedule": "cosine"}),
             ("plain + class weights", {"lr": 2e-3, **weights_part}),
             ("plain + flips", {"lr": 2e-3, **flips_part}),
             ("recipe (3e-3, cosine, class weights, flips)", recipe_full),
             ("recipe without class weights", {"lr": 3e-3, "schedule": "cosine", **flips_part}))
    parts = tuple(part for part in parts if part[0] != "plain + rate 3e-3")
    recipe_parts = {label: {"epochs": 5, **config} for label, config in parts}
    # Exercise 08's experiments at the lab's budget, so that its tolerances come from their own seed noise.
    exercise = {f"lr={BASE_LR:g}": {"lr": BASE_LR}, "lr=0.3": {"lr": 0.3},
                "inverse-frequency weighted CE": {"class_weights": "inverse_frequency"},
                "drowned weights [1, 1, 1, 0.01]": {"class_weights": DROWNED_WEIGHTS},
                "no norm, lr=30": {"lr": 30.0, "norm": None}, "no norm, lr=0.001": {"lr": 1e-3, "norm": None}}
    recipe_parts_long = {label: {"epochs": 12, **config} for label, config in parts
                         if label.startswith(("plain (", "plain + class", "recipe"))}
    frameworks = {f"{name}, lr={r:g}": {"framework": key, "lr": r}
                  for r in (BASE_LR,) for name, key in (("PyTorch", "torch"), ("Keras", "keras"))}
    return {
        "lr": ("Learning-rate sweep (constant rate)", lr, "scenes", "torch"),
        "exercise": ("Exercise 08's experiments: a 100x larger rate, class weights for the rare class (inverse "
                     "frequency, and weights that drown it), and the U-Net without normalisation at a rate that "
                     "diverges and at a repaired one", exercise, "scenes", "torch_ext"),
        "lr_large": ("Learning-rate sweep continued: rates beyond 1", lr_large, "scenes", "torch"),
        "lr_membranes": ("Learning-rate sweep on the ISBI 2012 membranes (128 training tiles of 64 px from slices "
                         "0-24, 64 held-out tiles from slices 25-29; membrane Dice)", lr_membranes, "membranes", "torch"),
        "batch": ("Batch size, rate fixed vs scaled linearly with the batch (same epochs)", batch, "scenes", "torch"),
        "batch_sgd": ("Batch size with SGD (momentum 0.9): the linear scaling rule with and without warm-up "
                      "(Goyal et al. 2017; warm-up: the first epoch, linear)", batch_sgd, "scenes", "torch_ext"),
        "norm": ("BatchNorm vs GroupNorm at batch size 2", norm, "scenes", "torch"),
        "norm_paired": ("BatchNorm vs GroupNorm at batch sizes 2 and 8, the same seeds (rate scaled with the batch "
                        "from 3e-3 at 8)", norm_paired, "scenes", "torch_ext"),
        "schedule": (f"Schedules at the same budget, peak rate {BASE_LR:g}", schedule, "scenes", "torch"),
        "schedule_peak": ("One-cycle as Smith runs it (peak above the constant rate, warm-up over the first 30 % of "
                          "the steps) against constant rates, the same budget", schedule_peak, "scenes", "torch_ext"),
        "lambda": ("(1 - lambda) CE + lambda Dice, and class-weighted CE (rate 3e-3)", lam, "scenes", "torch"),
        "recipe_parts": ("The capstone's recipe part by part (Pet-format stand-in, 64 px, U-Net depth 3, 8 "
                         "filters, batch 4, 5 epochs; class weights: median frequency)", recipe_parts, "pets",
                         "torch_ext"),
        "recipe_parts_long": ("The recipe part by part at 12 epochs (same data and model as recipe_parts)",
                              recipe_parts_long, "pets", "torch_ext"),
        "frameworks": ("Keras against PyTorch on one setting (the lab's budget, the same seeds: the same data "
                       "order; each framework draws its own initial weights)", frameworks, "scenes", "both"),
        "recipe": ("The capstone's recipe by budget (Pet-format stand-in, 64 px, U-Net depth 3, 8 filters, batch 4)",
                   recipe, "pets", "torch"),
        "recipe_long": ("The capstone's recipe at a longer budget (same data and model as recipe)", recipe_long,
                        "pets", "torch"),
        "recipe_cpu": ("The capstone's fast-mode budget with more seeds: rate, schedule and loss (Pet-format "
                       "stand-in, 64 px, U-Net depth 3, 8 filters, batch 4, 5 epochs)", recipe_cpu, "pets", "torch"),
        "recipe_cpu_more": ("More candidates at the capstone's fast-mode budget (same data, model and 5 epochs as "
                            "recipe_cpu)", recipe_cpu_more, "pets", "torch"),
        "recipe_cpu_10": ("The plain loop and the two best candidates with 10 seeds (same data, model and 5 epochs "
                          "as recipe_cpu)", recipe_cpu_10, "pets", "torch"),
        "recipe_scenes": (f"The capstone's ingredients on the synthetic scenes ({EPOCHS} epochs, the lab's budget)",
                          recipe_other, "scenes", "torch"),
        "recipe_membranes": (f"The capstone's ingredients on the ISBI 2012 membranes (64 px tiles as in lr_membranes, "
                             f"U-Net depth 3, 8 filters, batch 4, {EPOCHS} epochs; membrane Dice)", recipe_other,
                             "membranes", "torch"),
        "keras": ("Keras: the middle of the learning-rate sweep (compare with PyTorch's lr rows)", keras_lr,
                  "scenes", "keras"),
    }


#: The metrics each extended section reports beyond the Dice (the recipe's cost on other metrics).
EXTRA_METRICS = {"recipe_parts": ["pixel_accuracy", "rare_precision", "rare_recall"],
                 "recipe_parts_long": ["pixel_accuracy", "rare_precision", "rare_recall"],
                 "exercise": ["pixel_accuracy", "rare_precision"]}


def section_pairs(name: str, settings) -> list[tuple[str, str]]:
    """The (a, b) settings that section ``name``'s summary compares seed by seed (paired: same seeds).

    Default: every setting against the section's first (its reference). A few sections compare what their
    lesson is about (e.g. BatchNorm against GroupNorm at the same batch size).
    """
    labels = list(settings)
    if name == "lr":  # every rate against 1e-2, the best mean of the committed sweep
        return [(label, "lr=0.01") for label in labels if label != "lr=0.01"]
    if name == "exercise":
        return [("lr=0.3", f"lr={BASE_LR:g}"), ("inverse-frequency weighted CE", f"lr={BASE_LR:g}"),
                ("drowned weights [1, 1, 1, 0.01]", f"lr={BASE_LR:g}"),
                ("inverse-frequency weighted CE", "drowned weights [1, 1, 1, 0.01]")]
    if name == "lr_large":
        return [("lr=100", "lr=10")]
    if name == "norm":
        return [("GroupNorm, batch 2", "BatchNorm, batch 2"), ("GroupNorm, batch 2", "GroupNorm, batch 8")]
    if name == "schedule_peak":
        return [("one-cycle, peak 1e-2", "constant 3e-3"), ("one-cycle, peak 1e-2", "constant 1e-2"),
                ("one-cycle, peak 3e-3", "constant 3e-3"), ("constant 1e-2", "constant 3e-3")]
    if name in ("batch", "batch_sgd"):
        ref = next(label for label in labels if "batch 8" in label)
        out = [(label, ref) for label in labels if label != ref]
        for bs in (2, 32):
            group = [label for label in labels if f"batch {bs}," in label]
            kept = [label for label in group if "scaled" not in label]
            out += [(label, kept[0]) for label in group if "scaled" in label and kept]
        return out
    if name == "norm_paired":
        return [(f"GroupNorm, batch {bs}", f"BatchNorm, batch {bs}") for bs in (2, 8)] + [
            ("BatchNorm, batch 2", "BatchNorm, batch 8"), ("GroupNorm, batch 2", "GroupNorm, batch 8")]
    if name == "frameworks":
        return [(labels[i + 1], labels[i]) for i in range(0, len(labels) - 1, 2)]
    if name in ("recipe_parts", "recipe_parts_long"):
        out = [(label, labels[0]) for label in labels[1:]]
        full = [label for label in labels if label.startswith("recipe (")]
        without = [label for label in labels if label == "recipe without class weights"]
        if full and without:
            out.append((full[0], without[0]))
        if full and "plain + class weights" in labels:
            out.append((full[0], "plain + class weights"))
        return out
    return [(label, labels[0]) for label in labels[1:]]


def paired_markdown(name: str, rows, settings, metrics) -> str:
    """One paired-verdict table per metric for section ``name`` (``multiseed.paired_table``), or a note when
    fewer than 3 seeds were run."""
    from course_utils import multiseed

    seeds = sorted({r["seed"] for r in rows})
    if len(seeds) < 3:
        return f"(paired verdicts need 3 seeds or more; this section has {len(seeds)})"
    present = {r["setting"] for r in rows}
    pairs = [(a, b) for a, b in section_pairs(name, settings) if a in present and b in present]
    parts = []
    for metric in metrics:
        if not any(np.isfinite(r.get(metric, np.nan)) for r in rows if isinstance(r.get(metric), (int, float))):
            continue
        parts.append(multiseed.paired_table(rows, metric, pairs, by="setting"))
    return "\n\n".join(parts)


def summary_markdown(only=None, folder=None) -> str:
    """The Markdown summary of the saved sections in ``folder`` (default ``benchmarks/results``); runs nothing."""
    folder = RESULTS if folder is None else Path(folder)
    parts = ["# Training dynamics (lecture 08)", "",
             f"Budget: {SETUP}. Mean ± standard deviation over seeds (range in brackets); "
             "`dice` is the mean Dice over the 4 classes on the held-out images, `rare_dice` the triangle's "
             "(Pet-format stand-in: the mean over its 3 classes, and `rare_dice` the thin border class's; "
             "membranes: the membrane Dice).",
             "Written by `benchmarks/training_dynamics.py`.", ""]
    for name, (description, _settings, dataset, framework) in sections().items():
        path = folder / f"dynamics_{name}.json"
        if (only is not None and name not in only) or not path.exists():
            continue
        rows, meta = dynamics.load_rows(path)
        metrics = ["dice", "rare_dice"] if dataset in ("scenes", "pets") else ["dice"]
        extra = [m for m in EXTRA_METRICS.get(name, []) if any(m in r for r in rows)]
        parts += [f"## {name}: {description}", "",
                  f"{meta.get('framework', framework)}, seeds {meta.get('seeds')}"
                  + (f"; code: {meta['code']}" if meta.get("code") else "; code: before issue 21's initialisation change")
                  + (
                      ", quick mode (not a result)" if meta.get("quick") else ""), "",
                  dynamics.markdown_table(dynamics.summarise(rows, metrics + extra), metrics + extra), "",
                  "Paired verdicts (per-seed differences a - b, 95 % t interval; \"shown\": the interval excludes 0, "
                  "\"not shown\": it does not, which does not mean equal):", "",
                  paired_markdown(name, rows, _settings, metrics + extra), ""]
    return "\n".join(parts)


def code_note() -> str:
    """Which code a section's runs come from: the commit, and whether the models' initialisation is the course's own."""
    import subprocess

    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE.parent, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    aligned = (HERE.parent / "course_utils" / "torch" / "init.py").exists()
    return (f"commit {commit} (working tree); initial weights: "
            + ("He initialisation in both frameworks (issue 21)" if aligned else "each framework's default"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(sections()), help="run only these sections")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1 seed, a quarter of the epochs: a smoke test")
    parser.add_argument("--reuse", action="store_true", help="run nothing; rebuild training_dynamics.md")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if not args.reuse:
        import torch

        torch.set_num_threads(1)
        seeds = [0] if args.quick else list(range(args.seeds))
        scale = 0.25 if args.quick else 1.0
        cache = {}
        for name in args.only or list(sections()):
            description, settings, dataset, framework = sections()[name]
            if dataset not in cache:
                cache[dataset] = {"scenes": scenes, "pets": pets_standin, "membranes": membranes}[dataset]()
            x_train, y_train, x_val, y_val = cache[dataset]
            num_classes = {"scenes": SCENES["num_classes"], "pets": 3, "membranes": 2}[dataset]
            fixed = {} if dataset == "scenes" else {"depth": 3, "batch_size": 4}
            if name == "lambda":
                weights = data.class_weights(y_train, num_classes, method="inverse_frequency")
                settings["weighted CE"]["class_weights"] = [float(w) for w in weights]
            for setting in settings.values():  # class weights named by their method: computed from the labels
                if isinstance(setting.get("class_weights"), str) and name != "lambda":
                    weights = data.class_weights(y_train, num_classes, method=setting["class_weights"])
                    setting["class_weights"] = [float(w) for w in weights]
            if framework == "torch_ext":
                runner = make_extended_runner(x_train, y_train, x_val, y_val, num_classes, epochs_scale=scale,
                                              **({"rare_class": RARE} if dataset == "scenes" else {}), **fixed)
            elif framework == "both":  # each setting names its framework
                runners = {key: make_runner(key, x_train, y_train, x_val, y_val, num_classes, epochs_scale=scale,
                                            **fixed) for key in ("torch", "keras")}

                def runner(setting, seed, runners=runners):
                    setting = dict(setting)
                    return runners[setting.pop("framework")](setting, seed)
            else:
                runner = make_runner(framework, x_train, y_train, x_val, y_val, num_classes, epochs_scale=scale,
                                     **fixed)
            print(f"== {name}: {description}", flush=True)
            rows = dynamics.run_sweep(runner, settings, seeds)
            dynamics.save_rows(args.out / f"dynamics_{name}.json", rows, section=name, description=description,
                               setup=SETUP if dataset == "scenes" else description, seeds=seeds,
                               framework={"keras": "Keras", "both": "Keras and PyTorch"}.get(framework, "PyTorch"),
                               quick=args.quick, code=code_note(),
                               settings={k: {kk: vv for kk, vv in v.items()} for k, v in settings.items()})
    text = summary_markdown()
    if args.out == RESULTS:
        (RESULTS / "training_dynamics.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
