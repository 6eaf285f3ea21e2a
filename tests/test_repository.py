"""Repository-level rules: clean notebooks, exercises in sync, the same packages
in pyproject.toml and environment.yml, and a framework-free core package."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("nbtool", ROOT / "scripts" / "nbtool.py")
nbtool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nbtool)

LECTURES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("[0-9][0-9]_*.ipynb"))
ALL_NOTEBOOKS = LECTURES + SOLUTIONS + EXERCISES


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


# ------------------------------------------------------------------ notebooks on disk
def test_every_notebook_is_clean_has_headers_and_exercises_match_solutions():
    expected = nbtool.expected_files()
    stale = [_name(p) for p, text in expected.items() if not p.exists() or p.read_text(encoding="utf-8") != text]
    extra = [_name(p) for p in EXERCISES if p not in expected]
    assert not stale and not extra, (
        f"Out of date: {stale}; exercises without a solution: {extra}. "
        "Run `python scripts/nbtool.py` and commit the result."
    )


def test_clean_strips_outputs_counts_and_metadata():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nb.cells[0].outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=3)]
    nb.cells[0].execution_count = 3
    nb.cells[0].metadata = {"collapsed": True, "tags": ["keep"]}
    nb.metadata["widgets"] = {"state": {}}
    cleaned = nbtool.clean(nb)
    cell = cleaned.cells[0]
    assert cell.outputs == [] and cell.execution_count is None
    assert cell.metadata == {"tags": ["keep"]}
    assert set(cleaned.metadata) == {"kernelspec", "language_info"}


def test_exercise_generation_replaces_solution_blocks_and_keeps_the_rest():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n\nprint('kept')"
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# Solution 09 · Test"), nbformat.v4.new_code_cell(source)]
    )
    exercise = nbtool.exercise_from_solution(nb, "test")
    assert exercise.cells[0].source == "# Exercise 09 · Test"
    body = exercise.cells[1].source
    assert "return 2 * x" not in body and "SOLUTION" not in body
    assert "    raise NotImplementedError(" in body  # keeps the block's indentation
    assert body.startswith("def f(x):") and body.endswith("print('kept')")
    with pytest.raises(ValueError, match="without"):
        nbtool.strip_solutions("### BEGIN SOLUTION\nx = 1", "bad")
    with pytest.raises(ValueError, match="nothing for the student"):
        nbtool.exercise_from_solution(nbformat.v4.new_notebook(cells=[nb.cells[0]]), "empty")


def test_headers_are_idempotent_and_follow_the_repository_url():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 01 · A\n\ntext")])
    paths = [ROOT / "notebooks" / "01_a.ipynb", ROOT / "notebooks" / "02_b.ipynb"]
    titles = dict(zip(paths, ["01 · A", "02 · B"]))
    once = nbtool.with_header(nb, paths[0], paths, titles, "someone/fork")
    twice = nbtool.with_header(once, paths[0], paths, titles, "someone/fork")
    assert once == twice
    assert "colab.research.google.com/github/someone/fork/blob/main/notebooks/01_a.ipynb" in once.cells[0].source
    assert "[02 · B →](02_b.ipynb)" in once.cells[0].source
    assert "git+https://github.com/someone/fork.git" in once.cells[1].source


@pytest.mark.parametrize("path", LECTURES + SOLUTIONS, ids=_name)
def test_notebook_opens_the_course_way(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0].source
    assert re.match(r"# (Solution )?\d\d · \S", first), f"{_name(path)}: cell 0 must start with '# NN · Title'"
    for required in ("Learning goals", "Expected run time", "Open In Colab"):
        assert required in first, f"{_name(path)}: cell 0 lacks '{required}'"
    assert nb.cells[1].source.startswith(nbtool.SETUP_MARKER), f"{_name(path)}: cell 1 must be the set-up cell"
    early_code = "\n".join(c.source for c in nb.cells[2:6] if c.cell_type == "code")
    assert "seed_everything(" in early_code, f"{_name(path)}: seed everything in the first code cells"
    last = nb.cells[-1].source
    assert "Summary" in last or path.parent.name == "solutions", f"{_name(path)}: end with a summary"


@pytest.mark.parametrize("path", SOLUTIONS, ids=_name)
def test_every_solution_checks_what_the_student_writes(path):
    nb = nbformat.read(path, as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    blocks = [i for i, src in enumerate(code) if nbtool.BEGIN_SOLUTION in src]
    assert blocks, f"{_name(path)} has nothing for the student to write"
    for i in blocks:
        following = "\n".join(code[i : i + 3])
        assert "checks." in following or "check_" in following, (
            f"{_name(path)}: the exercise cell {i} is not followed by a check"
        )


def test_pytorch_lectures_do_not_load_tensorflow():
    torch_only = [p for p in LECTURES if "pytorch" in p.name]
    for path in torch_only:
        text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        assert not re.search(r"^\s*(import|from)\s+(tensorflow|keras)\b", text, re.M), _name(path)
        assert "course_utils.keras" not in text, _name(path)


# ------------------------------------------------------------------ packaging
def _requirement_set(requirements):
    return {re.sub(r"\s+", "", r).lower().replace("_", "-") for r in requirements}


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    from_pyproject = _requirement_set(
        project["dependencies"] + extras["tensorflow"] + extras["torch"] + extras["lab"] + extras["test"] + extras["site"]
    )
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    from_env = _requirement_set(r for r in pip_section if not r.startswith("-e"))
    assert from_env == from_pyproject, (
        f"only in environment.yml: {sorted(from_env - from_pyproject)}; "
        f"only in pyproject.toml: {sorted(from_pyproject - from_env)}"
    )
    assert "-e ." in pip_section, "environment.yml must install course_utils itself (-e .)"


def test_ci_runs_exactly_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert "./course test" in readme and "./course lab" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in ci.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands[-1].strip() == "exec ./course test"


def test_readme_links_every_notebook_to_colab():
    readme = (ROOT / "README.md").read_text()
    repo = nbtool.github_path(nbtool.repository_url())
    for path in LECTURES + EXERCISES:
        link = f"https://colab.research.google.com/github/{repo}/blob/main/{_name(path)}"
        assert link in readme, f"README lacks the Colab link for {_name(path)}"


def test_setup_notebook_course_map_links_every_lecture_exercise_and_solution():
    """00's course map links every notebook on disk, relative to notebooks/ (as the README's map does)."""
    import re

    import nbformat

    setup = nbformat.read(ROOT / "notebooks" / "00_setup.ipynb", as_version=4)
    course_map = next(c.source for c in setup.cells if c.cell_type == "markdown" and "## The course map" in c.source)
    links = set(re.findall(r"\]\(([^)#]+\.ipynb)\)", course_map))
    for path in LECTURES:
        assert path.name in links, f"00's course map lacks the lecture {_name(path)}"
    for path in EXERCISES + SOLUTIONS:
        assert f"../{_name(path)}" in links, f"00's course map lacks {_name(path)}"


# ------------------------------------------------------------------ framework-free core
FRAMEWORK_FREE = [
    "course_utils", "course_utils.env", "course_utils.data", "course_utils.download", "course_utils.metrics",
    "course_utils.viz", "course_utils.checks", "course_utils.tiling", "course_utils.explorer",
    "course_utils.sizes", "course_utils.losses", "course_utils.oom", "course_utils.pets", "course_utils.timing",
    "course_utils.datasets",
    "course_utils.multiseed",
]


def test_core_modules_import_neither_tensorflow_nor_torch():
    present = [m for m in FRAMEWORK_FREE if importlib.util.find_spec(m) is not None]
    assert "course_utils.data" in present and "course_utils.metrics" in present
    code = (
        "import importlib, sys\n"
        f"for name in {present!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras', 'torch', 'jax') if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"importing the core loaded: {result.stdout.strip()}"


def test_pytorch_side_does_not_load_tensorflow():
    code = (
        "import sys, course_utils.torch.models, course_utils.torch.train, course_utils.torch.data\n"
        "print(','.join(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# ------------------------------------------------------------------ the Colab set-up cell
def _core_dependency_names() -> set[str]:
    with open(ROOT / "pyproject.toml", "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    return {re.match(r"[A-Za-z0-9_.-]+", d).group(0).lower() for d in deps}


@pytest.mark.parametrize("path", ALL_NOTEBOOKS, ids=_name)
def test_first_code_cell_is_the_one_set_up_template(path):
    nb = nbformat.read(path, as_version=4)
    template = nbtool.setup_cell_source(nbtool.github_path(nbtool.repository_url()))
    assert nb.cells[1].cell_type == "code" and nb.cells[1].source == template, (
        f"{_name(path)}: cell 1 differs from scripts/nbtool.py's setup_cell_source: run `python scripts/nbtool.py`."
    )


def test_set_up_cell_installs_course_utils_without_touching_the_frameworks(monkeypatch, capsys):
    frameworks = {"tensorflow", "tensorflow-cpu", "keras", "torch", "torchvision", "jax"}
    core = _core_dependency_names()
    assert not core & frameworks, "the core dependencies must not pull a framework over Colab's builds"
    assert set(nbtool.CORE_IMPORTS.values()) == core, "nbtool.CORE_IMPORTS must list pyproject's core dependencies"

    calls = []
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(subprocess, "run", lambda args, **kwargs: calls.append(list(args)))
    monkeypatch.setattr(importlib.util, "find_spec",  # Colab: no course_utils and no pooch
                        lambda name, *a: None if name in ("course_utils", "pooch") else real_find_spec(name, *a))
    source = nbtool.setup_cell_source("someone/fork")
    compile(source, "setup-cell", "exec")  # valid on the running Python (Colab's is 3.10+)
    exec(source, {})
    pip = [sys.executable, "-m", "pip", "install", "-q"]
    assert calls == [pip + ["--no-deps", "course-utils @ git+https://github.com/someone/fork.git"], pip + ["pooch"]]
    assert not any(word in frameworks for call in calls for word in call)
    first_line = capsys.readouterr().out.splitlines()[0]
    assert first_line == "Set-up: installed course_utils and pooch; TensorFlow, Keras and PyTorch are left as they are."


# ------------------------------------------------------------------ full-mode estimates in the headers
def test_every_lecture_header_quotes_its_full_mode_estimate_and_fits_a_t4():
    import json

    table = json.loads((ROOT / "benchmarks" / "results" / "estimates.json").read_text())["notebooks"]
    for path in LECTURES:
        assert path.stem in table, (f"{path.stem} has no full-mode estimate: add its runs to RUNS and NOTEBOOKS in "
                                    "benchmarks/estimates.py, then run it with --write and run scripts/nbtool.py")
        estimate = table[path.stem]
        assert estimate["t4_minutes"] <= 15 and estimate["t4_gb"] <= 14, f"{path.stem} does not fit a Colab T4"
        expected = nbtool.full_mode_estimates()[path.stem]
        first = nbformat.read(path, as_version=4).cells[0].source
        assert f"{expected} on a Colab T4 GPU in full mode (estimated: benchmarks/results/estimates.md)" in first


def test_run_time_line_is_rewritten_only_in_its_place():
    text = "**Expected run time:** about 2 min on CPU in fast mode, about 10 min on a Colab GPU in full mode.\nMore."
    path = ROOT / "notebooks" / "03_unet_keras.ipynb"
    once = nbtool.with_run_time(text, path)
    assert once.startswith("**Expected run time:** about 2 min on CPU in fast mode, about ")
    assert once.endswith(" on a Colab T4 GPU in full mode (estimated: benchmarks/results/estimates.md).\nMore.")
    assert nbtool.with_run_time(once, path) == once
    solution = nbtool.with_run_time(text, ROOT / "solutions" / "03_unet_keras.ipynb")  # the solution's own row
    assert solution == nbtool.with_run_time(text, ROOT / "exercises" / "03_unet_keras.ipynb")
    assert f"{nbtool.full_mode_estimates()['solutions/03_unet_keras']} on a Colab T4 GPU in full mode" in solution
    assert nbtool.with_run_time(text, ROOT / "benchmarks" / "03_unet_keras.ipynb") == text  # no row: unchanged


def test_every_solution_and_exercise_header_quotes_its_full_mode_estimate_and_fits_a_t4():
    import json

    table = json.loads((ROOT / "benchmarks" / "results" / "estimates.json").read_text())["notebooks"]
    estimates = nbtool.full_mode_estimates()
    for path in SOLUTIONS + EXERCISES:
        key = nbtool.estimate_key(path)
        if path.stem == "09_capstone":  # the student's own data set: no estimate
            assert key not in table
            continue
        assert key in table, f"{key} has no full-mode estimate in benchmarks/estimates.py"
        assert table[key]["t4_minutes"] <= 15 and table[key]["t4_gb"] <= 14, f"{key} does not fit a Colab T4"
        first = nbformat.read(path, as_version=4).cells[0].source
        line = f"{estimates[key]} on a Colab T4 GPU in full mode (estimated: benchmarks/results/estimates.md)"
        assert line in first, f"{_name(path)}: run scripts/nbtool.py"




def test_readme_lists_every_data_url_and_checksum():
    """The README's "Data sources and checksums" names what the code downloads and verifies."""
    from course_utils import download, pets

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for url in pets.URLS.values():
        assert url in readme, f"README lacks the Pet URL {url}"
    for md5 in pets.MD5.values():
        assert md5 in readme, f"README lacks the Pet checksum {md5}"
    files = download.get_dataset("isbi2012-membrane").files
    assert len(files) == 60
    for digest in (f.known_hash.split(":", 1)[1] for f in files):
        assert digest in readme, f"README lacks the ISBI checksum {digest}"


def test_course_script_parses_and_lists_every_command():
    """A syntax error in ./course breaks every command (and CI) at once; its usage names each case."""
    import subprocess

    script = ROOT / "course"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert usage.returncode == 2
    for command in ("./course lab", "./course test", "./course grade", "./course dry-run"):
        assert command in usage.stdout, f"./course's usage text lacks {command}"
