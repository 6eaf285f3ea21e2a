"""Segmentation data without a framework: generate, load, check, split, crop, resize and augment.

Conventions (the whole course):

* images: float32 in [0, 1], shape ``(N, H, W, C)`` (one sample: ``(H, W, C)``);
* masks: integer class indices, shape ``(N, H, W)`` (one sample: ``(H, W)``), int64.

Reading files lives in :mod:`course_utils.folders` (listing, decoding, one shared mask scan) and label-map
files in :mod:`course_utils.palettes`; this module builds on both and imports neither ``datasets`` nor the
figures, so the course's imports run one way (tests/test_import_graph.py).

The Keras and PyTorch input pipelines (``course_utils.keras.data`` and
``course_utils.torch.data``) both call :func:`prepare_sample` for every sample,
with a random generator from :func:`sample_rng` ``(seed, epoch, index)``, so the
same seed and epoch give the same batches in both frameworks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from . import folders as _folders
from .folders import (  # noqa: F401  (folder reading lives in course_utils.folders; these names stay importable here)
    IMAGE_SUFFIXES,
    _apply_mapping,
    _check_mapping,
    _list_files,
    _natural_key,
    _open_image,
    _read_image,
    _read_mask,
    _take_scanned,
    _unpaired_text,
    scan_masks,
    unpaired_files,
)

__all__ = [
    "SHAPE_CLASS_NAMES",
    "MEMBRANE_CLASS_NAMES",
    "MaskReport",
    "make_shapes",
    "tile_scenes",
    "load_membranes",
    "load_folder",
    "scan_masks",
    "unpaired_files",
    "inspect_masks",
    "void_candidate",
    "rgb_to_index",
    "validate_masks",
    "split_indices",
    "train_val_split",
    "random_crop",
    "center_crop",
    "resize_image",
    "resize_mask",
    "one_hot",
    "class_frequencies",
    "class_weights",
    "flip_rotate",
    "elastic_deform",
    "augment_pair",
    "sample_rng",
    "epoch_order",
    "prepare_sample",
    "DEFAULT_AUGMENT",
]

SHAPE_CLASS_NAMES = ("background", "disc", "square", "triangle")
MEMBRANE_CLASS_NAMES = ("cell", "membrane")



# =========================================================================== synthetic shapes
def make_shapes(
    n: int,
    size: int = 128,
    num_classes: int = 4,
    seed: int = 0,
    max_shapes: int = 4,
    rare_class_frequency: float | None = None,
    noise: float = 0.08,
):
    """Synthetic scenes: discs, squares and triangles on a textured, noisy background.

    n:           number of images.
    size:        height = width in pixels.
    num_classes: 2..4; class 0 is background, then 1 disc, 2 square, 3 triangle (the first
                 ``num_classes - 1`` shapes are used).
    seed:        the same seed gives the same data.
    max_shapes:  each image holds 1..max_shapes shapes (later ones occlude earlier ones).
    rare_class_frequency: None -> all shape classes equally likely. A number p (e.g. 0.05) -> the LAST
                 class is chosen for only about a fraction p of the shapes and drawn smaller: the
                 class-imbalance knob.
    noise:       standard deviation of the Gaussian pixel noise.

    Returns ``images`` float32 (N, size, size, 3) in [0, 1] and ``masks`` int64 (N, size, size).
    The colour of a shape does not tell its class (only its outline does).
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"make_shapes needs n >= 1 images, got n={n}.")
    if not 2 <= num_classes <= 4:
        raise ValueError(
            f"make_shapes supports num_classes 2..4 (background + up to disc, square, triangle), got {num_classes}."
        )
    if size < 16:
        raise ValueError(f"make_shapes needs size >= 16 pixels, got {size}.")
    if max_shapes < 1:
        raise ValueError(f"max_shapes must be at least 1, got {max_shapes}.")
    if rare_class_frequency is not None and not 0.0 <= rare_class_frequency <= 1.0:
        raise ValueError(f"rare_class_frequency must be in [0, 1] (e.g. 0.05) or None, got {rare_class_frequency}.")

    rng = np.random.default_rng(seed)
    num_shape_classes = num_classes - 1
    k_tex = 3

    # --- all random parameters up front (so the result does not depend on the chunking below)
    counts = rng.integers(1, max_shapes + 1, size=n)
    active = np.arange(max_shapes)[None, :] < counts[:, None]  # (N, S)
    if rare_class_frequency is None:
        classes = rng.integers(1, num_classes, size=(n, max_shapes))
        rare = np.zeros((n, max_shapes), dtype=bool)
    else:
        rare = rng.random((n, max_shapes)) < rare_class_frequency
        if num_shape_classes == 1:  # only one shape class: it appears in a fraction p of the shape slots
            classes = np.ones((n, max_shapes), dtype=np.int64)
            active &= rare
        else:
            others = rng.integers(1, num_classes - 1, size=(n, max_shapes))
            classes = np.where(rare, num_classes - 1, others)
    r_small = rng.uniform(0.035, 0.06, size=(n, max_shapes)) * size
    r_normal = rng.uniform(0.09, 0.18, size=(n, max_shapes)) * size
    radius = np.where(rare, r_small, r_normal)
    cy = rng.uniform(0, 1, size=(n, max_shapes)) * (size - 2 * radius) + radius
    cx = rng.uniform(0, 1, size=(n, max_shapes)) * (size - 2 * radius) + radius
    angle = rng.uniform(0, 2 * np.pi, size=(n, max_shapes))
    shape_colour = rng.uniform(0.55, 0.95, size=(n, max_shapes, 3))
    bg_colour = rng.uniform(0.1, 0.4, size=(n, 3))
    tex_freq = rng.uniform(1.0, 6.0, size=(n, k_tex)) / size
    tex_dir = rng.uniform(0, 2 * np.pi, size=(n, k_tex))
    tex_phase = rng.uniform(0, 2 * np.pi, size=(n, k_tex))
    tex_amp = rng.uniform(0.03, 0.08, size=(n, k_tex))
    f32 = np.float32  # compute in float32: half the memory traffic
    radius, cy, cx, angle, shape_colour, bg_colour = (a.astype(f32) for a in (radius, cy, cx, angle, shape_colour, bg_colour))
    tex_freq, tex_dir, tex_phase, tex_amp = (a.astype(f32) for a in (tex_freq, tex_dir, tex_phase, tex_amp))

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    images = np.empty((n, size, size, 3), dtype=np.float32)
    masks = np.zeros((n, size, size), dtype=np.int64)
    chunk = 64
    for start in range(0, n, chunk):
        sl = slice(start, min(start + chunk, n))
        m = sl.stop - sl.start
        # textured background: a few low-frequency plane waves per image
        wave = (
            np.cos(tex_dir[sl])[:, :, None, None] * xx + np.sin(tex_dir[sl])[:, :, None, None] * yy
        ) * (f32(2 * np.pi) * tex_freq[sl])[:, :, None, None] + tex_phase[sl][:, :, None, None]
        texture = (tex_amp[sl][:, :, None, None] * np.sin(wave)).sum(axis=1)  # (m, H, W)
        img = bg_colour[sl][:, None, None, :] + texture[..., None]
        msk = np.zeros((m, size, size), dtype=np.int64)
        for s in range(max_shapes):
            dy = yy[None] - cy[sl, s, None, None]
            dx = xx[None] - cx[sl, s, None, None]
            c, si = np.cos(angle[sl, s])[:, None, None], np.sin(angle[sl, s])[:, None, None]
            u = c * dx + si * dy  # rotated coordinates
            v = -si * dx + c * dy
            r = radius[sl, s, None, None]
            cls = classes[sl, s, None, None]
            disc = dx * dx + dy * dy <= r * r
            square = (np.abs(u) <= r * 0.85) & (np.abs(v) <= r * 0.85)
            # equilateral triangle with inradius 0.7 r: three half-planes
            tri = np.ones_like(disc)
            for k in range(3):
                theta = 2 * np.pi * k / 3
                tri &= f32(np.cos(theta)) * u + f32(np.sin(theta)) * v <= f32(0.7) * r
            inside = np.where(cls == 1, disc, np.where(cls == 2, square, tri))  # (m, H, W) bool
            inside &= active[sl, s, None, None]
            shading = f32(1.0) - f32(0.15) * (u / (r + f32(1e-6)))  # a soft gradient inside the shape
            colour = shape_colour[sl, s][:, None, None, :] * shading[..., None]
            img = np.where(inside[..., None], colour, img)
            msk = np.where(inside, cls, msk)
        if noise > 0:
            img = img + rng.standard_normal(size=img.shape, dtype=np.float32) * f32(noise)
        images[sl] = np.clip(img, 0.0, 1.0)
        masks[sl] = msk
    return images, masks


