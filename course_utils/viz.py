"""Figures for the course: masks, overlays, predictions, error maps, curves.

Every plotting function creates its own figure with ``plt.subplots`` and
returns the :class:`matplotlib.figure.Figure` (it never calls ``plt.show()``:
the notebook does, and tests can inspect or save the figure under the "Agg"
backend). Colours are fixed per class index, so class 2 has the same colour
in every lecture; class 0 (background) is dark unless a data set says it has
no background class. The default palette (:data:`PALETTE`) holds 28 colours
that stay distinct from each other (and from the grey :data:`IGNORE_COLOR` of
ignored pixels); pass ``palette=`` for a data set's own colours, or ``info=``
(a :class:`course_utils.datasets.DatasetInfo`) for its colours, class names and
ignore label.

Images are NumPy ``(N, H, W, C)`` (or one ``(H, W, C)``) floats in [0, 1];
``C = 1`` (or no channel axis) is shown in grey. Masks are integer class
indices ``(N, H, W)`` (or one ``(H, W)``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = [
    "PALETTE",
    "IGNORE_COLOR",
    "ERROR_COLORS",
    "ERROR_LABELS",
    "class_colors",
    "palette_colors",
    "colorize_mask",
    "overlay",
    "add_class_legend",
    "error_map",
    "error_codes",
    "show_samples",
    "show_predictions",
    "plot_class_frequencies",
    "plot_history",
    "plot_confusion_matrix",
    "compare_bar_chart",
]

# Background dark; then the Okabe-Ito colour-blind-safe colours; then colours picked greedily from
# Kelly's 22 colours of maximum contrast and matplotlib's qualitative maps (tab20, Set3, Dark2) so that
# every pair - and every colour and IGNORE_COLOR - differs by more than 19 in CIELAB (Delta E 1976);
# greys are left out (grey means "ignored"). Beyond 28 classes, further hues are spread evenly.
PALETTE = (
    (0.10, 0.10, 0.13),  # 0 background: near black
    (0.90, 0.62, 0.00),  # 1 orange
    (0.34, 0.71, 0.91),  # 2 sky blue
    (0.00, 0.62, 0.45),  # 3 bluish green
    (0.94, 0.89, 0.26),  # 4 yellow
    (0.80, 0.47, 0.65),  # 5 reddish purple
    (0.84, 0.37, 0.00),  # 6 vermillion
    (0.00, 0.45, 0.70),  # 7 blue
    (0.75, 0.00, 0.20),  # 8 crimson
    (0.98, 0.58, 0.47),  # 9 salmon
    (0.40, 0.27, 0.13),  # 10 dark brown
    (0.17, 0.63, 0.17),  # 11 green
    (0.60, 0.87, 0.54),  # 12 light green
    (0.58, 0.40, 0.74),  # 13 lavender purple
    (1.00, 1.00, 0.70),  # 14 pale yellow
    (0.91, 0.16, 0.54),  # 15 magenta
    (0.76, 0.70, 0.50),  # 16 buff
    (0.53, 0.18, 0.09),  # 17 reddish brown
    (0.55, 0.71, 0.00),  # 18 yellow green
    (0.17, 0.24, 0.15),  # 19 olive black
    (0.65, 0.46, 0.11),  # 20 ochre
    (0.70, 0.27, 0.42),  # 21 purplish red
    (1.00, 0.73, 0.47),  # 22 light orange
    (0.77, 0.69, 0.84),  # 23 lilac
    (0.77, 0.61, 0.58),  # 24 rosy brown
    (0.09, 0.75, 0.81),  # 25 cyan
    (0.62, 0.85, 0.90),  # 26 pale blue
    (0.80, 0.92, 0.77),  # 27 mint
)

#: Pixels with the ignore label (void, "don't care") are drawn in this neutral light grey.
IGNORE_COLOR = (0.80, 0.80, 0.80)

# error-map codes -> colours and legend labels
ERROR_COLORS = (
    (0.10, 0.10, 0.13),  # 0 correct background / true negative
    (0.62, 0.62, 0.62),  # 1 correct foreground / true positive
    (0.93, 0.20, 0.17),  # 2 false positive (predicted where there is none)
    (0.20, 0.55, 1.00),  # 3 false negative (missed)
    (1.00, 0.84, 0.00),  # 4 wrong foreground class (multi-class only)
    (0.40, 0.30, 0.45),  # 5 ignored pixel
)
ERROR_LABELS = (
    "correct background",
    "correct foreground",
    "false positive",
    "false negative",
    "wrong class",
    "ignored",
)


# ----------------------------------------------------------------------------
# colours and images
# ----------------------------------------------------------------------------
def class_colors(num_classes: int, background: bool = True) -> np.ndarray:
    """Fixed RGB colours, float32 ``(num_classes, 3)`` in [0, 1].

    background: True -> class 0 is a dark background colour; False -> class 0 is an ordinary class
    (e.g. "sky") and every class gets a bright colour.
    The same class index always gets the same colour, whatever ``num_classes``; the first 28 colours
    (27 with ``background=False``) differ clearly from each other and from :data:`IGNORE_COLOR`.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}.")
    colors = list(PALETTE if background else PALETTE[1:])
    if num_classes > len(colors):
        import colorsys

        extra = num_classes - len(colors)
        for i in range(extra):  # golden-ratio hues, alternating brightness
            colors.append(colorsys.hsv_to_rgb((0.07 + 0.618034 * i) % 1.0, 0.75, 0.95 if i % 2 else 0.65))
    return np.asarray(colors[:num_classes], dtype=np.float32)


