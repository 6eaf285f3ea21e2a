"""No import cycles among course_utils modules (issue 23): the imports run one way.

Every ``import`` / ``from ... import`` inside ``course_utils`` counts, also the ones inside functions
(a lazy import only hides a cycle until the function runs). data -> datasets -> viz -> metrics -> data was
such a circle; folder reading now lives in ``course_utils.folders`` and label-map files in
``course_utils.palettes``, both importing nothing from the course.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "course_utils"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """``{module: {course_utils modules it imports anywhere in its code}}`` from the source (ast, nothing run)."""
    modules = {_module_name(p): p for p in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = parts[: len(parts) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:  # "from . import viz" imports the module course_utils.viz
                    sub = f"{target}.{alias.name}"
                    edges.add(sub if sub in modules else target)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found:
                return found
    return None


def test_the_graph_sees_lazy_and_relative_imports():
    graph = import_graph()
    assert "course_utils.folders" in graph["course_utils.data"]            # module level, relative
    assert "course_utils.viz" in graph["course_utils.datasets"]            # inside a method
    assert "course_utils.metrics" in graph["course_utils.checks.capstone"]  # from .. import metrics
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_course_utils_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_folder_reading_and_palettes_import_nothing_from_the_course():
    graph = import_graph()
    assert graph["course_utils.folders"] == set() and graph["course_utils.palettes"] == set()


@pytest.mark.parametrize("module, names", [
    ("course_utils.data", ["load_folder", "rgb_to_index", "inspect_masks", "scan_masks", "unpaired_files",
                           "IMAGE_SUFFIXES", "_read_mask", "_read_image", "_list_files", "_natural_key",
                           "_apply_mapping", "_open_image", "DEFAULT_AUGMENT"]),
    ("course_utils.datasets", ["DatasetInfo", "read_palette", "write_palette", "palette_mapping", "VOID_NAMES",
                               "describe_folder", "convert_masks", "make_example_folder", "detect_layout"]),
])
def test_public_names_stay_where_notebooks_import_them(module, names):
    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{module} lost {missing}"
