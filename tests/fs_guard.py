"""A pytest fixture that makes destructive file operations outside an allowed folder fail the test.

Tests of code that deletes, moves or overwrites files run only on ``tmp_path``. If the code under test
were wrong, it could still reach outside ``tmp_path``; this guard patches ``shutil.rmtree``, ``os.unlink``,
``os.remove``, ``os.rmdir``, ``os.replace``, ``os.rename`` and ``shutil.move`` so that a call on a path
outside the allowed folder is refused (PermissionError, nothing happens) **and** recorded; the fixture
then fails the test even when the code under test swallowed the PermissionError.

Use it with ``from fs_guard import guard_fs`` in a test module and the ``guard_fs`` argument; narrow the
allowed folder with ``guard_fs.allow(path)``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


class _Guard:
    def __init__(self, root: Path):
        self.allowed = [Path(root).resolve()]
        self.violations: list[str] = []
        self.calls: list[tuple[str, str]] = []

    def allow(self, *folders) -> None:
        """Allow only these folders (instead of the whole ``tmp_path``)."""
        self.allowed = [Path(f).resolve() for f in folders]

    def check(self, operation: str, path) -> None:
        raw = Path(os.fsdecode(path))
        resolved = (raw.parent.resolve() / raw.name) if raw.name not in ("", ".", "..") else raw.resolve()
        self.calls.append((operation, str(resolved)))
        if not any(folder == resolved or folder in resolved.parents for folder in self.allowed):
            self.violations.append(f"{operation}({resolved})")
            raise PermissionError(f"test guard: {operation} outside {self.allowed} refused: {resolved}")


@pytest.fixture
def guard_fs(tmp_path, monkeypatch):
    guard = _Guard(tmp_path)
    real = {
        "rmtree": shutil.rmtree, "move": shutil.move,
        "unlink": os.unlink, "remove": os.remove, "rmdir": os.rmdir, "replace": os.replace, "rename": os.rename,
    }

    def one_path(name):
        def wrapper(path, *args, dir_fd=None, **kwargs):
            if dir_fd is None:  # with dir_fd the path is relative to a folder that was already checked
                guard.check(name, path)
                return real[name](path, *args, **kwargs)
            return real[name](path, *args, dir_fd=dir_fd, **kwargs)
        return wrapper

    def two_paths(name):
        def wrapper(src, dst, *args, **kwargs):
            if kwargs.get("src_dir_fd") is None and kwargs.get("dst_dir_fd") is None:
                guard.check(name, src)
                guard.check(name, dst)
            return real[name](src, dst, *args, **kwargs)
        return wrapper

    def rmtree(path, *args, **kwargs):
        guard.check("rmtree", path)
        return real["rmtree"](path, *args, **kwargs)

    rmtree.avoids_symlink_attacks = shutil.rmtree.avoids_symlink_attacks
    monkeypatch.setattr(shutil, "rmtree", rmtree)
    monkeypatch.setattr(shutil, "move", two_paths("move"))
    for name in ("unlink", "remove", "rmdir"):
        monkeypatch.setattr(os, name, one_path(name))
    for name in ("replace", "rename"):
        monkeypatch.setattr(os, name, two_paths(name))
    yield guard
    monkeypatch.undo()
    assert not guard.violations, f"destructive operations outside the allowed folder: {guard.violations}"