def palette_colors(num_classes: int, palette=None, info=None) -> np.ndarray:
    """The colours a figure uses, float32 ``(num_classes, 3)``: ``palette``, else ``info``'s, else the default.

    palette: a sequence of RGB colours, floats in [0, 1] or integers 0..255 (e.g. read from a label-map
             file), one per class (at least ``num_classes``).
    info:    a ``course_utils.datasets.DatasetInfo``: its ``colors``; without colours, the default palette
             with a dark class 0 only when ``info.background == 0``.
    """
    if palette is None and info is not None and getattr(info, "colors", None) is not None:
        palette = info.colors
    if palette is None:
        background = True if info is None else getattr(info, "background", 0) == 0
        return class_colors(num_classes, background=background)
    arr = np.asarray(palette, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] not in (3, 4):
        raise ValueError(f"palette must be a list of RGB colours (K, 3), got shape {arr.shape}: e.g. "
                         "[(0, 0, 0), (255, 0, 0)] or [(0.0, 0.0, 0.0), (1.0, 0.0, 0.0)].")
    arr = arr[:, :3]
    if len(arr) < num_classes:
        raise ValueError(f"palette has {len(arr)} colours for {num_classes} classes: give one colour per class.")
    if arr.max() > 1.0:
        arr = arr / 255.0
    return arr[:num_classes].astype(np.float32)


def _info_defaults(info, num_classes, class_names, ignore_index):
    """Fill num_classes, class_names and ignore_index from a DatasetInfo where they were not given."""
    if info is None:
        return num_classes, class_names, ignore_index
    if num_classes is None:
        num_classes = info.num_classes
    if class_names is None:
        class_names = info.class_names
    if ignore_index is None:
        ignore_index = info.ignore_index
    return num_classes, class_names, ignore_index


def _as_mask(mask, name="mask") -> np.ndarray:
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold integer class indices, got dtype {mask.dtype}: use .astype(np.int64).")
    if hasattr(mask, "dtype") and np.issubdtype(mask.dtype, np.floating):
        if mask.size and not np.isfinite(mask).all():
            raise ValueError(f"{name} contains NaN or infinite values: pass class indices (check how the mask "
                             "was computed, then use .astype(np.int64)).")
        if mask.size and not np.all(mask == np.round(mask)):
            raise ValueError(
                f"{name} holds non-integer values: pass class indices (argmax over the class "
                "axis for probabilities; resize masks with nearest neighbour)."
            )
    return mask.astype(np.int64)


def colorize_mask(mask, num_classes: int | None = None, ignore_index: int | None = None, palette=None,
                  info=None) -> np.ndarray:
    """RGB image float32 ``(..., H, W, 3)`` of a class-index mask ``(..., H, W)``.

    Pixels equal to ``ignore_index`` are drawn in the neutral :data:`IGNORE_COLOR` (light grey).
    palette / info: see :func:`palette_colors` (``info`` also gives ``num_classes`` and ``ignore_index``).
    """
    num_classes, _, ignore_index = _info_defaults(info, num_classes, None, ignore_index)
    if num_classes is None:
        raise ValueError("colorize_mask needs num_classes (or info=DatasetInfo).")
    mask = _as_mask(mask)
    colors = palette_colors(num_classes, palette, info)
    ignored = np.zeros(mask.shape, bool) if ignore_index is None else mask == ignore_index
    bad = ((mask < 0) | (mask >= num_classes)) & ~ignored
    if bad.any():
        raise ValueError(
            f"mask contains values {np.unique(mask[bad])[:5].tolist()} outside 0..{num_classes - 1}: "
            "check num_classes or remap the mask (0/255 masks: use mask // 255), "
            "or pass ignore_index."
        )
    out = colors[np.where(ignored, 0, mask)]
    out[ignored] = IGNORE_COLOR
    return out


