"""The course's small Sphinx extension: what each page gets on top of the notebook as it is stored.

Sphinx reads every page through the ``source-read`` event first; here, without touching the files on disk,

* every relative link is checked against the pages of this build: a link to a page stays (MyST-NB turns
  ``02_dense_prediction.ipynb`` into ``02_dense_prediction.html``), the notebooks' "Course map" link
  (``../README.md#course-map``) points to the landing page, and a link to anything else in the repository
  (``benchmarks/RESULTS.md``, a notebook left out of a partial build) becomes a link to that file on GitHub;
* a note under the header says that the outputs come from an execution in fast mode;
* an exercise may raise errors (its ``raise NotImplementedError`` cells are shown, by design);
* TensorFlow's start-up log lines are left out of the stderr outputs (they come from loading the framework);
* a lecture lists its exercise and solution in a hidden table of contents, so that the sidebar nests them
  and previous/next runs lecture 01, exercise 01, solution 01, lecture 02, ...
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

FAST_MODE_NOTE = (
    "The outputs on this page (figures, tables, printed numbers) come from running the notebook in "
    "**fast mode** (`COURSE_FAST=1`: small images, little data, few epochs) on a CPU, so the figures are "
    "small and the scores lower than in full mode. Full-size figures will replace them once a GPU run is "
    "committed; until then, open the notebook in Colab (the badge above) to run it at full size."
)
EXERCISE_NOTE = (
    "This is the student's version: each place to fill in ends in `raise NotImplementedError`, so those "
    "cells and the checks after them show errors here, by design. The solution page shows the finished cells."
)
NOTE_MARKER = "course-site-fast-mode-note"

# [text](target) and [text](target "title"); images ![alt](src) match too (their targets are absolute).
LINK = re.compile(r"(\]\()([^)\s]+)((?:\s+\"[^\"]*\")?\))")
EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|#|//)")


def rewrite_links(text: str, folder: str, pages: set[str], repository: str, is_folder=lambda path: False) -> str:
    """Rewrite the relative Markdown links of a page that lives in ``folder`` ("" for the landing page).

    pages:      the docnames of this build ("notebooks/02_dense_prediction", ...; "index" is the landing page).
    repository: "https://github.com/OWNER/REPO"; links to files that are not pages point there.
    is_folder:  tells whether a repository path is a folder (linked as ``tree/main/...``, not ``blob/main/...``).
    """

    def one(match: re.Match) -> str:
        target = match.group(2)
        if EXTERNAL.match(target):
            return match.group(0)
        path, sep, anchor = target.partition("#")
        resolved = posixpath.normpath(posixpath.join(folder, path)) if path else ""
        if resolved.startswith(".."):
            return match.group(0)  # outside the repository: leave it (and let the link check report it)
        stem, ext = posixpath.splitext(resolved)
        new = target
        if resolved == "README.md":
            new = posixpath.relpath("index.md", folder or ".") + (sep + anchor if sep else "")
        elif ext in (".ipynb", ".md") and stem in pages:
            new = target
        elif repository:
            kind = "tree" if is_folder(resolved) else "blob"
            new = f"{repository}/{kind}/main/{resolved}" + (sep + anchor if sep else "")
        return match.group(1) + new + match.group(3)

    return LINK.sub(one, text)


def _markdown_cell(source: str, cell_id: str, **metadata) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": metadata, "source": source}


def rewrite_notebook(text: str, docname: str, pages: list[str], repository: str, is_folder=lambda path: False) -> str:
    """The JSON of notebook ``docname`` as the site shows it (see the module docstring)."""
    notebook = json.loads(text)
    folder, name = posixpath.split(docname)
    page_set = set(pages) | {"index"}
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = rewrite_links(source, folder, page_set, repository, is_folder)
    note = ":::{note}\n" + FAST_MODE_NOTE
    if folder == "exercises":
        note += "\n\n" + EXERCISE_NOTE
        notebook.setdefault("metadata", {}).setdefault("mystnb", {})["execution_allow_errors"] = True
    note += "\n:::"
    at = 1 if notebook["cells"] and notebook["cells"][0]["cell_type"] == "markdown" else 0
    notebook["cells"].insert(at, _markdown_cell(note, NOTE_MARKER, tags=[NOTE_MARKER]))
    if folder == "notebooks":
        children = [f"../{other}/{name}" for other in ("exercises", "solutions") if f"{other}/{name}" in page_set]
        if children:
            toctree = "```{toctree}\n:hidden:\n\n" + "\n".join(children) + "\n```"
            notebook["cells"].append(_markdown_cell(toctree, "course-site-toctree"))
    return json.dumps(notebook)


# TensorFlow's start-up log (absl's preamble and info lines such as "oneDNN custom operations are on"), printed to
# stderr by the framework when it loads, not by the lecture's code: left out of the pages. Warnings stay.
STARTUP_NOISE = re.compile(
    r"^(?:WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR|I0000 00:00:\S+ .*)$"
)


def drop_startup_noise(text: str) -> str:
    """``text`` (a stderr output) without TensorFlow's start-up log lines."""
    return "\n".join(line for line in text.splitlines() if not STARTUP_NOISE.match(line.strip()))


