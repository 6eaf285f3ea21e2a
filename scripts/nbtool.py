#!/usr/bin/env python3
"""Keep the course's notebooks tidy: clean, headers, exercises.

    python scripts/nbtool.py            # run before committing a notebook
    python scripts/nbtool.py --check    # change nothing; exit 1 and list what is out of date

It does three things, idempotently, to every notebook in notebooks/, solutions/
and exercises/:
  1. clean: strip outputs, execution counts and machine-specific metadata;
  2. headers: write the Colab badge, previous/next links and the set-up cell;
  3. exercises: regenerate exercises/ from solutions/ (each
     ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` block becomes a TODO and
     ``raise NotImplementedError``). Never edit exercises/ by hand.

The repository's public URL is read from ``[project.urls] Repository`` in
pyproject.toml, so badges and the Colab install cell follow a fork that edits it.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import nbformat

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("notebooks", "solutions", "exercises")

NAV_START = "<!-- nav:start -->"
NAV_END = "<!-- nav:end -->"
SETUP_MARKER = "# Course set-up"
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"

#: What JupyterLab writes into a notebook when its kernel starts (the kernelspec of ipykernel's ``python3`` and
#: the kernel's ``language_info``), stored so that opening a notebook does not mark it modified. Left out:
#: ``language_info.version``, the patch level of whichever Python runs the kernel (machine-specific; the kernel
#: still adds it on opening).
NOTEBOOK_METADATA = {
    "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
    "language_info": {
        "codemirror_mode": {"name": "ipython", "version": 3},
        "file_extension": ".py",
        "mimetype": "text/x-python",
        "name": "python",
        "nbconvert_exporter": "python",
        "pygments_lexer": "ipython3",
    },
}


def repository_url() -> str:
    """The public GitHub URL of the course, from pyproject.toml."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        url = tomllib.load(f)["project"]["urls"]["Repository"]
    return url.rstrip("/").removesuffix(".git")


def github_path(url: str) -> str:
    """'https://github.com/owner/repo' -> 'owner/repo'."""
    match = re.match(r"https://github\.com/([^/]+/[^/]+)$", url)
    if not match:
        raise ValueError(
            f"[project.urls] Repository = {url!r} in pyproject.toml is not a "
            "'https://github.com/OWNER/REPO' URL; Colab links need one."
        )
    return match.group(1)


def notebook_paths(folder: str) -> list[Path]:
    return sorted((ROOT / folder).glob("[0-9][0-9]_*.ipynb"))


def read(path: Path):
    return nbformat.read(path, as_version=4)


def dumps(nb) -> str:
    return nbformat.writes(nb) + "\n"


def title_of(nb) -> str:
    """The notebook's title: the first line of cell 0 without the leading '#'."""
    first = nb.cells[0].source.splitlines()[0] if nb.cells else ""
    if not first.startswith("# "):
        raise ValueError("the first cell must start with a '# NN · Title' heading")
    return first[2:].strip()


# ---------------------------------------------------------------- clean
def clean(nb):
    """Strip outputs, execution counts and metadata that differ between machines."""
    nb = copy.deepcopy(nb)
    nb.metadata = copy.deepcopy(NOTEBOOK_METADATA)
    for cell in nb.cells:
        tags = cell.get("metadata", {}).get("tags")
        cell.metadata = {"tags": tags} if tags else {}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    return nb


# ---------------------------------------------------------------- headers
#: Import name -> pip name of pyproject.toml's core dependencies (a test keeps the two in sync). None of
#: them pulls in TensorFlow, Keras or PyTorch; Colab ships all but pooch.
CORE_IMPORTS = {"numpy": "numpy", "scipy": "scipy", "matplotlib": "matplotlib", "ipywidgets": "ipywidgets",
                "PIL": "pillow", "pooch": "pooch", "tqdm": "tqdm"}


