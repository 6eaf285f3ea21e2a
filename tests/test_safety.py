"""course_utils.safety and every destructive file operation of the course: confined to folders it owns.

All tests run on tmp_path under the guard_fs fixture, which refuses (and fails the test for) any delete or
move outside tmp_path; canary files next to and above the folder being changed must survive.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
from fs_guard import guard_fs  # noqa: F401  (the fixture)

from course_utils import results, safety
from course_utils.safety import OutsideFolderError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def owned(tmp_path, guard_fs):
    """tmp_path/owned is the course's folder; canaries above it and next to it must survive."""
    folder = tmp_path / "owned"
    folder.mkdir()
    above, beside = tmp_path / "canary.txt", tmp_path / "beside" / "canary.txt"
    beside.parent.mkdir()
    above.write_text("above")
    beside.write_text("beside")
    guard_fs.allow(folder)
    yield folder
    assert above.read_text() == "above" and beside.read_text() == "beside"


@pytest.mark.parametrize("bad", ["../canary.txt", "../beside", "sub/../../beside/canary.txt", ".", ""])
def test_paths_outside_or_the_folder_itself_are_refused(owned, bad):
    (owned / "sub").mkdir()
    with pytest.raises(OutsideFolderError, match="refusing to delete .* not inside"):
        safety.remove(owned / bad if bad else owned, inside=owned)


def test_absolute_path_elsewhere_and_a_linked_parent_are_refused(owned, tmp_path):
    with pytest.raises(OutsideFolderError):
        safety.remove(tmp_path / "canary.txt", inside=owned)
    (owned / "link").symlink_to(tmp_path / "beside")  # owned/link/canary.txt really is tmp_path/beside/canary.txt
    with pytest.raises(OutsideFolderError):
        safety.remove(owned / "link" / "canary.txt", inside=owned)
    with pytest.raises(OutsideFolderError):
        safety.replace(owned / "x", tmp_path / "canary.txt", inside=owned)


def test_remove_deletes_files_folders_and_links_but_never_a_links_target(owned, tmp_path):
    (owned / "file.txt").write_text("x")
    (owned / "tree" / "deep").mkdir(parents=True)
    (owned / "tree" / "deep" / "f").write_text("x")
    (owned / "link").symlink_to(tmp_path / "beside")
    assert safety.remove(owned / "file.txt", inside=owned)
    assert safety.remove(owned / "tree", inside=owned)
    assert safety.remove(owned / "link", inside=owned)
    assert not safety.remove(owned / "missing", inside=owned)
    with pytest.raises(FileNotFoundError):
        safety.remove(owned / "missing", inside=owned, missing_ok=False)
    assert list(owned.iterdir()) == []
    assert (tmp_path / "beside" / "canary.txt").read_text() == "beside"


def test_atomic_write_keeps_the_old_file_when_writing_fails(owned):
    target = owned / "result.json"
    target.write_text("good")

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        safety.atomic_write(target, broken)
    assert target.read_text() == "good"
    assert sorted(p.name for p in owned.iterdir()) == ["result.json"]
    safety.atomic_write(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new"
    with pytest.raises(OutsideFolderError):
        safety.atomic_write(owned / ".." / "canary.txt", lambda tmp: tmp.write_text("x"), inside=owned)


def test_atomic_write_gives_the_permissions_of_a_plain_write(owned):
    import os
    import stat

    old = os.umask(0o022)
    try:
        written = safety.atomic_write(owned / "table.md", lambda tmp: tmp.write_text("x"))
        plain = owned / "plain.md"
        plain.write_text("x")
    finally:
        os.umask(old)
    # mkstemp alone would leave 0600: a committed results file others could not read
    assert stat.S_IMODE(written.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o644


# ---------------------------------------------------------------------------- checkpoints
def test_torch_checkpoint_is_atomic_and_touches_no_other_file(owned):
    torch = pytest.importorskip("torch")
    from course_utils.torch import train

    model = torch.nn.Linear(2, 1)
    # A file of the student's that happens to be named like the old temporary file must survive.
    (owned / "unet.pt.tmp").write_text("my notes")
    path = train.save_checkpoint(model, owned / "unet.pt")
    assert (owned / "unet.pt.tmp").read_text() == "my notes"
    assert sorted(p.name for p in owned.iterdir()) == ["unet.pt", "unet.pt.tmp"]
    restored = train.load_checkpoint(torch.nn.Linear(2, 1), path)
    assert torch.equal(restored.weight, model.weight)


@pytest.mark.parametrize("name", ["notes.txt", "unet", "data.csv"])
def test_torch_checkpoint_refuses_files_of_another_kind(owned, name):
    torch = pytest.importorskip("torch")
    from course_utils.torch import train

    (owned / name).write_text("precious")
    with pytest.raises(ValueError, match=r"must end in \.pt or \.pth"):
        train.save_checkpoint(torch.nn.Linear(2, 1), owned / name)
    assert (owned / name).read_text() == "precious"


def test_torch_fit_checks_the_checkpoint_path_before_training(owned):
    torch = pytest.importorskip("torch")
    from course_utils.torch import train

    model = torch.nn.Conv2d(1, 2, 1)
    calls = []

    class Loader:
        def __iter__(self):
            calls.append(1)
            return iter([])

    (owned / "folder.pt").mkdir()
    for bad, message in [(owned / "notes.txt", r"\.pt or \.pth"), (owned / "folder.pt", "is a folder")]:
        with pytest.raises(ValueError, match=message):
            train.fit(model, Loader(), None, torch.nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), 0.1),
                      epochs=1, num_classes=2, device="cpu", checkpoint_path=bad, monitor="loss", progress=False)
    assert calls == []  # refused before any batch was read