def _image_rgb(image) -> np.ndarray:
    """One image as RGB float (H, W, 3) in [0, 1] (grey images repeated)."""
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] not in (1, 3) and image.shape[0] in (1, 3):
        raise ValueError(
            f"image has shape {image.shape}, which looks channels-first (C, H, W): "
            "pass NHWC, e.g. image.transpose(1, 2, 0)."
        )
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    image = _display_range(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an image (H, W), (H, W, 1) or (H, W, 3), got {image.shape}.")
    return image.astype(np.float32)


def _display_range(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    if image.dtype.kind not in "biuf":
        raise TypeError(f"images must be numbers, got dtype {image.dtype}: pass float images in [0, 1].")
    if image.size == 0:
        raise ValueError(f"the image has shape {image.shape} and no pixels: pass a non-empty (H, W, C) image.")
    if not np.isfinite(image).all():
        raise ValueError("the image contains NaN or infinite values, which cannot be drawn: check how it was "
                         "read or normalised (course_utils.data.check_images finds such problems).")
    image = image.astype(np.float32)
    lo, hi = float(np.min(image)), float(np.max(image))
    if lo < 0.0 or hi > 1.0:  # e.g. standardised images: stretch for display only
        return (image - lo) / max(hi - lo, 1e-12)
    return image


def overlay(image, mask, num_classes: int | None = None, alpha: float = 0.5, include_background: bool = False,
            ignore_index: int | None = None, palette=None, info=None) -> np.ndarray:
    """Blend class colours over an image: RGB float32 ``(H, W, 3)`` in [0, 1].

    ``out = (1 - alpha) * image + alpha * colour[mask]`` on every pixel whose
    class is not background; background pixels (class 0) keep the image unless
    ``include_background=True`` (or ``info.background`` is None: then every class is coloured).
    ``ignore_index`` pixels are blended with the grey :data:`IGNORE_COLOR`.

    Args:
        image: ``(H, W)``, ``(H, W, 1)`` (grey) or ``(H, W, 3)`` in [0, 1].
        mask: int ``(H, W)``.
        num_classes: C (or from ``info``).
        alpha: opacity of the colours, 0 (image only) .. 1 (mask only).
        ignore_index: the void label (e.g. 255), drawn grey.
        palette, info: see :func:`palette_colors`.
    """
    num_classes, _, ignore_index = _info_defaults(info, num_classes, None, ignore_index)
    if num_classes is None:
        raise ValueError("overlay needs num_classes (or info=DatasetInfo).")
    background = 0 if info is None else getattr(info, "background", 0)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}.")
    rgb = _image_rgb(image)
    mask = _as_mask(mask)
    if mask.shape != rgb.shape[:2]:
        raise ValueError(
            f"mask has shape {mask.shape} but the image is {rgb.shape[:2]}: they must cover "
            "the same pixels (resize the mask with nearest neighbour)."
        )
    colors = colorize_mask(mask, num_classes, ignore_index, palette, info)
    blend = (1.0 - alpha) * rgb + alpha * colors
    if include_background or background is None:
        return blend.astype(np.float32)
    return np.where((mask != background)[..., None], blend, rgb).astype(np.float32)


def error_codes(y_true, y_pred, positive_class: int | None = None, ignore_index: int | None = None,
                background: int | None = 0) -> np.ndarray:
    """Per-pixel error category (int8, same shape as the masks); see :data:`ERROR_LABELS`.

    With ``positive_class=c``: 0 true negative, 1 true positive, 2 false positive
    (``c`` predicted, not true), 3 false negative (``c`` true, missed).
    With ``positive_class=None`` class ``background`` (default 0) is background: 2 = an object
    predicted on background, 3 = an object predicted as background, 4 = an object given the
    wrong foreground class. With ``background=None`` (data without a background class, e.g.
    street scenes where class 0 is sky): 1 = correct, 4 = wrong class, whatever the class.
    5 = ignored pixel.
    """
    t = _as_mask(y_true, "y_true")
    p = _as_mask(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}: pass masks of the same shape.")
    codes = np.zeros(t.shape, np.int8)
    if positive_class is None and background is None:
        codes[t == p] = 1
        codes[t != p] = 4
    elif positive_class is None:
        b = int(background)
        codes[(t == p) & (t != b)] = 1
        codes[(t == b) & (p != b)] = 2
        codes[(t != b) & (p == b)] = 3
        codes[(t != b) & (p != b) & (t != p)] = 4
    else:
        tt, pp = t == positive_class, p == positive_class
        codes[tt & pp] = 1
        codes[~tt & pp] = 2
        codes[tt & ~pp] = 3
    if ignore_index is not None:
        codes[t == ignore_index] = 5
    return codes


def error_map(y_true, y_pred, positive_class: int | None = None, ignore_index: int | None = None,
              background: int | None = 0) -> np.ndarray:
    """RGB float32 ``(..., H, W, 3)`` image of where a prediction is wrong.

    Dark = correct background, grey = correct foreground, red = false positive,
    blue = false negative, yellow = wrong foreground class (multi-class with
    ``positive_class=None``; class ``background``, default 0, is treated as background), purple = ignored.
    ``background=None`` (no background class): grey = correct, yellow = wrong class.
    See :func:`error_codes` for the categories.
    """
    codes = error_codes(y_true, y_pred, positive_class, ignore_index, background)
    return np.asarray(ERROR_COLORS, np.float32)[codes]


# ----------------------------------------------------------------------------
# figures
# ----------------------------------------------------------------------------
def _plt():
    import matplotlib.pyplot as plt

    return plt


def _batch(images, masks, *more):
    """Accept a batch (N, H, W[, C]) + (N, H, W) or one sample (H, W[, C]) + (H, W)."""
    masks = np.asarray(masks)
    images = np.asarray(images)
    more = [np.asarray(m) for m in more]
    if masks.ndim == 2:
        masks = masks[None]
        images = images[None]
        more = [m[None] for m in more]
    if masks.ndim != 3:
        hint = " (drop the channel axis: mask[..., 0])" if masks.ndim == 4 and masks.shape[-1] == 1 else ""
        if masks.ndim == 4 and masks.shape[-1] > 1:
            hint = " (these look like per-class scores: take argmax(axis=-1))"
        raise ValueError(f"masks must be (N, H, W) or (H, W), got {masks.shape}{hint}.")
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be (N, H, W, C) or (N, H, W), got shape {images.shape}: "
                         "pass a batch of images (channels last) that goes with the masks.")
    if masks.shape[0] == 0:
        raise ValueError("there is nothing to show: the batch is empty; pass at least one image and mask.")
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        raise ValueError(
            f"images have shape {images.shape}, which looks like NCHW: pass NHWC "
            "(images.transpose(0, 2, 3, 1))."
        )
    if images.shape[0] != masks.shape[0] or images.shape[1:3] != masks.shape[1:3]:
        raise ValueError(
            f"images {images.shape} and masks {masks.shape} do not match: expected the same number "
            "of samples and the same height and width."
        )
    for m in more:
        if m.shape != masks.shape:
            raise ValueError(
                f"predicted masks have shape {m.shape} but true masks {masks.shape}: pass class "
                "indices of the same shape (argmax over the class axis)."
            )
    return (images, masks, *more)


