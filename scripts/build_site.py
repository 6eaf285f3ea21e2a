#!/usr/bin/env python3
"""Build the course as a static website: every lecture, exercise and solution as a page with its outputs.

    python scripts/build_site.py                     # everything, into _site/ (open _site/index.html)
    python scripts/build_site.py notebooks/02_dense_prediction.ipynb --out /tmp/site   # a subset
    python scripts/build_site.py --fresh             # forget earlier executions (after changing course_utils)

``./course site`` calls this. The tool is Sphinx with MyST-NB (configuration: ``docs/conf.py``, the
course's additions: ``docs/course_site.py``). Every notebook is executed in fast mode (``COURSE_FAST=1``)
with the notebook's own folder as the working folder, as under ``./course test``; the executed copies are
kept in a cache (jupyter-cache, keyed by a hash of the notebook's code cells), so a later build executes
only the notebooks whose code changed. The cache does not see changes to ``course_utils``: build with
``--fresh`` after changing it.

The landing page is the README's course map. Pages come in course order (lecture 00, lecture 01,
exercise 01, solution 01, lecture 02, ...) with previous/next links; each shows a note that its outputs
come from fast mode, and its "Open in Colab" badge. Exercises are executed with errors allowed (their
``raise NotImplementedError`` cells show the error, by design); an error in a lecture or a solution stops
the build. After the build every relative link and image of every page is checked (exit status 1 when
one is broken).

What it writes: the site into ``--out`` (default ``_site/``) and its caches (executions, Sphinx's
doctrees, the laid-out source folder) into ``--cache`` (default ``.site-cache/``). It deletes only inside
those two folders, and only in a folder that it made itself (marked by a file it writes there).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("notebooks", "exercises", "solutions")
OUT_MARKER = ".course-site"
CACHE_MARKER = ".course-site-cache"
SITE_NOTE = (
    "Every page of this site is a notebook of the course executed in **fast mode** (`COURSE_FAST=1`: small "
    "images, little data, few epochs, on a CPU), so its figures are small and its scores lower than in full "
    "mode. Full-size figures will replace them once a GPU run is committed. Each page's *Open in Colab* "
    "badge runs the notebook at full size."
)


def repository_url() -> str:
    """The public GitHub URL of the course, from ``[project.urls] Repository`` in pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"].rstrip("/").removesuffix(".git")


def docname(path: Path) -> str:
    """``notebooks/02_dense_prediction.ipynb`` -> ``"notebooks/02_dense_prediction"`` (relative to the repository)."""
    return path.resolve().relative_to(ROOT).with_suffix("").as_posix()


def course_order(selected: list[Path] | None = None) -> list[str]:
    """The docnames of the site in course order: each lecture, then its exercise and its solution.

    selected: notebooks to build (paths under notebooks/, exercises/ or solutions/); None means all of them.
    """
    every = [p for folder in FOLDERS for p in sorted((ROOT / folder).glob("[0-9][0-9]_*.ipynb"))]
    if selected is None:
        chosen = {docname(p) for p in every}
    else:
        chosen = set()
        for path in selected:
            resolved = Path(path).resolve()
            if resolved.suffix != ".ipynb" or not resolved.is_file():
                raise SystemExit(f"{path} is not a notebook file: name notebooks as e.g. notebooks/02_dense_prediction.ipynb.")
            if resolved.parent.parent != ROOT or resolved.parent.name not in FOLDERS:
                raise SystemExit(f"{path} is not in notebooks/, exercises/ or solutions/ of {ROOT}: only the course's notebooks are pages.")
            chosen.add(docname(resolved))
    key = {folder: i for i, folder in enumerate(FOLDERS)}
    return sorted(chosen, key=lambda name: (Path(name).name, key[Path(name).parent.name]))


def landing_page(pages: list[str], readme: str, repository: str) -> str:
    """The site's index.md: the README's title and introduction, its course map, and the table of contents."""
    lines = readme.splitlines()
    intro = []
    for line in lines[1:]:
        if line.startswith("## "):
            break
        intro.append(line)
    course_map, inside = [], False
    for line in lines:
        if re.match(r"^#{1,3} ", line):
            if inside:
                break
            inside = line.strip() == "## Course map"
        if inside:
            course_map.append(line)
    if not course_map:
        raise SystemExit("README.md has no '## Course map' section: the landing page is made from it.")
    toc = [page for page in pages
           if Path(page).parent.name == "notebooks" or f"notebooks/{Path(page).name}" not in pages]
    parts = [
        lines[0], "\n".join(intro).strip(), ":::{note}\n" + SITE_NOTE + "\n:::",
        "\n".join(course_map).strip(),
        f"The notebooks, the helper package and the tests are in the [repository]({repository}); its README "
        "says how to run the course on your machine or on Colab.",
        "```{toctree}\n:hidden:\n:maxdepth: 2\n\n" + "\n".join(toc) + "\n```",
    ]
    return "\n\n".join(parts) + "\n"


