"""Reading a folder of images and masks: the one home of file listing, image/mask decoding and mask mappings.

``course_utils.data.load_folder`` (loading) and ``course_utils.datasets.describe_folder`` (describing) both
build on these functions, so that a folder is read one way. This module imports nothing from the course, so
the imports run one way: ``folders`` and ``palettes`` <- ``data`` <- ``datasets`` (tests/test_import_graph.py).

* :func:`list_image_files` (``_list_files``): ``{stem: path}`` of the image files in a folder; only regular
  files (a FIFO named ``b.png`` is refused without being opened);
* :func:`unpaired_files`: stems without a partner;
* :func:`scan_masks`: every mask read once, stacked in its stored dtype, kept for the next ``load_folder``;
* ``_read_image`` / ``_read_mask``: one file -> float32 image in [0, 1] / the mask as stored;
* ``_check_mapping`` / ``_apply_mapping``: ``mask_mapping`` checked and applied (values or RGB colours).

Shapes: images (H, W, C) float32 in [0, 1]; masks (H, W) or (H, W, 3) as stored.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Mapping

import numpy as np

__all__ = ["IMAGE_SUFFIXES", "list_image_files", "unpaired_files", "scan_masks"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")


class _open_image:
    """``with _open_image(path) as img``: a loaded PIL image, or a ValueError naming the file and the fix."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.img = None

    def __enter__(self):
        from PIL import Image

        try:
            self.img = Image.open(self.path)
            self.img.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            if self.img is not None:
                self.img.close()
            raise ValueError(f"{self.path} is not a readable image ({type(error).__name__}: {error}): "
                             "re-export it, or move it out of the folder.") from error
        return self.img

    def __exit__(self, *exc):
        self.img.close()
        return False


def _read_image(path: Path, grayscale: bool) -> np.ndarray:
    """One image file -> float32 (H, W, 1) if grayscale else (H, W, 3), in [0, 1]."""
    with _open_image(path) as img:
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(img).astype(np.float32)
            arr = arr / (65535.0 if arr.max() > 255 else 255.0)
            arr = arr[..., None] if grayscale else np.repeat(arr[..., None], 3, axis=-1)
            return arr.astype(np.float32)
        if img.mode == "F":
            arr = np.asarray(img, dtype=np.float32)
            if not np.isfinite(arr).all() or arr.min() < 0 or arr.max() > 1:
                raise ValueError(f"{path}: floating-point image with NaN or values outside [0, 1]; "
                                 "rescale it to [0, 1] and save it again.")
            return arr[..., None] if grayscale else np.repeat(arr[..., None], 3, axis=-1)
        img = img.convert("L" if grayscale else "RGB")
        arr = np.asarray(img, dtype=np.float32) / 255.0
    return arr[..., None] if grayscale else arr


def _read_mask(path: Path) -> np.ndarray:
    """One mask file as stored: (H, W) for grey/palette masks, (H, W, 3) for colour masks."""
    with _open_image(path) as img:
        if img.mode in ("RGBA", "LA"):
            img = img.convert("RGB" if img.mode == "RGBA" else "L")
        if img.mode == "1":
            img = img.convert("L")
        arr = np.asarray(img)
    if arr.ndim == 3 and np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
        arr = arr[..., 0]  # a grey mask saved as RGB
    return arr


def _list_files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: pass the folder that holds the image/mask files.")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        try:
            mode = os.stat(path).st_mode  # follows a link; never opens the file (a FIFO would block on open)
        except OSError as error:
            raise ValueError(f"{path} cannot be read ({error.strerror}): fix or remove the file "
                             "(a link that points nowhere?).") from None
        if not stat.S_ISREG(mode):
            kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else
                    "a socket" if stat.S_ISSOCK(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "not a regular file")
            raise ValueError(f"{path} is {kind}, not an image file: move it out of {folder} (only regular image "
                             "files are read).")
        if path.stem in files:
            raise ValueError(
                f"{folder} holds two files with the stem {path.stem!r} ({files[path.stem].name} and {path.name}): "
                "keep one, images and masks are paired by file name without extension."
            )
        files[path.stem] = path
    if not files:
        raise ValueError(f"No image files ({', '.join(IMAGE_SUFFIXES)}) found in {folder}.")
    return files


def _natural_key(text: str):
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", text)]


def unpaired_files(image_files: Mapping, mask_files: Mapping):
    """``(images without a mask, masks without an image)``: sorted stems of two ``{stem: path}`` listings."""
    only_images = sorted(set(image_files) - set(mask_files), key=_natural_key)
    only_masks = sorted(set(mask_files) - set(image_files), key=_natural_key)
    return only_images, only_masks


def _unpaired_text(only_images, only_masks, images_dir, masks_dir) -> str:
    parts = []
    if only_images:
        parts.append(f"{len(only_images)} image(s) without a mask in {masks_dir}: {', '.join(only_images[:5])}"
                     + (" ..." if len(only_images) > 5 else ""))
    if only_masks:
        parts.append(f"{len(only_masks)} mask(s) without an image in {images_dir}: {', '.join(only_masks[:5])}"
                     + (" ..." if len(only_masks) > 5 else ""))
    return "; ".join(parts)


# One scan of a mask folder, shared by datasets.describe_folder and load_folder: describe_folder reads every
# mask once and leaves the stack here (in the stored dtype: 1 byte per pixel for 8-bit PNGs, 3 for colour
# masks); load_folder on the same, unchanged files takes it (and frees it) instead of reading them again.
_SCANNED: dict = {}