def _class_names(num_classes, class_names):
    if class_names is None:
        return [f"class {i}" for i in range(num_classes)]
    class_names = list(class_names)
    if len(class_names) < num_classes:
        raise ValueError(f"got {len(class_names)} class_names for {num_classes} classes: give one per class.")
    return class_names[:num_classes]


def _legend_handles(num_classes, class_names, palette, info, ignore_index):
    from matplotlib.patches import Patch

    colors = palette_colors(num_classes, palette, info)
    handles = [
        Patch(facecolor=colors[i], edgecolor="0.5", label=name)
        for i, name in enumerate(_class_names(num_classes, class_names))
    ]
    if ignore_index is not None:
        handles.append(Patch(facecolor=IGNORE_COLOR, edgecolor="0.5", label=f"ignored ({ignore_index})"))
    return handles


def add_class_legend(fig, num_classes: int | None = None, class_names=None, y: float = 0.0, palette=None,
                     ignore_index: int | None = None, info=None):
    """Add one coloured patch per class (the colours of :func:`colorize_mask`) below the panels of ``fig``.

    For your own figures of colourised masks; call it after ``fig.tight_layout()`` and keep ``y`` at 0 or
    a little below. With ``ignore_index`` a grey "ignored" patch is added. ``info`` gives the class names,
    colours and ignore label of a data set. Returns the ``Legend``.
    """
    num_classes, class_names, ignore_index = _info_defaults(info, num_classes, class_names, ignore_index)
    if num_classes is None:
        raise ValueError("add_class_legend needs num_classes (or info=DatasetInfo).")
    handles = _legend_handles(num_classes, class_names, palette, info, ignore_index)
    return fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), frameon=False,
                      bbox_to_anchor=(0.5, y))


