"""Segmentation metrics in NumPy: the course's ground truth.

Every framework version (``course_utils.keras.metrics``,
``course_utils.torch.metrics``) is tested against these functions.

Inputs
------
``y_true`` and ``y_pred`` are integer class-index masks of the same shape,
either one mask ``(H, W)`` or a batch ``(N, H, W)``. Predictions are class
indices, not probabilities: take ``logits.argmax(axis=-1)`` first.

All scores are computed over **all pixels of all images together** (they are
read off one confusion matrix), which is what the Keras/PyTorch metrics report
at the end of an epoch.

Conventions
-----------
* ``ignore_index`` (e.g. 255): pixels whose *true* label equals it are left out
  of every metric. Predictions there do not matter.
* A class that appears neither in the truth nor in the prediction gets ``NaN``
  IoU/Dice (0/0: there is nothing to score), and the means are ``nanmean``
  over the classes that do appear. Why not 1.0 or 0.0? Scoring an absent class
  1.0 would inflate the mean with classes the model never had to find (an
  image of pure background would score a perfect mean IoU whatever the model
  did on the objects of other images), and 0.0 would punish the model for
  something it got right (it predicted none of a class that is not there).
* A class that is present in the truth but never predicted (or predicted but
  not present) scores 0.0.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "confusion_matrix",
    "pixel_accuracy",
    "pixel_accuracy_from_confusion",
    "iou_per_class",
    "dice_per_class",
    "mean_iou",
    "mean_dice",
    "iou_from_confusion",
    "dice_from_confusion",
    "precision_recall_from_confusion",
    "nanmean",
    "segmentation_report",
    "SegmentationReport",
    "boundary_mask",
    "boundary_iou",
    "boundary_f1",
    "label_edges",
    "boundary_f1_agnostic",
    "output_stride_oracle",
]


# ----------------------------------------------------------------------------
# input validation
# ----------------------------------------------------------------------------
def _as_label_array(x, name: str) -> np.ndarray:
    """``x`` as an integer NumPy array; floats are accepted only if integral."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # a torch tensor
        x = x.detach().cpu().numpy()
    elif hasattr(x, "numpy") and not isinstance(x, np.ndarray):  # a TF tensor
        x = x.numpy()
    x = np.asarray(x)
    if x.dtype == bool:
        return x.astype(np.int64)
    if np.issubdtype(x.dtype, np.integer):
        return x
    if np.issubdtype(x.dtype, np.floating):
        if x.size and not np.all(np.isfinite(x)):
            raise ValueError(
                f"{name} contains NaN or infinite values: masks must hold class indices; "
                "check how the mask was computed."
            )
        if x.size and not np.all(x == np.round(x)):
            example = x[x != np.round(x)].flat[0]
            raise ValueError(
                f"{name} holds non-integer values such as {example:g}: it must contain class "
                "indices. If these are probabilities/logits take argmax over the class axis; "
                "if the mask was resized, resize masks with nearest-neighbour "
                "interpolation (course_utils.data.resize_mask), never bilinearly."
            )
        return x.astype(np.int64)
    raise TypeError(
        f"{name} has dtype {x.dtype}; expected an integer array of class indices "
        "(convert with np.asarray(mask, dtype=np.int64))."
    )


def _check_pair(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    t = _as_label_array(y_true, "y_true")
    p = _as_label_array(y_pred, "y_pred")
    if t.shape != p.shape:
        hint = "pass both as (N, H, W) or both as (H, W)"
        if p.ndim == t.ndim + 1:
            hint = (
                "y_pred has one axis more than y_true: it looks like per-class scores, "
                "take y_pred.argmax(axis=-1) (NHWC) or argmax(axis=1) (NCHW) first"
            )
        elif t.ndim == p.ndim + 1 and t.shape[-1] == 1:
            hint = "y_true has a trailing channel axis of size 1: use y_true[..., 0]"
        elif t.ndim == p.ndim + 1 and t.ndim == 4 and t.shape[1] == 1:
            hint = "y_true has a channel axis of size 1: use y_true[:, 0]"
        raise ValueError(f"y_true has shape {t.shape} but y_pred has shape {p.shape}: {hint}.")
    if t.ndim not in (2, 3):
        hint = ""
        if t.ndim == 4 and t.shape[-1] == 1:
            hint = " Drop the channel axis with mask[..., 0]."
        elif t.ndim == 4 and t.shape[1] == 1:
            hint = " Drop the channel axis with mask[:, 0]."
        raise ValueError(
            f"masks must have shape (N, H, W) or (H, W), got {t.shape}.{hint}"
        )
    return t, p


def _check_num_classes(num_classes) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise TypeError(f"num_classes must be an int, got {num_classes!r}.")
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}.")
    return int(num_classes)