def _own_folder(folder: Path, marker: str, what: str) -> Path:
    """Create ``folder`` (or accept one this script made) after checking it is safe to write and delete in."""
    folder = folder.expanduser().resolve()
    course = [ROOT / name for name in FOLDERS + ("docs", "course_utils", "scripts", "tests", "benchmarks", ".git")]
    if folder == ROOT or folder in ROOT.parents or any(part == folder or part in folder.parents for part in course):
        raise SystemExit(f"refusing to use {folder} as the {what} folder: it holds the course itself. Choose a new folder.")
    if folder.exists() and any(folder.iterdir()) and not (folder / marker).exists():
        raise SystemExit(f"refusing to use {folder} as the {what} folder: it is not empty and was not made by "
                         f"this script (no {marker} in it). Choose a new or empty folder.")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / marker).write_text("made by scripts/build_site.py; it may delete what is in this folder\n")
    return folder


def _empty(folder: Path, keep: str) -> None:
    """Delete everything inside ``folder`` (made by this script) except its marker file."""
    from course_utils import safety

    for child in folder.iterdir():
        if child.name != keep:
            safety.remove(child, inside=folder)


def lay_out_source(src: Path, pages: list[str], repository: str) -> None:
    """The folder Sphinx reads: index.md, a copy of each page's notebook, and links to scripts/, benchmarks/ and
    course_utils/.

    The notebooks run in their copies' folder, so ``Path.cwd().parent`` is ``src``, which holds links to the
    repository's ``scripts/``, ``benchmarks/`` and ``course_utils/`` (lecture 11 starts scripts and shows
    lines of course_utils' source; lectures 05, 07 and 08 read committed results), and whatever a notebook
    writes next to itself stays in the cache. A copy is
    rewritten only when its notebook changed, so Sphinx rereads only those.
    """
    from course_utils import safety

    src.mkdir(parents=True, exist_ok=True)
    for name in ("scripts", "benchmarks", "course_utils"):
        link = src / name
        if not (link.is_symlink() and Path(os.readlink(link)) == ROOT / name):
            safety.remove(link, inside=src)
            link.symlink_to(ROOT / name, target_is_directory=True)
    wanted = {f"{page}.ipynb" for page in pages}
    for folder in FOLDERS:
        if (src / folder).is_symlink() or ((src / folder).exists() and not (src / folder).is_dir()):
            safety.remove(src / folder, inside=src)
        (src / folder).mkdir(exist_ok=True)
        for old in (src / folder).glob("*.ipynb"):
            if f"{folder}/{old.name}" not in wanted:
                safety.remove(old, inside=src)
    for name in sorted(wanted):
        data = (ROOT / name).read_bytes()
        copy = src / name
        if not copy.exists() or copy.read_bytes() != data:
            safety.atomic_write(copy, lambda tmp: tmp.write_bytes(data), inside=src)
    text = landing_page(pages, (ROOT / "README.md").read_text(encoding="utf-8"), repository)
    index = src / "index.md"
    if not index.exists() or index.read_text(encoding="utf-8") != text:  # unchanged: Sphinx need not reread it
        safety.atomic_write(index, lambda tmp: tmp.write_text(text, encoding="utf-8"), inside=src)


def fast_mode_environment(pages: list[str], cache: Path, repository: str) -> dict[str, str]:
    """The environment of the Sphinx process and so of every kernel: fast mode, as ``./course test`` sets it."""
    env = dict(os.environ)
    env["COURSE_FAST"] = "1"
    env.pop("COURSE_DRY_RUN", None)
    env.pop("COURSE_RECORD_RESULTS", None)  # building the site never rewrites benchmarks/results
    # The kernel draws figures inline (MPLBACKEND=Agg, as the tests set it, would draw none).
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    env.setdefault("TF_NUM_INTEROP_THREADS", "2")
    shared = ROOT.parent / "shared" / "data"
    if "COURSE_DATA_DIR" not in env and (shared / "isbi2012-membrane").is_dir():
        env["COURSE_DATA_DIR"] = str(shared)
    env["COURSE_SITE_PAGES"] = json.dumps(pages)
    env["COURSE_SITE_EXECUTION_CACHE"] = str(cache / "jupyter_cache")
    env["COURSE_SITE_OUTPUTS"] = str(cache / "jupyter_execute")
    env["COURSE_SITE_REPOSITORY"] = repository
    return env


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value and ((name == "href" and tag in ("a", "link")) or (name == "src" and tag in ("img", "script"))):
                self.targets.append(value)


