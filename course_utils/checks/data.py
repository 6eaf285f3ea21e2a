"""Checks for the lecture 01 exercises: one-hot encoding, mask overlays, joint flip/rotate."""

from __future__ import annotations

import numpy as np

from ._common import check, fail, function_name, not_written, passed

__all__ = ["check_one_hot", "check_overlay", "check_flip_rotate_pair"]


def _call(fn, name, *args):
    """Call the student's function; turn an unexpected exception into one clear sentence."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise not_written(function_name(fn, name.split("(")[0])) from None
    except Exception as error:  # noqa: BLE001 - we report any error in one sentence
        fail(f"{name} raised {type(error).__name__}: {error} - run it on a small example and read the traceback.")


def _as_numpy(value, name):
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # a torch or TF tensor
        value = value.detach().cpu().numpy() if hasattr(value, "detach") else value.numpy()
    if value is None:
        fail(f"{name} returned None: did you forget the return statement?")
    return np.asarray(value)


# ------------------------------------------------------------------ one_hot
@check
def check_one_hot(one_hot) -> None:
    """``one_hot(masks (N, H, W) int, num_classes)`` must return floats (N, H, W, num_classes).

    float32 and float64 both pass; a wrong shape is answered by the mistake that explains it (class axis
    first, height and width swapped, one class too few or too many, no class axis).
    """
    rng = np.random.default_rng(0)
    masks = rng.integers(0, 3, size=(2, 4, 5))
    masks[0, 0, 0], masks[1, 3, 4] = 0, 2
    name = function_name(one_hot, "one_hot")
    out = _as_numpy(_call(one_hot, f"{name}(masks, 3)", masks.copy(), 3), f"{name}(masks, 3)")
    expected = np.eye(3, dtype=np.float32)[masks]
    if out.shape != expected.shape:
        fail(_one_hot_shape_hint(name, out.shape, expected.shape, masks.shape, 3))
    if not np.issubdtype(out.dtype, np.floating):
        fail(f"{name} returned dtype {out.dtype} but a one-hot encoding for a loss must be floats: use "
             "np.eye(num_classes, dtype=np.float32)[masks] or .astype(np.float32).")
    out = out.astype(np.float32)
    if not np.array_equal(out, expected):
        if not np.allclose(out.sum(-1), 1):
            fail(f"{name} does not have exactly one 1 per pixel (more than one 1 or none): each pixel's vector must "
                 "be 1 at its class and 0 elsewhere.")
        fail(f"{name}(masks, 3)[n, i, j] must be 1 at index masks[n, i, j] and 0 elsewhere, but it is not: "
             "compare np.eye(num_classes)[masks] on a small example.")
    # num_classes larger than what occurs: the last channel must exist and be all zeros
    out4 = _as_numpy(_call(one_hot, f"{name}(masks, 4)", masks.copy(), 4), f"{name}(masks, 4)")
    if out4.shape != (2, 4, 5, 4):
        fail(f"{name}(masks, 4) returned shape {out4.shape} but expected (2, 4, 5, 4): use the num_classes argument, "
             "not masks.max() + 1 (a class may be absent from a batch).")
    if out4[..., 3].any() or not np.array_equal(out4[..., :3], expected):
        fail(f"{name}(masks, 4) is wrong for a class that does not occur: its channel must be all zeros.")
    passed(f"{name}: shape (N, H, W, C), floats, exactly one 1 per pixel at the right class.")


def _one_hot_shape_hint(name, got, expected, mask_shape, num_classes) -> str:
    """One sentence for a one-hot of the wrong shape, naming the mistake that explains it."""
    n, h, w = mask_shape
    start = f"{name}(masks, {num_classes}) returned shape {got} for masks of shape {mask_shape} but expected {expected}"
    if got == (n, num_classes, h, w):
        return start + ": the class axis is first (NCHW); put it last, e.g. np.eye(num_classes)[masks]."
    if got == (n, w, h, num_classes):
        return start + ": height and width are swapped (a transpose too many); keep the masks' axis order (N, H, W)."
    if got == (num_classes, n, h, w) or got == (n, h, num_classes, w):
        return start + ": the class axis is in the wrong place; it must be the last axis, (N, H, W, C)."
    if got == (n, h, w) or got == (n, h, w, 1):
        return start + ": add the class axis last (one channel per class), e.g. np.eye(num_classes)[masks]."
    if len(got) == 4 and got[:3] == (n, h, w) and got[3] != num_classes:
        off = {num_classes - 1: " (one class too few: is the background class 0 missing?)",
               num_classes + 1: " (one class too many)"}.get(got[3], "")
        return (start + f": it has {got[3]} class channels instead of {num_classes}{off}; use np.eye(num_classes), "
                "one channel for each class 0 .. num_classes-1.")
    return start + ": one channel per class, added as the last axis."


# ------------------------------------------------------------------ overlay
@check
def check_overlay(overlay_mask) -> None:
    """``overlay_mask(image (H, W, 1|3) in [0, 1], mask (H, W), num_classes, alpha)`` -> RGB float (H, W, 3).

    Blends every pixel: ``(1 - alpha) * image_rgb + alpha * colour[mask]``; each class has one colour and
    different classes have different colours.
    """
    rng = np.random.default_rng(1)
    image = rng.uniform(0.2, 0.8, size=(6, 7, 3)).astype(np.float32)
    gray = rng.uniform(0.2, 0.8, size=(6, 7, 1)).astype(np.float32)
    mask = np.zeros((6, 7), dtype=np.int64)
    mask[1:3, 1:4], mask[4:, 5:] = 1, 2
    image_before, mask_before = image.copy(), mask.copy()

    out = _as_numpy(_call(overlay_mask, "overlay_mask(image, mask, 3, 0.5)", image, mask, 3, 0.5), "overlay_mask")
    if not np.array_equal(image, image_before) or not np.array_equal(mask, mask_before):
        fail("overlay_mask changed its input arrays in place: work on a copy (e.g. image.astype(np.float32)).")
    if out.shape != (6, 7, 3):
        fail(f"overlay_mask returned shape {out.shape} for a (6, 7, 3) image but expected (6, 7, 3) RGB.")
    if not np.issubdtype(out.dtype, np.floating):
        fail(f"overlay_mask returned dtype {out.dtype}: return floats in [0, 1] (matplotlib shows them directly).")
    if np.isnan(out).any() or out.min() < -1e-6 or out.max() > 1 + 1e-6:
        fail(f"overlay_mask returned values in [{np.nanmin(out):.2f}, {np.nanmax(out):.2f}]: keep them in [0, 1] "
             "(colours as floats in [0, 1], not 0..255).")

    zero = _as_numpy(_call(overlay_mask, "overlay_mask(image, mask, 3, 0.0)", image, mask, 3, 0.0), "overlay_mask")
    if not np.allclose(zero, image, atol=1e-5):
        fail("overlay_mask(image, mask, num_classes, alpha=0.0) must return the image unchanged: "
             "blend as (1 - alpha) * image + alpha * colours.")
    full = _as_numpy(_call(overlay_mask, "overlay_mask(image, mask, 3, 1.0)", image, mask, 3, 1.0), "overlay_mask")
    for c in range(3):
        colours = full[mask == c]
        if not np.allclose(colours, colours[0], atol=1e-5):
            fail(f"With alpha=1.0 every pixel of class {c} must get the same colour (the class colour), but they "
                 "differ: blend every pixel as (1 - alpha) * image + alpha * colours[mask].")
    class_colours = [full[mask == c][0] for c in range(3)]
    for a in range(3):
        for b in range(a + 1, 3):
            if np.allclose(class_colours[a], class_colours[b], atol=1e-3):
                fail(f"Classes {a} and {b} get the same colour: pick one colour per class (e.g. "
                     "course_utils.viz.class_colors(num_classes)) and index it with the mask.")
    if not np.allclose(out, 0.5 * zero + 0.5 * full, atol=1e-4):
        fail("overlay_mask with alpha=0.5 is not halfway between alpha=0 and alpha=1: use "
             "(1 - alpha) * image + alpha * colours[mask] for every pixel.")

    out_gray = _as_numpy(_call(overlay_mask, "overlay_mask(gray_image, mask, 3, 0.0)", gray, mask, 3, 0.0),
                         "overlay_mask")
    if out_gray.shape != (6, 7, 3):
        fail(f"overlay_mask returned shape {out_gray.shape} for a grey (6, 7, 1) image but expected (6, 7, 3): "
             "repeat the grey channel three times, e.g. np.repeat(image, 3, axis=-1).")
    if not np.allclose(out_gray, np.repeat(gray, 3, axis=-1), atol=1e-5):
        fail("For a grey (H, W, 1) image and alpha=0, overlay_mask must return the grey values in all three channels.")
    passed("overlay_mask: RGB in [0, 1], alpha blends image and class colours, grey images work.")


# ------------------------------------------------------------------ flip / rotate
def _reference_flip_rotate(image, mask, k, flip):
    if flip:
        image, mask = image[:, ::-1], mask[:, ::-1]
    return np.rot90(image, k, axes=(0, 1)), np.rot90(mask, k, axes=(0, 1))


def _flip_rotate_mistake(out, original, k, flip, same) -> str:
    """Name the typical mistake that turns ``original`` (H, W[, C]) into ``out``, or ''.

    Where two mistakes give the same array for this k, the one that the other cases tell apart is named.
    """
    rotate = lambda x, quarter_turns: np.rot90(x, quarter_turns, axes=(0, 1))  # noqa: E731
    candidates = []
    if flip:
        candidates += [
            (rotate(original[::-1], k),
             "flipped up-down (along the height axis, x[::-1]): flip left-right instead, along the width axis "
             "(x[:, ::-1]), then rotate."),
            (rotate(original[::-1, ::-1], k), "flipped up-down as well: flip only left-right (x[:, ::-1])."),
            (rotate(original, k), "did not flip: when flip is True, flip left-right first (x[:, ::-1])."),
        ]
        if k % 2 == 1:
            candidates.insert(0, (rotate(original, k)[:, ::-1],
                                  "rotated first and flipped afterwards: flip left-right first (x[:, ::-1]), "
                                  "then rotate."))
    flipped = original[:, ::-1] if flip else original
    if k % 2 == 1:
        candidates.append((rotate(flipped, -k),
                           "rotated clockwise: rotate counter-clockwise as np.rot90(x, k, axes=(0, 1)) does."))
    if k:
        candidates.append((flipped, f"did not rotate: turn by k={k} quarter turns with np.rot90(x, k, axes=(0, 1))."))
    for candidate, text in candidates:
        if candidate.shape == out.shape and same(out, candidate):
            return text
    return ""


@check
def check_flip_rotate_pair(flip_rotate_pair) -> None:
    """``flip_rotate_pair(image (H, W, C), mask (H, W), k, flip)`` -> (image, mask).

    First flip left-right if ``flip``, then rotate by ``k`` quarter turns counter-clockwise (as ``np.rot90``),
    the same for image and mask; the mask keeps its integer dtype.
    """
    rng = np.random.default_rng(2)
    image = rng.uniform(0, 1, size=(4, 6, 2)).astype(np.float32)  # not square, 2 channels: catches axis mix-ups
    mask = rng.integers(0, 3, size=(4, 6)).astype(np.int64)
    for flip in (False, True):
        for k in range(4):
            result = _call(flip_rotate_pair, f"flip_rotate_pair(image, mask, k={k}, flip={flip})",
                           image.copy(), mask.copy(), k, flip)
            if not isinstance(result, (tuple, list)) or len(result) != 2:
                fail("flip_rotate_pair must return a pair (image, mask), e.g. `return image, mask`.")
            out_image = _as_numpy(result[0], "flip_rotate_pair")
            out_mask = _as_numpy(result[1], "flip_rotate_pair")
            ref_image, ref_mask = _reference_flip_rotate(image, mask, k, flip)
            call = f"flip_rotate_pair(image, mask, k={k}, flip={flip})"
            if out_image.shape != ref_image.shape and out_image.shape == image.shape:
                fail(f"{call} returned an image of shape {out_image.shape} but expected {ref_image.shape}: it "
                     f"did not rotate: turn by k={k} quarter turns with np.rot90(image, k, axes=(0, 1)).")
            if out_image.shape != ref_image.shape:
                fail(f"{call} returned an image of shape {out_image.shape} but expected {ref_image.shape}: rotate "
                     "only the two spatial axes, np.rot90(image, k, axes=(0, 1)), never the channel axis.")
            untouched_image = out_image.shape == image.shape and np.allclose(out_image, image)
            if (not np.array_equal(ref_mask, mask) and out_mask.shape == mask.shape and np.array_equal(out_mask, mask)
                    and not untouched_image):
                fail(f"{call} transformed the image but not the mask: the mask must get exactly the same flip and "
                     "rotation, or the labels no longer fit the pixels.")
            if out_mask.shape != ref_mask.shape:
                fail(f"{call} returned a mask of shape {out_mask.shape} but expected {ref_mask.shape}: apply the "
                     "same rotation to the mask as to the image.")
            if out_mask.dtype.kind == "f" and not np.allclose(out_mask, np.round(out_mask)):
                fail(f"{call} returned a mask with in-between values such as {out_mask[out_mask != np.round(out_mask)][0]:.2f}: "
                     "the mask was interpolated like an image (bilinear). Labels are classes, not intensities: "
                     "move the mask's pixels (index arrays, np.rot90, nearest neighbour, order=0), never blend them.")
            if out_mask.dtype.kind not in "iu":
                fail(f"{call} returned a mask of dtype {out_mask.dtype}: the mask must stay integer class indices.")
            image_ok = np.allclose(out_image, ref_image)
            mask_ok = np.array_equal(out_mask, ref_mask)
            if image_ok and mask_ok:
                continue
            if image_ok and np.array_equal(out_mask, mask):
                fail(f"{call} transformed the image but not the mask: the mask must get exactly the same flip and "
                     "rotation, or the labels no longer fit the pixels.")
            if not image_ok:
                mistake = _flip_rotate_mistake(out_image, image, k, flip, np.allclose)
                if mistake:
                    fail(f"{call} {mistake}")
                fail(f"{call} gave a wrong image: flip left-right with image[:, ::-1] when flip is True, then use "
                     "np.rot90(image, k, axes=(0, 1)).")
            mistake = _flip_rotate_mistake(out_mask, mask, k, flip, np.array_equal)
            fail(f"{call} gave the right image but a wrong mask"
                 + (f": for the mask it {mistake}" if mistake else ": apply exactly the same operations to the mask."))
    passed("flip_rotate_pair: image and mask get the same flip and quarter turns, the mask stays integer.")