def setup_cell_source(repo: str) -> str:
    """The first code cell of every notebook (one template; ``tests/test_repository.py`` checks each notebook).

    Where ``course_utils`` is missing (Colab), it installs the package with ``--no-deps`` and then only the
    core dependencies that are missing, so pip never touches Colab's TensorFlow, Keras, PyTorch or NumPy
    builds; plain ``pip`` into the running kernel's site-packages, so no restart is needed. One line says
    what it did.
    """
    install = f"course-utils @ git+https://github.com/{repo}.git"
    pairs = [f'"{name}": "{pip}"' for name, pip in CORE_IMPORTS.items()]
    return "\n".join(
        [
            f"{SETUP_MARKER} (the same in every notebook): on Colab, install the helper package only.",
            "import importlib, importlib.util, subprocess, sys",
            'if importlib.util.find_spec("course_utils") is None:  # --no-deps: never reinstall a framework',
            "    core = {" + ", ".join(pairs[:4]) + ",",
            "            " + ", ".join(pairs[4:]) + "}  # import name: pip name",
            "    missing = [pip for name, pip in core.items() if importlib.util.find_spec(name) is None]",
            '    pip = [sys.executable, "-m", "pip", "install", "-q"]',
            f'    subprocess.run(pip + ["--no-deps", "{install}"], check=True)',
            "    if missing:",
            "        subprocess.run(pip + missing, check=True)",
            "    importlib.invalidate_caches()",
            '    print("Set-up: installed course_utils" + (" and " + ", ".join(missing) if missing else "")',
            '          + "; TensorFlow, Keras and PyTorch are left as they are.")',
            "from course_utils import env",
            "env.setup_notebook()  # prints fast/full mode, data folder and GPU",
        ]
    )