# =========================================================================== real data
def load_membranes(root=None, download: bool = True):
    """The ISBI 2012 membrane slices (the U-Net paper's data), downloaded and checksum-verified on first use.

    root:     folder holding ``isbi2012-membrane/`` (default: ``course_utils.env.data_dir()``,
              i.e. ``$COURSE_DATA_DIR`` or the user cache).
    download: False -> never go online (raises DataNotAvailableError when the files are missing).

    Returns ``images`` float32 (30, 512, 512, 1) in [0, 1] and ``masks`` int64 (30, 512, 512) with
    0 = cell interior, 1 = membrane (the PNG masks store 255 = cell, 0 = membrane; this flips them so
    that the thin, rare structure is the foreground class 1).
    """
    from .download import fetch_dataset

    folder = fetch_dataset("isbi2012-membrane", root=root, download=download)
    stems = [str(i) for i in range(30)]
    images = np.stack([_read_image(folder / "images" / f"{s}.png", grayscale=True) for s in stems])
    raw = np.stack([_read_mask(folder / "masks" / f"{s}.png") for s in stems])
    values = np.unique(raw)
    if not set(values.tolist()) <= {0, 255}:
        grey = int(((raw > 0) & (raw < 255)).sum())
        raise ValueError(
            f"The membrane masks in {folder / 'masks'} contain {grey} pixels with grey levels other than 0 and 255 "
            f"(values {values[:8].tolist()}...): the files are not the original PNGs; delete the folder so that "
            "they are downloaded again."
        )
    masks = (raw < 128).astype(np.int64)  # 0 (black) = membrane -> class 1
    return images, masks


def load_folder(
    images_dir,
    masks_dir,
    num_classes: int | None = None,
    mask_mapping: Mapping | None = None,
    grayscale: bool = False,
    ignore_index: int | None = None,
    info=None,
):
    """Load your own data: image files and mask files paired by file name without extension.

    images_dir / masks_dir: folders; ``images/cat_01.jpg`` pairs with ``masks/cat_01.png``.
    num_classes:  the number of classes. Not guessed from the mask values: without it (and without ``info``),
                  it is taken from ``mask_mapping`` (largest class index + 1) or the label-map file's classes,
                  else load_folder raises a ValueError naming the arguments to pass.
    mask_mapping: maps stored mask values to class indices, e.g. ``{0: 0, 255: 1}`` for black/white masks,
                  or RGB tuples for colour-coded masks, ``{(0, 0, 0): 0, (255, 0, 0): 1}``. Every value that
                  occurs must be mapped. A path to a label-map file (``labelmap.txt`` with ``name:r,g,b::``
                  lines, or a JSON ``{name: [r, g, b]}``) is read with ``datasets.palette_mapping``: its
                  void / ignore entries become ``ignore_index`` (255 unless given).
    grayscale:    True -> images (N, H, W, 1), False -> (N, H, W, 3).
    ignore_index: a mask value (e.g. 255 for "don't care" borders) that is allowed besides 0..num_classes-1.
    info:         a :class:`course_utils.datasets.DatasetInfo` (e.g. from ``datasets.describe_folder``): its
                  ``num_classes``, ``ignore_index`` and ``mask_mapping`` are used where the arguments are not given.

    Three mask layouts are read: class-index PNGs (0, 1, 2, ... per pixel), black/white 0/255 masks (pass
    ``mask_mapping={0: 0, 255: 1}``) and RGB colour-coded masks (pass ``mask_mapping={(r, g, b): class}``,
    e.g. ``datasets.palette_mapping("labelmap.txt")``).

    Memory: images float32 (N*H*W*C*4 bytes; 367 RGB frames of 480x360: 0.76 GB) and masks int64 (N*H*W*8
    bytes: 0.51 GB), each filled in place; the masks as stored (N*H*W bytes for 8-bit PNGs) are held until
    they are converted. When ``datasets.describe_folder`` has just read the same mask files, their stack is
    taken from it instead of reading them again.

    Only regular files are read: a folder, FIFO, socket or device named like an image raises a ValueError
    (nothing is opened).

    A void label is never turned into a class silently: without ``num_classes`` and ``ignore_index``, masks
    whose largest value lies far beyond the others (e.g. classes 0..10 plus 255) raise a ValueError that asks
    you to decide (``ignore_index=255``, or ``num_classes``/``mask_mapping`` to make it a class).

    Returns ``images`` float32 (N, H, W, C) in [0, 1] and ``masks`` int64 (N, H, W).
    Raises ValueError naming the files and the fix for unpaired files, size mismatches and mask values that
    are not valid class indices (e.g. 0/255 masks: pass ``mask_mapping={0: 0, 255: 1}``). Nothing is silently
    dropped or resized.
    """
    if info is not None:
        num_classes = info.num_classes if num_classes is None else num_classes
        ignore_index = info.ignore_index if ignore_index is None else ignore_index
        mask_mapping = info.mask_mapping if mask_mapping is None else mask_mapping
    if isinstance(mask_mapping, (str, Path)):
        from .palettes import palette_mapping, read_palette

        palette = read_palette(mask_mapping)
        if palette[2] and ignore_index is None:
            ignore_index = 255
        mask_mapping = palette_mapping(palette, 255 if ignore_index is None else ignore_index)
        num_classes = len(palette[0]) if num_classes is None else num_classes
    if mask_mapping is not None:
        mask_mapping = _check_mapping(mask_mapping, "load_folder")
        if num_classes is None:  # the mapping names the classes: K = largest class index + 1
            classes = [v for v in mask_mapping.values() if v != ignore_index]
            num_classes = max(classes) + 1 if classes else None
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    image_files, mask_files = _list_files(images_dir), _list_files(masks_dir)
    only_images, only_masks = unpaired_files(image_files, mask_files)
    if only_images or only_masks:
        raise ValueError(
            "Images and masks are paired by file name without extension, but "
            + _unpaired_text(only_images, only_masks, images_dir, masks_dir)
            + ". Add the missing files or move the unpaired ones out of the folders."
        )
    stems = sorted(image_files, key=_natural_key)
    raw = _take_scanned(masks_dir, [mask_files[stem] for stem in stems])  # describe_folder's scan, if fresh
    images = None
    raw_masks = []
    for i, stem in enumerate(stems):
        image = _read_image(image_files[stem], grayscale)
        mask = raw[i] if raw is not None else _folders._read_mask(mask_files[stem])
        if image.shape[:2] != mask.shape[:2]:
            raise ValueError(
                f"{image_files[stem].name} is {image.shape[1]}x{image.shape[0]} pixels but its mask "
                f"{mask_files[stem].name} is {mask.shape[1]}x{mask.shape[0]}: image and mask must have the same "
                "size; fix or re-export the mask (resize masks only with nearest neighbour)."
            )
        if images is not None and image.shape != images.shape[1:]:
            raise ValueError(
                f"{image_files[stem].name} is {image.shape[1]}x{image.shape[0]} but {image_files[stems[0]].name} is "
                f"{images.shape[2]}x{images.shape[1]}: all images must have the same size to form one array; "
                "resize them beforehand (resize_image / resize_mask) or crop them to a common size."
            )
        if raw is None and raw_masks and mask.ndim != raw_masks[0].ndim:
            raise ValueError(
                f"{mask_files[stem].name} is a {'colour' if mask.ndim == 3 else 'grey'} mask but "
                f"{mask_files[stems[0]].name} is not: save all masks in the same format."
            )
        if images is None:  # one float32 array filled in place: no list of images plus a stacked copy
            images = np.empty((len(stems),) + image.shape, dtype=np.float32)
        images[i] = image
        if raw is None:
            raw_masks.append(mask)
    if raw is None:
        raw = np.stack(raw_masks)
        del raw_masks

    if mask_mapping is not None:
        masks = _apply_mapping(raw, mask_mapping, masks_dir)
    elif raw.ndim == 4:
        colours = np.unique(raw.reshape(-1, raw.shape[-1]), axis=0)
        raise ValueError(
            f"The masks in {masks_dir} are colour images with {len(colours)} colours "
            f"(e.g. {[tuple(int(v) for v in c) for c in colours[:4]]}): pass mask_mapping={{(r, g, b): class_index, ...}} "
            "or the label-map file, mask_mapping='labelmap.txt', to turn colours into class indices "
            "(datasets.describe_folder finds such a file next to the folders)."
        )
    else:
        masks = raw  # checked in the stored dtype (1 byte per pixel for 8-bit PNGs), widened to int64 at the end
    del raw
    report = inspect_masks(masks, num_classes=num_classes, ignore_index=ignore_index)
    if num_classes is None and ignore_index is None and report.void_candidate is not None and not report.looks_0_255:
        void = report.void_candidate
        others = [v for v in report.values if v != void]
        share = float(np.mean(masks == void))
        raise ValueError(
            f"The masks in {masks_dir} hold the values {others[0]}..{others[-1]} and {void} ({share:.1%} of the "
            f"pixels): {void} lies far beyond the others and looks like a void / \"don't care\" label, which "
            f"load_folder would otherwise count as class {void} (making {void + 1} classes). Decide explicitly: "
            f"pass ignore_index={void} to leave those pixels out of the loss and the scores (the usual choice), or "
            f"num_classes=... with mask_mapping={{..., {void}: k}} to make it a real class k. "
            "datasets.describe_folder(images_dir, masks_dir) shows what is in the masks."
        )
    if report.problems:
        raise ValueError(f"The masks in {masks_dir} are not valid class indices: " + " ".join(report.problems))
    if num_classes is None:
        raise ValueError(
            f"load_folder does not guess the number of classes: the masks in {masks_dir} hold the values "
            f"{report._shown_values()}, and one of them may be a void label rather than a class. Pass "
            "num_classes=K (and ignore_index=... for a void / \"don't care\" value), or "
            "info=datasets.describe_folder(images_dir, masks_dir, class_names=[...])[0]."
        )
    return images, masks.astype(np.int64, copy=False)