def _signature(paths) -> tuple:
    out = []
    for path in paths:
        info = os.stat(path)
        out.append((str(Path(path).resolve()), info.st_size, info.st_mtime_ns))
    return tuple(out)


def scan_masks(paths, keep: bool = True) -> np.ndarray:
    """Read the mask files ``paths`` once -> their stored values stacked, (N, H, W) or (N, H, W, 3).

    The dtype is the stored one (uint8 for 8-bit PNGs, uint16 for 16-bit): nothing is widened here.
    keep: leave the stack for the next ``load_folder`` of the same, unchanged files (one folder is kept).
    Raises ValueError when the masks differ in size or in kind (grey / colour).
    """
    paths = [Path(p) for p in paths]
    first = _read_mask(paths[0])
    stack = np.empty((len(paths),) + first.shape, dtype=first.dtype)
    stack[0] = first
    for i, path in enumerate(paths[1:], 1):
        mask = _read_mask(path)
        if mask.shape != first.shape or mask.dtype != first.dtype:
            what = "size" if mask.shape[:2] != first.shape[:2] else "format"
            raise ValueError(f"{path.name} ({mask.shape[1]}x{mask.shape[0]}, {mask.dtype}"
                             f"{', colour' if mask.ndim == 3 else ''}) differs in {what} from {paths[0].name} "
                             f"({first.shape[1]}x{first.shape[0]}, {first.dtype}{', colour' if first.ndim == 3 else ''}): "
                             "save all masks at one size and in one format (resize masks with nearest neighbour).")
        stack[i] = mask
    _SCANNED.clear()
    if keep:
        _SCANNED["entry"] = (_signature(paths), stack)
    return stack


def _take_scanned(masks_dir: Path, paths) -> np.ndarray | None:
    """The stack :func:`scan_masks` kept for exactly these files (unchanged since), or None; frees it."""
    entry = _SCANNED.pop("entry", None)
    if entry is None:
        return None
    signature, stack = entry
    try:
        if signature == _signature(paths):
            return stack
    except OSError:
        pass
    return None


def _check_mapping(mapping, where: str) -> dict:
    """``mask_mapping`` as a dict ``{int or (r, g, b): int}``, or a one-sentence error naming the fix."""
    if not isinstance(mapping, Mapping):
        example = ""
        if isinstance(mapping, (list, tuple)) and mapping:
            example = f" (for the values {list(mapping)[:4]} write e.g. {{{', '.join(f'{v!r}: {i}' for i, v in enumerate(list(mapping)[:4]))}}})"
        raise TypeError(f"{where}: mask_mapping must be a dict from stored mask value (or (r, g, b) colour) to "
                        f"class index, got a {type(mapping).__name__} {mapping!r:.60}{example}.")
    out = {}
    for key, value in mapping.items():
        if isinstance(key, (tuple, list, np.ndarray)):
            if len(key) != 3:
                raise ValueError(f"{where}: the colour {tuple(key)!r} in mask_mapping has {len(key)} value(s): a colour "
                                 "key must be (r, g, b), three integers 0..255.")
            try:
                key = tuple(int(v) for v in key)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: the colour {key!r} in mask_mapping must be three integers 0..255.") from None
        elif isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            key = int(key)
        else:
            raise ValueError(f"{where}: mask_mapping key {key!r} must be a stored mask value (an integer) or an "
                             "(r, g, b) colour.")
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{where}: mask_mapping[{key!r}] must be one class index (an integer), got {value!r}.")
        out[key] = int(value)
    if not out:
        raise ValueError(f"{where}: mask_mapping is empty: map every stored value to a class index.")
    return out


def _apply_mapping(raw: np.ndarray, mapping: Mapping, masks_dir) -> np.ndarray:
    if raw.ndim == 4:  # colour masks: keys are RGB tuples
        flat = raw.reshape(-1, raw.shape[-1]).astype(np.int64)
        codes = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
        lookup = {}
        for key, value in mapping.items():
            if not isinstance(key, (tuple, list)) or len(key) != 3:
                raise ValueError(
                    f"The masks in {masks_dir} are colour images, so mask_mapping keys must be (r, g, b) tuples, "
                    f"got {key!r}."
                )
            lookup[(int(key[0]) << 16) | (int(key[1]) << 8) | int(key[2])] = int(value)
        unique = np.unique(codes)
        unmapped = [u for u in unique.tolist() if u not in lookup]
        if unmapped:
            shown = [((u >> 16) & 255, (u >> 8) & 255, u & 255) for u in unmapped[:5]]
            raise ValueError(
                f"The masks in {masks_dir} contain colours not in mask_mapping: {shown}: add them to mask_mapping."
            )
        table_keys = np.array(sorted(lookup), dtype=np.int64)
        table_values = np.array([lookup[k] for k in sorted(lookup)], dtype=np.int64)
        return table_values[np.searchsorted(table_keys, codes)].reshape(raw.shape[:-1])
    unique = np.unique(raw)
    unmapped = [v for v in unique.tolist() if v not in mapping]
    if unmapped:
        raise ValueError(
            f"The masks in {masks_dir} contain values not in mask_mapping: {unmapped[:8]}"
            + (" (grey levels between 0 and 255: lossy JPEG masks? save masks as PNG)" if len(unmapped) > 2 else "")
            + ": add them to mask_mapping."
        )
    out = np.zeros(raw.shape, dtype=np.int64)
    for key, value in mapping.items():
        out[raw == key] = int(value)
    return out


list_image_files = _list_files
