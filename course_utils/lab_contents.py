"""The contents manager that ``./course lab`` runs JupyterLab with, so that opening a notebook does not mark it
modified.

JupyterLab compares the kernel's ``language_info`` with the notebook's stored metadata when the kernel starts
and marks the notebook modified when they differ. The stored notebooks carry every field the kernel writes
except ``version`` (the Python version is machine-specific: stored, it would change with every student's
machine and make every diff noisy). This manager fills in the running Python's version when a notebook is
opened and takes it out again when the notebook is saved, so the lab sees exactly what the kernel sends and
the files on disk stay as ``scripts/nbtool.py`` writes them.

Imported only by the Jupyter server that ``./course lab`` starts (never by the lectures).
"""

from __future__ import annotations

import platform

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager


def kernel_python_version() -> str:
    """The version the course's kernel reports: the kernel runs on the same interpreter as the lab's server."""
    return platform.python_version()


def add_python_version(notebook: dict, version: str | None = None) -> dict:
    """Put ``version`` in a Python notebook's ``language_info`` when it has none (in place; returns it)."""
    info = notebook.get("metadata", {}).get("language_info")
    if isinstance(info, dict) and info.get("name") == "python" and "version" not in info:
        info["version"] = version or kernel_python_version()
    return notebook


def drop_python_version(notebook: dict) -> dict:
    """Remove ``language_info.version`` from a notebook before it is written (in place; returns it)."""
    info = notebook.get("metadata", {}).get("language_info")
    if isinstance(info, dict):
        info.pop("version", None)
    return notebook


class CourseContentsManager(AsyncLargeFileManager):
    """Jupyter Server's default contents manager, plus the Python version on open and without it on save."""

    async def get(self, path, content=True, type=None, format=None, **kwargs):
        model = await super().get(path, content=content, type=type, format=format, **kwargs)
        if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
            add_python_version(model["content"])
        return model

    async def save(self, model, path=""):
        if model.get("type") == "notebook" and isinstance(model.get("content"), dict):
            drop_python_version(model["content"])
        return await super().save(model, path)