def rgb_to_index(masks_rgb, mapping: Mapping, ignore_index: int | None = None) -> np.ndarray:
    """Colour-coded masks ``(..., H, W, 3)`` uint8 -> class indices ``(..., H, W)`` int64.

    mapping: ``{(r, g, b): class_index}`` (e.g. ``datasets.palette_mapping("labelmap.txt")``); a colour that
    is not in ``mapping`` raises a ValueError naming it, unless ``ignore_index`` is given (then it becomes
    ``ignore_index``: use this only when every unknown colour really is "don't care").
    """
    raw = np.asarray(masks_rgb)
    if raw.ndim < 3 or raw.shape[-1] != 3:
        raise ValueError(f"rgb_to_index expects colour masks (..., H, W, 3), got shape {raw.shape}.")
    if ignore_index is None:
        return _apply_mapping(raw.reshape((-1,) + raw.shape[-3:]), mapping, "the given array").reshape(raw.shape[:-1])
    flat = raw.reshape(-1, 3).astype(np.int64)
    codes = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    out = np.full(codes.shape, int(ignore_index), dtype=np.int64)
    for key, value in mapping.items():
        out[codes == ((int(key[0]) << 16) | (int(key[1]) << 8) | int(key[2]))] = int(value)
    return out.reshape(raw.shape[:-1])


