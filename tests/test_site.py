"""The course website (``./course site``, scripts/build_site.py): a real build of two notebooks in fast mode.

One lecture with figures (00) and one exercise (02, whose unfinished cells raise by design) are built into
``tmp_path``; the pages, images, links, previous/next order, fast-mode note, Colab badge and search index
are read back from the HTML. A second build from the same cache must reuse both executions. The link
rewriting and the folder guards are tested on their own, without Sphinx.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from fs_guard import guard_fs  # noqa: F401  (a fixture)

ROOT = Path(__file__).resolve().parent.parent
REPO = "https://github.com/segmentation-course/semantic-segmentation-course"


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_site = _load("build_site", ROOT / "scripts" / "build_site.py")
course_site = _load("course_site", ROOT / "docs" / "course_site.py")

LECTURE = "notebooks/00_setup"
EXERCISE = "exercises/02_dense_prediction"


class _Page(HTMLParser):
    """Every href/src of a page, the ids it defines, and its previous/next links."""

    def __init__(self):
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.ids: set[str] = set()
        self.prev = self.next = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag in ("a", "link") and attrs.get("href"):
            self.links.append(attrs["href"])
            classes = (attrs.get("class") or "").split()
            if "left-prev" in classes:
                self.prev = attrs["href"]
            if "right-next" in classes:
                self.next = attrs["href"]
        if tag in ("img", "script") and attrs.get("src"):
            (self.images if tag == "img" else self.links).append(attrs["src"])


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _run_builder(out: Path, cache: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "scripts" / "build_site.py"), f"{LECTURE}.ipynb", f"{EXERCISE}.ipynb",
               "--out", str(out), "--cache", str(cache), *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("myst_nb", reason="the site extra is not installed: pip install -e '.[site]' (./course does)")
    base = tmp_path_factory.mktemp("site")
    first = _run_builder(base / "out", base / "cache")
    assert first.returncode == 0, f"the site build failed:\n{first.stdout[-6000:]}\n{first.stderr[-3000:]}"
    return base, first


def test_pages_exist_in_course_order_with_previous_and_next(site):
    base, _ = site
    out = base / "out"
    for page in ("index.html", f"{LECTURE}.html", f"{EXERCISE}.html", "search.html", "searchindex.js"):
        assert (out / page).is_file(), f"{page} was not built"
    lecture = _parse(out / f"{LECTURE}.html")
    assert lecture.prev == "../index.html"
    assert lecture.next == f"../{EXERCISE}.html"
    assert _parse(out / f"{EXERCISE}.html").prev == f"../{LECTURE}.html"
    assert _parse(out / "index.html").next == f"{LECTURE}.html"


def test_the_landing_page_is_the_course_map(site):
    base, _ = site
    index = (base / "out" / "index.html").read_text(encoding="utf-8")
    assert 'id="course-map"' in index
    assert f'href="{LECTURE}.html"' in index  # the map's link to a built lecture leads to its page
    # a lecture that was not built links to the notebook on GitHub instead of to a missing page
    assert f'href="{REPO}/blob/main/notebooks/03_unet_keras.ipynb"' in index


def test_figures_are_embedded_as_image_files(site):
    base, _ = site
    out = base / "out"
    images = [src for src in _parse(out / f"{LECTURE}.html").images if not urlsplit(src).scheme]
    assert images, "lecture 00 shows no figure: were the outputs executed and kept?"
    for src in images:
        data = (out / LECTURE).parent.joinpath(unquote(src)).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000, f"{src} is not a real PNG figure"
    # MyST-NB's image files go into the cache, not into a folder next to the output (its default)
    assert not (base / "jupyter_execute").exists()
    assert list((base / "cache" / "jupyter_execute").glob("*.png"))


def test_every_relative_link_resolves(site):
    base, _ = site
    out = base / "out"
    pages = [p for p in out.rglob("*.html") if p.relative_to(out).parts[0] != "_static"]
    assert len(pages) >= 5
    checked = 0
    for path in pages:
        parsed = _parse(path)
        for target in parsed.links + parsed.images:
            parts = urlsplit(target)
            if parts.scheme or parts.netloc:
                continue
            file = path if not parts.path else (path.parent / unquote(parts.path)).resolve()
            assert file.exists(), f"{path.relative_to(out)} links to {target}, which does not exist"
            checked += 1
            if parts.fragment and file.suffix == ".html" and parts.fragment not in ("", "main-content"):
                assert parts.fragment in _parse(file).ids, f"{path.relative_to(out)}: no #{parts.fragment} in {file.name}"
    assert checked > 50
    assert build_site.broken_links(out) == []


def test_fast_mode_note_and_colab_badge_on_every_notebook_page(site):
    base, _ = site
    for page in (LECTURE, EXERCISE):
        html = (base / "out" / f"{page}.html").read_text(encoding="utf-8")
        text = re.sub(r"<[^>]+>", "", html)
        assert "fast mode" in text and "COURSE_FAST=1" in text, f"{page}: no fast-mode note"
        colab = f"https://colab.research.google.com/github/segmentation-course/semantic-segmentation-course/blob/main/{page}.ipynb"
        assert f'href="{colab}"' in html, f"{page}: no Open in Colab link"
        assert "colab-badge.svg" in html
        assert "absl::InitializeLog" not in html and "I0000 00:00:" not in html  # TensorFlow's start-up log


def test_exercise_errors_are_shown_not_fatal(site):
    base, _ = site
    text = re.sub(r"<[^>]+>", "", (base / "out" / f"{EXERCISE}.html").read_text(encoding="utf-8"))
    assert "NotImplementedError" in text
    assert "conv_output_size is not written yet" in text  # the check's one-sentence message is on the page


def test_search_index_lists_the_pages(site):
    base, _ = site
    index = (base / "out" / "searchindex.js").read_text(encoding="utf-8")
    assert LECTURE in index and EXERCISE in index
    assert "receptive" in index  # a word of exercise 02 is searchable


def test_a_second_build_reuses_the_executions(site):
    base, first = site
    assert first.stdout.count("Executing notebook") == 2  # the first build executed both
    # --clean drops Sphinx's own parsed pages too, so every notebook is read again and asks the execution cache
    again = _run_builder(base / "out2", base / "cache", "--clean")
    assert again.returncode == 0, again.stdout[-4000:]
    assert "Executing notebook" not in again.stdout
    assert again.stdout.count("Using cached notebook") == 2
    assert (base / "out2" / f"{LECTURE}.html").read_text(encoding="utf-8").count("_images/") >= 2


def test_links_are_rewritten_for_the_site():
    pages = {"index", "notebooks/01_data", "notebooks/02_dense_prediction", "exercises/02_dense_prediction"}
    text = ("[next](02_dense_prediction.ipynb) [map](../README.md#course-map) [ex](../exercises/02_dense_prediction.ipynb) "
            "[gone](03_unet_keras.ipynb) [res](../benchmarks/RESULTS.md#losses) [dir](../benchmarks) "
            "[web](https://keras.io/) [here](#summary) ![img](https://x/y.svg) [far](../../elsewhere.md)")
    out = course_site.rewrite_links(text, "notebooks", pages, REPO, lambda path: path == "benchmarks")
    assert "[next](02_dense_prediction.ipynb)" in out
    assert "[map](../index.md#course-map)" in out
    assert "[ex](../exercises/02_dense_prediction.ipynb)" in out
    assert f"[gone]({REPO}/blob/main/notebooks/03_unet_keras.ipynb)" in out
    assert f"[res]({REPO}/blob/main/benchmarks/RESULTS.md#losses)" in out
    assert f"[dir]({REPO}/tree/main/benchmarks)" in out
    assert "[web](https://keras.io/)" in out and "[here](#summary)" in out and "![img](https://x/y.svg)" in out
    assert "[far](../../elsewhere.md)" in out
    # from the landing page (the repository's root)
    root = course_site.rewrite_links("[a](notebooks/01_data.ipynb) [b](environment.yml)", "", pages, REPO)
    assert root == f"[a](notebooks/01_data.ipynb) [b]({REPO}/blob/main/environment.yml)"


def test_course_order_puts_exercise_and_solution_after_their_lecture(tmp_path):
    names = [f"{folder}/{n}.ipynb" for folder, n in
             [("solutions", "02_dense_prediction"), ("notebooks", "02_dense_prediction"), ("exercises", "01_data"),
              ("notebooks", "00_setup"), ("notebooks", "01_data"), ("exercises", "02_dense_prediction")]]
    assert build_site.course_order([ROOT / n for n in names]) == [
        "notebooks/00_setup", "notebooks/01_data", "exercises/01_data",
        "notebooks/02_dense_prediction", "exercises/02_dense_prediction", "solutions/02_dense_prediction"]
    everything = build_site.course_order()
    assert len(everything) == sum(len(list((ROOT / f).glob("[0-9][0-9]_*.ipynb"))) for f in build_site.FOLDERS)
    with pytest.raises(SystemExit, match="is not a notebook file"):
        build_site.course_order([ROOT / "benchmarks" / "results" / "estimates.json"])
    stray = tmp_path / "notebooks" / "00_setup.ipynb"
    stray.parent.mkdir()
    stray.write_bytes((ROOT / "notebooks" / "00_setup.ipynb").read_bytes())
    with pytest.raises(SystemExit, match="is not in notebooks/, exercises/ or solutions/ of"):
        build_site.course_order([stray])


def test_landing_page_hides_no_notebook_and_nests_exercises():
    pages = ["notebooks/00_setup", "notebooks/01_data", "exercises/01_data", "solutions/02_dense_prediction"]
    text = build_site.landing_page(pages, (ROOT / "README.md").read_text(encoding="utf-8"), REPO)
    assert "## Course map" in text and "| 00 |" in text and "## Quick start" not in text
    toctree = text.split("```{toctree}")[1]
    # exercise 01 hangs under lecture 01; solution 02 has no lecture in this build, so it is listed itself
    assert [line for line in toctree.splitlines() if "/" in line] == [
        "notebooks/00_setup", "notebooks/01_data", "solutions/02_dense_prediction"]
    notebook = course_site.rewrite_notebook((ROOT / "notebooks" / "01_data.ipynb").read_text(), "notebooks/01_data",
                                            pages, REPO)
    assert "../exercises/01_data" in notebook and "../solutions/01_data" not in notebook


def test_the_builder_deletes_only_in_folders_it_made(tmp_path, guard_fs):
    mine = tmp_path / "notes"
    mine.mkdir()
    (mine / "thesis.md").write_text("keep me")
    for folder in (ROOT, ROOT / "notebooks", ROOT / "solutions" / "site", ROOT.parent, mine):
        with pytest.raises(SystemExit, match="refusing to use"):
            build_site.build(["notebooks/00_setup"], folder, tmp_path / "cache", clean=True)
        with pytest.raises(SystemExit, match="refusing to use"):
            build_site.build(["notebooks/00_setup"], tmp_path / "out", folder, fresh=True)
    assert (mine / "thesis.md").read_text() == "keep me"
    # a folder it made is emptied (all but its marker) and nothing outside is touched
    made = build_site._own_folder(tmp_path / "site", build_site.OUT_MARKER, "output")
    (made / "old.html").write_text("stale")
    (made / "sub").mkdir()
    (made / "sub" / "x.png").write_bytes(b"x")
    guard_fs.allow(made)
    build_site._empty(made, build_site.OUT_MARKER)
    assert [p.name for p in made.iterdir()] == [build_site.OUT_MARKER]
    assert (mine / "thesis.md").exists()


def test_only_tensorflows_start_up_log_is_left_out_of_stderr():
    stderr = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
              "I0000 00:00:1796551917.777741   20202 port.cc:153] oneDNN custom operations are on.\n"
              "W0000 00:00:1796551917.8 12 something.cc:1] a real warning\n"
              "UserWarning: the lecture's own warning\n"
              "I0000 is not a log line without its time")
    assert course_site.drop_startup_noise(stderr).splitlines() == [
        "W0000 00:00:1796551917.8 12 something.cc:1] a real warning",
        "UserWarning: the lecture's own warning",
        "I0000 is not a log line without its time"]


def test_a_dead_kernel_fails_its_notebook_instead_of_the_build(monkeypatch):
    pytest.importorskip("jupyter_cache", reason="the site extra is not installed")
    import nbformat
    from jupyter_cache.executors import utils
    from nbclient.exceptions import CellExecutionError, DeadKernelError

    def dies(*args, **kwargs):
        raise DeadKernelError("Kernel died")

    monkeypatch.setattr(utils, "executenb", dies)
    course_site._dead_kernel_is_a_failed_notebook()
    result = utils.single_nb_execution(nbformat.v4.new_notebook(), cwd=None, timeout=1, allow_errors=False)
    assert isinstance(result.err, CellExecutionError) and "kernel died" in str(result.err).lower()
    course_site._dead_kernel_is_a_failed_notebook()  # a second set-up does not wrap the wrapper again
    assert utils.executenb._course_site_original is dies