def nav_line(path: Path, paths: list[Path], titles: dict[Path, str], repo: str) -> str:
    folder = path.parent.name
    colab = f"https://colab.research.google.com/github/{repo}/blob/main/{folder}/{path.name}"
    parts = [f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({colab})"]
    index = paths.index(path)
    if index > 0:
        prev = paths[index - 1]
        parts.append(f"[← {titles[prev]}]({prev.name})")
    parts.append("[Course map](../README.md#course-map)")
    if folder != "notebooks" and (ROOT / "notebooks" / path.name).exists():
        parts.append(f"[Lecture](../notebooks/{path.name})")
    if index + 1 < len(paths):
        nxt = paths[index + 1]
        parts.append(f"[{titles[nxt]} →]({nxt.name})")
    return " · ".join(parts)


ESTIMATES = ROOT / "benchmarks" / "results" / "estimates.json"
FULL_MODE_TIME = re.compile(r"about (?:\d+ min|a minute) on a Colab (?:T4 )?GPU in full mode(?: \(estimated[^)]*\))?")


def full_mode_estimates() -> dict[str, str]:
    """Lecture name -> "about N min" on a Colab T4 in full mode, from benchmarks/estimates.py's table."""
    if not ESTIMATES.exists():
        return {}
    notebooks = json.loads(ESTIMATES.read_text(encoding="utf-8"))["notebooks"]
    import math

    return {name: f"about {max(1, math.ceil(nb['t4_minutes']))} min" for name, nb in notebooks.items()}


def estimate_key(path: Path) -> str | None:
    """The notebook's row in benchmarks/results/estimates.json: "NAME" for a lecture, "solutions/NAME" for a
    solution and for the exercise generated from it (the student runs the same cells)."""
    folder = path.parent.name
    if folder == "notebooks":
        return path.stem
    return f"solutions/{path.stem}" if folder in ("solutions", "exercises") else None


def with_run_time(text: str, path: Path) -> str:
    """Write the notebook's full-mode estimate into its "Expected run time" line (when the table has its row)."""
    estimate = full_mode_estimates().get(estimate_key(path))
    if estimate is None:
        return text
    line = f"{estimate} on a Colab T4 GPU in full mode (estimated: benchmarks/results/estimates.md)"
    return FULL_MODE_TIME.sub(lambda _: line, text, count=1)


def with_header(nb, path: Path, paths: list[Path], titles: dict[Path, str], repo: str):
    """Return a copy of ``nb`` with the navigation line and the set-up cell refreshed."""
    nb = copy.deepcopy(nb)
    first = nb.cells[0]
    lines = first.source.splitlines()
    nav = f"{NAV_START}\n{nav_line(path, paths, titles, repo)}\n{NAV_END}"
    text = "\n".join(lines)
    if NAV_START in text:
        text = re.sub(re.escape(NAV_START) + r".*?" + re.escape(NAV_END), lambda _: nav, text, flags=re.S)
    else:
        text = "\n".join([lines[0], nav] + lines[1:])
    first.source = with_run_time(text, path)
    setup = setup_cell_source(repo)
    if len(nb.cells) > 1 and nb.cells[1].cell_type == "code" and nb.cells[1].source.startswith(SETUP_MARKER):
        nb.cells[1].source = setup
    else:
        cell = nbformat.v4.new_code_cell(setup)
        cell.id = "course-setup"
        nb.cells.insert(1, cell)
    return nb


# ---------------------------------------------------------------- exercises
def strip_solutions(source: str, where: str) -> str:
    """Replace each BEGIN/END SOLUTION block by a TODO and ``raise NotImplementedError``."""
    out, inside, indent = [], False, ""
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped == BEGIN_SOLUTION:
            if inside:
                raise ValueError(f"{where}, line {number}: nested {BEGIN_SOLUTION}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# TODO: your code here (replace the line below).")
            out.append(f'{indent}raise NotImplementedError("Exercise: write this part, then run the check below.")')
        elif stripped == END_SOLUTION:
            if not inside:
                raise ValueError(f"{where}, line {number}: {END_SOLUTION} without {BEGIN_SOLUTION}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{where}: {BEGIN_SOLUTION} without {END_SOLUTION}")
    return "\n".join(out)


def exercise_from_solution(nb, name: str):
    """The student version of a solution notebook."""
    nb = copy.deepcopy(nb)
    found = 0
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and BEGIN_SOLUTION in cell.source:
            found += cell.source.count(BEGIN_SOLUTION)
            cell.source = strip_solutions(cell.source, f"{name} cell {index}")
    if not found:
        raise ValueError(f"{name} has no {BEGIN_SOLUTION} block: nothing for the student to write")
    first = nb.cells[0]
    lines = first.source.splitlines()
    lines[0] = lines[0].replace("# Solution", "# Exercise", 1)
    first.source = "\n".join(lines)
    return nb


# ---------------------------------------------------------------- driver
def expected_files() -> dict[Path, str]:
    """Every notebook file as it should be on disk."""
    repo = github_path(repository_url())
    result: dict[Path, str] = {}
    cleaned = {folder: {p: clean(read(p)) for p in notebook_paths(folder)} for folder in ("notebooks", "solutions")}
    exercises = {
        ROOT / "exercises" / p.name: exercise_from_solution(nb, f"solutions/{p.name}")
        for p, nb in cleaned["solutions"].items()
    }
    cleaned["exercises"] = exercises
    for folder, notebooks in cleaned.items():
        paths = sorted(notebooks)
        titles = {p: title_of(nb) for p, nb in notebooks.items()}
        for p, nb in notebooks.items():
            result[p] = dumps(with_header(nb, p, paths, titles, repo))
    return result


def remove_stale_exercise(path: Path) -> None:
    """Delete an exercise notebook whose solution is gone; only ever a .ipynb inside exercises/."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from course_utils.safety import remove

    if Path(path).suffix != ".ipynb":
        raise ValueError(f"refusing to delete {path}: only exercise notebooks (.ipynb) are removed.")
    remove(path, inside=ROOT / "exercises")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if anything is out of date")
    args = parser.parse_args(argv)
    expected = expected_files()
    stale_exercises = set((ROOT / "exercises").glob("*.ipynb")) - set(expected)
    changed = []
    for path, text in expected.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            changed.append(path)
            if not args.check:
                path.parent.mkdir(exist_ok=True)
                path.write_text(text, encoding="utf-8")
    for path in stale_exercises:
        changed.append(path)
        if not args.check:
            remove_stale_exercise(path)
    for path in changed:
        verb = "out of date" if args.check else "updated"
        print(f"{verb}: {path.relative_to(ROOT)}")
    if args.check and changed:
        print("Run `python scripts/nbtool.py` and commit the result.", file=sys.stderr)
        return 1
    if not changed:
        print("All notebooks are clean, with headers, and the exercises match the solutions.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
