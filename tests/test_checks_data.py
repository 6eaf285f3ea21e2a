"""The lecture 01 checks pass right answers and fail typical wrong ones with a helpful sentence."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import checks
from course_utils.checks import CheckFailed, NotWrittenYet
from course_utils.checks.data import check_flip_rotate_pair, check_one_hot, check_overlay

COLOURS = np.array([[0.1, 0.1, 0.1], [0.9, 0.2, 0.2], [0.2, 0.8, 0.3], [0.2, 0.3, 0.9]])


def test_exported_from_checks():
    assert checks.check_one_hot is check_one_hot
    assert {"check_one_hot", "check_overlay", "check_flip_rotate_pair"} <= set(checks.data.__all__)


# ------------------------------------------------------------------ one_hot
def good_one_hot(masks, num_classes):
    return np.eye(num_classes, dtype=np.float32)[masks]


def _swap_hw(m, c):
    return np.swapaxes(np.eye(c, dtype=np.float32)[m], 1, 2)


# The one-hot mistakes students write, each with the fragment of the message that must name it.
ONE_HOT_MISTAKES = [
    (lambda m, c: np.eye(c, dtype=np.int64)[m], "must be floats"),
    (lambda m, c: np.moveaxis(np.eye(c, dtype=np.float32)[m], -1, 1), "class axis is first"),
    (lambda m, c: np.moveaxis(np.eye(c, dtype=np.float32)[m], -1, 0), "class axis is in the wrong place"),
    (_swap_hw, "height and width are swapped"),
    (lambda m, c: (m[..., None] == np.arange(1, c)).astype(np.float32), "one class too few"),
    (lambda m, c: np.eye(c + 1, dtype=np.float32)[m], "one class too many"),
    (lambda m, c: np.eye(m.max() + 1, dtype=np.float32)[m], "not masks.max"),
    (lambda m, c: np.ones(m.shape + (c,), np.float32), "more than one 1"),
    (lambda m, c: np.eye(c, dtype=np.float32)[(m + 1) % c], "0 elsewhere"),
    (lambda m, c: None, "return statement"),
    (lambda m, c: m[..., None].astype(np.float32), "add the class axis"),
    (lambda m, c: 1 / 0, "ZeroDivisionError"),
]


@pytest.mark.parametrize("wrong, needle", ONE_HOT_MISTAKES)
def test_check_one_hot(wrong, needle, capsys):
    check_one_hot(good_one_hot)
    assert capsys.readouterr().out.startswith("\N{HEAVY CHECK MARK} ")
    with pytest.raises(CheckFailed, match=needle):
        check_one_hot(wrong)


def test_one_hot_float64_and_student_name(capsys):
    def my_one_hot(masks, num_classes):
        return np.eye(num_classes)[masks]  # float64: a correct variant

    check_one_hot(my_one_hot)
    assert "my_one_hot" in capsys.readouterr().out


def test_checks_name_the_students_function_when_not_written():
    def my_todo(*args):
        raise NotImplementedError("Exercise: write this part, then run the check below.")

    for check in (check_one_hot, check_overlay, check_flip_rotate_pair):
        with pytest.raises(NotWrittenYet, match="my_todo is not written yet") as info:
            check(my_todo)
        assert info.value.__cause__ is None and info.value.__suppress_context__


# ------------------------------------------------------------------ overlay
def good_overlay(image, mask, num_classes, alpha=0.5):
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
    return (1 - alpha) * rgb + alpha * COLOURS[:num_classes][mask]


def test_check_overlay_passes_with_viz_colours_too(capsys):
    check_overlay(good_overlay)

    def with_viz(image, mask, num_classes, alpha=0.5):
        from course_utils import viz

        colours = np.asarray(viz.class_colors(num_classes), dtype=np.float32)[:, :3]
        rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
        return (1 - alpha) * rgb + alpha * colours[mask]

    try:
        import course_utils.viz as viz  # written by a teammate; skip this half if it is not there yet

        viz.class_colors
    except (ImportError, AttributeError):
        pytest.skip("course_utils.viz.class_colors not available yet")
    check_overlay(with_viz)
    assert capsys.readouterr().out.count("\N{HEAVY CHECK MARK}") == 2


def _in_place(image, mask, num_classes, alpha=0.5):
    image *= 1.0
    image[0, 0] = 0.0
    return good_overlay(image.copy(), mask, num_classes, alpha)


@pytest.mark.parametrize(
    "wrong, needle",
    [
        (lambda im, m, c, a=0.5: (1 - a) * im + a * COLOURS[m] * 255, r"\[0, 1\]"),
        (lambda im, m, c, a=0.5: a * im + (1 - a) * COLOURS[m], "unchanged"),
        (lambda im, m, c, a=0.5: np.where(m[..., None] > 0, (1 - a) * im + a * COLOURS[m], im), "same colour"),
        (lambda im, m, c, a=0.5: (1 - a) * im + a * np.full((m.shape + (3,)), 0.5)[...] * (m[..., None] >= 0), "same colour"),
        (lambda im, m, c, a=0.5: (1 - a) * im + a * COLOURS[np.minimum(m, 1)], "Classes 1 and 2"),
        (lambda im, m, c, a=0.5: (1 - a ** 2) * im + a ** 2 * COLOURS[m], "halfway"),
        (lambda im, m, c, a=0.5: ((1 - a) * im + a * COLOURS[m])[..., : im.shape[-1]], r"grey \(6, 7, 1\)"),
        (lambda im, m, c, a=0.5: np.concatenate([good_overlay(im, m, c, a), np.ones(m.shape + (1,))], -1), "RGB"),
        (_in_place, "in place"),
    ],
)
def test_check_overlay_catches_mistakes(wrong, needle):
    with pytest.raises(CheckFailed, match=needle):
        check_overlay(wrong)


# ------------------------------------------------------------------ flip_rotate_pair
def good_flip_rotate(image, mask, k, flip):
    if flip:
        image, mask = image[:, ::-1], mask[:, ::-1]
    return np.rot90(image, k), np.rot90(mask, k)


@pytest.mark.parametrize(
    "wrong, needle",
    [
        (lambda im, m, k, f: (good_flip_rotate(im, m, k, f)[0], m), "not the mask"),
        (lambda im, m, k, f: (np.rot90(im[:, ::-1] if f else im, k, axes=(1, 2)), m), "channel axis"),
        (lambda im, m, k, f: good_flip_rotate(im, m, -k, f), "clockwise"),
        (lambda im, m, k, f: (np.rot90(im, k)[:, ::-1] if f else np.rot90(im, k),
                              np.rot90(m, k)[:, ::-1] if f else np.rot90(m, k)), "rotated first"),
        (lambda im, m, k, f: good_flip_rotate(im[::-1] if f else im, m[::-1] if f else m, k, False), "up-down"),
        (lambda im, m, k, f: (good_flip_rotate(im, m, k, f)[0], good_flip_rotate(im, m, k, f)[1].astype(float)),
         "integer"),
        (lambda im, m, k, f: good_flip_rotate(im, m, k, f)[0], "pair"),
        (lambda im, m, k, f: (good_flip_rotate(im, m, k, f)[0],
                              good_flip_rotate(im, (m + np.roll(m, 1, axis=1)) / 2, k, f)[1]), "bilinear"),
        (lambda im, m, k, f: (good_flip_rotate(im, m, k, f)[0], good_flip_rotate(im, m, -k, f)[1]),
         "wrong mask: for the mask it rotated clockwise"),
        # the mask flipped along the other axis (height) than the image: named as such, not "rotated clockwise"
        (lambda im, m, k, f: (good_flip_rotate(im, m, k, f)[0], good_flip_rotate(m[::-1] if f else m, m, k, False)[0]),
         r"wrong mask: for the mask it flipped up-down \(along the height axis"),
        (lambda im, m, k, f: good_flip_rotate(im[::-1] if f else im, m[::-1] if f else m, k, False),
         r"flipped up-down \(along the height axis, x\[::-1\]\): flip left-right instead"),
        (lambda im, m, k, f: good_flip_rotate(im, m, 0, f), "did not rotate"),
        (lambda im, m, k, f: good_flip_rotate(im, m, k, False), "did not flip"),
    ],
)
def test_check_flip_rotate_pair(wrong, needle, capsys):
    check_flip_rotate_pair(good_flip_rotate)
    assert "\N{HEAVY CHECK MARK}" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=needle):
        check_flip_rotate_pair(wrong)


def test_library_flip_rotate_passes_the_check():
    from course_utils.data import flip_rotate

    check_flip_rotate_pair(flip_rotate)
