"""Guards for every file the course deletes, moves or overwrites.

The course only ever deletes, moves or overwrites files inside folders it owns (a data set's folder,
a checkpoint folder, ``benchmarks/results/``, ``exercises/``). Every destructive operation in
``course_utils``, ``benchmarks/`` and ``scripts/`` goes through the functions here, which first check that
the path lies inside the folder given as ``inside`` and raise :class:`OutsideFolderError` (a ValueError)
otherwise, *before* touching anything:

* :func:`confined` - the checked path (its parent resolved, a final symbolic link not followed);
* :func:`remove` - delete a file, a link (never what it points to) or a folder tree;
* :func:`replace` - ``os.replace`` with both ends checked;
* :func:`atomic_write` - write a file through a temporary file in the same folder and ``os.replace``,
  so that a half-written file never takes the place of a good one.

The folder itself counts as outside (``remove(folder, inside=folder)`` refuses): a guard never deletes the
folder it protects.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["OutsideFolderError", "confined", "remove", "replace", "atomic_write"]


class OutsideFolderError(ValueError):
    """A delete, move or overwrite was asked for a path outside the folder the course owns."""


def confined(path, inside, action: str = "change") -> Path:
    """Return ``path`` (parent resolved, a final link not followed) after checking it lies inside ``inside``.

    path:   the file, link or folder to be deleted, moved or overwritten.
    inside: the folder the course owns; ``path`` must be strictly below it.
    action: a verb for the message ("delete", "overwrite", ...).
    Raises :class:`OutsideFolderError` when ``path`` is ``inside`` itself or anywhere outside it (``..``,
    an absolute path elsewhere, a parent folder that is a link to elsewhere).
    """
    root = Path(inside).expanduser().resolve()
    raw = Path(path).expanduser()
    if raw.name in ("", ".", ".."):
        resolved = raw.resolve()
    else:
        resolved = raw.parent.resolve() / raw.name  # a final symbolic link is the thing itself, not its target
    if root not in resolved.parents:
        raise OutsideFolderError(
            f"refusing to {action} {resolved}: it is not inside {root}, the only folder this operation may change. "
            "This is a bug or a wrong argument; nothing was changed."
        )
    return resolved


def remove(path, *, inside, missing_ok: bool = True) -> bool:
    """Delete the file, link or folder tree at ``path`` after checking it lies inside ``inside``.

    A symbolic link is removed as a link; what it points to is never touched. Returns True when something
    was deleted.
    """
    target = confined(path, inside, "delete")
    if target.is_symlink() or target.is_file():
        target.unlink()
        return True
    if target.is_dir():
        shutil.rmtree(target)
        return True
    if target.exists():  # a FIFO, socket or device node
        target.unlink()
        return True
    if not missing_ok:
        raise FileNotFoundError(f"nothing to delete at {target}.")
    return False


def replace(source, destination, *, inside) -> Path:
    """``os.replace(source, destination)`` after checking that both lie inside ``inside``; return the destination."""
    src = confined(source, inside, "move")
    dst = confined(destination, inside, "overwrite")
    os.replace(src, dst)
    return dst


def atomic_write(path, write: Callable[[Path], None], *, inside=None, suffix: str = ".tmp") -> Path:
    """Write ``path`` atomically: ``write(tmp)`` writes a temporary file next to it, then it replaces ``path``.

    inside: the folder ``path`` must lie in (default: ``path``'s own folder, which only forbids ``..`` tricks).
    The temporary file has a unique name (an existing file is never clobbered by it) and is removed when
    ``write`` fails, so a half-written file never takes the place of a good one. ``suffix`` ends the temporary
    name, for writers that insist on an extension (Keras' ``save_weights`` wants ``.weights.h5``).
    """
    path = Path(path).expanduser()
    folder = Path(inside) if inside is not None else path.parent
    target = confined(path, folder, "write")
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a folder: pass a file name to write to.")
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(handle)
    tmp = Path(tmp_name)
    # mkstemp makes the file private (0600); give it the permissions a plain open() would (0666 less the umask).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        write(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