def _show(ax, image, title=None):
    image = np.asarray(image)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 1):
        grey = image[..., 0] if image.ndim == 3 else image
        ax.imshow(_display_range(grey), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
        ax.imshow(np.clip(_display_range(image), 0, 1), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=10)


def show_samples(images, masks, num_classes: int | None = None, class_names=None, n: int = 4, title=None,
                 ignore_index: int | None = None, palette=None, info=None):
    """Rows of image | mask | overlay for the first ``n`` samples.

    Args:
        images: ``(N, H, W, C)`` or one ``(H, W, C)`` in [0, 1] (C = 1 shown grey).
        masks: int ``(N, H, W)`` or one ``(H, W)``.
        num_classes: C (fixes the colours; or from ``info``).
        class_names: legend labels (or from ``info``).
        n: number of samples (rows).
        title: figure title.
        ignore_index: the void label (e.g. 255): drawn grey, with an "ignored" legend entry.
        palette: one RGB colour per class (see :func:`palette_colors`).
        info: a ``course_utils.datasets.DatasetInfo`` (classes, names, colours, ignore label).

    Returns:
        Figure with ``3 * n`` image axes.
    """
    num_classes, class_names, ignore_index = _info_defaults(info, num_classes, class_names, ignore_index)
    if num_classes is None:
        raise ValueError("show_samples needs num_classes (or info=DatasetInfo).")
    plt = _plt()
    images, masks = _batch(images, masks)
    n = max(1, min(n, len(images)))
    rows_legend = 1 + (num_classes + (ignore_index is not None)) // 7  # legend lines of 6 entries
    fig, axes = plt.subplots(n, 3, figsize=(8.4, 3.0 * n + 0.3 + 0.3 * rows_legend), squeeze=False)
    for i in range(n):
        _show(axes[i, 0], images[i], "image" if i == 0 else None)
        _show(axes[i, 1], colorize_mask(masks[i], num_classes, ignore_index, palette, info),
              "mask" if i == 0 else None)
        _show(axes[i, 2], overlay(images[i], masks[i], num_classes, ignore_index=ignore_index, palette=palette,
                                  info=info), "overlay" if i == 0 else None)
        axes[i, 0].set_ylabel(f"sample {i}", fontsize=9)
    add_class_legend(fig, num_classes, class_names, palette=palette, ignore_index=ignore_index, info=info)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, (0.2 + 0.3 * rows_legend) / (3.0 * n + 0.3 + 0.3 * rows_legend), 1, 1))
    return fig


