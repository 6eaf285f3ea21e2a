"""Start-up and notebook hygiene (issue 23): a notebook opened in JupyterLab is not changed by its kernel's
metadata, and `./course lab` kernels show no TensorFlow start-up lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for folder in ("notebooks", "solutions", "exercises") for p in (ROOT / folder).glob("*.ipynb"))


def _kernel_metadata():
    """What JupyterLab writes when the kernel starts: the kernelspec and the kernel's language_info."""
    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.kernelspec import get_kernel_dict

    spec = get_kernel_dict()  # ipykernel's own python3 kernelspec (what a course environment installs)
    kernelspec = {"name": "python3", "display_name": spec["display_name"], "language": spec["language"]}
    language_info = {k: v for k, v in IPythonKernel.language_info.items() if k != "version"}
    return kernelspec, json.loads(json.dumps(language_info))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_stored_metadata_is_what_the_kernel_writes(path):
    """JupyterLab marks a notebook modified when the kernel's metadata differs from the stored one; only the
    machine-specific Python version is left for the kernel to add."""
    kernelspec, language_info = _kernel_metadata()
    metadata = json.loads(path.read_text(encoding="utf-8"))["metadata"]
    assert metadata["kernelspec"] == kernelspec
    assert metadata["language_info"] == language_info


def _lab_environment() -> dict:
    """The environment `./course lab` gives JupyterLab (and so its kernels), read from the course script."""
    script = ("set -e; source <(sed -n '/^lab_quiet_env() {/,/^}/p' course); "
              "declare -F lab_quiet_env >/dev/null; lab_quiet_env; env -0")
    out = subprocess.run(["bash", "-c", script], cwd=ROOT, check=True, capture_output=True).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def test_lab_kernels_show_no_tensorflow_start_up_lines(tmp_path):
    pytest.importorskip("tensorflow")
    from nbclient import NotebookClient

    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "ABSL", "GLOG"))}
    lab = _lab_environment()
    assert lab.get("TF_CPP_MIN_LOG_LEVEL") == "2"
    env.update({k: lab[k] for k in lab if k.startswith("TF_")})
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import keras\nimport tensorflow as tf\nprint(float(keras.ops.sum(keras.ops.ones((2, 2)))))")])
    # the kernel gets exactly the lab's TensorFlow settings (nbclient starts it with this process's environment)
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    outputs = nb.cells[0].outputs
    stderr = "".join(o.get("text", "") for o in outputs if o.get("name") == "stderr")
    assert stderr == "", stderr
    assert "4.0" in "".join(o.get("text", "") for o in outputs if o.get("name") == "stdout")


def test_the_lab_adds_the_kernels_python_version_on_open_and_drops_it_on_save(tmp_path):
    """What JupyterLab receives for a stored notebook equals what the kernel will write (so opening it does not
    mark it modified), and what it saves is the stored form again (no machine-specific version on disk)."""
    import asyncio

    pytest.importorskip("jupyter_server")
    from ipykernel.ipkernel import IPythonKernel

    from course_utils.lab_contents import CourseContentsManager

    stored = ROOT / "notebooks" / "00_setup.ipynb"
    (tmp_path / "n.ipynb").write_text(stored.read_text(encoding="utf-8"), encoding="utf-8")
    manager = CourseContentsManager(root_dir=str(tmp_path))
    model = asyncio.run(manager.get("n.ipynb"))
    kernel_info = json.loads(json.dumps(IPythonKernel.language_info))
    assert model["content"]["metadata"]["language_info"] == kernel_info       # version included
    assert model["content"]["metadata"]["kernelspec"] == _kernel_metadata()[0]

    asyncio.run(manager.save({"type": "notebook", "format": "json", "content": model["content"]}, "saved.ipynb"))
    saved = json.loads((tmp_path / "saved.ipynb").read_text(encoding="utf-8"))
    assert saved["metadata"] == json.loads(stored.read_text(encoding="utf-8"))["metadata"]
    assert "version" not in saved["metadata"]["language_info"]


def test_course_lab_starts_jupyterlab_with_the_course_contents_manager():
    script = (ROOT / "course").read_text(encoding="utf-8")
    lab = script[script.index("    lab)"):script.index(";;", script.index("    lab)"))]
    assert "--ServerApp.contents_manager_class=course_utils.lab_contents.CourseContentsManager" in lab
