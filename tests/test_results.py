"""course_utils.results: the lectures' tables for the benchmark report."""

import json
import math

import numpy as np
import pytest

from course_utils.results import record_results


def test_nothing_is_written_when_recording_is_off(monkeypatch, tmp_path):
    monkeypatch.delenv("COURSE_RECORD_RESULTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert record_results("05", [{"framework": "Keras", "name": "CE", "dice": 0.5, "iou": 0.3}], mode="fast") is None
    assert list(tmp_path.iterdir()) == []


def test_rows_are_written_as_plain_json(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_RECORD_RESULTS", str(tmp_path / "out"))
    rows = [{"framework": "PyTorch", "name": "Dice", "dice": np.float32(0.75), "iou": np.nan,
             "per_class_dice": {"cell": np.float64(0.9)}}]
    path = record_results("07", rows, mode="full", dataset="shapes", setup="tiny")
    payload = json.loads(path.read_text())
    assert path.name == "lecture07.json"
    assert payload["lecture"] == "07" and payload["mode"] == "full" and payload["dataset"] == "shapes"
    row = payload["rows"][0]
    assert row["dice"] == pytest.approx(0.75) and math.isnan(row["iou"])
    assert row["per_class_dice"] == {"cell": pytest.approx(0.9)}


def test_one_means_the_repository_benchmarks_folder(monkeypatch, tmp_path):
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "course_utils").mkdir()
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    monkeypatch.setenv("COURSE_RECORD_RESULTS", "1")
    path = record_results("05", [{"framework": "Keras", "name": "CE", "dice": 1, "iou": 1}], mode="fast")
    assert path == tmp_path / "benchmarks" / "results" / "lecture05.json"


def test_a_row_without_scores_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_RECORD_RESULTS", str(tmp_path))
    with pytest.raises(ValueError, match="dice"):
        record_results("05", [{"framework": "Keras", "name": "CE"}], mode="fast")