def show_predictions(images, masks_true, masks_pred, num_classes: int | None = None, class_names=None, n: int = 4,
                     title=None, positive_class: int | None = None, ignore_index: int | None = None, palette=None,
                     info=None, score_class: int | None = None):
    """Rows of image | truth | prediction | error map for the first ``n`` samples.

    The error map colours false positives red, false negatives blue and wrong
    foreground classes yellow (see :func:`error_map`). Under each prediction: its
    Dice, the mean over the ``num_classes`` classes ("mean Dice of 2 classes"), or
    with ``score_class`` the Dice of that one class ("membrane Dice").

    Args:
        images: ``(N, H, W, C)`` or one ``(H, W, C)``.
        masks_true, masks_pred: int ``(N, H, W)`` or one ``(H, W)`` (predictions as
            class indices: ``logits.argmax(-1)``).
        num_classes: C.
        class_names: legend labels.
        n: number of samples (rows).
        title: figure title.
        positive_class: for the error map (default: class 0 is background; with ``info`` its
            ``background``, and ``info.background=None`` draws only correct / wrong class / ignored).
        ignore_index: true label drawn as "ignored".
        palette, info: see :func:`palette_colors` (``info`` also gives num_classes, names, ignore label).
        score_class: label each prediction with this class's Dice instead of the mean.

    Returns:
        Figure with ``4 * n`` image axes.
    """
    from matplotlib.patches import Patch

    from . import metrics

    num_classes, class_names, ignore_index = _info_defaults(info, num_classes, class_names, ignore_index)
    if num_classes is None:
        raise ValueError("show_predictions needs num_classes (or info=DatasetInfo).")
    background = 0 if info is None else getattr(info, "background", 0)  # error map: None = no background class
    plt = _plt()
    images, masks_true, masks_pred = _batch(images, masks_true, masks_pred)
    n = max(1, min(n, len(images)))
    fig, axes = plt.subplots(n, 4, figsize=(11, 3.15 * n + 0.9), squeeze=False)
    names = _class_names(num_classes, class_names)
    if score_class is not None and not 0 <= score_class < num_classes:
        raise ValueError(f"score_class={score_class} is not a class of 0..{num_classes - 1}: pass one of them or None.")
    for i in range(n):
        if score_class is None:
            dice = metrics.mean_dice(masks_true[i], masks_pred[i], num_classes, ignore_index=ignore_index)
            score = f"mean Dice of {num_classes} classes {dice:.3f}"
        else:
            dice = metrics.dice_per_class(masks_true[i], masks_pred[i], num_classes, ignore_index=ignore_index)
            score = f"{names[score_class]} Dice {dice[score_class]:.3f}"
        _show(axes[i, 0], images[i], "image" if i == 0 else None)
        _show(axes[i, 1], colorize_mask(masks_true[i], num_classes, ignore_index, palette, info),
              "truth" if i == 0 else None)
        _show(axes[i, 2], colorize_mask(masks_pred[i], num_classes, palette=palette, info=info),
              "prediction" if i == 0 else None)
        axes[i, 2].set_xlabel(score, fontsize=9)
        _show(axes[i, 3], error_map(masks_true[i], masks_pred[i], positive_class, ignore_index, background),
              "error map" if i == 0 else None)
        axes[i, 0].set_ylabel(f"sample {i}", fontsize=9)
    handles = _legend_handles(num_classes, class_names, palette, info, ignore_index)
    labels = dict(enumerate(ERROR_LABELS))
    if positive_class is None and background is None:  # no background class (info.background=None): right or wrong
        used = [1, 4] + ([5] if ignore_index is not None else [])
        labels[1] = "correct"
    else:
        used = [1, 2, 3] + ([4] if positive_class is None and num_classes > 2 else []) + ([5] if ignore_index is not None else [])
    err_handles = [Patch(facecolor=ERROR_COLORS[k], edgecolor="0.5", label=labels[k]) for k in used]
    fig.legend(handles=handles, loc="lower left", ncol=min(len(handles), 4), frameon=False,
               title="classes", fontsize=8, title_fontsize=8)
    fig.legend(handles=err_handles, loc="lower right", ncol=min(len(err_handles), 3), frameon=False,
               title="error map", fontsize=8, title_fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.85 / (3.15 * n + 0.9), 1, 1))
    return fig


