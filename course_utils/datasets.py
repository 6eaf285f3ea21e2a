"""A data set's description in one place: class names, colours, ignore label, which flips make sense.

:class:`DatasetInfo` is what the loader (``data.load_folder(info=...)``), both input pipelines
(``make_loader`` / ``make_dataset(info=...)``), the report (``metrics.segmentation_report(info=...)``) and
the figures (``viz.show_samples(info=...)`` and friends) take, so that a data set's facts are written once:

>>> from course_utils import datasets
>>> datasets.SHAPES.class_names
('background', 'disc', 'square', 'triangle')

Defaults exist for the course's data sets (:data:`SHAPES`, :data:`MEMBRANES`, :data:`PETS`); for your own
folder :func:`describe_folder` builds one from what is in the masks (class-index PNGs, 0/255 binary masks,
or RGB colour-coded masks with a label-map file) and says what it found. :func:`make_example_folder`
writes small example folders in each layout (lecture 10 and the tests use them).

Shapes: images (N, H, W, C) float32 in [0, 1], masks (N, H, W) int64 class indices, as everywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data as _data
from . import folders as _folders
from .palettes import VOID_NAMES, palette_mapping, read_palette, write_palette  # noqa: F401  (their home: palettes)

__all__ = [
    "DatasetInfo",
    "SHAPES",
    "MEMBRANES",
    "PETS",
    "STREET",
    "LAYOUTS",
    "read_palette",
    "write_palette",
    "palette_mapping",
    "detect_layout",
    "describe_folder",
    "convert_masks",
    "make_example_folder",
]



@dataclass(frozen=True)
class DatasetInfo:
    """What the course's functions need to know about a data set.

    name:         for titles and messages.
    class_names:  one name per class index 0..K-1 (K = ``num_classes``).
    colors:       one RGB colour per class (floats in [0, 1] or 0..255), or None for the course palette.
    ignore_index: the void / "don't care" label (e.g. 255), left out of losses and scores; None if none.
    background:   the class drawn dark and left uncoloured in overlays (usually 0), or None when no class is
                  background (street scenes: class 0 may be sky).
    hflip, vflip, rotate90, elastic: which augmentations fit the data (see ``data.augment_pair``). Data with
                  an "up" (street scenes, pets, faces) must not be flipped up-down or turned.
    mask_mapping: stored mask value (or RGB tuple) -> class index, for masks that are not class indices
                  (0/255 masks, colour-coded masks); None when the masks already hold class indices.
    why:          one sentence on why these augmentations (shown by ``str(info)``).
    """

    name: str
    class_names: tuple
    colors: tuple | None = None
    ignore_index: int | None = None
    background: int | None = 0
    hflip: bool = True
    vflip: bool = True
    rotate90: bool = True
    elastic: bool = False
    mask_mapping: dict | None = dataclasses.field(default=None, hash=False, compare=False)
    why: str = ""

    def __post_init__(self):
        if isinstance(self.class_names, (str, bytes)):
            raise TypeError(f"DatasetInfo {self.name!r}: class_names must be a sequence of names, got the string "
                            f"{self.class_names!r} (which would make one class per letter): pass a tuple, e.g. "
                            f"class_names=({self.class_names!r},) or ('background', 'object').")
        names = tuple(str(n) for n in self.class_names)
        object.__setattr__(self, "class_names", names)
        if len(names) < 1:
            raise ValueError("DatasetInfo needs at least one class name.")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"DatasetInfo {self.name!r}: the class name(s) {twice} are given twice; every class "
                             "index needs its own name (merge the classes with mask_mapping if they are one class).")
        for flag in ("hflip", "vflip", "rotate90", "elastic"):
            value = getattr(self, flag)
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"DatasetInfo {self.name!r}: {flag} must be True or False, got {value!r} "
                                f"({type(value).__name__}): pass {flag}=False, not a string or a number.")
            object.__setattr__(self, flag, bool(value))
        if self.colors is not None:
            colors = tuple(tuple(float(v) for v in c[:3]) for c in self.colors)
            if len(colors) != len(names):
                raise ValueError(f"DatasetInfo {self.name!r}: {len(colors)} colours for {len(names)} classes: "
                                 "give one colour per class (or colors=None for the course palette).")
            if any(len(c) != 3 for c in colors):
                raise ValueError(f"DatasetInfo {self.name!r}: every colour needs three values (r, g, b), got "
                                 f"{[c for c in colors if len(c) != 3][:3]}.")
            values = np.array(colors, dtype=np.float64)
            if not np.isfinite(values).all() or values.min() < 0 or values.max() > 255:
                raise ValueError(f"DatasetInfo {self.name!r}: colours must be 0..255 (or all in 0..1), found "
                                 f"{values.min():g}..{values.max():g}.")
            # a 0..1 colour has a fraction somewhere (1.0, 0.5, 0.0); (1, 0, 0) among 0..255 colours is just dark
            in_unit = [c for c in colors if max(c) <= 1 and any(v % 1 for v in c)]
            above = [c for c in colors if max(c) > 1]
            if above and in_unit:
                raise ValueError(f"DatasetInfo {self.name!r}: the colours mix the scales 0..1 (e.g. {in_unit[0]}) "
                                 f"and 0..255 (e.g. {above[0]}); a 0..1 colour would be read as almost black: give "
                                 "all colours in one scale (e.g. multiply the 0..1 ones by 255).")
            object.__setattr__(self, "colors", colors)
        if self.ignore_index is not None and 0 <= self.ignore_index < len(names):
            raise ValueError(f"DatasetInfo {self.name!r}: ignore_index={self.ignore_index} is one of the classes "
                             f"0..{len(names) - 1}; use a value outside them, e.g. 255.")
        if self.background is not None and not 0 <= self.background < len(names):
            raise ValueError(f"DatasetInfo {self.name!r}: background={self.background} is not a class index.")

    @property
    def num_classes(self) -> int:
        """K, the number of classes (the ignore label is not a class)."""
        return len(self.class_names)

    def augment_options(self) -> dict:
        """Keyword arguments for ``data.augment_pair`` (and ``augment=`` of both pipelines)."""
        return {"hflip": self.hflip, "vflip": self.vflip, "rotate90": self.rotate90, "elastic": self.elastic}

    def palette(self):
        """The colours the figures use, float32 (K, 3) (``viz.palette_colors``)."""
        from . import viz

        return viz.palette_colors(self.num_classes, info=self)

    def replace(self, **changes) -> "DatasetInfo":
        """A copy with some fields changed, e.g. ``PETS.replace(elastic=True)``."""
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        flips = [n for n, on in (("left-right flips", self.hflip), ("up-down flips", self.vflip),
                                 ("quarter turns", self.rotate90), ("elastic", self.elastic)) if on]
        lines = [
            f"DatasetInfo {self.name!r}: {self.num_classes} classes",
            "  classes: " + ", ".join(f"{i} {n}" for i, n in enumerate(self.class_names)),
            f"  ignore label: {self.ignore_index if self.ignore_index is not None else 'none'}; background class: "
            f"{self.class_names[self.background] if self.background is not None else 'none'}",
            "  augmentation: " + (", ".join(flips) if flips else "none") + (f" ({self.why})" if self.why else ""),
        ]
        if self.mask_mapping is not None:
            shown = list(self.mask_mapping.items())
            lines.append(f"  mask mapping: {dict(shown[:6])}" + (" ..." if len(shown) > 6 else ""))
        return "\n".join(lines)


SHAPES = DatasetInfo(
    "synthetic shapes", ("background", "disc", "square", "triangle"),
    why="shapes have no up or down: every flip and turn gives another valid scene",
)
MEMBRANES = DatasetInfo(
    "ISBI 2012 membranes", ("cell", "membrane"), elastic=True,
    why="EM slices have no orientation; elastic deformation as in the U-Net paper",
)
PETS = DatasetInfo(
    "Oxford-IIIT Pet trimaps", ("background", "pet", "border"), vflip=False, rotate90=False,
    why="photos have an up: pets stand on their feet, so left-right flips only",
)
#: The generated street scenes of :func:`make_example_folder` (layouts "index" and "rgb").
STREET = DatasetInfo(
    "generated street scenes",
    ("sky", "building", "road", "sidewalk", "vegetation", "car", "person"),
    colors=((70, 130, 180), (70, 70, 70), (128, 64, 128), (244, 35, 232), (107, 142, 35), (0, 0, 142),
            (220, 20, 60)),  # the Cityscapes colours of these classes
    ignore_index=255, background=None, vflip=False, rotate90=False,
    why="sky is on top and the road at the bottom: an upside-down street never occurs, so left-right flips only",
)
_BINARY = DatasetInfo("generated cells (0/255 masks)", ("background", "cell"), mask_mapping={0: 0, 255: 1},
                      why="cells under a microscope have no orientation")

LAYOUTS = ("index", "binary", "rgb")


# =========================================================================== looking at a folder
def _mask_files(masks_dir: Path):
    files = _folders.list_image_files(masks_dir)
    return [files[k] for k in sorted(files, key=_folders._natural_key)]


def detect_layout(masks_dir, max_files: int = 20) -> str:
    """"index" (class-index PNGs), "binary" (0/255 black-and-white) or "rgb" (colour-coded), from the files."""
    values, colour = set(), False
    for path in _mask_files(Path(masks_dir))[:max_files]:
        mask = _folders._read_mask(path)
        if mask.ndim == 3:
            colour = True
            break
        values.update(np.unique(mask).tolist())
    if colour:
        return "rgb"
    if values <= {0, 255} and 255 in values:
        return "binary"
    return "index"


#: Mask values that data sets conventionally use for void / "don't care" (8-bit and 16-bit maxima).
CONVENTIONAL_VOID = (255, 65535)


def _layout_of(raw: np.ndarray) -> str:
    if raw.ndim == 4:
        return "rgb"
    values = set(np.unique(raw).tolist())
    return "binary" if values <= {0, 255} and 255 in values else "index"


def _suspicious_top_value(raw: np.ndarray, values) -> str | None:
    """Why the largest value of index masks may be a void label rather than a class (None: no reason seen)."""
    values = [int(v) for v in values]
    if len(values) < 3:
        return None
    top = values[-1]
    if top in CONVENTIONAL_VOID:
        return f"{top} is a value data sets conventionally use for void / \"don't care\""
    n = len(raw)
    counts = np.zeros(top + 1, dtype=np.int64)
    present = np.zeros(top + 1, dtype=np.int64)
    for mask in raw:
        c = np.bincount(mask.reshape(-1).astype(np.int64, copy=False), minlength=top + 1)[:top + 1]
        counts += c
        present += c > 0
    shares = counts / max(counts.sum(), 1)
    others = [shares[v] for v in values[:-1]]
    if n >= 2 and present[top] >= 0.5 * n and shares[top] < 0.5 * float(np.median(others)):
        return (f"{top}, the largest value, labels few pixels ({shares[top]:.1%}, against a median of "
                f"{float(np.median(others)):.1%} for the other values) in many masks ({present[top]} of {n}), as a "
                "void label just above the classes does (CamVid's void is 11, next to the classes 0..10)")
    return None


def describe_folder(images_dir, masks_dir, name: str | None = None, class_names=None, palette_file=None,
                    ignore_index: int | None = None, hflip: bool = True, vflip: bool = True, rotate90: bool = True,
                    elastic: bool = False, verbose: bool = True):
    """Look at a folder of masks and build its :class:`DatasetInfo`; returns ``(info, report)``.

    The layout is detected from the masks:

    * "index": the masks hold class indices. A value far beyond the others (e.g. 255 next to 0..10)
      becomes the ignore label, and the report says so (pass ``ignore_index`` to choose it yourself). A value
      that may be void but could be a class (the conventional 255 or 65535 among many values, or a value just
      above the classes that labels few pixels in many masks, like CamVid's void 11 next to 0..10) is never
      made a class silently: without ``class_names`` or ``ignore_index`` a ValueError asks you to name them;
    * "binary": 0/255 masks -> ``mask_mapping={0: 0, 255: 1}``, classes "background", "foreground";
    * "rgb": colour-coded masks -> needs ``palette_file`` (a label-map file, :func:`read_palette`; a
      ``labelmap.txt`` / ``palette.json`` next to the two folders is found by itself); void colours -> 255.

    Masks that are not class indices raise a ValueError that says how to convert them: 16-bit grey levels
    such as 0/3000/5000 (map each value to an index), black/white masks saved as JPEG (the grey levels found;
    save masks as PNG), values outside ``class_names``.

    ``report`` is the ``data.inspect_masks`` report of the class-index masks (classes present, class
    frequencies, the void label, problems); images without a mask and masks without an image are listed in
    ``report.problems`` (``load_folder`` refuses them). With ``verbose`` both are printed. Pass the
    augmentation flags that fit your data (see :class:`DatasetInfo`); they are not guessed from the masks.

    Every mask is read once (images are not read). Memory: the masks as stored (N*H*W bytes for 8-bit PNGs,
    3x for colour masks) are held until the next ``describe_folder`` or ``data.load_folder`` call; a
    ``load_folder`` of the same, unchanged files takes them instead of reading them again; the report counts pixels in slices (no int64 copy of
    index masks; colour masks are converted to int64 class indices, N*H*W*8 bytes, while being described).
    """
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    if isinstance(class_names, (str, bytes)):
        raise TypeError(f"class_names must be a sequence of names, got the string {class_names!r}: pass a tuple, "
                        "e.g. class_names=('background', 'road').")
    image_files, mask_files = _folders.list_image_files(images_dir), _folders.list_image_files(masks_dir)
    only_images, only_masks = _folders.unpaired_files(image_files, mask_files)
    paths = [mask_files[k] for k in sorted(mask_files, key=_folders._natural_key)]
    raw = _folders.scan_masks(paths)
    layout = _layout_of(raw)
    jpeg = [p.name for p in paths if p.suffix.lower() in (".jpg", ".jpeg")]
    mapping, colours = None, None
    if layout == "rgb":
        if palette_file is None:
            for parent in dict.fromkeys([masks_dir.parent, images_dir.parent]):
                for candidate in ("labelmap.txt", "palette.json", "palette.txt", "labels.txt"):
                    if (parent / candidate).is_file():
                        palette_file = parent / candidate
                        break
                if palette_file is not None:
                    break
        if palette_file is None:
            raise ValueError(
                f"The masks in {masks_dir} are colour-coded (RGB): pass palette_file=... (a label-map file with "
                "'name:r,g,b::' lines, as CVAT exports it, or a JSON {name: [r, g, b]}) so that colours become classes."
            )
        names, colours, void = read_palette(palette_file)
        ignore_index = 255 if ignore_index is None and void else ignore_index
        mapping = palette_mapping((names, colours, void), ignore_index if ignore_index is not None else 255)
        class_names = names if class_names is None else class_names
    elif layout == "binary":
        mapping = {0: 0, 255: 1}
        class_names = ("background", "foreground") if class_names is None else class_names
    masks = raw if layout == "index" else _folders._apply_mapping(raw, mapping, masks_dir)
    report = _data.inspect_masks(masks, num_classes=len(class_names) if class_names is not None else None,
                             class_names=class_names, ignore_index=ignore_index)
    if jpeg and not any("JPEG" in p for p in report.problems):
        if raw.ndim == 3:
            levels = np.unique(raw).tolist()
            found = f"{len(levels)} grey levels: " + ", ".join(map(str, levels[:6])) + (" ..." if len(levels) > 6 else "")
        else:
            found = f"{len(np.unique(raw.reshape(-1, raw.shape[-1]), axis=0))} colours"
        report.problems.append(
            f"{len(jpeg)} mask file(s) are JPEG ({', '.join(jpeg[:3])}{' ...' if len(jpeg) > 3 else ''}): JPEG is "
            f"lossy and changes mask values at every edge (found {found}); save masks as PNG.")
    if layout == "index" and not report.problems:
        if ignore_index is None and report.void_candidate is not None:
            ignore_index = report.void_candidate
            report.notes.append(f"describe_folder chose ignore_index={ignore_index} (the void label); pass "
                                "ignore_index yourself to decide otherwise.")
        elif ignore_index is None and class_names is None:
            why = _suspicious_top_value(raw, report.values)
            if why is not None:
                top = int(report.values[-1])
                report.problems.append(
                    f"{why}. It may be a void label, not class {top}: name it: pass ignore_index={top} (then the "
                    f"classes are 0..{top - 1}), or class_names=[...] with {top + 1} names if it is a real class.")
    if report.problems:
        if verbose:
            print(f"layout: {layout} ({len(paths)} masks in {masks_dir.name}/)")
            print(report)
        problems = " ".join(report.problems)
        if problems[:1].isupper() and problems[1:2].islower():  # "The masks hold ..." continues the sentence
            problems = problems[0].lower() + problems[1:]
        raise ValueError(f"describe_folder: the masks in {masks_dir} cannot be described as class indices yet: "
                         + problems)
    if class_names is None:
        valid = [v for v in report.values if v != ignore_index]
        class_names = tuple(f"class {i}" for i in range(int(max(valid)) + 1)) if valid else ("class 0",)
        report = _redo_report(masks, class_names, ignore_index, report.notes)
    if only_images or only_masks:
        report.problems.append(
            "Images and masks are paired by file name without extension, but "
            + _folders._unpaired_text(only_images, only_masks, images_dir, masks_dir)
            + ": add the missing files or move the unpaired ones out (load_folder refuses unpaired files).")
    n, height, width = raw.shape[:3]
    report.notes.append(
        f"memory: the {n} masks as stored take {raw.nbytes / 1e6:.1f} MB, held until the next describe_folder or "
        f"load_folder call (a load_folder of this folder takes them instead of reading the files again); load_folder "
        f"returns images float32 (about {n * height * width * 12 / 1e6:.1f}"
        f" MB for RGB) and masks int64 ({n * height * width * 8 / 1e6:.1f} MB).")
    info = DatasetInfo(
        name or images_dir.parent.name, tuple(class_names), colors=colours, ignore_index=ignore_index,
        background=0 if layout == "binary" else None, hflip=hflip, vflip=vflip, rotate90=rotate90,
        elastic=elastic, mask_mapping=mapping,
    )
    if verbose:
        print(f"layout: {layout} ({len(paths)} masks in {masks_dir.name}/)")
        print(info)
        print(report)
    return info, report


def _redo_report(masks, class_names, ignore_index, notes):
    report = _data.inspect_masks(masks, num_classes=len(class_names), class_names=class_names, ignore_index=ignore_index)
    report.notes[:0] = [n for n in notes if n not in report.notes]
    return report


def convert_masks(masks_dir, out_dir, mask_mapping, ignore_index: int = 255) -> Path:
    """Write class-index PNG copies of the masks in ``masks_dir`` (0/255 or colour-coded) into ``out_dir``.

    mask_mapping: a dict, stored value (or (r, g, b)) -> class index, e.g. ``{0: 0, 255: 1}`` or
    ``palette_mapping("labelmap.txt")``.
    All or nothing: the masks are converted into a staging folder next to ``out_dir`` (in its parent folder,
    named ``.<out_dir name>.converting-*``) and moved into ``out_dir`` only when every mask converted; when one
    fails (e.g. a colour that is not in the mapping), the staging folder is removed and ``out_dir`` is left as it
    was, so a rerun starts clean. ``out_dir`` is created if needed; it must differ from ``masks_dir``, and an
    existing file is never overwritten. Masks are saved as 8-bit PNG, so class indices must be < 256.
    Returns ``out_dir``.
    """
    from PIL import Image

    from .folders import _apply_mapping, _check_mapping, _read_mask
    from .safety import remove, replace

    mask_mapping = _check_mapping(mask_mapping, "convert_masks")
    masks_dir, out_dir = Path(masks_dir).resolve(), Path(out_dir).resolve()
    if out_dir == masks_dir:
        raise ValueError("convert_masks: out_dir must differ from masks_dir (the originals are never replaced).")
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(f"convert_masks: out_dir {out_dir} is a file, not a folder: pass a new folder "
                                 "name (nothing was written).")
    if any(int(v) > 255 or int(v) < 0 for v in mask_mapping.values()) or not 0 <= int(ignore_index) <= 255:
        raise ValueError("convert_masks writes 8-bit PNGs: class indices and ignore_index must be 0..255.")
    sources = _mask_files(masks_dir)
    names = [path.stem + ".png" for path in sources]
    existing = [name for name in names if (out_dir / name).exists() or (out_dir / name).is_symlink()]
    if existing:
        raise FileExistsError(f"{out_dir / existing[0]} exists already ({len(existing)} of the {len(names)} files): "
                              "convert into an empty folder (nothing is overwritten; nothing was written).")
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    import tempfile

    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.converting-", dir=parent))
    try:
        for path, name in zip(sources, names):
            raw = _read_mask(path)
            index = _apply_mapping(raw[None], mask_mapping, masks_dir)[0]
            Image.fromarray(index.astype(np.uint8)).save(staging / name)
        if not out_dir.exists():
            replace(staging, out_dir, inside=parent)  # one rename: the folder appears complete
        else:
            for name in names:
                if (out_dir / name).exists():
                    raise FileExistsError(f"{out_dir / name} appeared while converting: nothing is overwritten.")
            for name in names:
                replace(staging / name, out_dir / name, inside=parent)
    finally:
        remove(staging, inside=parent)
    return out_dir


# =========================================================================== example folders
def _street_scene(rng, size: int):
    """One generated street scene: image float (S, S, 3) and mask int (S, S) with STREET's classes + 255."""
    S = size
    yy, xx = np.mgrid[0:S, 0:S]
    mask = np.zeros((S, S), np.int64)  # sky
    horizon = int(rng.uniform(0.35, 0.5) * S)
    # buildings: rectangles standing on the horizon
    x = 0
    while x < S:
        w = int(rng.uniform(0.12, 0.3) * S)
        top = int(rng.uniform(0.05, 0.3) * S)
        if rng.random() < 0.8:
            mask[top:horizon, x:x + w] = 1
        x += w
    # vegetation: a few round trees in front of the buildings
    for _ in range(rng.integers(1, 4)):
        cx, cy, r = rng.uniform(0, S), rng.uniform(0.25, 0.45) * S, rng.uniform(0.05, 0.1) * S
        mask[((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) & (yy < horizon + 2)] = 4
    # ground: road in a trapezoid towards the viewer, sidewalks left and right
    below = yy >= horizon
    t = (yy - horizon) / max(S - horizon, 1)
    centre = S * rng.uniform(0.4, 0.6)
    half = S * (0.08 + 0.45 * t)
    road = below & (np.abs(xx - centre) <= half)
    mask[below] = 3
    mask[road] = 2
    # cars on the road, people on the sidewalk (larger when nearer)
    for _ in range(rng.integers(1, 4)):
        ty = rng.uniform(0.15, 0.8)
        y = horizon + ty * (S - horizon)
        scale = 0.06 + 0.12 * ty
        cx = centre + rng.uniform(-0.6, 0.6) * S * (0.08 + 0.45 * ty)
        h, w = scale * S * 0.6, scale * S * 1.2
        mask[(np.abs(yy - (y - h / 2)) <= h / 2) & (np.abs(xx - cx) <= w / 2)] = 5
    for _ in range(rng.integers(0, 3)):
        ty = rng.uniform(0.1, 0.8)
        y = horizon + ty * (S - horizon)
        side = rng.choice([-1, 1])
        cx = centre + side * (S * (0.08 + 0.45 * ty) + rng.uniform(2, 8))
        h, w = (0.1 + 0.2 * ty) * S, max(2.0, (0.025 + 0.03 * ty) * S)
        mask[(np.abs(yy - (y - h / 2)) <= h / 2) & (np.abs(xx - cx) <= w / 2)] = 6
    # void: the ego car's bonnet at the bottom edge and a frame of unlabelled pixels at one side
    mask[yy > S - 1 - int(0.06 * S) - 2 * np.sin(np.pi * xx / S)] = 255
    if rng.random() < 0.5:
        mask[:, : int(rng.uniform(0.02, 0.05) * S)] = 255
    # image: per-class colours, texture and noise; the sky gets a vertical gradient
    base = np.array([(0.55, 0.70, 0.90), (0.45, 0.42, 0.40), (0.35, 0.33, 0.36), (0.62, 0.55, 0.52),
                     (0.25, 0.50, 0.20), (0.75, 0.15, 0.12), (0.85, 0.70, 0.25)], np.float32)
    jitter = rng.uniform(-0.08, 0.08, size=base.shape).astype(np.float32)
    colours = np.clip(base + jitter, 0, 1)
    image = colours[np.where(mask == 255, 2, np.minimum(mask, 6))]
    image[mask == 255] = (0.12, 0.12, 0.14)  # bonnet / frame: dark
    image[mask == 0] += ((0.25 * (yy[mask == 0] / S)))[:, None].astype(np.float32)
    window = (mask == 1) & ((yy // 4 + xx // 5) % 3 == 0)
    image[window] *= 0.7
    image += rng.normal(0, 0.04, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 1).astype(np.float32), mask


def make_example_folder(path, layout: str = "index", n: int = 24, size: int = 64, seed: int = 0) -> Path:
    """Write a small example data set in one of the common mask layouts; returns ``path``.

    layout:
      "index":  street scenes, ``masks/*.png`` hold class indices 0..6 (:data:`STREET`) and 255 = void;
      "binary": cells on a textured background, ``masks/*.png`` are black/white 0/255;
      "rgb":    the street scenes with colour-coded masks (Cityscapes colours) and a ``labelmap.txt``
                (CVAT format; void = black).
    Writes ``path/images/scene_000.png``, ``path/masks/scene_000.png`` ... (and ``path/labelmap.txt``)
    and nothing outside ``path``; existing files of the same names are replaced, others are left alone.
    """
    from PIL import Image


    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}.")
    if n < 1 or size < 32:
        raise ValueError(f"make_example_folder needs n >= 1 and size >= 32, got n={n}, size={size}.")
    root = Path(path).resolve()
    images_dir, masks_dir = root / "images", root / "masks"
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    if layout == "binary":
        images, masks = _data.make_shapes(n, size=size, num_classes=2, seed=seed)
        masks = masks.astype(np.uint8) * 255
    else:
        pairs = [_street_scene(rng, size) for _ in range(n)]
        images = np.stack([p[0] for p in pairs])
        masks = np.stack([p[1] for p in pairs])
    colours = np.array(STREET.colors, np.uint8)
    for i in range(n):
        stem = f"scene_{i:03d}"
        Image.fromarray((images[i] * 255 + 0.5).astype(np.uint8)).save(images_dir / f"{stem}.png")
        if layout == "rgb":
            rgb = np.zeros(masks[i].shape + (3,), np.uint8)  # void stays black
            valid = masks[i] != 255
            rgb[valid] = colours[masks[i][valid]]
            Image.fromarray(rgb).save(masks_dir / f"{stem}.png")
        else:
            Image.fromarray(masks[i].astype(np.uint8)).save(masks_dir / f"{stem}.png")
    if layout == "rgb":
        write_palette(root / "labelmap.txt", STREET.class_names, colours.tolist(), void_colors=((0, 0, 0),))
    return root