# =========================================================================== checking masks
@dataclass(eq=False)
class MaskReport:
    """What :func:`inspect_masks` found. ``problems``: each problem and its fix (empty = fine)."""

    shape: tuple
    dtype: str
    num_classes: int | None
    values: list
    class_counts: np.ndarray | None = None
    class_frequencies: np.ndarray | None = None
    missing_classes: list = field(default_factory=list)
    class_names: tuple | None = None
    problems: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    looks_0_255: bool = False
    classes_present: list = field(default_factory=list)
    void_candidate: int | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def _name(self, c: int) -> str:
        if self.class_names is not None and c < len(self.class_names):
            return f"{c} ({self.class_names[c]})"
        return str(c)

    def _shown_values(self) -> str:
        """The first 12 distinct values, floats to 4 significant digits (lossy masks hold 0.010000002...)."""
        shown = [f"{v:.4g}" if isinstance(v, (float, np.floating)) else str(v) for v in self.values[:12]]
        return "[" + ", ".join(shown + (["..."] if len(self.values) > 12 else [])) + "]"

    def __str__(self) -> str:
        lines = [
            f"MaskReport: shape {self.shape}, dtype {self.dtype}, num_classes {self.num_classes}, "
            f"values {self._shown_values()}"
        ]
        if self.class_frequencies is not None:
            freqs = ", ".join(
                f"{self._name(c)}: {f:.1%}" for c, f in enumerate(self.class_frequencies)
            )
            lines.append(f"  class frequencies: {freqs}")
        if self.classes_present:
            lines.append(f"  classes present: {', '.join(self._name(c) for c in self.classes_present)}")
        if self.void_candidate is not None:
            lines.append(f"  looks like a void label: {self.void_candidate}")
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.problems:
            for problem in self.problems:
                lines.append(f"  PROBLEM: {problem}")
        else:
            lines.append("  OK: valid integer class-index masks")
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        rows = [
            ("shape", self.shape), ("dtype", self.dtype), ("num_classes", self.num_classes),
            ("values", self._shown_values()),
        ]
        if self.class_frequencies is not None:
            rows.append(("class frequencies", ", ".join(
                f"{self._name(c)}: {f:.1%}" for c, f in enumerate(self.class_frequencies))))
        body = "".join(f"<tr><th style='text-align:left'>{k}</th><td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                       for k, v in rows)
        items = "".join(f"<li>&#9888; {html.escape(p)}</li>" for p in self.problems)
        items += "".join(f"<li>{html.escape(n)}</li>" for n in self.notes)
        status = ("<b style='color:#b00'>problems found</b>" if self.problems
                  else "<b style='color:#070'>OK: valid integer class-index masks</b>")
        return f"<div><b>MaskReport</b> &mdash; {status}<table>{body}</table><ul>{items}</ul></div>"


def void_candidate(values) -> int | None:
    """The value among ``values`` (the distinct mask values) that looks like a void label, or None.

    A value "looks like void" when it lies far beyond the others: it is at least 2 x (the next value + 1)
    and more than 8 above it, e.g. 255 next to the classes 0..10 (Pascal VOC, many street-scene exports).
    0/255 black-and-white masks have no void candidate (255 is the foreground there).
    """
    vals = sorted({int(v) for v in np.asarray(values).reshape(-1).tolist()})
    if len(vals) < 3:
        return None
    top, second = vals[-1], vals[-2]
    if top >= 2 * (second + 1) and top - second > 8:
        return top
    return None


def inspect_masks(masks, num_classes: int | None = None, class_names: Sequence[str] | None = None,
                  ignore_index: int | None = None) -> MaskReport:
    """Check that ``masks`` are integer class-index masks (N, H, W) and report what is off.

    Detects: wrong dtype (float, bool), non-integer values / grey levels (lossy JPEG saving, bilinear
    resizing), 0/255 masks that should be 0/1, an extra channel axis (N, H, W, 1) or (N, 1, H, W),
    one-hot masks, negative values or values >= num_classes, and (as notes) classes that never occur.
    ``ignore_index`` pixels (e.g. 255) are allowed and left out of the class frequencies.
    Without ``ignore_index``, a value far beyond the others (e.g. 255 next to 0..10) is reported as
    ``report.void_candidate`` with a note (see :func:`void_candidate`) and left out of the frequencies.
    ``report.classes_present`` lists the class indices that occur.

    Returns a :class:`MaskReport`; ``report.problems`` lists each problem with its fix.
    """
    arr = np.asarray(masks)
    report = MaskReport(shape=tuple(arr.shape), dtype=str(arr.dtype), num_classes=num_classes, values=[],
                        class_names=tuple(class_names) if class_names is not None else None)
    problems = report.problems
    if arr.size == 0:
        problems.append("The masks are empty (size 0): load at least one mask.")
        return report
    if arr.dtype.kind not in "biuf":
        problems.append(f"dtype {arr.dtype} is not numeric: masks must be integer class indices (np.int64).")
        return report
    values = _distinct_values(arr)
    if arr.dtype.kind == "f" and np.isnan(values).any():
        problems.append("The masks contain NaN: masks must be integer class indices without NaN.")
        values = values[~np.isnan(values)]
    report.values = [v.item() for v in values[:256]]

    # --- shape
    if arr.ndim == 4 and arr.shape[-1] == 1:
        problems.append(f"Shape {arr.shape} has an extra channel axis (N, H, W, 1): use masks[..., 0] to get (N, H, W).")
    elif arr.ndim == 4 and arr.shape[1] == 1:
        problems.append(f"Shape {arr.shape} has an extra channel axis (N, 1, H, W): use masks[:, 0] to get (N, H, W).")
    elif arr.ndim == 4 and set(report.values) <= {0, 1} and np.allclose(arr.sum(axis=-1), 1):
        problems.append(f"Shape {arr.shape} looks one-hot (N, H, W, C): use masks.argmax(axis=-1) to get class indices (N, H, W).")
    elif arr.ndim == 2:
        problems.append(f"Shape {arr.shape} is a single mask (H, W): use masks[None] for a batch (1, H, W).")
    elif arr.ndim != 3:
        problems.append(f"Shape {arr.shape} is not (N, H, W): masks must be one class index per pixel.")

    # --- dtype and values
    int_valued = arr.dtype.kind in "biu" or bool(np.all(np.mod(values, 1) == 0))
    looks_0_255 = bool(int_valued and set(report.values) <= {0, 255} and 255 in report.values
                       and ignore_index != 255 and (num_classes is None or num_classes <= 2))
    report.looks_0_255 = looks_0_255
    grey_levels = False
    if arr.dtype == bool:
        problems.append("dtype bool: masks must be integer class indices; use masks.astype(np.int64).")
    elif arr.dtype.kind == "f":
        if int_valued:
            problems.append(f"dtype {arr.dtype}: masks must be integer class indices; use masks.astype(np.int64).")
        else:
            problems.append(
                f"dtype {arr.dtype} with non-integer values (e.g. {', '.join(f'{v:.4g}' for v in [v for v in report.values if v % 1][:3])}): the masks "
                "were interpolated (bilinear resizing) or are probabilities; resize masks with nearest neighbour "
                "(resize_mask) or round/threshold them, then use .astype(np.int64)."
            )
    if looks_0_255:
        problems.append(
            "Values are 0/255 (a black/white mask saved as an 8-bit image): map 255 to class 1, e.g. "
            "masks = (masks > 127).astype(np.int64) or load_folder(..., mask_mapping={0: 0, 255: 1})."
        )
    elif int_valued and len(values) > 2 and values.min() >= 0 and values.max() == 255 and 0 in report.values \
            and (num_classes is None or num_classes < len(values)):
        extreme = np.isin(arr, (0, 255)).mean()
        if extreme > 0.8:
            grey_levels = True
            grey = int((~np.isin(arr, (0, 255))).sum())
            levels = [v for v in report.values if v not in (0, 255)]
            shown = ", ".join(str(v) for v in (levels[:4] + ["..."] + levels[-2:] if len(levels) > 6 else levels))
            problems.append(
                f"{grey} pixels have {len(levels)} grey levels between 0 and 255 ({shown}) although most are 0 or "
                "255: black/white masks saved as JPEG (lossy: it smears every edge into grey levels) or resized "
                "with interpolation; save masks as PNG and resize with nearest neighbour, or threshold: "
                "masks = (masks > 127).astype(np.int64)."
            )
    if int_valued and not grey_levels and len(values) >= 2 and int(values.max()) >= 256 \
            and len(values) * 4 <= int(values.max()) + 1 and (num_classes is None or int(values.max()) >= num_classes):
        grey_levels = True  # not class indices: no frequencies over thousands of empty "classes"
        few = [int(v) for v in values[:6]]
        mapping = "{" + ", ".join(f"{v}: {i}" for i, v in enumerate(few)) + (", ...}" if len(values) > 6 else "}")
        problems.append(
            f"The masks hold {len(values)} distinct values up to {int(values.max())} ({report._shown_values()}): "
            f"these are not class indices (read as indices they would make {int(values.max()) + 1} classes, almost "
            f"all empty), as in masks exported with 16-bit grey levels. Map each value to a class index: "
            f"load_folder(..., mask_mapping={mapping}), or write class-index PNGs once with "
            f"datasets.convert_masks(masks_dir, out_dir, {mapping})."
        )
    if int_valued and not looks_0_255 and ignore_index is None and arr.dtype.kind != "f":
        report.void_candidate = void_candidate(values)
        if report.void_candidate is not None:
            void = report.void_candidate
            share = float(np.mean(arr == void))
            below = [v for v in report.values if v != void]
            report.notes.append(
                f"Value {void} ({share:.1%} of the pixels) lies far beyond the others ({below[0]}..{below[-1]}): it "
                f"looks like a void / \"don't care\" label. Pass ignore_index={void} to leave it out of the loss "
                "and the scores (or map it to a class with mask_mapping)."
            )
    skip = ignore_index if ignore_index is not None else report.void_candidate
    if int_valued and not looks_0_255:
        valid = values if skip is None else values[values != skip]
        negative = valid[valid < 0]
        if negative.size:
            problems.append(f"Negative values {negative[:5].tolist()}: class indices start at 0; map them to classes.")
        if num_classes is not None:
            too_big = valid[valid >= num_classes]
            if too_big.size:
                problems.append(
                    f"Values {too_big[:8].tolist()} are outside the class range 0..{num_classes - 1}: map them to "
                    f"classes (mask_mapping), use a larger num_classes, or mark them as ignore_index."
                )

    # --- frequencies (when the values are usable class indices)
    top = values[values != skip].max() if (values != skip).any() else 0
    if int_valued and arr.size and not looks_0_255 and not grey_levels \
            and (num_classes is not None or top < 64):
        kept = values if skip is None else values[values != skip]
        if kept.size and kept.min() >= 0:
            c = num_classes if num_classes is not None else int(kept.max()) + 1
            counts = _value_counts(arr, c, skip)
            report.class_counts = counts
            total = counts.sum()
            report.class_frequencies = counts / total if total else counts.astype(np.float64)
            report.missing_classes = [int(k) for k in np.flatnonzero(counts == 0)]
            report.classes_present = [int(k) for k in np.flatnonzero(counts > 0)]
            if report.missing_classes:
                report.notes.append(
                    f"Class(es) {', '.join(report._name(k) for k in report.missing_classes)} never occur: "
                    "check num_classes and the mask values (a split may also just lack them)."
                )
            if total and num_classes is not None:
                rare = [k for k in range(c) if 0 < counts[k] / total < 0.01]
                if rare:
                    report.notes.append(
                        f"Class(es) {', '.join(report._name(k) for k in rare)} cover less than 1% of the pixels: "
                        "strong class imbalance (consider class weights or a Dice loss)."
                    )
    return report


def _distinct_values(arr: np.ndarray) -> np.ndarray:
    """``np.unique(arr)``; for 8/16-bit integer masks counted in slices (no sorted copy of every pixel)."""
    if arr.dtype in (np.uint8, np.uint16) and arr.size:
        seen = np.zeros(256 if arr.dtype == np.uint8 else 65536, dtype=bool)
        flat = arr.reshape(-1)
        step = 1 << 22
        for start in range(0, flat.size, step):
            seen[np.bincount(flat[start:start + step], minlength=len(seen)) > 0] = True
        return np.flatnonzero(seen).astype(arr.dtype)
    return np.unique(arr)


def _value_counts(arr: np.ndarray, c: int, skip=None) -> np.ndarray:
    """Pixels per value 0..c-1 (int64 (c,)), counted in slices of about 4 M pixels: no int64 copy of all masks."""
    flat = arr.reshape(-1)
    counts = np.zeros(c, dtype=np.int64)
    step = 1 << 22
    for start in range(0, flat.size, step):
        part = flat[start:start + step]
        if skip is not None:
            part = part[part != skip]
        part = part.astype(np.int64, copy=False)
        part = part[(part >= 0) & (part < c)]
        counts += np.bincount(part, minlength=c)[:c]
    return counts


def validate_masks(masks, num_classes: int, ignore_index: int | None = None) -> MaskReport:
    """Raise ValueError listing every problem :func:`inspect_masks` finds; return the report when fine."""
    report = inspect_masks(masks, num_classes=num_classes, ignore_index=ignore_index)
    if report.problems:
        raise ValueError("Invalid masks: " + " ".join(report.problems))
    return report


# =========================================================================== splitting
def split_indices(n: int, val_fraction: float = 0.2, seed: int = 0):
    """Shuffled indices ``(train_idx, val_idx)`` (int64 arrays) with ``round(n * val_fraction)`` validation items.

    At least one item lands in each part when ``0 < val_fraction < 1``.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}.")
    n = int(n)
    n_val = int(round(n * val_fraction))
    if val_fraction > 0:
        n_val = max(1, n_val)
    if n_val >= n:
        raise ValueError(f"Cannot split {n} items with val_fraction={val_fraction}: nothing would be left to train on.")
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def train_val_split(images, masks, val_fraction: float = 0.2, seed: int = 0):
    """Split into training and validation parts.

    images (N, H, W, C), masks (N, H, W) -> ``x_train, y_train, x_val, y_val``.
    """
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks: each image needs exactly one mask.")
    train_idx, val_idx = split_indices(len(images), val_fraction, seed)
    return images[train_idx], masks[train_idx], images[val_idx], masks[val_idx]


# =========================================================================== crop / resize
def _pair_size(size) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def _crop_sizes(image, mask, size) -> tuple[int, int, int, int]:
    """``(h, w, H, W)``: the crop's and the pair's sizes, after checking that the pair matches and holds the crop."""
    h, w = _pair_size(size)
    H, W = mask.shape[:2]
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape[:2]} differ in size: pass a matching pair.")
    if h > H or w > W:
        raise ValueError(f"Crop size {(h, w)} is larger than the image {(H, W)}: use a smaller crop_size or resize first.")
    return h, w, H, W


def random_crop(image, mask, size, rng):
    """The same random window of ``image`` (H, W, C) and ``mask`` (H, W).

    size: int or (h, w); rng: a np.random.Generator. Returns (h, w, C) and (h, w).
    """
    h, w, H, W = _crop_sizes(image, mask, size)
    top = int(rng.integers(0, H - h + 1))
    left = int(rng.integers(0, W - w + 1))
    return image[top:top + h, left:left + w], mask[top:top + h, left:left + w]


def center_crop(image, mask, size):
    """The central window of ``image`` (H, W, C) and ``mask`` (H, W): the deterministic crop for validation.

    size: int or (h, w). Returns (h, w, C) and (h, w); the same window every time (odd margins put the
    extra pixel at the bottom/right).
    """
    h, w, H, W = _crop_sizes(image, mask, size)
    top, left = (H - h) // 2, (W - w) // 2
    return image[top:top + h, left:left + w], mask[top:top + h, left:left + w]


def _source_coords(n_out: int, n_in: int) -> np.ndarray:
    """Pixel-centre aligned source coordinates (align_corners=False, like tf.image.resize / torch)."""
    return (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5


def resize_image(image, size):
    """Bilinear resize of ``image`` (H, W, C) or a batch (N, H, W, C) to ``size`` (int or (h, w)). float32 out."""
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim not in (3, 4):
        raise ValueError(f"resize_image expects (H, W, C) or (N, H, W, C), got shape {arr.shape}: add a channel axis "
                         "with image[..., None].")
    h, w = _pair_size(size)
    H, W = arr.shape[-3], arr.shape[-2]
    ys = np.clip(_source_coords(h, H), 0, H - 1)
    xs = np.clip(_source_coords(w, W), 0, W - 1)
    y0 = np.floor(ys).astype(np.int64)
    x0 = np.floor(xs).astype(np.int64)
    y1, x1 = np.minimum(y0 + 1, H - 1), np.minimum(x0 + 1, W - 1)
    wy = (ys - y0).astype(np.float32)[:, None, None]
    wx = (xs - x0).astype(np.float32)[None, :, None]
    top = arr[..., y0, :, :][..., :, x0, :] * (1 - wx) + arr[..., y0, :, :][..., :, x1, :] * wx
    bottom = arr[..., y1, :, :][..., :, x0, :] * (1 - wx) + arr[..., y1, :, :][..., :, x1, :] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)


def resize_mask(mask, size):
    """Nearest-neighbour resize of ``mask`` (H, W) or (N, H, W) to ``size``: never invents classes.

    Raises TypeError for float masks (interpolated floats are not class indices).
    """
    arr = np.asarray(mask)
    if arr.dtype.kind == "f":
        raise TypeError(
            f"resize_mask got a float mask (dtype {arr.dtype}): masks must be integer class indices; convert with "
            ".astype(np.int64) first (and never resize masks with bilinear interpolation: it invents classes)."
        )
    if arr.ndim not in (2, 3):
        raise ValueError(f"resize_mask expects (H, W) or (N, H, W), got shape {arr.shape}: drop a channel axis "
                         "with mask[..., 0].")
    h, w = _pair_size(size)
    H, W = arr.shape[-2], arr.shape[-1]
    ys = np.clip(np.floor((np.arange(h) + 0.5) * H / h).astype(np.int64), 0, H - 1)
    xs = np.clip(np.floor((np.arange(w) + 0.5) * W / w).astype(np.int64), 0, W - 1)
    return arr[..., ys, :][..., :, xs]


# =========================================================================== encodings and statistics
def _check_range(masks: np.ndarray, num_classes: int, ignore_index=None, where="") -> None:
    if masks.dtype.kind not in "biu":
        raise TypeError(f"{where}masks must be integer class indices, got dtype {masks.dtype}: use .astype(np.int64).")
    valid = masks if ignore_index is None else masks[masks != ignore_index]
    if valid.size and (valid.min() < 0 or valid.max() >= num_classes):
        raise ValueError(
            f"{where}mask values must be in 0..{num_classes - 1}, found {int(valid.min())}..{int(valid.max())}: "
            "map them to class indices (0/255 masks: (masks > 127)) or pass ignore_index for 'don't care' pixels."
        )


def one_hot(masks, num_classes: int):
    """Class indices (..., H, W) -> one-hot float32 (..., H, W, num_classes) (class axis last)."""
    arr = np.asarray(masks)
    _check_range(arr, num_classes, where="one_hot: ")
    return np.eye(num_classes, dtype=np.float32)[arr]


def class_frequencies(masks, num_classes: int, ignore_index: int | None = None):
    """Fraction of pixels per class, float64 (C,) summing to 1 (``ignore_index`` pixels left out)."""
    arr = np.asarray(masks)
    _check_range(arr, num_classes, ignore_index, where="class_frequencies: ")
    flat = arr.reshape(-1)
    if ignore_index is not None:
        flat = flat[flat != ignore_index]
    counts = np.bincount(flat.astype(np.int64), minlength=num_classes).astype(np.float64)
    total = counts.sum()
    if total == 0:
        raise ValueError("class_frequencies: every pixel is ignore_index, there is nothing to count.")
    return counts / total


def class_weights(masks, num_classes: int, method: str = "inverse_frequency", ignore_index: int | None = None):
    """Per-class loss weights, float32 (C,), for masks ``(N, H, W)`` (or one mask ``(H, W)``).

    "inverse_frequency": w_c = 1 / (K f_c), with f_c the fraction of all pixels that are class c and
    K the number of classes present, so the pixel-weighted mean weight is 1.

    "median_frequency" (Eigen & Fergus 2015): w_c = median(freq) / freq_c, where freq_c is the number of
    pixels of class c divided by the number of pixels *in the images where c is present*, and the median
    is taken over the classes present. A rare class that is large where it occurs (present in few images)
    gets a smaller weight than under inverse frequency; when every class occurs in every image, freq_c =
    f_c and the weights are inverse frequency times a constant.

    A class that never occurs gets weight 0 (it contributes no pixels anyway). ``ignore_index`` pixels
    are left out of every count.
    """
    if method not in ("inverse_frequency", "median_frequency"):
        raise ValueError(f"Unknown method {method!r}: use 'inverse_frequency' or 'median_frequency'.")
    freqs = class_frequencies(masks, num_classes, ignore_index)
    present = freqs > 0
    weights = np.zeros(num_classes, dtype=np.float64)
    if method == "inverse_frequency":
        weights[present] = 1.0 / (present.sum() * freqs[present])
        return weights.astype(np.float32)
    arr = np.asarray(masks)
    arr = arr[None] if arr.ndim == 2 else arr                                     # one mask = a batch of one
    arr = arr.reshape(len(arr), -1).astype(np.int64)                              # (N, H * W)
    valid = np.ones(arr.shape, bool) if ignore_index is None else arr != ignore_index
    counts = np.stack([np.bincount(row[ok], minlength=num_classes)[:num_classes] for row, ok in zip(arr, valid)])
    pixels = valid.sum(axis=1).astype(np.float64)                                 # (N,) valid pixels per image
    class_pixels = counts.sum(axis=0).astype(np.float64)                          # (C,)
    image_pixels = ((counts > 0) * pixels[:, None]).sum(axis=0)                   # (C,) pixels of images with c
    freq = np.zeros(num_classes)
    freq[present] = class_pixels[present] / image_pixels[present]
    weights[present] = np.median(freq[present]) / freq[present]
    return weights.astype(np.float32)


# =========================================================================== augmentation
def _check_pair(image, mask):
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim != 3:
        raise ValueError(f"Expected one image (H, W, C), got shape {image.shape}: add a channel axis with image[..., None].")
    if mask.ndim != 2:
        raise ValueError(f"Expected one mask (H, W), got shape {mask.shape}: masks are class indices without a channel axis.")
    if image.shape[:2] != mask.shape:
        raise ValueError(f"image {image.shape[:2]} and mask {mask.shape} differ in size: pass a matching pair.")
    if mask.dtype.kind == "f":
        raise TypeError(f"mask has dtype {mask.dtype}: masks must be integer class indices; use .astype(np.int64).")
    return image, mask


def flip_rotate(image, mask, k: int = 0, flip: bool = False):
    """Flip left-right (if ``flip``), then rotate by ``k`` quarter turns counter-clockwise (np.rot90), both alike.

    image (H, W, C), mask (H, W) -> the transformed pair (contiguous copies).
    """
    if flip:
        image, mask = image[:, ::-1], mask[:, ::-1]
    if k % 4:
        image, mask = np.rot90(image, k, axes=(0, 1)), np.rot90(mask, k, axes=(0, 1))
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)


def elastic_deform(image, mask, rng, alpha: float = 10.0, sigma: float | None = None):
    """Smooth random elastic deformation as in the U-Net paper (Ronneberger et al. 2015, section 3.1).

    Random displacement vectors are drawn on a coarse grid (standard deviation ``alpha`` pixels; the paper:
    10) and interpolated bicubically to a per-pixel displacement field. ``sigma`` is the grid spacing in
    pixels, i.e. the length scale over which the deformation varies (None: a 3x3 grid over the image, as in
    the paper). The image is resampled bilinearly, the mask with nearest neighbour (it stays integer: no
    new classes appear). Borders are mirrored.

    image (H, W, C) float, mask (H, W) int -> same shapes and dtypes.
    """
    from scipy import ndimage

    image, mask = _check_pair(image, mask)
    H, W = mask.shape
    if sigma is None:
        gy = gx = 3
    else:
        if sigma <= 0:
            raise ValueError(f"sigma (grid spacing in pixels) must be positive, got {sigma}.")
        gy, gx = max(2, int(round(H / sigma)) + 1), max(2, int(round(W / sigma)) + 1)
    coarse = rng.normal(0.0, alpha, size=(2, gy, gx))
    dy = ndimage.zoom(coarse[0], (H / gy, W / gx), order=3, mode="nearest")[:H, :W]
    dx = ndimage.zoom(coarse[1], (H / gy, W / gx), order=3, mode="nearest")[:H, :W]
    yy, xx = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    coords = np.stack([yy + dy, xx + dx])
    out_image = np.empty_like(image, dtype=np.float32)
    for c in range(image.shape[-1]):
        out_image[..., c] = ndimage.map_coordinates(image[..., c].astype(np.float32), coords, order=1, mode="mirror")
    out_mask = ndimage.map_coordinates(mask, coords, order=0, mode="mirror", output=mask.dtype)
    return out_image, out_mask


def augment_pair(image, mask, rng, flip: bool = True, rotate90: bool = True, elastic: bool = False,
                 elastic_alpha: float = 10.0, elastic_sigma: float | None = None,
                 hflip: bool | None = None, vflip: bool | None = None):
    """One random geometric transform applied to both ``image`` (H, W, C) and ``mask`` (H, W).

    flip:     shorthand for both flips below (the default, kept for old code).
    hflip:    left-right (horizontal) flip with probability 1/2; None -> ``flip``.
    vflip:    up-down (vertical) flip with probability 1/2; None -> ``flip``. Turn it off for data with an
              "up": street scenes (sky on top), portraits, pets. ``hflip=True, vflip=False, rotate90=False``
              is the left-right-only augmentation.
    rotate90: a random number of quarter turns (only 0 or 2 for non-square images, so the shape is kept).
              A half turn is an up-down flip too: switch it off with ``vflip``.
    elastic:  :func:`elastic_deform` with ``elastic_alpha`` / ``elastic_sigma``.
    The options of a data set are ``DatasetInfo.augment_options()`` (course_utils.datasets).
    The mask gets exactly the same transform (nearest neighbour) and stays integer.
    Returns contiguous copies (image float32, mask with the mask's dtype).
    """
    image, mask = _check_pair(image, mask)
    hflip = flip if hflip is None else bool(hflip)
    vflip = flip if vflip is None else bool(vflip)
    if hflip or vflip:  # always two draws, so one seed gives the same stream whichever flips are on
        flip_lr, flip_ud = rng.random() < 0.5, rng.random() < 0.5
        if hflip and flip_lr:
            image, mask = image[:, ::-1], mask[:, ::-1]
        if vflip and flip_ud:
            image, mask = image[::-1], mask[::-1]
    if rotate90:
        square = mask.shape[0] == mask.shape[1]
        k = int(rng.integers(0, 4)) if square else 2 * int(rng.integers(0, 2))
        image, mask = np.rot90(image, k, axes=(0, 1)), np.rot90(mask, k, axes=(0, 1))
    if elastic:
        image, mask = elastic_deform(image, mask, rng, elastic_alpha, elastic_sigma)
    return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(mask)


# =========================================================================== per-sample randomness, shared by both pipelines
def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random generator for sample ``index`` in ``epoch``: the same numbers in the Keras and PyTorch pipelines."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(index)]))


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The order in which the ``n`` samples are visited in ``epoch`` (int64 (n,)); identical in both pipelines."""
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch)], spawn_key=(7,)))
    return rng.permutation(n).astype(np.int64)


