"""An interactive explorer of a model's predictions (ipywidgets, lecture 06).

>>> explorer = SegmentationExplorer(images, masks, probabilities, class_names=("cell", "membrane"))
>>> explorer.widget            # display it as the last line of a cell

Controls: the sample, the probability threshold (binary problems: foreground
where ``p(foreground) >= threshold``), the classes to show and score
(multi-class: prediction = argmax), and the overlay opacity. The figure shows
truth, (probability,) prediction and error map; below it, Dice, IoU and pixel
accuracy for the current settings, computed with ``course_utils.metrics``.

Plain ipywidgets, 7.7 (Colab's) or 8, no custom JavaScript: it works in JupyterLab, Jupyter
Notebook, VS Code and Colab. Tests and scripts can set the widgets' ``value``
and read :meth:`SegmentationExplorer.current_metrics`.
"""

from __future__ import annotations

import numpy as np

from . import metrics as _metrics
from .data import check_images, check_masks, check_probabilities
from . import viz as _viz

__all__ = ["SegmentationExplorer"]


class SegmentationExplorer:
    """Explore predictions interactively: sample, threshold, classes, opacity.

    Args:
        images: ``(N, H, W, C)`` floats in [0, 1] (C = 1 shown grey).
        masks_true: int ``(N, H, W)``.
        probabilities: ``(N, H, W, K)`` softmax outputs (K >= 2), or ``K = 1``
            sigmoid outputs of a 1-logit binary model. Apply softmax/sigmoid to
            logits first.
        class_names: K names (2 for a sigmoid output); default ``class 0``, ...
        ignore_index: true label whose pixels are not scored.

    Attributes:
        widget: the container to display.
        sample_slider, threshold_slider (binary only, else ``None``),
        class_selector (multi-class only, else ``None``), opacity_slider,
        all_samples (score all samples instead of the one shown): the controls.
    """

    def __init__(self, images, masks_true, probabilities, class_names=None, ignore_index=None):
        import ipywidgets as widgets

        images = np.asarray(images)
        masks_true = np.asarray(masks_true)
        probs = np.asarray(probabilities, dtype=np.float32)
        if images.ndim == 3:
            raise ValueError(
                f"images have shape {images.shape}: pass a batch (N, H, W, C), e.g. images[None] "
                "or images[..., None] for grey images."
            )
        if masks_true.ndim != 3:
            raise ValueError(f"masks_true must be (N, H, W) class indices, got {masks_true.shape}.")
        if probs.ndim != 4:
            raise ValueError(
                f"probabilities must be (N, H, W, K) softmax (or sigmoid) outputs, got {probs.shape}."
            )
        if images.ndim != 4 or images.shape[:3] != masks_true.shape or probs.shape[:3] != masks_true.shape:
            hint = ""
            if probs.ndim == 4 and probs.shape[1] < probs.shape[-1] and probs.shape[2:] == masks_true.shape[1:]:
                hint = " probabilities look channels-first (NCHW): use probs.transpose(0, 2, 3, 1)."
            raise ValueError(
                f"images {images.shape}, masks_true {masks_true.shape} and probabilities {probs.shape} "
                f"must share (N, H, W).{hint}"
            )
        # The course's one set of validators: finite images in [0, 1], integer masks, probabilities that are
        # finite, in [0, 1] and sum to 1 (NaN used to slip through a nanmin/nanmax range check).
        images = check_images(images, "images")
        probs = check_probabilities(probs, "probabilities")
        num_classes = 2 if probs.shape[-1] == 1 else probs.shape[-1]
        masks_true = check_masks(masks_true, num_classes, ignore_index, "masks_true")
        self.images = images
        self.masks_true = masks_true.astype(np.int64)
        self.probabilities = probs
        self.sigmoid = probs.shape[-1] == 1
        self.num_classes = 2 if self.sigmoid else probs.shape[-1]
        self.binary = self.num_classes == 2
        self.ignore_index = ignore_index
        if class_names is None:
            class_names = [f"class {i}" for i in range(self.num_classes)]
        if len(class_names) != self.num_classes:
            raise ValueError(
                f"got {len(class_names)} class_names for {self.num_classes} classes: give one name per class."
            )
        self.class_names = [str(c) for c in class_names]
        n = len(images)

        self.sample_slider = widgets.IntSlider(value=0, min=0, max=max(n - 1, 0), description="sample",
                                               continuous_update=False)
        self.opacity_slider = widgets.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="opacity",
                                                  continuous_update=False)
        self.all_samples = widgets.Checkbox(value=False, description="score all samples", indent=False)
        self.threshold_slider = None
        self.class_selector = None
        controls = [self.sample_slider]
        if self.binary:
            self.threshold_slider = widgets.FloatSlider(
                value=0.5, min=0.0, max=1.0, step=0.01, description="threshold", continuous_update=False,
                readout_format=".2f",
            )
            controls.append(self.threshold_slider)
        else:
            self.class_selector = widgets.SelectMultiple(
                options=[(name, i) for i, name in enumerate(self.class_names)],
                value=tuple(range(1, self.num_classes)),  # foreground classes
                description="classes",
                rows=min(self.num_classes, 6),
            )
            controls.append(self.class_selector)
        controls += [self.opacity_slider, self.all_samples]
        self.output = widgets.Output()
        self.metrics_html = widgets.HTML()
        self.widget = widgets.VBox(
            [widgets.HBox(controls[:2]), widgets.HBox(controls[2:]), self.output, self.metrics_html]
        )
        for control in controls:
            control.observe(self._on_change, names="value")
        self._update()

    # ------------------------------------------------------------------ state
    @property
    def sample(self) -> int:
        return int(self.sample_slider.value)

    @property
    def threshold(self):
        return None if self.threshold_slider is None else float(self.threshold_slider.value)

    @property
    def selected_classes(self) -> tuple:
        """Classes shown and scored (binary: the foreground class 1)."""
        if self.class_selector is None:
            return (1,)
        return tuple(sorted(self.class_selector.value))

    def _predict(self, probs: np.ndarray) -> np.ndarray:
        if self.binary:
            foreground = probs[..., 0] if self.sigmoid else probs[..., 1]
            return (foreground >= self.threshold).astype(np.int64)
        return probs.argmax(axis=-1).astype(np.int64)

    def current_prediction(self) -> np.ndarray:
        """The predicted mask ``(H, W)`` int64 of the current sample under the current settings."""
        return self._predict(self.probabilities[self.sample])

    def current_metrics(self) -> dict:
        """Scores for the current settings (the current sample, or all if ``all_samples`` is ticked).

        Returns:
            dict with ``"dice"`` and ``"iou"`` (binary: of the foreground class; multi-class:
            mean over the selected classes present), ``"pixel_accuracy"``, ``"mean_dice"``
            and ``"mean_iou"`` over all classes, ``"per_class"`` ({name: {"dice", "iou"}}),
            plus ``"sample"``, ``"threshold"`` and ``"classes"``.
        """
        if self.all_samples.value:
            y_true, y_pred = self.masks_true, self._predict(self.probabilities)
        else:
            y_true, y_pred = self.masks_true[self.sample], self.current_prediction()
        cm = _metrics.confusion_matrix(y_true, y_pred, self.num_classes, self.ignore_index)
        dice = _metrics.dice_from_confusion(cm)
        iou = _metrics.iou_from_confusion(cm)
        chosen = list(self.selected_classes)
        return {
            "sample": "all" if self.all_samples.value else self.sample,
            "threshold": self.threshold,
            "classes": [self.class_names[c] for c in chosen],
            "dice": _metrics.nanmean(dice[chosen]) if chosen else float("nan"),
            "iou": _metrics.nanmean(iou[chosen]) if chosen else float("nan"),
            "pixel_accuracy": _metrics.pixel_accuracy_from_confusion(cm),
            "mean_dice": _metrics.nanmean(dice),
            "mean_iou": _metrics.nanmean(iou),
            "per_class": {
                name: {"dice": float(dice[i]), "iou": float(iou[i])} for i, name in enumerate(self.class_names)
            },
        }

    # ------------------------------------------------------------------ drawing
    def _shown(self, mask: np.ndarray) -> np.ndarray:
        """The mask with unselected classes painted as background (display only)."""
        keep = np.isin(mask, self.selected_classes)
        return np.where(keep, mask, 0)

    def figure(self):
        """A Matplotlib Figure of the current sample under the current settings."""
        import matplotlib.pyplot as plt

        i = self.sample
        image = self.images[i]
        truth = self.masks_true[i]
        pred = self.current_prediction()
        alpha = float(self.opacity_slider.value)
        valid_truth = truth if self.ignore_index is None else np.where(truth == self.ignore_index, 0, truth)
        fig, axes = plt.subplots(1, 4, figsize=(13, 3.6))
        _viz._show(axes[0], _viz.overlay(image, self._shown(valid_truth), self.num_classes, alpha), "truth")
        if self.binary:
            fg = self.probabilities[i, ..., 0 if self.sigmoid else 1]
            im = axes[1].imshow(fg, cmap="magma", vmin=0, vmax=1)
            axes[1].contour(fg, levels=[self.threshold], colors="cyan", linewidths=0.8)
            axes[1].set_title(f"p({self.class_names[1]}), contour at {self.threshold:.2f}", fontsize=10)
            axes[1].set_xticks([])
            axes[1].set_yticks([])
            fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.02)
        else:
            confidence = self.probabilities[i].max(axis=-1)
            im = axes[1].imshow(confidence, cmap="viridis", vmin=1.0 / self.num_classes, vmax=1)
            axes[1].set_title("confidence (max probability)", fontsize=10)
            axes[1].set_xticks([])
            axes[1].set_yticks([])
            fig.colorbar(im, ax=axes[1], fraction=0.046, pad=0.02)
        _viz._show(axes[2], _viz.overlay(image, self._shown(pred), self.num_classes, alpha), "prediction")
        positive = 1 if self.binary else None
        _viz._show(axes[3], _viz.error_map(truth, pred, positive, self.ignore_index),
                   "errors (red FP, blue FN" + ("" if self.binary else ", yellow wrong class") + ")")
        fig.tight_layout()
        return fig

    def metrics_table_html(self) -> str:
        """The HTML shown under the figure."""
        m = self.current_metrics()

        def f(v):
            return "n/a" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"

        scope = "all samples" if m["sample"] == "all" else f"sample {m['sample']}"
        what = self.class_names[1] if self.binary else ", ".join(m["classes"]) or "no class selected"
        rows = "".join(
            f"<tr><td>{name}</td><td>{f(s['dice'])}</td><td>{f(s['iou'])}</td></tr>"
            for name, s in m["per_class"].items()
        )
        return (
            f"<b>{scope}</b>"
            + (f", threshold {m['threshold']:.2f}" if self.binary else "")
            + f": Dice ({what}) <b>{f(m['dice'])}</b> &middot; IoU <b>{f(m['iou'])}</b> &middot; "
            f"pixel accuracy <b>{f(m['pixel_accuracy'])}</b>"
            f"<table><tr><th>class</th><th>Dice</th><th>IoU</th></tr>{rows}</table>"
        )

    def _update(self):
        from IPython.display import clear_output, display
        import matplotlib.pyplot as plt

        self.metrics_html.value = self.metrics_table_html()
        with self.output:
            clear_output(wait=True)
            fig = self.figure()
            display(fig)
            plt.close(fig)

    def _on_change(self, change):
        self._update()

    def _ipython_display_(self):  # ``explorer`` as the last line of a cell shows the widget
        from IPython.display import display

        display(self.widget)
