"""What the benchmark scripts share about the machine they run on (asks no framework to start): its
description, and the local copy of the course data that their child processes should use."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gb() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024**2:.0f} GB"
    except OSError:
        pass
    return "unknown"


def gpu() -> str:
    """Name, memory and driver of each NVIDIA GPU (``nvidia-smi``), or "none"."""
    try:
        result = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=20, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "none"
    gpus = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return "; ".join(gpus) if gpus else "none"


def version(package: str) -> str:
    for name in (package, package.replace("-", "_")):
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return "not installed"


def one_line() -> str:
    """E.g. "Intel(R) Xeon(R) Processor, 2 logical cores, GPU: none"."""
    return f"{cpu_model()}, {os.cpu_count()} logical cores, GPU: {gpu()}"


def description() -> list[str]:
    """Markdown bullet lines: CPU (with the load at the start), memory, GPU, OS and library versions."""
    load = ""
    if hasattr(os, "getloadavg"):
        load = " (load average at the start: {:.1f})".format(os.getloadavg()[0])
    tensorflow = version("tensorflow")
    if tensorflow == "not installed":
        tensorflow = version("tensorflow-cpu")
    return [
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores{load}",
        f"- Memory: {memory_gb()}",
        f"- GPU: {gpu()}",
        f"- OS: {platform.platform()}",
        f"- Python {platform.python_version()}; PyTorch {version('torch')}; TensorFlow {tensorflow}; "
        f"Keras {version('keras')}; NumPy {version('numpy')}",
    ]


def with_local_data(environ) -> dict:
    """A copy of ``environ`` whose ``COURSE_DATA_DIR`` points at ``../shared/data`` beside the repository
    when the caller set none and the ISBI slices are there (as in CI); otherwise unchanged."""
    env = dict(environ)
    shared = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
    if "COURSE_DATA_DIR" not in env and (shared / "isbi2012-membrane").is_dir():
        env["COURSE_DATA_DIR"] = str(shared)
    return env