def _range_error(name: str, values: np.ndarray, num_classes: int, ignore_index) -> ValueError:
    bad = np.unique(values)
    shown = ", ".join(str(v) for v in bad[:6]) + (", ..." if bad.size > 6 else "")
    if bad.max(initial=0) == 255 and num_classes <= 2:
        hint = (
            "masks stored as 0/255 images must be mapped to 0/1 first (mask // 255), "
            "or pass ignore_index=255 if 255 marks pixels to ignore"
        )
    elif bad.min(initial=0) < 0:
        hint = "class indices cannot be negative"
    else:
        hint = (
            f"valid classes are 0..{num_classes - 1}: increase num_classes or remap the "
            "mask values (course_utils.data.inspect_masks shows which values occur)"
        )
        if ignore_index is None and name == "y_true":
            hint += ", or set ignore_index for a label that marks pixels to skip"
    return ValueError(f"{name} contains values {shown} outside 0..{num_classes - 1}: {hint}.")


def _flat_valid(y_true, y_pred, num_classes: int | None, ignore_index=None):
    """Validated, flattened ``(t, p)`` with ignored pixels removed."""
    t, p = _check_pair(y_true, y_pred)
    t = t.reshape(-1)
    p = p.reshape(-1)
    if ignore_index is not None:
        keep = t != ignore_index
        t = t[keep]
        p = p[keep]
    if num_classes is not None:
        bad_t = (t < 0) | (t >= num_classes)
        if bad_t.any():
            raise _range_error("y_true", t[bad_t], num_classes, ignore_index)
        bad_p = (p < 0) | (p >= num_classes)
        if bad_p.any():
            raise _range_error("y_pred", p[bad_p], num_classes, ignore_index)
    return t.astype(np.int64, copy=False), p.astype(np.int64, copy=False)


def _check_confusion(cm) -> np.ndarray:
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(
            f"a confusion matrix must be square (C, C), got shape {cm.shape}: build it with "
            "confusion_matrix(y_true, y_pred, num_classes)."
        )
    if cm.size and np.any(cm < 0):
        raise ValueError("a confusion matrix cannot contain negative counts.")
    return cm.astype(np.float64)


