"""Label-map (palette) files: which colour is which class, in one place.

``labelmap.txt`` as CVAT and many annotation tools export it (``name:r,g,b::`` lines) or a JSON
``{name: [r, g, b]}``; read by :func:`read_palette`, written by :func:`write_palette`, and turned into a
``mask_mapping`` ``{(r, g, b): class_index}`` by :func:`palette_mapping` (used by ``data.load_folder``,
``datasets.describe_folder`` and ``datasets.convert_masks``). This module imports nothing from the course.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["VOID_NAMES", "read_palette", "write_palette", "palette_mapping"]

#: Names that mark the void / "don't care" entry of a label-map file.
VOID_NAMES = ("void", "ignore", "ignored", "unlabeled", "unlabelled", "don't care", "dontcare", "none")


# =========================================================================== label-map (palette) files
def read_palette(path):
    """Read a label-map file -> ``(class_names, colours, void_colours)``.

    Two formats:

    * CVAT / many annotation tools, ``labelmap.txt``: one ``name:r,g,b::`` line per class
      (``#`` comments allowed); also plain ``name,r,g,b`` lines.
    * JSON: ``{"sky": [70, 130, 180], "road": [128, 64, 128], ...}`` in class order.

    Entries named void / ignore / unlabeled / "don't care" are returned in ``void_colours`` (their pixels
    become the ignore label), not as classes. Colours are 0..255 integer tuples.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No label-map file at {path}: pass the file that lists each class and its colour.")
    entries = []
    if path.suffix.lower() == ".json":
        try:  # keep every key: a name given twice must not silently collapse to one (object_pairs_hook)
            data = json.loads(path.read_text(), object_pairs_hook=lambda pairs: pairs)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}, line {error.lineno}, column {error.colno}: not valid JSON ({error.msg}); "
                             'fix the file, e.g. {"sky": [70, 130, 180], "road": [128, 64, 128]}.') from None
        if not isinstance(data, list) or not all(isinstance(p, tuple) for p in data):
            raise ValueError(f"{path}: expected a JSON object {{name: [r, g, b], ...}}.")
        for name, rgb in data:
            if not isinstance(rgb, list) or not all(isinstance(v, (int, float)) for v in rgb):
                raise ValueError(f"{path}: the colour of {name!r} must be a list [r, g, b] of integers 0..255, "
                                 f"got {rgb!r}.")
        entries = [(str(k), v) for k, v in data]
    else:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if ":" in line:
                name, _, rest = line.partition(":")
                colour = rest.split(":")[0]
            else:
                name, _, colour = line.partition(",")
            try:
                rgb = [int(v) for v in re.split(r"[,\s]+", colour.strip()) if v]
            except ValueError:
                rgb = []
            if len(rgb) != 3:
                raise ValueError(f"{path}, line {number}: {line!r} is not 'name:r,g,b::' or 'name,r,g,b'.")
            entries.append((name.strip(), rgb))
    names, colours, void = [], [], []
    seen = set()
    for name, rgb in entries:
        if name.lower() not in VOID_NAMES:
            if name in seen:
                raise ValueError(f"{path}: the class {name!r} is listed twice; list every class once (two colours "
                                 "for one class: map them in mask_mapping yourself).")
            seen.add(name)
        rgb = tuple(int(v) for v in rgb)
        if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
            raise ValueError(f"{path}: the colour of {name!r} must be three integers 0..255, got {rgb}.")
        if rgb in colours or rgb in void:
            raise ValueError(f"{path}: colour {rgb} is listed twice; every class needs its own colour.")
        (void if name.lower() in VOID_NAMES else colours).append(rgb)
        if name.lower() not in VOID_NAMES:
            names.append(name)
    if not names:
        raise ValueError(f"{path} lists no classes.")
    return tuple(names), tuple(colours), tuple(void)


def write_palette(path, class_names, colors, void_colors=((0, 0, 0),)) -> Path:
    """Write a CVAT-style ``labelmap.txt`` (``name:r,g,b::`` lines; void entries named "void")."""
    path = Path(path)
    lines = ["# label:color_rgb:parts:actions"]
    for rgb in void_colors:
        lines.append("void:" + ",".join(str(int(v)) for v in rgb) + "::")
    for name, rgb in zip(class_names, colors):
        lines.append(f"{name}:" + ",".join(str(int(v)) for v in rgb) + "::")
    path.write_text("\n".join(lines) + "\n")
    return path


def palette_mapping(palette, ignore_index: int = 255) -> dict:
    """``{(r, g, b): class_index}`` for ``load_folder(mask_mapping=...)`` from a label-map file.

    palette: a path (see :func:`read_palette`) or ``(class_names, colours, void_colours)``.
    Void colours map to ``ignore_index``.
    """
    names, colours, void = read_palette(palette) if isinstance(palette, (str, Path)) else palette
    mapping = {tuple(int(v) for v in rgb): i for i, rgb in enumerate(colours)}
    mapping.update({tuple(int(v) for v in rgb): int(ignore_index) for rgb in void})
    return mapping