#: What ``augment=True`` means in both pipelines (and :func:`prepare_sample`) without a ``DatasetInfo``:
#: left-right flips only. Up-down flips and quarter turns would put the sky under the road of a street scene;
#: ask for them explicitly (``augment={"flip": True, "rotate90": True}``, or ``info=datasets.SHAPES``) for data
#: without an "up" (microscopy, the synthetic shapes).
DEFAULT_AUGMENT = {"hflip": True, "vflip": False, "rotate90": False}


def prepare_sample(image, mask, seed: int = 0, epoch: int = 0, index: int = 0, augment=False, crop_size=None,
                   training: bool = True):
    """What both input pipelines do to one sample: crop, then augmentation, with ``sample_rng``.

    image (H, W, C), mask (H, W) -> image float32 (h, w, C), mask int64 (h, w).
    augment:   False; True: left-right flips only (:data:`DEFAULT_AUGMENT`: safe for data with an "up", such
               as street scenes); a dict of :func:`augment_pair` keyword arguments, e.g.
               ``{"flip": True, "rotate90": True}`` for every flip and quarter turn; or a
               ``datasets.DatasetInfo`` (its ``augment_options()``, e.g. ``datasets.SHAPES``: all flips and turns).
    crop_size: None (whole image) or int / (h, w).
    training:  True -> a random crop (a new one every epoch); False -> the centre crop, the same on every
               pass (validation must score the same pixels each epoch).
    """
    image = np.asarray(image, dtype=np.float32)
    mask = np.asarray(mask)
    if not augment and crop_size is None:
        return image, mask.astype(np.int64)
    rng = sample_rng(seed, epoch, index)
    if crop_size is not None:
        if training:
            image, mask = random_crop(image, mask, crop_size, rng)
        else:
            image, mask = center_crop(image, mask, crop_size)
    if augment:
        if hasattr(augment, "augment_options"):
            options = augment.augment_options()
        else:
            options = augment if isinstance(augment, Mapping) else dict(DEFAULT_AUGMENT)
        image, mask = augment_pair(image, mask, rng, **options)
    return np.ascontiguousarray(image, dtype=np.float32), np.ascontiguousarray(mask, dtype=np.int64)