# ----------------------------------------------------------------------------
# confusion matrix and scores read off it
# ----------------------------------------------------------------------------
def confusion_matrix(y_true, y_pred, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Count pixels per (true class, predicted class).

    Args:
        y_true: int mask ``(N, H, W)`` or ``(H, W)``, values in ``0..C-1`` (or ``ignore_index``).
        y_pred: int mask of the same shape (class indices, e.g. ``logits.argmax(-1)``).
        num_classes: C.
        ignore_index: true label whose pixels are not counted.

    Returns:
        int64 ``(C, C)``: ``cm[i, j]`` = number of pixels of true class ``i``
        predicted as ``j`` (rows = truth, columns = prediction).
    """
    num_classes = _check_num_classes(num_classes)
    t, p = _flat_valid(y_true, y_pred, num_classes, ignore_index)
    counts = np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def pixel_accuracy_from_confusion(cm) -> float:
    """Fraction of correctly classified pixels: ``trace(cm) / sum(cm)`` (NaN if empty)."""
    cm = _check_confusion(cm)
    total = cm.sum()
    return float(np.trace(cm) / total) if total > 0 else float("nan")


def pixel_accuracy(y_true, y_pred, ignore_index: int | None = None) -> float:
    """Fraction of pixels whose predicted class equals the true class.

    Args:
        y_true, y_pred: int masks ``(N, H, W)`` or ``(H, W)`` of the same shape.
        ignore_index: true label whose pixels are skipped.

    Returns:
        float in [0, 1]; NaN when every pixel is ignored.

    Under class imbalance this number is dominated by the largest class: a model
    that predicts only background on images that are 95 % background scores 0.95.
    """
    t, p = _flat_valid(y_true, y_pred, None, ignore_index)
    if t.size == 0:
        return float("nan")
    return float(np.mean(t == p))


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(num.shape, np.nan, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def iou_from_confusion(cm) -> np.ndarray:
    """Per-class IoU (Jaccard) ``TP / (TP + FP + FN)`` from a confusion matrix.

    Args:
        cm: ``(C, C)`` counts, rows = truth, columns = prediction.

    Returns:
        float64 ``(C,)``; NaN for a class absent from both truth and prediction.
    """
    cm = _check_confusion(cm)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    return _divide(tp, tp + fp + fn)


def dice_from_confusion(cm) -> np.ndarray:
    """Per-class Dice (F1) ``2 TP / (2 TP + FP + FN)`` from a confusion matrix.

    Args:
        cm: ``(C, C)`` counts, rows = truth, columns = prediction.

    Returns:
        float64 ``(C,)``; NaN for a class absent from both truth and prediction.
        Dice = 2 IoU / (1 + IoU), so it ranks models like IoU but is never smaller.
    """
    cm = _check_confusion(cm)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    return _divide(2 * tp, 2 * tp + fp + fn)


def precision_recall_from_confusion(cm) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision ``TP/(TP+FP)`` and recall ``TP/(TP+FN)`` (NaN when 0/0)."""
    cm = _check_confusion(cm)
    tp = np.diag(cm)
    return _divide(tp, cm.sum(axis=0)), _divide(tp, cm.sum(axis=1))


def nanmean(values) -> float:
    """Mean over the non-NaN entries; NaN (without a warning) when all are NaN."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def iou_per_class(y_true, y_pred, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Per-class IoU over all pixels: float64 ``(C,)``, NaN for absent classes.

    Args:
        y_true, y_pred: int masks ``(N, H, W)`` or ``(H, W)``.
        num_classes: C.
        ignore_index: true label whose pixels are skipped.
    """
    return iou_from_confusion(confusion_matrix(y_true, y_pred, num_classes, ignore_index))


def dice_per_class(y_true, y_pred, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """Per-class Dice over all pixels: float64 ``(C,)``, NaN for absent classes.

    Args:
        y_true, y_pred: int masks ``(N, H, W)`` or ``(H, W)``.
        num_classes: C.
        ignore_index: true label whose pixels are skipped.
    """
    return dice_from_confusion(confusion_matrix(y_true, y_pred, num_classes, ignore_index))


def mean_iou(y_true, y_pred, num_classes: int, ignore_index: int | None = None) -> float:
    """Mean IoU = nanmean of :func:`iou_per_class` (absent classes do not count)."""
    return nanmean(iou_per_class(y_true, y_pred, num_classes, ignore_index))


def mean_dice(y_true, y_pred, num_classes: int, ignore_index: int | None = None) -> float:
    """Mean Dice = nanmean of :func:`dice_per_class` (absent classes do not count)."""
    return nanmean(dice_per_class(y_true, y_pred, num_classes, ignore_index))


# ----------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------
class SegmentationReport(dict):
    """A dict of scores that prints as a table (and as HTML in Jupyter).

    Keys: ``"pixel_accuracy"``, ``"mean_iou"``, ``"mean_dice"``,
    ``"per_class"`` (``{class_name: {"iou", "dice", "precision", "recall",
    "true_pixels", "predicted_pixels"}}``), ``"confusion_matrix"`` (int64 ``(C, C)``)
    and ``"class_names"``.
    """

    _COLUMNS = ("iou", "dice", "precision", "recall", "true_pixels", "predicted_pixels")

    @staticmethod
    def _fmt(value) -> str:
        if isinstance(value, (int, np.integer)):
            return f"{int(value):,}"
        return "n/a" if np.isnan(value) else f"{value:.3f}"

    def rows(self) -> list[list[str]]:
        rows = []
        for name, scores in self["per_class"].items():
            rows.append([str(name)] + [self._fmt(scores[c]) for c in self._COLUMNS])
        return rows

    def __str__(self) -> str:
        header = ["class", "IoU", "Dice", "precision", "recall", "true px", "pred px"]
        rows = self.rows()
        widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
        lines = ["  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths)))]
        for r in rows:
            lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))))
        lines.append(
            f"pixel accuracy {self._fmt(self['pixel_accuracy'])} | "
            f"mean IoU {self._fmt(self['mean_iou'])} | mean Dice {self._fmt(self['mean_dice'])}"
            "  (means over classes present; n/a = class absent from truth and prediction)"
        )
        return "\n".join(lines)

    def __repr__(self) -> str:  # pragma: no cover - same as str, for consoles
        return self.__str__()

    def _repr_html_(self) -> str:
        header = ["class", "IoU", "Dice", "precision", "recall", "true px", "pred px"]
        html = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"]
        for r in self.rows():
            html.append("<tr>" + "".join(f"<td>{v}</td>" for v in r) + "</tr>")
        html.append("</table>")
        html.append(
            f"<p>pixel accuracy <b>{self._fmt(self['pixel_accuracy'])}</b> &middot; "
            f"mean IoU <b>{self._fmt(self['mean_iou'])}</b> &middot; "
            f"mean Dice <b>{self._fmt(self['mean_dice'])}</b> "
            "<small>(means over classes present; n/a = absent from truth and prediction)</small></p>"
        )
        return "".join(html)