def plot_class_frequencies(masks, num_classes: int | None = None, class_names=None, ignore_index: int | None = None,
                           title: str | None = "Class frequencies (fraction of pixels)", palette=None, info=None):
    """Bar chart of the fraction of pixels per class (class colours, % labels; ``ignore_index`` pixels left out).

    palette, info: see :func:`palette_colors` (``info`` also gives num_classes, names, ignore label).

    Returns:
        Figure with one axes; a log-scale y axis when the rarest class is below 1 %.
    """
    num_classes, class_names, ignore_index = _info_defaults(info, num_classes, class_names, ignore_index)
    if num_classes is None:
        raise ValueError("plot_class_frequencies needs num_classes (or info=DatasetInfo).")
    plt = _plt()
    masks = _as_mask(masks)
    flat = masks.reshape(-1)
    if ignore_index is not None:
        flat = flat[flat != ignore_index]
    bad = (flat < 0) | (flat >= num_classes)
    if bad.any():
        raise ValueError(
            f"masks contain values {np.unique(flat[bad])[:5].tolist()} outside 0..{num_classes - 1}: "
            "remap them or pass ignore_index."
        )
    counts = np.bincount(flat, minlength=num_classes).astype(np.float64)
    freq = counts / max(counts.sum(), 1.0)
    names = _class_names(num_classes, class_names)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * num_classes + 2), 3.4))
    bars = ax.bar(names, freq, color=palette_colors(num_classes, palette, info), edgecolor="0.3")
    for bar, f in zip(bars, freq):
        ax.annotate(f"{100 * f:.1f} %", (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=9, xytext=(0, 2), textcoords="offset points")
    positive = freq[freq > 0]
    if positive.size and positive.min() < 0.01:
        ax.set_yscale("log")
        ax.set_ylim(positive.min() / 3, 3)
    else:
        ax.set_ylim(0, min(1.0, freq.max() * 1.2 + 0.02))
    ax.set_ylabel("fraction of pixels")
    ax.set_xlabel("class")
    if num_classes > 6:
        ax.tick_params(axis="x", labelrotation=30)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _history_dict(history) -> dict:
    if hasattr(history, "history") and isinstance(history.history, Mapping):
        history = history.history
    if not isinstance(history, Mapping):
        raise TypeError(
            f"plot_history expects a Keras History or a dict of lists like "
            f"{{'loss': [...], 'val_loss': [...]}}, got {type(history).__name__}."
        )
    return {k: np.asarray(v, dtype=np.float64).reshape(-1) for k, v in history.items()}


def plot_history(history, metrics=None, title=None):
    """Training curves: one panel per metric, train (solid) vs validation (dashed).

    Args:
        history: a Keras ``History`` (``model.fit``'s return value) or a dict of lists
            such as ``{"loss": [...], "val_loss": [...], "val_dice": [...]}``
            (what ``course_utils.torch.train.fit`` returns).
        metrics: names without the ``val_`` prefix, e.g. ``("loss", "dice")``;
            default: every metric in the history (learning rate excluded).
        title: figure title.

    Returns:
        Figure with one axes per metric; the best validation epoch is marked.
    """
    from matplotlib.ticker import MaxNLocator

    plt = _plt()
    hist = _history_dict(history)
    if metrics is None:
        metrics = []
        for key in hist:
            base = key[4:] if key.startswith("val_") else key
            if base not in metrics and base not in ("lr", "learning_rate"):
                metrics.append(base)
    elif isinstance(metrics, str):
        metrics = [metrics]
    metrics = list(metrics)
    missing = [m for m in metrics if m not in hist and f"val_{m}" not in hist]
    if missing:
        raise KeyError(f"history has no {missing} (available: {sorted(hist)}): pick metrics from those.")
    if not metrics:
        raise ValueError("the history is empty: train for at least one epoch first.")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.3), squeeze=False)
    for ax, name in zip(axes[0], metrics):
        color = "C0"
        if name in hist:
            ax.plot(np.arange(1, len(hist[name]) + 1), hist[name], "-o", color=color, ms=3, label="train")
        if f"val_{name}" in hist:
            val = hist[f"val_{name}"]
            epochs = np.arange(1, len(val) + 1)
            ax.plot(epochs, val, "--s", color="C1", ms=3, label="validation")
            if np.isfinite(val).any():
                lower_is_better = "loss" in name or "error" in name
                best = int(np.nanargmin(val) if lower_is_better else np.nanargmax(val))
                ax.plot(epochs[best], val[best], "*", color="C3", ms=12, label=f"best val ({val[best]:.3g})")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        if "loss" in name and all(np.all(hist[k][np.isfinite(hist[k])] > 0) for k in (name, f"val_{name}") if k in hist):
            finite = np.concatenate([hist[k][np.isfinite(hist[k])] for k in (name, f"val_{name}") if k in hist])
            if finite.size and finite.max() / max(finite.min(), 1e-12) > 50:
                ax.set_yscale("log")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(cm, class_names=None, normalize: bool = True, title=None, info=None):
    """Heat map of a confusion matrix (rows = truth, columns = prediction).

    Args:
        cm: ``(C, C)`` counts from ``course_utils.metrics.confusion_matrix``.
        class_names: axis labels.
        normalize: divide each row by its sum, so the diagonal is each class's recall
            (rows of absent classes stay blank); cells also show the counts.
        title: axes title.
        info: a ``course_utils.datasets.DatasetInfo`` whose class names label the axes.

    Returns:
        Figure with the matrix axes and a colour bar.
    """
    if class_names is None and info is not None:
        class_names = info.class_names
    plt = _plt()
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"cm must be a square (C, C) matrix, got shape {cm.shape}.")
    c = cm.shape[0]
    names = _class_names(c, class_names)
    counts = cm.astype(np.float64)
    if normalize:
        rows = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, rows, out=np.full_like(counts, np.nan), where=rows > 0)
    else:
        values = counts
    size = max(3.6, 0.9 * c + 2.2)
    fig, ax = plt.subplots(figsize=(size + 0.8, size))
    im = ax.imshow(np.ma.masked_invalid(values), cmap="Blues", vmin=0.0,
                   vmax=1.0 if normalize else max(values.max(), 1))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04,
                 label="fraction of the true class" if normalize else "pixels")
    threshold = 0.5 * (1.0 if normalize else max(values.max(), 1))
    for i in range(c):
        for j in range(c):
            if normalize and np.isnan(values[i, j]):
                text = "n/a"
            elif normalize:
                text = f"{100 * values[i, j]:.1f}%\n({int(cm[i, j]):,})"
            else:
                text = f"{int(cm[i, j]):,}"
            ax.text(j, i, text, ha="center", va="center", fontsize=9 if c <= 12 else 6,
                    color="white" if np.nan_to_num(values[i, j]) > threshold else "black")
    ax.set_xticks(range(c), names, rotation=30 if c > 3 else 0, ha="right" if c > 3 else "center")
    ax.set_yticks(range(c), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title or ("Confusion matrix (rows normalised)" if normalize else "Confusion matrix (pixels)"))
    fig.tight_layout()
    return fig