def _pipeline_options(augment, shuffle: bool, training, info):
    """Shared by both pipelines: resolve ``augment`` (True + a DatasetInfo -> its options) and ``training``."""
    if training is None:
        training = bool(shuffle)
    elif not training and augment:
        raise ValueError(
            "training=False (validation) with augment: validation batches must be the same on every pass; "
            "pass augment=False for the validation pipeline."
        )
    if info is not None and augment is True:
        augment = info
    return augment, bool(training)


def check_image_batch(images) -> np.ndarray:
    """Return ``images`` as a NumPy (N, H, W, C) float array in [0, 1], or raise an error that names the fix.

    Used by both frameworks' ``predict`` and by :func:`course_utils.tiling.predict_tiled` so that they
    refuse the same inputs (uint8 0..255, NaN, NCHW, ...) with the same messages (:func:`check_images`).
    """
    return check_images(images, "images")


def _ensure_dataset_arrays(images, masks):
    """Check (N, H, W, C) float images and (N, H, W) integer masks for the pipelines."""
    images, masks = np.asarray(images), np.asarray(masks)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {images.shape}"
                         + (": add a channel axis with images[..., None]." if images.ndim == 3 else "."))
    if masks.ndim != 3:
        hint = "."
        if masks.ndim == 4 and masks.shape[-1] == 1:
            hint = ": drop the channel axis with masks[..., 0]."
        elif masks.ndim == 4 and masks.shape[1] == 1:
            hint = ": drop the channel axis with masks[:, 0]."
        elif masks.ndim == 4 and masks.shape[-1] in (3, 4) and masks.size and np.nanmax(masks) > 1:
            hint = (f": these look like colour-coded RGB masks (values up to {np.nanmax(masks):g}), not one-hot ones; "
                    "map each colour to its class index with data.rgb_to_index(masks, {(r, g, b): class_index, ...}) "
                    "(or load the folder with load_folder(..., mask_mapping=...)).")
        elif masks.ndim == 4:
            axis = -1 if masks.shape[:3] == images.shape[:3] else 1 if masks.shape[2:] == images.shape[1:3] else -1
            hint = (f": these look like one-hot (or per-class) masks; take the argmax over the class axis, "
                    f"masks.argmax(axis={axis}), to get class indices (N, H, W).")
        raise ValueError(f"masks must be (N, H, W) class indices, got shape {masks.shape}{hint}")
    if images.dtype.kind == "f" and images.shape[1] in _CHANNEL_COUNTS and images.shape[-1] not in _CHANNEL_COUNTS:
        check_images(images, "images")  # says: looks channels-first, use images.transpose(0, 2, 3, 1)
    if len(images) != len(masks) or images.shape[1:3] != masks.shape[1:3]:
        raise ValueError(f"images {images.shape} and masks {masks.shape} do not match: need the same N, H and W.")
    if masks.dtype.kind not in "biu":
        raise TypeError(f"masks have dtype {masks.dtype}: masks must be integer class indices; use .astype(np.int64).")
    check_images(images, "images")  # float, finite, in [0, 1], channels last (the course's one rule)
    return images, masks