def segmentation_report(
    y_true, y_pred, num_classes: int | None = None, class_names=None, ignore_index: int | None = None, info=None
) -> SegmentationReport:
    """All scores for one prediction: per class and overall.

    Args:
        y_true, y_pred: int masks ``(N, H, W)`` or ``(H, W)``.
        num_classes: C.
        class_names: C names (default ``"class 0"``, ...).
        ignore_index: true label whose pixels are skipped.
        info: a ``course_utils.datasets.DatasetInfo``: gives num_classes, class_names and ignore_index
            where they are not passed.

    Returns:
        :class:`SegmentationReport` (a dict; prints as a table).
    """
    if info is not None:
        num_classes = info.num_classes if num_classes is None else num_classes
        class_names = info.class_names if class_names is None else class_names
        ignore_index = info.ignore_index if ignore_index is None else ignore_index
    if num_classes is None:
        raise ValueError("segmentation_report needs num_classes (or info=DatasetInfo).")
    num_classes = _check_num_classes(num_classes)
    if class_names is None:
        class_names = [f"class {i}" for i in range(num_classes)]
    class_names = [str(n) for n in class_names]
    if len(class_names) != num_classes:
        raise ValueError(
            f"got {len(class_names)} class_names for num_classes={num_classes}: give one name per class."
        )
    cm = confusion_matrix(y_true, y_pred, num_classes, ignore_index)
    iou = iou_from_confusion(cm)
    dice = dice_from_confusion(cm)
    precision, recall = precision_recall_from_confusion(cm)
    per_class = {}
    for i, name in enumerate(class_names):
        per_class[name] = {
            "iou": float(iou[i]),
            "dice": float(dice[i]),
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "true_pixels": int(cm[i].sum()),
            "predicted_pixels": int(cm[:, i].sum()),
        }
    return SegmentationReport(
        pixel_accuracy=pixel_accuracy_from_confusion(cm),
        mean_iou=nanmean(iou),
        mean_dice=nanmean(dice),
        per_class=per_class,
        confusion_matrix=cm,
        class_names=class_names,
    )


# ----------------------------------------------------------------------------
# boundary metrics
# ----------------------------------------------------------------------------
def _as_batch(t: np.ndarray, p: np.ndarray):
    if t.ndim == 2:
        return t[None], p[None]
    return t, p


def boundary_mask(mask, width: int = 1) -> np.ndarray:
    """The inner band of ``width`` pixels along the edge of a binary mask.

    Args:
        mask: bool/0-1 array ``(H, W)``.
        width: band width in pixels (>= 1).

    Returns:
        bool ``(H, W)``: pixels of ``mask`` closer than ``width`` pixels (in the
        8-neighbourhood sense) to a pixel outside it. The image border does not
        count as an edge.
    """
    from scipy import ndimage

    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2:
        raise ValueError(f"boundary_mask expects one (H, W) mask, got shape {mask.shape}.")
    if width < 1:
        raise ValueError(f"width must be at least 1 pixel, got {width}.")
    eroded = ndimage.binary_erosion(
        mask, structure=np.ones((3, 3), bool), iterations=int(width), border_value=1
    )
    return mask & ~eroded