def _doctree_read(app, doctree) -> None:
    from docutils import nodes

    for block in list(doctree.findall(nodes.literal_block)):
        if "stderr" not in block.get("classes", []):
            continue
        kept = drop_startup_noise(block.astext())
        if kept == block.astext():
            continue
        if kept.strip():
            block.children = []
            block += nodes.Text(kept)
            block.rawsource = kept
        else:
            parent = block.parent
            parent.remove(block)
            if isinstance(parent, nodes.container) and not parent.children and parent.parent is not None:
                parent.parent.remove(parent)


def _source_read(app, docname: str, source: list[str]) -> None:
    pages = list(app.config.course_pages)
    repository = app.config.course_repository
    root = Path(app.config.course_root)

    def is_folder(path: str) -> bool:
        return (root / path).is_dir()

    if docname == "index":
        source[0] = rewrite_links(source[0], "", set(pages) | {"index"}, repository, is_folder)
    elif Path(app.env.doc2path(docname)).suffix == ".ipynb":
        source[0] = rewrite_notebook(source[0], docname, pages, repository, is_folder)


def _output_folder(app) -> None:
    """Write the notebooks' image files into the cache, not next to the output folder (MyST-NB's default)."""
    if app.config.course_output_folder and hasattr(app.env, "mystnb_config"):
        app.env.mystnb_config = app.env.mystnb_config.copy(output_folder=app.config.course_output_folder)


def _dead_kernel_is_a_failed_notebook() -> None:
    """A kernel that dies (killed, out of memory) fails its notebook like an error does, instead of ending the build.

    jupyter-cache's executor reports cell errors and timeouts as a failed notebook and lets Sphinx go on; a
    dead kernel raised through it and stopped Sphinx with every page unwritten. Its ``executenb`` is wrapped
    so that ``DeadKernelError`` becomes nbclient's ``CellExecutionError``.
    """
    from jupyter_cache.executors import utils
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    if getattr(utils.executenb, "_course_site", False):
        return
    original = utils.executenb

    def executenb(*args, **kwargs):
        try:
            return original(*args, **kwargs)
        except DeadKernelError as error:
            raise CellExecutionError(f"The kernel died: {error}", "DeadKernelError", str(error)) from error

    executenb._course_site = True
    executenb._course_site_original = original
    utils.executenb = executenb


def setup(app):
    app.add_config_value("course_pages", [], "env")
    app.add_config_value("course_repository", "", "env")
    app.add_config_value("course_root", "", "env")
    _dead_kernel_is_a_failed_notebook()
    app.connect("source-read", _source_read)
    app.connect("doctree-read", _doctree_read)
    app.add_config_value("course_output_folder", "", "env")
    app.connect("builder-inited", _output_folder, priority=900)  # after MyST-NB's own set-up (priority 500)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