def tile_scenes(images, masks, per_side: int):
    """Put ``per_side**2`` consecutive scenes side by side in one image: smaller objects at the same image size.

    images (N, s, s, C), masks (N, s, s) -> images (N // k**2, k*s, k*s, C), masks (N // k**2, k*s, k*s) with
    ``k = per_side``; scenes fill each grid row by row; leftover scenes (N not a multiple of k**2) are dropped.
    ``per_side=1`` returns the inputs unchanged. Lecture 07 tiles 32-px ``make_shapes`` scenes 2x2 into 64-px
    images, so the shapes are about as large as one cell of an output-stride-8 grid.
    """
    images, masks = np.asarray(images), np.asarray(masks)
    if isinstance(per_side, bool) or not isinstance(per_side, (int, np.integer)) or per_side < 1:
        raise ValueError(f"per_side must be a positive integer, got {per_side!r}.")
    if images.ndim != 4 or masks.ndim != 3 or images.shape[:3] != masks.shape:
        raise ValueError(f"tile_scenes expects images (N, H, W, C) and masks (N, H, W) of the same N, H, W, "
                         f"got {images.shape} and {masks.shape}.")
    if per_side == 1:
        return images, masks
    k, s = int(per_side), images.shape[1]
    n = len(images) // (k * k)
    if n == 0:
        raise ValueError(f"tile_scenes needs at least per_side**2 = {k * k} scenes, got {len(images)}.")
    im = images[: n * k * k].reshape(n, k, k, s, s, -1).transpose(0, 1, 3, 2, 4, 5).reshape(n, k * s, k * s, -1)
    ms = masks[: n * k * k].reshape(n, k, k, s, s).transpose(0, 1, 3, 2, 4).reshape(n, k * s, k * s)
    return np.ascontiguousarray(im), np.ascontiguousarray(ms)


# =========================================================================== input validators
# One definition of what each kind of array must look like, used by every public entry point (metrics,
# NumPy/Keras/PyTorch losses, viz, tiling, explorer, the folder loader, both frameworks' predict), so that
# the same mistake gets the same one-sentence error everywhere:
#
# * images        float, finite, in [0, 1]; (N, H, W, C) in NumPy/Keras, (N, C, H, W) in PyTorch;
# * masks         integer class indices in 0..num_classes-1, or ignore_index; (N, H, W);
# * logits        float, finite; class axis last in NumPy/Keras, second in PyTorch;
# * probabilities float, finite, in [0, 1], summing to 1 over the class axis (more than one class).
__all__ += [
    "check_images",
    "check_masks",
    "check_logits",
    "check_probabilities",
    "check_class_axis",
    "label_range_message",
    "check_image_batch",
]

_RANGE_SLACK = 1e-6  # float round-off allowed outside [0, 1]
_CHANNEL_COUNTS = (1, 2, 3, 4)  # what a channel axis of an image usually holds