def broken_links(site: Path) -> list[str]:
    """Every relative href/src in the site's HTML pages whose file does not exist: "page.html -> target"."""
    broken = []
    for page in sorted(site.rglob("*.html")):
        if page.relative_to(site).parts[0] == "_static":
            continue  # the theme's template fragments, not pages
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8", errors="replace"))
        for target in parser.targets:
            parts = urlsplit(target)
            if parts.scheme or parts.netloc or not parts.path:
                continue  # external, or an anchor on the same page
            file = (page.parent / unquote(parts.path)).resolve()
            if file.is_dir():
                file = file / "index.html"
            if not file.exists():
                broken.append(f"{page.relative_to(site)} -> {target}")
    return broken


def build(pages: list[str], out: Path, cache: Path, *, fresh: bool = False, clean: bool = False,
          check: bool = True, quiet: bool = False, retry: bool = True) -> int:
    """Build the site of ``pages`` (docnames in course order) into ``out``; return the exit status."""
    out = _own_folder(out, OUT_MARKER, "output")
    cache = _own_folder(cache, CACHE_MARKER, "cache")
    if out == cache or out in cache.parents or cache in out.parents:
        raise SystemExit(f"the output folder ({out}) and the cache folder ({cache}) must not contain each other.")
    from course_utils import safety

    if fresh:
        _empty(cache, CACHE_MARKER)
    if clean or fresh:
        _empty(out, OUT_MARKER)
        safety.remove(cache / "doctrees", inside=cache)
    safety.remove(out / "reports", inside=out)  # MyST-NB's tracebacks of failed notebooks: only this build's
    repository = repository_url()
    src = cache / "src"
    lay_out_source(src, pages, repository)
    start = time.monotonic()
    status, failed = _sphinx(pages, out, cache, src, repository, quiet)
    if status == 0 and failed and retry:
        # A kernel can hang or die under load (the cell timeout then ends it): one more try, for those only.
        print(f"Trying the {len(failed)} failed notebooks once more ...", flush=True)
        status, failed = _sphinx(pages, out, cache, src, repository, quiet)
    print(f"Built in {time.monotonic() - start:.0f} s.", flush=True)
    if status != 0:
        return status
    if failed:
        print(f"{len(failed)} notebooks failed to execute (their pages show no outputs; the error is above):\n  "
              + "\n  ".join(failed), flush=True)
    if check:
        broken = broken_links(out)
        if broken:
            print(f"{len(broken)} broken links:\n  " + "\n  ".join(broken[:50]), flush=True)
            return 1
        print("Every relative link and image of every page resolves.")
    if failed:
        return 1
    print(f"Open {out / 'index.html'} in a browser, or serve it: python -m http.server --directory {out}")
    return 0


def _sphinx(pages: list[str], out: Path, cache: Path, src: Path, repository: str, quiet: bool) -> tuple[int, list[str]]:
    """Run Sphinx once; return its exit status and the notebooks (their copies in ``src``) that failed to execute."""
    command = [sys.executable, "-m", "sphinx", "-b", "html", "-c", str(ROOT / "docs"), "-d", str(cache / "doctrees"),
               "--keep-going", "-j", "1"] + (["-q"] if quiet else []) + [str(src), str(out)]
    print(f"Building {len(pages)} pages in fast mode into {out} (executions cached in {cache / 'jupyter_cache'}) ...",
          flush=True)
    start = time.monotonic()
    failed = []  # MyST-NB warns "Executing notebook failed" (and keeps going) when a lecture or solution errs
    with subprocess.Popen(command, cwd=ROOT, env=fast_mode_environment(pages, cache, repository), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1) as sphinx:
        for line in sphinx.stdout:
            print(line, end="", flush=True)
            if "Executing notebook failed" in line:
                failed.append(line.split(": WARNING")[0].strip())
    print(f"Sphinx finished with status {sphinx.returncode} in {time.monotonic() - start:.0f} s.", flush=True)
    for path in map(Path, failed):  # Sphinx would take these pages as done: make it read them again next time
        if src in path.parents and path.is_file():
            os.utime(path)
    return sphinx.returncode, failed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="build only these notebooks (default: every lecture, exercise and solution)")
    parser.add_argument("--out", type=Path, default=ROOT / "_site", help="where the site goes (default: _site/)")
    parser.add_argument("--cache", type=Path, default=ROOT / ".site-cache",
                        help="executions, doctrees and the source layout (default: .site-cache/)")
    parser.add_argument("--fresh", action="store_true",
                        help="forget every cached execution and page (after changing course_utils)")
    parser.add_argument("--clean", action="store_true", help="empty the output folder first (executions are kept)")
    parser.add_argument("--no-check", dest="check", action="store_false", help="skip the link check")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors from Sphinx")
    args = parser.parse_args(argv)
    pages = course_order(args.notebooks or None)
    if not pages:
        raise SystemExit("no notebooks to build.")
    return build(pages, args.out, args.cache, fresh=args.fresh, clean=args.clean, check=args.check, quiet=args.quiet)


if __name__ == "__main__":
    sys.exit(main())
