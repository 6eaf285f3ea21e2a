"""Lecture 07's comparison plumbing: train U-Net, FCN-8s, DeepLab and DeepLabV3+ on one budget and score them.

The lecture teaches the models; this module holds what is the same for every model and framework:
building each model from one :class:`Budget`, training it with the course's own helpers (Keras
``compile_model`` + ``fit``; PyTorch ``train.fit`` with Adam), predicting the validation masks and
scoring them (Dice and IoU per class, per-class and class-agnostic boundary F1, parameters,
multiply-adds, seconds per epoch), then printing a table and a one-line reading.

Every model is trained from the same seed: the seed is set before it is built and the training batches
come in the same seeded order, so within one framework the models differ only by their architecture.

    budget = Budget(size=64, base_filters=8, unet_depth=3, rates=(1, 2, 3), epochs=10, batch=4,
                    learning_rate=5e-3, seed=42)
    results, preds = compare_torch(x_train, y_train, x_val, y_val, num_classes=4, budget=budget)
    print(format_table(results, class_names, "PyTorch - synthetic scenes"))

Shapes: images (N, H, W, C) float32 in [0, 1] (NHWC, in both frameworks: the PyTorch helpers transpose),
masks (N, H, W) integer class indices. Importing this module imports neither framework.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from . import metrics

__all__ = ["MODEL_NAMES", "Budget", "keras_models", "torch_models", "scores", "train_keras", "train_torch",
           "compare_keras", "compare_torch", "format_table", "conclusion", "side_by_side"]

#: The models of the comparison, in the order of the tables.
MODEL_NAMES = ("U-Net", "FCN-8s", "DeepLab OS8", "DeepLabV3+ OS8")


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Budget.{what} must be a positive integer, got {value!r}.")
    return int(value)


@dataclass(frozen=True)
class Budget:
    """The settings every model of the comparison shares (the same in both frameworks).

    size: image side in pixels (a multiple of 32, for FCN's five poolings); base_filters: filters of the first
    stage of every model; unet_depth: the U-Net's poolings; rates: DeepLab's ASPP rates; epochs, batch,
    learning_rate: the training budget (Adam, cross-entropy); seed: set before each model is built and trained.
    """

    size: int
    base_filters: int
    unet_depth: int
    rates: tuple
    epochs: int
    batch: int
    learning_rate: float
    seed: int = 42

    def __post_init__(self):
        for what in ("size", "base_filters", "unet_depth", "epochs", "batch"):
            _positive_int(getattr(self, what), what)
        if self.size % 32:
            raise ValueError(f"Budget.size must be a multiple of 32 (FCN pools five times), got {self.size}.")
        rates = tuple(self.rates)
        if not rates or any(isinstance(r, bool) or not isinstance(r, (int, np.integer)) or r < 1 for r in rates):
            raise ValueError(f"Budget.rates must be one or more positive integers, e.g. (1, 2, 3); got {self.rates!r}.")
        object.__setattr__(self, "rates", tuple(int(r) for r in rates))
        if not (isinstance(self.learning_rate, (int, float)) and 0 < self.learning_rate < 1):
            raise ValueError(f"Budget.learning_rate must be a number in (0, 1), e.g. 3e-3; got {self.learning_rate!r}.")


def _check_names(names) -> tuple:
    names = tuple(names)
    unknown = [n for n in names if n not in MODEL_NAMES]
    if unknown or not names:
        raise ValueError(f"unknown model name(s) {unknown or names!r}: choose from {MODEL_NAMES}.")
    return names


def keras_models(budget: Budget, in_channels: int, num_classes: int, names=MODEL_NAMES) -> dict:
    """``{name: factory}``: each factory builds a fresh Keras model (B, size, size, in_channels) -> logits."""
    from .keras.deeplab import build_deeplab
    from .keras.deeplab_plus import build_deeplab_plus
    from .keras.fcn import build_fcn
    from .keras.unet import build_unet

    shape, b = (budget.size, budget.size, in_channels), budget
    factories = {
        "U-Net": lambda: build_unet(shape, num_classes, base_filters=b.base_filters, depth=b.unet_depth),
        "FCN-8s": lambda: build_fcn(shape, num_classes, variant="8s", base_filters=b.base_filters),
        "DeepLab OS8": lambda: build_deeplab(shape, num_classes, output_stride=8, base_filters=b.base_filters,
                                             atrous_rates=b.rates),
        "DeepLabV3+ OS8": lambda: build_deeplab_plus(shape, num_classes, output_stride=8,
                                                     base_filters=b.base_filters, atrous_rates=b.rates),
    }
    return {name: factories[name] for name in _check_names(names)}


def torch_models(budget: Budget, in_channels: int, num_classes: int, names=MODEL_NAMES) -> dict:
    """``{name: factory}``: each factory builds a fresh PyTorch model (B, in_channels, size, size) -> logits."""
    from .torch.deeplab import DeepLabV3
    from .torch.deeplab_plus import DeepLabV3Plus
    from .torch.fcn import FCN
    from .torch.unet import UNet

    b = budget
    factories = {
        "U-Net": lambda: UNet(in_channels, num_classes, base_filters=b.base_filters, depth=b.unet_depth),
        "FCN-8s": lambda: FCN(in_channels, num_classes, variant="8s", base_filters=b.base_filters),
        "DeepLab OS8": lambda: DeepLabV3(in_channels, num_classes, output_stride=8, base_filters=b.base_filters,
                                         atrous_rates=b.rates),
        "DeepLabV3+ OS8": lambda: DeepLabV3Plus(in_channels, num_classes, output_stride=8,
                                                base_filters=b.base_filters, atrous_rates=b.rates),
    }
    return {name: factories[name] for name in _check_names(names)}


def scores(y_true, y_pred, num_classes: int, seconds: float = float("nan"), params: int = 0, macs: int = 0) -> dict:
    """Scores of predicted masks ``y_pred`` (N, H, W) against ``y_true`` (N, H, W).

    Returns ``{"params", "macs", "sec", "dice", "iou", "bf1", "bf1_any", "classes"}``: Dice, IoU and boundary F1
    (tolerance 2 px) per class as arrays of length ``num_classes`` (NaN where a class is absent from both),
    ``bf1_any`` the class-agnostic boundary F1 and ``classes`` the sorted class indices the prediction uses
    (``[0]``: background only).
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 3:
        raise ValueError(f"scores needs y_true and y_pred of the same shape (N, H, W); got {y_true.shape} and "
                         f"{y_pred.shape}.")
    return dict(params=int(params), macs=int(macs), sec=float(seconds),
                dice=metrics.dice_per_class(y_true, y_pred, num_classes),
                iou=metrics.iou_per_class(y_true, y_pred, num_classes),
                bf1=metrics.boundary_f1(y_true, y_pred, num_classes, tolerance=2),
                bf1_any=metrics.boundary_f1_agnostic(y_true, y_pred, tolerance=2),
                classes=[int(c) for c in np.unique(y_pred)])


def train_keras(model, x_train, y_train, num_classes: int, budget: Budget, loss=None):
    """Train a Keras model with the course's ``compile_model`` / ``make_dataset`` for ``budget.epochs``.

    Seeds Keras with ``budget.seed`` first (set it before building the model too). ``loss`` defaults to the
    course's cross-entropy. Returns ``(history dict, seconds per epoch)``: the median over the epochs after the
    first (Keras' first epoch also traces the graph). No validation data: the models are scored once, after
    training (many short evaluations in a row make TensorFlow warn about retracing).
    """
    import keras

    from .keras import data as kdata
    from .keras import train as ktrain
    from .keras.losses import CrossEntropyLoss

    times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    keras.utils.set_random_seed(budget.seed)
    ktrain.compile_model(model, num_classes, loss=loss or CrossEntropyLoss(), learning_rate=budget.learning_rate)
    dataset = kdata.make_dataset(x_train, y_train, batch_size=budget.batch, shuffle=True, seed=budget.seed)
    history = model.fit(dataset, epochs=budget.epochs, verbose=0, callbacks=[EpochTimer()])
    return history.history, float(np.median(times[1:] if len(times) > 1 else times))


def train_torch(model, x_train, y_train, num_classes: int, budget: Budget, loss=None):
    """Train a PyTorch model with Adam and the course's ``train.fit`` for ``budget.epochs`` (on the CPU or GPU).

    The batches come from ``make_loader(..., shuffle=True, seed=budget.seed)``, a fresh loader per model, so
    every model sees the same batches in the same order. Returns ``(history dict, seconds per epoch)``.
    """
    import torch

    from .torch import data as tdata
    from .torch import train as ttrain
    from .torch.losses import CrossEntropyLoss

    loader = tdata.make_loader(x_train, y_train, batch_size=budget.batch, shuffle=True, seed=budget.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=budget.learning_rate)
    start = time.perf_counter()
    history = ttrain.fit(model, loader, None, loss or CrossEntropyLoss(), optimizer, budget.epochs, num_classes,
                         monitor="loss", progress=False)
    return history, (time.perf_counter() - start) / budget.epochs


def compare_keras(x_train, y_train, x_val, y_val, num_classes: int, budget: Budget, names=MODEL_NAMES):
    """Build, train (:func:`train_keras`) and score each Keras model; returns ``(results, preds)`` by name.

    ``results[name]`` is :func:`scores`' dict; ``preds[name]`` the predicted validation masks (N, H, W).
    """
    import keras

    from . import flops
    from .keras import train as ktrain
    from .keras.unet import count_parameters

    results, preds = {}, {}
    for name, make in keras_models(budget, x_train.shape[-1], num_classes, names).items():
        keras.utils.set_random_seed(budget.seed)
        model = make()
        _, sec = train_keras(model, x_train, y_train, num_classes, budget)
        preds[name] = ktrain.predict_masks(model, x_val)
        results[name] = scores(y_val, preds[name], num_classes, sec, count_parameters(model),
                               flops.count_macs_keras(model))
    return results, preds


def compare_torch(x_train, y_train, x_val, y_val, num_classes: int, budget: Budget, names=MODEL_NAMES):
    """Build, train (:func:`train_torch`) and score each PyTorch model; returns ``(results, preds)`` by name."""
    from . import env, flops
    from .torch import train as ttrain

    results, preds = {}, {}
    channels = x_train.shape[-1]
    for name, make in torch_models(budget, channels, num_classes, names).items():
        env.seed_everything(budget.seed)
        model = make()
        _, sec = train_torch(model, x_train, y_train, num_classes, budget)
        preds[name] = ttrain.predict_masks(model, x_val)
        results[name] = scores(y_val, preds[name], num_classes, sec, sum(p.numel() for p in model.parameters()),
                               flops.count_macs_torch(model, (channels, budget.size, budget.size)))
    return results, preds


def _format_count(n: float) -> str:
    from .flops import format_count

    return format_count(n)


def format_table(results: dict, class_names, title: str) -> str:
    """A text table of :func:`compare_keras` / :func:`compare_torch` results, one line per model.

    Columns: parameters, multiply-adds per image, seconds per epoch, mean Dice, mean IoU, mean per-class boundary
    F1 over the foreground classes, class-agnostic boundary F1, Dice per class; a model whose prediction uses
    only class 0 is marked "background only".
    """
    head = (f"{'model':15s} {'params':>9s} {'MACs/img':>10s} {'s/epoch':>8s} {'mDice':>6s} {'mIoU':>6s} "
            f"{'bF1':>6s} {'bF1 any':>7s}  Dice per class")
    lines = [title, head, "-" * (len(head) + 20)]
    for name, r in results.items():
        per_class = " ".join(f"{c[:4]}={d:.2f}" for c, d in zip(class_names, r["dice"]))
        flag = "  <- background only" if r.get("classes") == [0] else ""
        lines.append(f"{name:15s} {r['params']:>9,d} {_format_count(r['macs']):>10s} {r['sec']:>8.2f} "
                     f"{metrics.nanmean(r['dice']):6.3f} {metrics.nanmean(r['iou']):6.3f} "
                     f"{metrics.nanmean(r['bf1'][1:]):6.3f} {r['bf1_any']:7.3f}  {per_class}{flag}")
    return "\n".join(lines)


def conclusion(results: dict, what: str, benchmark: bool = True) -> str:
    """One sentence on one run: the best mean Dice, the best class-agnostic boundary F1, the fewest multiply-adds.

    ``benchmark``: whether a multi-seed benchmark exists to compare with (else the sentence says there is none).
    """
    if not results:
        raise ValueError("conclusion needs the results of at least one model.")
    dice = {n: metrics.nanmean(r["dice"]) for n, r in results.items()}
    outline = {n: r["bf1_any"] for n, r in results.items()}
    best_dice, best_outline = max(dice, key=dice.get), max(outline, key=outline.get)
    cheapest = min(results, key=lambda n: results[n]["macs"])
    collapsed = [n for n, r in results.items() if r.get("classes") == [0]]
    text = (f"{what} (one seed): best mean Dice {best_dice} ({dice[best_dice]:.2f}); best class-agnostic boundary F1 "
            f"{best_outline} ({outline[best_outline]:.2f}); fewest multiply-adds {cheapest}. ")
    if collapsed:
        text += f"Predicting background only: {', '.join(collapsed)}. "
    return text + ("One seed: compare with the benchmark's paired verdicts before calling a difference real."
                   if benchmark else "One seed, and no multi-seed benchmark for this data: one observation.")


def side_by_side(images, truth, preds: dict, num_classes: int, class_names, n: int = 3, title=None):
    """Figure: n rows of image, truth and each model's prediction (``preds``: name -> (N, H, W)), with a legend."""
    import matplotlib.pyplot as plt

    from . import viz

    n = min(int(n), len(images))
    cols = 2 + len(preds)
    fig, axes = plt.subplots(n, cols, figsize=(2.4 * cols, 2.4 * n), squeeze=False)
    for row in range(n):
        panels = [("image", np.asarray(images[row]).squeeze()), ("truth", viz.colorize_mask(truth[row], num_classes))]
        panels += [(name, viz.colorize_mask(p[row], num_classes)) for name, p in preds.items()]
        for ax, (label, img) in zip(axes[row], panels):
            ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
            ax.set_title(label, fontsize=9)
            ax.axis("off")
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    viz.add_class_legend(fig, num_classes, class_names)
    return fig