def boundary_iou(
    y_true, y_pred, num_classes: int, width: int = 2, ignore_index: int | None = None
) -> np.ndarray:
    """Per-class Boundary IoU (Cheng et al., 2021): IoU of the edge bands only.

    For each class the truth and the prediction are reduced to the inner band of
    ``width`` pixels along their edges (:func:`boundary_mask`), and the IoU of the
    two bands is computed over all images together. Interiors, which are easy,
    no longer dilute errors on the outline.

    Args:
        y_true, y_pred: int masks ``(N, H, W)`` or ``(H, W)``.
        num_classes: C.
        width: band width in pixels.
        ignore_index: true label whose pixels are skipped.

    Returns:
        float64 ``(C,)``; NaN for a class with no edge in truth or prediction.
    """
    num_classes = _check_num_classes(num_classes)
    t, p = _check_pair(y_true, y_pred)
    _flat_valid(t, p, num_classes, ignore_index)  # validates the value ranges
    t, p = _as_batch(t, p)
    inter = np.zeros(num_classes)
    union = np.zeros(num_classes)
    for ti, pi in zip(t, p):
        valid = np.ones(ti.shape, bool) if ignore_index is None else ti != ignore_index
        for c in range(num_classes):
            bt = boundary_mask(ti == c, width) & valid
            bp = boundary_mask(pi == c, width) & valid
            inter[c] += np.count_nonzero(bt & bp)
            union[c] += np.count_nonzero(bt | bp)
    return _divide(inter, union)


def boundary_f1(
    y_true, y_pred, num_classes: int, tolerance: int = 2, ignore_index: int | None = None
) -> np.ndarray:
    """Per-class boundary F1 score ("BF score", Csurka et al., 2013).

    The 1-pixel outlines of truth and prediction are compared: an outline pixel of
    the prediction counts as correct when a true outline pixel lies within
    ``tolerance`` pixels (Euclidean), and vice versa. Precision, recall and F1 are
    accumulated over all images.

    Args:
        y_true, y_pred: int masks ``(N, H, W)`` or ``(H, W)``.
        num_classes: C.
        tolerance: distance in pixels within which an edge counts as matched.
        ignore_index: true label whose pixels are skipped.

    Returns:
        float64 ``(C,)``; NaN for a class with no edge in truth or prediction.
    """
    from scipy import ndimage

    num_classes = _check_num_classes(num_classes)
    t, p = _check_pair(y_true, y_pred)
    _flat_valid(t, p, num_classes, ignore_index)
    t, p = _as_batch(t, p)
    matched_pred = np.zeros(num_classes)
    total_pred = np.zeros(num_classes)
    matched_true = np.zeros(num_classes)
    total_true = np.zeros(num_classes)
    for ti, pi in zip(t, p):
        valid = np.ones(ti.shape, bool) if ignore_index is None else ti != ignore_index
        for c in range(num_classes):
            bt = boundary_mask(ti == c, 1) & valid
            bp = boundary_mask(pi == c, 1) & valid
            nt, np_ = np.count_nonzero(bt), np.count_nonzero(bp)
            total_true[c] += nt
            total_pred[c] += np_
            if nt and np_:
                dist_to_true = ndimage.distance_transform_edt(~bt)
                dist_to_pred = ndimage.distance_transform_edt(~bp)
                matched_pred[c] += np.count_nonzero(bp & (dist_to_true <= tolerance))
                matched_true[c] += np.count_nonzero(bt & (dist_to_pred <= tolerance))
    precision = _divide(matched_pred, total_pred)
    recall = _divide(matched_true, total_true)
    # a class with edges on one side only: precision or recall is 0/0 -> F1 = 0
    precision = np.where(np.isnan(precision) & (total_true > 0), 0.0, precision)
    recall = np.where(np.isnan(recall) & (total_pred > 0), 0.0, recall)
    f1 = np.full(num_classes, np.nan)
    defined = ~np.isnan(precision) & ~np.isnan(recall)
    f1[defined] = 0.0
    positive = defined & (precision + recall > 0)
    f1[positive] = 2 * precision[positive] * recall[positive] / (precision[positive] + recall[positive])
    return f1


def label_edges(mask) -> np.ndarray:
    """Where the label changes: pixels with an 8-neighbour of a different class, whatever the classes are.

    Args:
        mask: int class-index mask ``(H, W)``.

    Returns:
        bool ``(H, W)``. Both sides of every edge are marked (a 2x2 square in a larger image gives a
        4x4 block of edge pixels); the image border is not an edge. Swapping class labels changes nothing.
    """
    from scipy import ndimage

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"label_edges expects one (H, W) mask, got shape {mask.shape}.")
    footprint = np.ones((3, 3), bool)
    # a pixel is on an edge when the largest and the smallest label around it differ
    high = ndimage.maximum_filter(mask, footprint=footprint, mode="nearest")
    low = ndimage.minimum_filter(mask, footprint=footprint, mode="nearest")
    return high != low


