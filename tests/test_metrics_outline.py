"""Class-agnostic boundary F1 and the output-stride oracle (course_utils.metrics), against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import metrics as M


def _square(size=6, rows=slice(2, 4), cols=slice(2, 4), label=1):
    m = np.zeros((size, size), dtype=np.int64)
    m[rows, cols] = label
    return m


def test_label_edges_mark_both_sides_of_a_square():
    edges = M.label_edges(_square())
    expected = np.zeros((6, 6), bool)
    expected[1:5, 1:5] = True  # the 2x2 square and the ring of pixels around it
    np.testing.assert_array_equal(edges, expected)
    assert not M.label_edges(np.full((5, 5), 3)).any()  # one class: no edge, the image border is none
    np.testing.assert_array_equal(M.label_edges(_square(label=2)), edges)  # labels do not matter


def test_agnostic_f1_of_a_shifted_square_by_hand():
    truth = _square()
    shifted = _square(cols=slice(3, 5))
    # edges: truth rows 1-4, cols 1-4 (16 px); prediction rows 1-4, cols 2-5 (16 px); 12 px in common
    assert M.boundary_f1_agnostic(truth, shifted, tolerance=0) == pytest.approx(12 / 16)
    assert M.boundary_f1_agnostic(truth, shifted, tolerance=1) == pytest.approx(1.0)
    assert M.boundary_f1_agnostic(truth, truth, tolerance=0) == pytest.approx(1.0)


def test_right_outline_wrong_class_is_told_apart_from_wrong_outline():
    truth = np.zeros((2, 16, 16), dtype=np.int64)
    truth[:, 4:10, 4:10] = 1
    wrong_class = np.where(truth == 1, 2, 0)          # the same square, called class 2
    per_class = M.boundary_f1(truth, wrong_class, 3, tolerance=1)
    assert per_class[1] == 0.0                         # class 1's outline was never drawn as class 1
    assert M.boundary_f1_agnostic(truth, wrong_class, tolerance=1) == pytest.approx(1.0)
    blob = np.zeros_like(truth)
    blob[:, 12:16, 12:16] = 1                          # right class, outline in the wrong place
    assert M.boundary_f1(truth, blob, 2, tolerance=1)[1] == 0.0
    assert M.boundary_f1_agnostic(truth, blob, tolerance=1) == 0.0  # nearest edges are sqrt(2) px apart


def test_agnostic_f1_edge_cases_and_errors():
    empty = np.zeros((8, 8), dtype=np.int64)
    assert np.isnan(M.boundary_f1_agnostic(empty, empty))
    assert M.boundary_f1_agnostic(empty, _square(8)) == 0.0
    assert M.boundary_f1_agnostic(_square(8), empty) == 0.0
    with pytest.raises(ValueError, match="tolerance"):
        M.boundary_f1_agnostic(empty, empty, tolerance=-1)
    with pytest.raises(ValueError):
        M.boundary_f1_agnostic(empty, np.zeros((4, 4), dtype=np.int64))


def test_agnostic_f1_skips_ignored_pixels():
    truth = _square(8)
    truth[:, 6:] = 255                                 # a "don't care" strip: its border is no edge
    assert M.boundary_f1_agnostic(truth, _square(8), tolerance=0, ignore_index=255) == pytest.approx(1.0)


def test_output_stride_oracle_by_hand():
    mask = np.zeros((8, 8), dtype=np.int64)
    mask[0:4, 0:4] = 1                                 # aligned with the 4x4 grid: one block of class 1
    expected = mask.copy()
    # bilinear between block centres 2 and 6: pixel 3 keeps (1 - 1.5/4) = 0.625 of its block in each
    # direction, so the inner corner (3, 3) holds 0.625**2 = 0.39 of class 1 and is rounded off
    expected[3, 3] = 0
    np.testing.assert_array_equal(M.output_stride_oracle(mask, 4, 2), expected)
    np.testing.assert_array_equal(M.output_stride_oracle(mask, 1, 2), mask)
    line = np.zeros((8, 8), dtype=np.int64)
    line[:, 3] = 1                                     # a 1-px line covers 1/4 of each block: it vanishes
    assert not M.output_stride_oracle(line, 4, 2).any()
    assert M.output_stride_oracle(line, 2, 2).shape == (8, 8)
    batch = np.stack([mask, line])
    np.testing.assert_array_equal(M.output_stride_oracle(batch, 4, 2), np.stack([expected, np.zeros_like(line)]))
    with pytest.raises(ValueError, match="divisible"):
        M.output_stride_oracle(np.zeros((6, 6), dtype=np.int64), 4, 2)