# ---------------------------------------------------------------------------- results and nbtool
def test_record_results_writes_only_its_own_file(owned, monkeypatch):
    monkeypatch.setenv(results.RECORD_ENV_VAR, str(owned))
    row = {"framework": "keras", "name": "CE", "dice": 0.5, "iou": 0.4}
    path = results.record_results("05", [row], mode="fast")
    assert path == owned / "lecture05.json" and json.loads(path.read_text())["rows"] == [row]
    assert sorted(p.name for p in owned.iterdir()) == ["lecture05.json"]
    for bad in ["../x", "5", "05/../../canary"]:
        with pytest.raises(ValueError, match="two-digit"):
            results.record_results(bad, [row], mode="fast")
    assert sorted(p.name for p in owned.iterdir()) == ["lecture05.json"]


def _nbtool(monkeypatch, root):
    spec = importlib.util.spec_from_file_location("nbtool_under_test", ROOT / "scripts" / "nbtool.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", root)
    return module


def test_nbtool_deletes_only_exercise_notebooks_inside_exercises(owned, monkeypatch):
    nbtool = _nbtool(monkeypatch, owned)
    (owned / "exercises").mkdir()
    (owned / "notebooks").mkdir()
    stale = owned / "exercises" / "99_gone.ipynb"
    stale.write_text("{}")
    keep = owned / "notebooks" / "01_data.ipynb"
    keep.write_text("{}")
    (owned / "exercises" / "notes.md").write_text("mine")
    nbtool.remove_stale_exercise(stale)
    assert not stale.exists()
    with pytest.raises(OutsideFolderError):
        nbtool.remove_stale_exercise(keep)
    with pytest.raises(ValueError, match="only exercise notebooks"):
        nbtool.remove_stale_exercise(owned / "exercises" / "notes.md")
    assert keep.exists() and (owned / "exercises" / "notes.md").exists()


def test_every_destructive_call_in_the_package_goes_through_the_guard():
    """Plain rmtree/unlink/os.replace/rename/move appear only in course_utils/safety.py (and tests)."""
    import re

    pattern = re.compile(r"shutil\.rmtree|shutil\.move|os\.(?:replace|rename|remove|unlink|rmdir)\(|\.unlink\(|"
                         r"\.rmdir\(|\.rename\(")
    offenders = []
    for folder in ("course_utils", "benchmarks", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == "safety.py":
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                code = line.split("#", 1)[0]
                if pattern.search(code) and "``" not in code:
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "use course_utils.safety (remove/replace/atomic_write) instead:\n" + "\n".join(offenders)
    assert os.path.exists(ROOT / "course_utils" / "safety.py")


def test_keras_checkpoint_path_must_be_a_file_name(owned):
    pytest.importorskip("keras")
    from course_utils.keras import train

    (owned / "best.keras").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        train.training_callbacks(checkpoint_path=owned / "best.keras")
    with pytest.raises(ValueError, match=r"must end in \.keras"):
        train.training_callbacks(checkpoint_path=owned / "notes.txt")