def boundary_f1_agnostic(y_true, y_pred, tolerance: int = 2, ignore_index: int | None = None) -> float:
    """Class-agnostic boundary F1: are the outlines in the right place, whatever class they enclose?

    The edges of truth and prediction (:func:`label_edges`: pixels where the label changes) are compared
    as in :func:`boundary_f1`: a predicted edge pixel is matched when a true edge pixel lies within
    ``tolerance`` pixels (Euclidean), and vice versa; precision, recall and F1 are accumulated over all
    images. A square predicted in the right place with the wrong class scores 1.0 here and 0.0 in the
    per-class :func:`boundary_f1` of its class: "right outline, wrong class" is told apart from "wrong
    outline".

    Args:
        y_true, y_pred: int masks ``(N, H, W)`` or ``(H, W)``.
        tolerance: distance in pixels within which an edge counts as matched.
        ignore_index: true label whose pixels are skipped (as edge pixels of either side).

    Returns:
        float: the F1 score; NaN when neither truth nor prediction has an edge, 0.0 when only one does.
    """
    from scipy import ndimage

    t, p = _check_pair(y_true, y_pred)
    _flat_valid(t, p, None, ignore_index)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, np.integer)) or tolerance < 0:
        raise ValueError(f"tolerance must be a whole number of pixels >= 0, got {tolerance!r}.")
    t, p = _as_batch(t, p)
    matched_pred = matched_true = total_pred = total_true = 0
    for ti, pi in zip(t, p):
        valid = np.ones(ti.shape, bool) if ignore_index is None else ti != ignore_index
        # the ignored region's own border must not become an edge: give it the predicted label there
        bt = label_edges(np.where(valid, ti, pi)) & valid
        bp = label_edges(pi) & valid
        nt, np_ = np.count_nonzero(bt), np.count_nonzero(bp)
        total_true += nt
        total_pred += np_
        if nt and np_:
            matched_pred += np.count_nonzero(bp & (ndimage.distance_transform_edt(~bt) <= tolerance))
            matched_true += np.count_nonzero(bt & (ndimage.distance_transform_edt(~bp) <= tolerance))
    if total_true == 0 and total_pred == 0:
        return float("nan")
    if total_true == 0 or total_pred == 0:
        return 0.0
    precision, recall = matched_pred / total_pred, matched_true / total_true
    return 0.0 if precision + recall == 0 else float(2 * precision * recall / (precision + recall))


def output_stride_oracle(masks, stride: int, num_classes: int) -> np.ndarray:
    """The best a model with output stride ``stride`` can draw: the truth seen through a coarse grid.

    Each ``stride`` x ``stride`` block of the one-hot truth is averaged (the class fractions a perfect
    coarse model would output), the fractions are resized back bilinearly (what FCN's and DeepLab's final
    upsampling does) and the largest one wins. Lecture 02 draws this for the membranes; scoring it gives a
    *ceiling estimate* for a coarse-output model (not a strict bound: a trained network can place its
    interpolated logits better than block averages).

    Args:
        masks: int masks ``(N, H, W)`` or ``(H, W)``; H and W multiples of ``stride``.
        stride: output stride (1 returns the masks unchanged).
        num_classes: C.

    Returns:
        int64 masks of the same shape.
    """
    from course_utils.data import resize_image

    num_classes = _check_num_classes(num_classes)
    m = _as_label_array(masks, "masks")
    _flat_valid(m, m, num_classes)  # validates the labels
    if isinstance(stride, bool) or not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}.")
    single = m.ndim == 2
    batch = m[None] if single else m
    if batch.ndim != 3:
        raise ValueError(f"masks must be (H, W) or (N, H, W), got shape {m.shape}.")
    n, h, w = batch.shape
    if h % stride or w % stride:
        raise ValueError(f"output_stride_oracle needs H and W divisible by stride={stride}, got {h}x{w}: "
                         f"crop the masks to a multiple of {stride}.")
    onehot = np.eye(num_classes, dtype=np.float32)[batch]  # (N, H, W, C)
    blocks = onehot.reshape(n, h // stride, stride, w // stride, stride, num_classes).mean(axis=(2, 4))
    up = resize_image(blocks, (h, w))
    out = up.argmax(axis=-1).astype(np.int64)
    return out[0] if single else out