def compare_bar_chart(table, title=None, ylabel="score"):
    """Grouped bar chart: ``table[series][category] = value``.

    Example: ``{"cross-entropy": {"disc": 0.8, "square": 0.7}, "Dice": {...}}``
    draws, for each class on the x axis, one bar per loss (legend = the outer keys).
    NaN values are left out and marked "n/a".

    Returns:
        Figure with one axes.
    """
    plt = _plt()
    if not isinstance(table, Mapping) or not table or not all(isinstance(v, Mapping) for v in table.values()):
        raise TypeError(
            "compare_bar_chart expects a dict of dicts, e.g. {'model A': {'dice': 0.8, 'iou': 0.7}, "
            "'model B': {...}}."
        )
    series = list(table)
    categories = []
    for s in series:
        for k in table[s]:
            if k not in categories:
                categories.append(k)
    n_s = len(series)
    width = 0.8 / n_s
    x = np.arange(len(categories))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(categories) * max(1, n_s / 2) + 2), 3.8))
    all_values = []
    for i, s in enumerate(series):
        vals = np.array([float(table[s].get(k, np.nan)) for k in categories])
        all_values.append(vals)
        pos = x - 0.4 + width * (i + 0.5)
        bars = ax.bar(pos, np.nan_to_num(vals), width * 0.92, label=str(s), color=f"C{i % 10}")
        for b, v in zip(bars, vals):
            label = "n/a" if np.isnan(v) else f"{v:.2f}"
            ax.annotate(label, (b.get_x() + b.get_width() / 2, 0 if np.isnan(v) else v),
                        ha="center", va="bottom", fontsize=7 if n_s > 3 else 8,
                        xytext=(0, 2), textcoords="offset points")
    flat = np.concatenate(all_values)
    flat = flat[np.isfinite(flat)]
    if flat.size and flat.min() >= 0 and flat.max() <= 1:
        ax.set_ylim(0, 1.1)
    ax.set_xticks(x, [_wrap_label(c) for c in categories])
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    if _tick_labels_overlap(fig, ax):            # still too wide after wrapping: turn them upright
        for label in ax.get_xticklabels():
            label.set_rotation(90)
        fig.tight_layout()
    return fig


def _wrap_label(text, width: int = 12) -> str:
    """Break a tick label into lines of at most ``width`` characters (at spaces)."""
    import textwrap

    return "\n".join(textwrap.wrap(str(text), width=width, break_long_words=False)) or str(text)


def _tick_labels_overlap(fig, ax, pad: float = 2.0) -> bool:
    """True when two neighbouring x tick labels of ``ax`` overlap (or come closer than ``pad`` pixels)."""
    boxes = [t.get_window_extent() for t in ax.get_xticklabels() if t.get_text()]   # any canvas (inline, Agg)
    boxes.sort(key=lambda b: b.x0)
    return any(left.x1 + pad > right.x0 for left, right in zip(boxes, boxes[1:]))