def _numpy(x) -> np.ndarray:
    """A NumPy view of a NumPy array, list, PyTorch tensor or TensorFlow tensor."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        return x.numpy()
    if hasattr(x, "numpy") and not isinstance(x, np.ndarray):  # TensorFlow eager tensor
        return np.asarray(x.numpy())
    return np.asarray(x)


def _where(name: str) -> str:
    return f"{name} " if name else ""


def _check_finite(arr: np.ndarray, name: str, fix: str) -> None:
    if arr.size and not np.isfinite(arr).all():
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s): {fix}")


def label_range_message(name: str, low, high, num_classes: int) -> str:
    """The one sentence every loss, metric and figure gives for a label outside 0..num_classes-1."""
    return (f"{name} values must be in 0..{int(num_classes) - 1} (or ignore_index), found {low}..{high}: "
            "map labels to class indices or pass ignore_index.")


def check_images(images, name: str = "images", *, ndim: int = 4, layout: str = "NHWC") -> np.ndarray:
    """Return ``images`` as a NumPy array after checking they follow the course's convention, else raise.

    images: float in [0, 1], finite; ``ndim=4`` for a batch (``(N, H, W, C)`` with ``layout="NHWC"``,
            NumPy and Keras; ``(N, C, H, W)`` with ``layout="NCHW"``, PyTorch), ``ndim=3`` for one image
            (``(H, W, C)`` / ``(C, H, W)``). Tensors of either framework are accepted.
    Raises ValueError (wrong number of axes, axis order that looks swapped, NaN/inf, values outside
    [0, 1]) or TypeError (integer/bool images, e.g. uint8 0..255), each naming the fix.
    """
    arr = _numpy(images)
    if layout not in ("NHWC", "NCHW"):
        raise ValueError(f"layout must be 'NHWC' or 'NCHW', got {layout!r}.")
    channels_last = layout == "NHWC"
    shape_text = ("(N, H, W, C)" if channels_last else "(N, C, H, W)") if ndim == 4 else \
        ("(H, W, C)" if channels_last else "(C, H, W)")
    if arr.ndim != ndim:
        if ndim == 4 and arr.ndim == 3:
            hint = ("for one image pass images[None]; for grey images add a channel axis with "
                    + ("images[..., None]." if channels_last else "images[:, None]."))
        elif ndim == 3 and arr.ndim == 2:
            hint = "add a channel axis: " + ("image[..., None]." if channels_last else "image[None].")
        elif ndim == 3 and arr.ndim == 4:
            hint = "pass one image, e.g. images[0]."
        else:
            hint = f"pass an array of shape {shape_text}."
        raise ValueError(f"{name} must be {shape_text}, got shape {arr.shape}: {hint}")
    last = arr.shape[-1]
    channel_first_axis = arr.ndim - 3  # where the channel axis is in (N, C, H, W) / (C, H, W)
    if channels_last and arr.shape[channel_first_axis] in _CHANNEL_COUNTS and last not in _CHANNEL_COUNTS:
        order = "(0, 2, 3, 1)" if ndim == 4 else "(1, 2, 0)"
        raise ValueError(f"{name} has shape {arr.shape}, which looks channels-first; NumPy and Keras take "
                         f"{shape_text}: use {name}.transpose{order}.")
    if not channels_last and last in _CHANNEL_COUNTS and arr.shape[channel_first_axis] not in _CHANNEL_COUNTS:
        order = "(0, 3, 1, 2)" if ndim == 4 else "(2, 0, 1)"
        raise ValueError(f"{name} has shape {arr.shape}, which looks channels-last; PyTorch takes "
                         f"{shape_text}: use {name}.permute{order}.")
    if arr.dtype.kind in "biu":
        example = ""
        if arr.size:
            example = f" (values {arr.min()}..{arr.max()})"
        raise TypeError(f"{name} must be float in [0, 1], got dtype {arr.dtype}{example}: "
                        f"convert with {name}.astype('float32') / 255.")
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must be float in [0, 1], got dtype {arr.dtype}: convert with "
                        f"{name}.astype('float32') (and divide by 255 if the values are 0..255).")
    _check_finite(arr, name, "check how the images were read or normalised (a division by zero?).")
    if arr.size:
        low, high = float(arr.min()), float(arr.max())
        if low < -_RANGE_SLACK or high > 1 + _RANGE_SLACK:
            fix = ("divide by 255." if high > 1.5 and low >= 0 else
                   "undo the normalisation (the course's models take raw [0, 1] images).")
            raise ValueError(f"{name} must be in [0, 1], found values {low:.4g}..{high:.4g}: {fix}")
    return arr


def check_masks(masks, num_classes: int | None = None, ignore_index: int | None = None, name: str = "masks",
                *, ndim: int | None = 3) -> np.ndarray:
    """Return ``masks`` as int64 class indices after checking them, else raise a one-sentence error.

    masks: integer (or bool) class indices, ``(N, H, W)`` (``ndim=3``; ``ndim=2`` for one mask, None for any);
           values in ``0..num_classes-1`` or equal to ``ignore_index`` (not checked when num_classes is None).
    Raises TypeError for float masks (NaN, probabilities, logits) and ValueError for a wrong shape or a
    label out of range (:func:`label_range_message`).
    """
    arr = _numpy(masks)
    if ndim is not None and arr.ndim != ndim:
        expected = {3: "(N, H, W)", 2: "(H, W)"}.get(ndim, f"{ndim} axes")
        hint = ""
        if arr.ndim == ndim + 1 and arr.shape[-1] == 1:
            hint = f": drop the channel axis with {name}[..., 0]"
        elif arr.ndim == ndim + 1:
            hint = ": these look like per-class scores (one-hot or probabilities); take argmax over the class axis"
        elif arr.ndim == ndim - 1:
            hint = f": for one mask pass {name}[None]"
        raise ValueError(f"{name} must be {expected} class indices, got shape {arr.shape}{hint}.")
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr).all():
            raise TypeError(f"{name} must be integer class indices, got {arr.dtype} with NaN or infinite values: "
                            "check how the mask was computed, then use .astype(np.int64).")
        raise TypeError(f"{name} must be integer class indices, got dtype {arr.dtype}: use .astype(np.int64) "
                        "(take argmax over the class axis first if these are probabilities or logits).")
    arr = arr.astype(np.int64, copy=False)
    if num_classes is not None and arr.size:
        valid = arr if ignore_index is None else arr[arr != ignore_index]
        if valid.size and (valid.min() < 0 or valid.max() >= num_classes):
            raise ValueError(label_range_message(name, int(valid.min()), int(valid.max()), num_classes))
    return arr


def check_logits(logits, name: str = "logits", *, ndim: int | None = 4) -> np.ndarray:
    """Return ``logits`` as a float NumPy array after checking it is numeric, finite and has ``ndim`` axes."""
    arr = _numpy(logits)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} axes (a batch of per-class scores), got shape {arr.shape}: "
                         f"add the batch axis with {name}[None].")
    if arr.dtype.kind not in "fiu" or arr.dtype == bool:
        raise TypeError(f"{name} must be float scores, got dtype {arr.dtype}: pass the model's raw output.")
    _check_finite(arr, name, "the model diverged (lower the learning rate) or its input holds NaN.")
    return arr


def check_probabilities(probabilities, name: str = "probabilities", *, axis: int = -1, ndim: int | None = 4,
                        atol: float = 1e-3) -> np.ndarray:
    """Return ``probabilities`` after checking: float, finite, in [0, 1], summing to 1 over ``axis``.

    A single channel (sigmoid output) is only checked for [0, 1]. Logits instead of probabilities, NaN
    and a softmax over the wrong axis are refused with the fix.
    """
    arr = _numpy(probabilities)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be (N, H, W, K) softmax (or sigmoid) outputs, got shape {arr.shape}.")
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must be float softmax or sigmoid outputs, got dtype {arr.dtype}.")
    _check_finite(arr, name, "the model diverged (lower the learning rate) or its input holds NaN.")
    if arr.size:
        low, high = float(arr.min()), float(arr.max())
        if low < -_RANGE_SLACK or high > 1 + _RANGE_SLACK:
            raise ValueError(f"{name} must lie in [0, 1], found {low:.4g}..{high:.4g}: these look like logits; "
                             "apply softmax over the class axis (or sigmoid for one logit) first.")
        if arr.shape[axis] > 1:
            sums = arr.sum(axis=axis, dtype=np.float64)
            worst = float(np.abs(sums - 1).max())
            if worst > atol:
                raise ValueError(f"{name} must sum to 1 over the class axis (axis {axis}), but a pixel sums to "
                                 f"{float(sums.flat[np.abs(sums - 1).argmax()]):.4g}: apply softmax over the class "
                                 "axis (not another axis), or pass sigmoid outputs one class at a time.")
    return arr


def check_class_axis(scores_shape, target_shape, layout: str, name: str = "logits") -> None:
    """Raise a ValueError naming the fix when ``scores`` look like the other framework's axis order.

    scores_shape: (N, H, W, C) expected with ``layout="NHWC"``, (N, C, H, W) with ``"NCHW"``.
    target_shape: the (N, H, W) masks that go with them; a match with the *other* layout gives away
    a transposed array.
    """
    scores_shape, target_shape = tuple(scores_shape), tuple(target_shape)
    if len(scores_shape) != 4 or len(target_shape) != 3:
        return
    if layout == "NHWC" and scores_shape[:3] != target_shape and \
            (scores_shape[0],) + scores_shape[2:] == target_shape:
        raise ValueError(f"{name} have shape {scores_shape}, which is (N, C, H, W) for targets {target_shape}; "
                         f"NumPy and Keras take (N, H, W, C): use {name}.transpose(0, 2, 3, 1).")
    if layout == "NCHW" and (scores_shape[0],) + scores_shape[2:] != target_shape and \
            scores_shape[:3] == target_shape:
        raise ValueError(f"{name} have shape {scores_shape}, which is (N, H, W, C) for targets {target_shape}; "
                         f"PyTorch takes (N, C, H, W): use {name}.permute(0, 3, 1, 2).")
