"""Overlap-tile prediction of large images (U-Net paper, Ronneberger et al. 2015, Fig. 2).

A network sees only a limited neighbourhood of each pixel, and near the edge
of its input it sees padding instead of image. To predict an image larger than
fits in memory (or larger than the training crops), cut it into tiles that
**overlap**, predict each tile, and keep only the **centre** of each tile's
output, where the network saw real context on every side. At the image border
the missing context is filled by **mirroring** the image.

With ``margin = overlap // 2``, each tile of ``tile_size`` pixels contributes
its central ``tile_size - 2 * margin`` pixels (the *stride* between tiles).
The margin should be at least the radius of the network's receptive field that
is affected by padding; then tiled and whole-image predictions agree in the
interior.

Framework-free: ``predict_fn`` maps a NumPy batch ``(N, h, w, C)`` to NumPy
``(N, h, w, K)`` scores (wrap your Keras/PyTorch model, see the lecture).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .data import check_images

__all__ = ["TileLayout", "tile_layout", "predict_tiled"]


@dataclass(frozen=True)
class TileLayout:
    """Where the tiles of an overlap-tile prediction go.

    Attributes:
        tile_size: (th, tw) tile height and width fed to the network.
        margin: (my, mx) pixels dropped on each side of each tile's output.
        stride: (sy, sx) kept centre size = distance between tile origins.
        padded_shape: (H', W') of the mirror-padded image.
        pad: ((top, bottom), (left, right)) mirror padding.
        origins: list of (y, x) tile origins in padded coordinates; the kept centre
            of the tile at (y, x) covers original pixels ``y .. y + sy`` and ``x .. x + sx``.
    """

    tile_size: tuple
    margin: tuple
    stride: tuple
    padded_shape: tuple
    pad: tuple
    origins: list


def _pair(value, name):
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a (height, width) pair, got {value!r}.")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def tile_layout(height: int, width: int, tile_size, overlap, multiple_of: int | None = None) -> TileLayout:
    """Plan the tiles for an image of ``height`` x ``width`` (see :func:`predict_tiled`).

    Raises:
        ValueError: when the tile leaves no centre after removing the margins, or
            is not a multiple of ``multiple_of`` (the network's size divisor, e.g.
            ``2 ** depth`` for a U-Net), naming sizes that work.
    """
    th, tw = _pair(tile_size, "tile_size")
    oy, ox = _pair(overlap, "overlap")
    if oy < 0 or ox < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap!r}.")
    my, mx = oy // 2, ox // 2
    sy, sx = th - 2 * my, tw - 2 * mx
    if sy <= 0 or sx <= 0:
        suggestion = 2 * max(my, mx) + 32
        if multiple_of:
            suggestion = math.ceil(suggestion / multiple_of) * multiple_of
        raise ValueError(
            f"tile_size={tile_size!r} is too small for overlap={overlap!r}: each tile loses "
            f"{max(my, mx)} pixels of margin per side, leaving no centre to keep; use a tile larger "
            f"than the overlap (e.g. tile_size={suggestion}) or a smaller overlap."
        )
    if multiple_of:
        for size, axis in ((th, "height"), (tw, "width")):
            if size % multiple_of:
                lower = size // multiple_of * multiple_of
                upper = lower + multiple_of
                options = " or ".join(str(s) for s in (lower, upper) if s > 2 * max(my, mx))
                raise ValueError(
                    f"tile {axis} {size} is not a multiple of {multiple_of} (the network halves the size "
                    f"log2({multiple_of}) times): use tile_size={options}."
                )
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height}x{width}.")
    ny, nx = math.ceil(height / sy), math.ceil(width / sx)
    pad = ((my, ny * sy - height + my), (mx, nx * sx - width + mx))
    padded = (ny * sy + 2 * my, nx * sx + 2 * mx)
    origins = [(i * sy, j * sx) for i in range(ny) for j in range(nx)]
    return TileLayout((th, tw), (my, mx), (sy, sx), padded, pad, origins)


def _mirror_pad(image: np.ndarray, pad) -> np.ndarray:
    """Mirror padding (``reflect``: the edge pixel is not repeated), any amount."""
    return np.pad(image, (pad[0], pad[1], (0, 0)), mode="reflect") if min(image.shape[:2]) > 1 else np.pad(
        image, (pad[0], pad[1], (0, 0)), mode="symmetric"
    )


def predict_tiled(
    predict_fn,
    image,
    tile_size,
    overlap,
    num_classes: int,
    multiple_of: int | None = None,
    batch_size: int = 4,
) -> np.ndarray:
    """Predict a large image tile by tile with mirrored borders, keeping tile centres.

    Args:
        predict_fn: NumPy ``(N, th, tw, C)`` -> NumPy ``(N, th, tw, K)`` logits or
            probabilities (spatial size unchanged, i.e. 'same' padding).
        image: ``(H, W, C)`` float array in [0, 1] (one image, channels last); uint8 0..255, NaN and
            channels-first images are refused like ``predict()`` refuses them
            (:func:`course_utils.data.check_images`).
        tile_size: int or (th, tw): the size the network sees.
        overlap: int or (oy, ox): overlap between neighbouring tiles; ``overlap // 2``
            pixels are dropped on each side of every tile's output. Make it at least
            the receptive-field radius that padding affects.
        num_classes: K, checked against what ``predict_fn`` returns.
        multiple_of: the network's size divisor (``2 ** depth`` for a U-Net); the
            tile size must be a multiple of it.
        batch_size: tiles per ``predict_fn`` call.

    Returns:
        float ``(H, W, K)`` scores for the whole image.
    """
    image = check_images(image, "image", ndim=3)  # float in [0, 1], finite, (H, W, C): the same rule as predict()
    h, w = image.shape[:2]
    layout = tile_layout(h, w, tile_size, overlap, multiple_of)
    padded = _mirror_pad(image, layout.pad)
    (th, tw), (my, mx), (sy, sx) = layout.tile_size, layout.margin, layout.stride
    out = None
    origins = layout.origins
    for start in range(0, len(origins), max(1, int(batch_size))):
        chunk = origins[start : start + batch_size]
        tiles = np.stack([padded[y : y + th, x : x + tw] for y, x in chunk])
        scores = np.asarray(predict_fn(tiles))
        if scores.ndim != 4 or scores.shape[:3] != (len(chunk), th, tw) or scores.shape[3] != num_classes:
            raise ValueError(
                f"predict_fn returned shape {scores.shape} for tiles {tiles.shape}; expected "
                f"({len(chunk)}, {th}, {tw}, {num_classes}): it must keep the spatial size ('same' padding) "
                "and return channels-last scores (for PyTorch: permute NCHW output to NHWC)."
            )
        if not np.isfinite(scores).all():
            raise ValueError(
                "predict_fn returned NaN or infinite scores: the model diverged (retrain with a lower learning "
                "rate) or its weights were not loaded."
            )
        if out is None:
            out = np.zeros((layout.padded_shape[0] - 2 * my, layout.padded_shape[1] - 2 * mx, num_classes),
                           dtype=scores.dtype)
        for (y, x), s in zip(chunk, scores):
            out[y : y + sy, x : x + sx] = s[my : my + sy, mx : mx + sx]
    return out[:h, :w]
