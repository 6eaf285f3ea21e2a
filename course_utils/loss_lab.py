"""Lecture 05's experiment plumbing: score a quick run per loss, print it beside trivial baselines, draw it.

The lecture trains one U-Net per loss (CE, weighted CE, Dice, CE + Dice) on the synthetic scenes and shows
the code that trains; what happens after training (scoring, the table, the bar chart, the predictions side
by side) is the same for every loss and both frameworks, and lives here.

A *data-set dict* ``ds`` (built in the lecture) holds ``name``, ``num_classes``, ``class_names``,
``x_train`` ``(N, H, W, 3)``, ``y_train`` ``(N, H, W)``, ``x_val`` and ``y_val`` (the same layouts), all
NumPy, integer masks of class indices.

Every quick-run table carries two **trivial baselines** scored like a model: every pixel the majority class
of the training masks, and every pixel the rarest class. A trained model whose predictions are no better is
**flagged**: it predicts one class only, or its mean Dice is within ``tolerance`` of a baseline's. Classes
present in the validation masks that a model never predicts are listed too.

Framework-free: NumPy, with Matplotlib only inside the figure functions.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import metrics

__all__ = ["per_class_scores", "baseline_predictions", "baseline_flag", "score_table", "dice_chart",
           "predictions_side_by_side"]

_KEYS = ("name", "num_classes", "class_names", "x_train", "y_train", "x_val", "y_val")


def _check_ds(ds) -> None:
    if not isinstance(ds, Mapping):
        raise TypeError(f"ds must be the lecture's data-set dict, got {type(ds).__name__}: build it as in section 6.")
    missing = [k for k in _KEYS if k not in ds]
    if missing:
        raise KeyError(f"the data-set dict lacks {missing}: it needs {list(_KEYS)}.")


def per_class_scores(ds: Mapping, pred_masks) -> dict:
    """Scores of predicted masks ``(N, H, W)`` against ``ds["y_val"]`` ``(N, H, W)``.

    Returns ``{"dice": (C,), "iou": (C,), "mean_dice": float, "predicted_pixels": (C,) int}``: per-class
    Dice and IoU from the NumPy reference metrics (NaN for a class absent from truth and prediction), their
    mean over the defined classes, and how many pixels the model assigned to each class.
    """
    _check_ds(ds)
    pred = np.asarray(pred_masks)
    y_val = np.asarray(ds["y_val"])
    if pred.shape != y_val.shape:
        raise ValueError(f"predicted masks have shape {pred.shape} but ds['y_val'] has {y_val.shape}: predict "
                         "on ds['x_val'] and pass the (N, H, W) class indices (argmax over the logits).")
    k = int(ds["num_classes"])
    cm = metrics.confusion_matrix(y_val, pred, k)
    dice = metrics.dice_from_confusion(cm)
    return {"dice": dice, "iou": metrics.iou_from_confusion(cm), "mean_dice": metrics.nanmean(dice),
            "predicted_pixels": cm.sum(axis=0).astype(np.int64)}


def baseline_predictions(ds: Mapping) -> dict[str, np.ndarray]:
    """The two trivial predictions for ``ds["y_val"]``: ``{label: (N, H, W) masks}``.

    "all <majority> (majority class)" paints every pixel with the most frequent class of ``ds["y_train"]``;
    "all <rare> (rare class)" with the least frequent one.
    """
    _check_ds(ds)
    k = int(ds["num_classes"])
    counts = np.bincount(np.asarray(ds["y_train"]).ravel(), minlength=k)[:k]
    names = list(ds["class_names"])[:k]
    majority, rare = int(np.argmax(counts)), int(np.argmin(counts))
    y_val = np.asarray(ds["y_val"])
    return {f"all {names[majority]} (majority class)": np.full_like(y_val, majority),
            f"all {names[rare]} (rare class)": np.full_like(y_val, rare)}


def baseline_flag(scores: Mapping, baselines: Mapping[str, Mapping], class_names, y_true,
                  tolerance: float = 0.02) -> str:
    """A short warning when a trained model is no better than a trivial baseline, else ``""``.

    Args:
        scores: :func:`per_class_scores` of the model.
        baselines: ``{baseline label: per_class_scores}`` of the trivial predictions.
        class_names: one name per class.
        y_true: the validation masks ``(N, H, W)`` (which classes are present).
        tolerance: a mean Dice within this of a baseline's counts as "at the baseline".

    The warning names the first that applies: "predicts <class> only" (one class for every pixel), "at the
    <baseline> baseline" (mean Dice within ``tolerance``); then, separately, the classes present in the
    truth that the model never predicts ("never predicts disc, triangle").
    """
    names = list(class_names)
    predicted = np.asarray(scores["predicted_pixels"])
    present = np.bincount(np.asarray(y_true).ravel(), minlength=len(predicted))[:len(predicted)] > 0
    notes = []
    if np.count_nonzero(predicted) == 1:
        notes.append(f"predicts {names[int(np.argmax(predicted))]} only")
    else:
        for label, base in baselines.items():
            if scores["mean_dice"] <= base["mean_dice"] + tolerance:
                notes.append(f"at the '{label}' baseline")
                break
    never = [names[c] for c in range(len(predicted)) if present[c] and predicted[c] == 0]
    if never and not (np.count_nonzero(predicted) == 1):
        notes.append("never predicts " + ", ".join(never))
    return "; ".join(notes)


def score_table(results: Mapping[str, Mapping], ds: Mapping, framework: str, tolerance: float = 0.02) -> str:
    """The quick run's table as text: per-class Dice / IoU per loss, then the trivial baselines, with flags.

    ``results[loss name]`` is :func:`per_class_scores` plus ``"seconds"`` (training time). A row whose model
    is no better than a baseline ends with ``<- ...`` (:func:`baseline_flag`).
    """
    _check_ds(ds)
    k = int(ds["num_classes"])
    names = list(ds["class_names"])[:k]
    baselines = {label: per_class_scores(ds, pred) for label, pred in baseline_predictions(ds).items()}
    width = max([12] + [len(n) for n in list(results) + list(baselines)]) + 1
    lines = [f"{framework} · {ds['name']}: per-class Dice / IoU on {len(ds['y_val'])} validation images (one seed)",
             f"{'':{width}s}" + "".join(f"{n:>16s}" for n in names) + f"{'mean Dice':>11s}{'time':>8s}"]

    def cells(r):
        return "".join("         n/a    " if np.isnan(d) else f"{d:8.2f} / {i:4.2f} " for d, i in zip(r["dice"], r["iou"]))

    for loss_name, r in results.items():
        flag = baseline_flag(r, baselines, names, ds["y_val"], tolerance)
        lines.append(f"{loss_name:{width}s}{cells(r)}{r['mean_dice']:11.2f}{r['seconds']:7.1f}s"
                     + (f"  <- {flag}" if flag else ""))
    for label, r in baselines.items():
        lines.append(f"{label:{width}s}{cells(r)}{r['mean_dice']:11.2f}{'-':>8s}")
    return "\n".join(lines)


def dice_chart(results: Mapping[str, Mapping], ds: Mapping, framework: str):
    """Grouped bars of per-class Dice per loss (one seed), with the majority-class baseline; returns the figure."""
    from . import viz

    _check_ds(ds)
    names = list(ds["class_names"])[:int(ds["num_classes"])]
    table = {loss_name: {n: float(v) for n, v in zip(names, r["dice"])} for loss_name, r in results.items()}
    label, pred = next(iter(baseline_predictions(ds).items()))
    table[label] = {n: float(v) for n, v in zip(names, per_class_scores(ds, pred)["dice"])}
    fig = viz.compare_bar_chart(table, title=f"{framework} · {ds['name']}: per-class Dice by training loss (one seed)",
                                ylabel="Dice (validation)")
    fig.set_size_inches(min(10.0, fig.get_size_inches()[0]), fig.get_size_inches()[1])  # fits a notebook page
    fig.tight_layout()
    return fig


def predictions_side_by_side(ds: Mapping, predictions: Mapping[str, np.ndarray], framework: str, n: int = 3):
    """Rows: validation images with the rare (last) class; columns: image, truth, each loss's prediction."""
    import matplotlib.pyplot as plt

    from . import viz

    _check_ds(ds)
    k = int(ds["num_classes"])
    rows = np.flatnonzero((np.asarray(ds["y_val"]) == k - 1).any(axis=(1, 2)))[:n]
    rows = rows if rows.size else np.arange(min(n, len(ds["y_val"])))
    cols = 2 + len(predictions)
    fig, axes = plt.subplots(len(rows), cols, figsize=(min(10.0, 1.8 * cols), 1.75 * len(rows) + 0.7), squeeze=False,
                             gridspec_kw=dict(hspace=0.12, wspace=0.06))
    for r, i in enumerate(rows):
        axes[r, 0].imshow(ds["x_val"][i])
        axes[r, 1].imshow(viz.colorize_mask(ds["y_val"][i], k))
        for col, pred in enumerate(predictions.values(), start=2):
            axes[r, col].imshow(viz.colorize_mask(pred[i], k))
    for col, title in enumerate(["image", "truth", *predictions]):
        axes[0, col].set_title(title, fontsize=9)
    for ax in axes.ravel():
        ax.axis("off")
    fig.suptitle(f"{framework}: predictions by training loss (validation scenes with a {ds['class_names'][k - 1]})")
    viz.add_class_legend(fig, k, ds["class_names"])
    return fig
