"""Sphinx configuration of the course's website (built by ``./course site``, i.e. ``scripts/build_site.py``).

Do not run sphinx-build on this folder by hand: ``scripts/build_site.py`` lays out the source folder (a
landing page made from the README's course map, and links to notebooks/, exercises/ and solutions/),
sets fast mode, and passes the pages and the cache folder through the environment variables read below.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # course_site.py, the course's own small Sphinx extension

PAGES = json.loads(os.environ.get("COURSE_SITE_PAGES", "[]"))  # docnames in course order, without index
CACHE = os.environ.get("COURSE_SITE_EXECUTION_CACHE", str(HERE.parent / ".site-cache" / "jupyter_cache"))
OUTPUTS = os.environ.get("COURSE_SITE_OUTPUTS", str(HERE.parent / ".site-cache" / "jupyter_execute"))
REPOSITORY = os.environ.get("COURSE_SITE_REPOSITORY", "")

project = "Semantic segmentation, hands-on"
author = "the course's authors"
copyright = "the course's authors (MIT licence)"

extensions = ["myst_nb", "course_site"]

root_doc = "index"
# Only the pages the builder chose (all notebooks, or a subset for the tests); nothing else is read.
include_patterns = ["index.md"] + [f"{page}.ipynb" for page in PAGES]
exclude_patterns = ["**/.ipynb_checkpoints"]

# --- MyST-NB: execute every notebook (fast mode is set by the builder), reusing earlier executions ----------
# "cache": jupyter-cache stores each executed notebook keyed by a hash of its code cells, so a rebuild
# executes only the notebooks whose code changed (or that are new).
nb_execution_mode = "cache"
nb_execution_cache_path = CACHE
nb_execution_timeout = int(os.environ.get("COURSE_SITE_CELL_TIMEOUT", "900"))  # seconds per cell
nb_execution_allow_errors = False  # exercises allow errors through their own metadata (course_site.py)
# A lecture or solution that fails is reported with its traceback, the other pages are still built, and
# scripts/build_site.py then exits with status 1 naming the notebooks that failed.
nb_execution_raise_on_error = False
nb_execution_show_tb = True
nb_merge_streams = True
myst_heading_anchors = 3  # "index.md#course-map" links resolve to the heading
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
suppress_warnings = [
    "mystnb.unknown_mime_type",  # widget views: their text form is shown instead
    "misc.highlighting_failure",  # the exercise checks' messages are not Python tracebacks
]

# --- HTML ------------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = project
html_static_path = ["_static"]
html_css_files = ["course.css"]
html_copy_source = False  # the notebooks are linked on GitHub and Colab; no copies of the sources
html_show_sourcelink = False
html_theme_options = {
    "show_navbar_depth": 1,
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "home_page_in_toc": True,
}
if REPOSITORY:
    html_theme_options.update({"repository_url": REPOSITORY, "use_repository_button": True})

# --- the course's extension (course_site.py) -------------------------------------------------------------
course_pages = PAGES
course_repository = REPOSITORY
course_root = str(HERE.parent)
course_output_folder = OUTPUTS  # the notebooks' images before Sphinx copies them into the site
