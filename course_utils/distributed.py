"""Data-parallel training without a framework: batch sizes, the learning-rate rule, sharding, rank-0 logs.

Data parallelism copies the model to ``world_size`` devices (processes in PyTorch's ``torchrun``, replicas
in ``tf.distribute``). Every step, each device takes its own slice of one **global batch**, computes the
gradient of the mean loss on that slice, and the devices average their gradients (an all-reduce) before
every copy applies the same update. With equal slices, the average of per-device means *is* the mean over
the global batch, so ``world_size`` devices with per-device batch ``b`` take exactly the step one device
takes with batch ``world_size * b`` (tests/test_distributed.py checks this on the CPU).

This module holds what both frameworks share (``course_utils.torch.distributed`` and
``course_utils.keras.distributed`` build on it):

* :func:`per_device_batch_size` and :func:`scale_learning_rate` (the linear scaling rule);
* :func:`accumulation_steps`, gradient accumulation as the one-device substitute for a bigger batch;
* :func:`shard_indices`, which sample each rank visits in an epoch (``DistributedSampler``'s contract, in
  the course's shared visiting order :func:`course_utils.data.epoch_order`);
* :class:`RunLog`, a JSON log that only rank 0 writes;
* :func:`tf_config`, the ``TF_CONFIG`` value that tells each machine of a Keras multi-worker run its role;
* lecture 11's plumbing: :func:`run_scripts` starts the training scripts as separate processes (a notebook
  cannot host DDP workers) and waits for them, :func:`code_lines` shows the lines of a source file that do
  the distributed work, :func:`plot_scaling` draws ``benchmarks/data_parallel.py``'s table.

Importing it loads neither TensorFlow nor PyTorch (nor Matplotlib, until a plot is drawn).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from .data import epoch_order
from .safety import atomic_write

__all__ = [
    "per_device_batch_size",
    "scale_learning_rate",
    "accumulation_steps",
    "shard_indices",
    "tf_config",
    "is_rank0",
    "RunLog",
    "read_run_log",
    "positive_int",
    "positive_float",
    "check_script_arguments",
    "script_arguments",
    "child_environment",
    "torchrun_command",
    "run_scripts",
    "code_lines",
    "plot_scaling",
]


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be an integer of 1 or more, got {value!r}.")
    return int(value)


def per_device_batch_size(global_batch_size: int, world_size: int) -> int:
    """The batch each device processes per step: ``global_batch_size / world_size``.

    The global batch (what one optimizer step averages over) is the number to keep fixed when you change
    the number of devices: it is what the learning rate was tuned for. Raises a ValueError when it does not
    split evenly, because unequal slices would weight some samples more than others.

    >>> per_device_batch_size(32, 4)
    8
    """
    global_batch_size = _positive_int(global_batch_size, "global_batch_size")
    world_size = _positive_int(world_size, "world_size")
    if global_batch_size % world_size:
        lower = global_batch_size - global_batch_size % world_size
        raise ValueError(
            f"a global batch of {global_batch_size} does not split evenly over {world_size} devices: "
            f"use a multiple of {world_size} (e.g. {max(lower, world_size)} or {lower + world_size})."
        )
    return global_batch_size // world_size


def scale_learning_rate(base_learning_rate: float, global_batch_size: int, base_batch_size: int,
                        rule: str = "linear") -> float:
    """The learning rate for ``global_batch_size`` when ``base_learning_rate`` was tuned at ``base_batch_size``.

    rule: "linear" (Goyal et al. 2017: k times the batch, k times the learning rate; the usual rule for SGD,
          best with a few epochs of warm-up), "sqrt" (k times the batch, sqrt(k) times the learning rate;
          often better for Adam) or "none" (keep it).

    Rules of thumb, not laws: check the validation curve when you scale far (more than about 8x).

    >>> scale_learning_rate(0.01, global_batch_size=64, base_batch_size=16)
    0.04
    """
    base_learning_rate = float(base_learning_rate)
    if not base_learning_rate > 0:
        raise ValueError(f"base_learning_rate must be positive, got {base_learning_rate!r}.")
    ratio = _positive_int(global_batch_size, "global_batch_size") / _positive_int(base_batch_size, "base_batch_size")
    if rule == "linear":
        return base_learning_rate * ratio
    if rule == "sqrt":
        return base_learning_rate * math.sqrt(ratio)
    if rule == "none":
        return base_learning_rate
    raise ValueError(f'rule must be "linear", "sqrt" or "none", got {rule!r}.')


def accumulation_steps(global_batch_size: int, device_batch_size: int, world_size: int = 1) -> int:
    """How many micro-batches each device must accumulate to reach ``global_batch_size``.

    One device that fits only ``device_batch_size`` images gets the gradient of a global batch by summing
    the gradients of ``global_batch_size / device_batch_size`` micro-batches (each loss divided by that
    number) before one optimizer step: the same update, at the speed of one device.

    >>> accumulation_steps(32, device_batch_size=8)
    4
    """
    per_device = per_device_batch_size(global_batch_size, world_size)
    device_batch_size = _positive_int(device_batch_size, "device_batch_size")
    if per_device % device_batch_size:
        raise ValueError(
            f"each of the {world_size} device(s) needs {per_device} images per step, which is not a multiple of "
            f"device_batch_size={device_batch_size}: choose a device batch that divides {per_device}."
        )
    return per_device // device_batch_size


def shard_indices(n: int, rank: int, world_size: int, seed: int = 0, epoch: int = 0, shuffle: bool = True,
                  drop_last: bool = True) -> np.ndarray:
    """The sample indices that ``rank`` visits in ``epoch``, in order (int64).

    The same contract as PyTorch's ``DistributedSampler``: take the epoch's order of all ``n`` samples (here
    the course's :func:`course_utils.data.epoch_order`, shared by the Keras and PyTorch pipelines), make its
    length a multiple of ``world_size`` (``drop_last=True`` drops the tail, ``False`` repeats samples from
    the start), then give rank ``r`` the elements ``r, r + world_size, r + 2 * world_size, ...``. Every
    sample goes to exactly one rank (with ``drop_last``), and step ``t`` of all ranks together covers one
    contiguous block of the order: the global batch a single device would take at step ``t``.
    """
    n = _positive_int(n, "n")
    world_size = _positive_int(world_size, "world_size")
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an integer in [0, {world_size - 1}] for world_size={world_size}, got {rank!r}.")
    if drop_last and n < world_size:
        raise ValueError(f"{n} samples cannot be split over {world_size} ranks with drop_last=True: "
                         "use more samples or drop_last=False.")
    order = epoch_order(n, seed, epoch, shuffle)
    if drop_last:
        order = order[: n - n % world_size]
    elif n % world_size:
        padding = world_size - n % world_size
        order = np.concatenate([order, np.resize(order, padding)])
    return order[int(rank)::world_size].astype(np.int64)


def tf_config(hosts: list[str], index: int) -> str:
    """The ``TF_CONFIG`` value for worker ``index`` of a cluster of ``hosts`` (``"host:port"`` strings).

    Set it in each machine's environment before starting the same script there; worker 0 is the chief.

    >>> tf_config(["node1:12345", "node2:12345"], 1)
    '{"cluster": {"worker": ["node1:12345", "node2:12345"]}, "task": {"type": "worker", "index": 1}}'
    """
    hosts = [str(host) for host in hosts]
    if not hosts or any(":" not in host for host in hosts):
        raise ValueError(f'hosts must be a non-empty list of "host:port" strings, got {hosts!r}.')
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(hosts):
        raise ValueError(f"index must be an integer in [0, {len(hosts) - 1}], got {index!r}.")
    return json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}})


def is_rank0(rank: int | None = None) -> bool:
    """True in the process that writes logs and checkpoints.

    rank: the process's global rank; None reads the ``RANK`` variable that ``torchrun`` sets (absent, as in
    a plain ``python`` run, means rank 0).
    """
    if rank is None:
        rank = int(os.environ.get("RANK", "0"))
    return int(rank) == 0


def positive_int(text: str) -> int:
    """An ``argparse`` type: a whole number of 1 or more (``--steps 0`` or ``-5`` is refused up front).

    >>> positive_int("20")
    20
    """
    import argparse

    try:
        value = int(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number: give an integer of 1 or more") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not allowed: give an integer of 1 or more")
    return value


def positive_float(text: str) -> float:
    """An ``argparse`` type: a finite number above 0 (a learning rate)."""
    import argparse

    try:
        value = float(text)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number: give a positive number such as 0.05") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is not allowed: give a finite number above 0 such as 0.05")
    return value


def check_script_arguments(global_batch: int, world_size: int, out, num_images: int | None = None) -> Path:
    """What the data-parallel scripts check before they train; a ValueError saying what to change, else ``out``.

    * ``global_batch`` must split evenly over ``world_size`` processes/replicas (the numbers are in the
      message, with the nearest batches that work);
    * ``num_images`` (if given) must hold at least one global batch;
    * ``out`` must be a folder that can be written: a file of that name, or a read-only or full disk, is
      reported now rather than when the run ends (:func:`course_utils.results.check_writable_folder`;
      the folder is created when missing).
    """
    from .results import check_writable_folder

    try:
        per_device_batch_size(global_batch, world_size)
    except ValueError as error:
        raise ValueError(f"--global-batch {global_batch} with {world_size} processes/replicas: {error}") from None
    if num_images is not None and num_images < global_batch:
        raise ValueError(f"--num-images {num_images} is fewer than one global batch of {global_batch}: "
                         f"use --num-images {global_batch} or more, or a smaller --global-batch.")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is a file, not a folder: pass a folder for log.json and the "
                         "checkpoint (e.g. runs/ddp2), or move that file away.")
    try:
        return check_writable_folder(out, "the output folder (--out)")
    except OSError as error:
        raise ValueError(str(error)) from None


class RunLog:
    """A JSON log of one training run that only rank 0 writes.

    Every process may call :meth:`step` and :meth:`save` (so the training code has no ``if rank == 0``);
    on other ranks they do nothing. On rank 0 the folder is created and checked for writing when the log
    is made (before training), so a bad path fails at once. The file is rewritten atomically at each :meth:`save`, so a reader (a
    notebook) never sees half a file, and a run that crashes leaves its last saved state.

    Layout: ``{"config": {...}, "steps": [{"step": 0, "loss": ..., ...}, ...], "summary": {...}}``.
    """

    def __init__(self, path, rank: int | None = None, config: dict | None = None):
        self.path = Path(path)
        self.rank = int(os.environ.get("RANK", "0")) if rank is None else int(rank)
        self.active = is_rank0(self.rank)
        if self.active:  # now, before training, not at the first save after it
            from .results import check_writable_folder

            check_writable_folder(self.path.parent, "the run log's folder")
        self.record = {"config": dict(config or {}), "steps": [], "summary": {},
                       "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def step(self, **values) -> None:
        """Append one row, e.g. ``log.step(step=3, loss=0.41, images_per_s=52.0)``."""
        if self.active:
            self.record["steps"].append({k: _plain(v) for k, v in values.items()})

    def save(self, **summary) -> Path | None:
        """Merge ``summary`` into the summary and write the file (rank 0); returns the path, or None elsewhere."""
        if not self.active:
            return None
        self.record["summary"].update({k: _plain(v) for k, v in summary.items()})
        text = json.dumps(self.record, indent=1)
        return atomic_write(self.path, lambda tmp: tmp.write_text(text))


def read_run_log(path) -> dict:
    """Read a :class:`RunLog` file; a clear error when the run wrote none (it failed, or this is not rank 0's folder)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no run log at {path}: did the training script finish? Its output says why not.")
    return json.loads(path.read_text())


def _plain(value):
    """JSON-friendly value: NumPy and framework scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        return value.item()
    return value


# =========================================================================== lecture 11: running the scripts
def script_arguments(**settings) -> list[str]:
    """Command-line arguments for the training scripts: ``steps=8, global_batch=4`` -> ``["--steps", "8",
    "--global-batch", "4"]`` (underscores become dashes; True adds the bare flag, False/None leave it out)."""
    arguments = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            arguments.append(flag)
        elif value is not None and value is not False:
            arguments += [flag, str(value)]
    return arguments


def child_environment(repo, threads: int = 1, hide_gpus: bool = True) -> dict:
    """The environment for a training script started from a notebook: ``repo`` on ``PYTHONPATH`` (so
    ``course_utils`` imports without installing), ``threads`` CPU threads per process (PyTorch and
    TensorFlow), TensorFlow's start-up messages off, and GPUs hidden when ``hide_gpus`` (the lecture's runs
    are CPU demonstrations)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(repo) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(OMP_NUM_THREADS=str(threads), TF_NUM_INTRAOP_THREADS=str(threads), TF_CPP_MIN_LOG_LEVEL="2")
    if hide_gpus:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def torchrun_command(script, nproc: int) -> list[str]:
    """``python -m torch.distributed.run --standalone --nproc_per_node=N script``: what ``torchrun`` runs
    (``--standalone`` picks a free port, so several runs can share a machine)."""
    import sys

    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={_positive_int(nproc, 'nproc')}",
            str(script)]


def run_scripts(commands: dict, cwd, env: dict | None = None, echo: bool = True) -> dict:
    """Start every command of ``{name: [program, arg, ...]}`` as its own process, all at once, then wait for all.

    Prints each command (paths shortened relative to ``cwd``) as it starts and, for each run, its last
    output line; returns ``{name: last line}``. A run that fails raises a RuntimeError with its exit code
    and the end of its output (the others are still waited for first, so no process is left behind).
    ``env``: the child environment (default :func:`child_environment` of ``cwd``).
    """
    import subprocess

    if not commands:
        raise ValueError("commands is empty: pass {name: [program, arguments...]}.")
    cwd = Path(cwd)
    env = child_environment(cwd) if env is None else env
    start = time.perf_counter()
    processes = {}
    for name, command in commands.items():
        command = [str(part) for part in command]
        if echo:
            print("$", " ".join(command).replace(str(cwd) + os.sep, ""))
        processes[name] = subprocess.Popen(command, cwd=cwd, env=env, text=True, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT)
    outputs = {name: process.communicate()[0] for name, process in processes.items()}
    failed = [name for name, process in processes.items() if process.returncode != 0]
    if failed:
        name = failed[0]
        raise RuntimeError(f"the run {name!r} failed (exit {processes[name].returncode}):\n{outputs[name][-3000:]}")
    last = {name: (output.strip().splitlines() or [""])[-1] for name, output in outputs.items()}
    if echo:
        for line in last.values():
            print(line)
        print(f"the {len(commands)} runs took {time.perf_counter() - start:.0f} s")
    return last


def code_lines(path, needles, context: int = 0, root=None) -> str:
    """The numbered lines of the source file ``path`` that contain one of ``needles`` (plus ``context`` lines
    before and after), as text to print: the lines of a script or helper that do the work, read from the
    file itself so that what a lecture shows never drifts from the code. Gaps are marked with ``...``;
    ``root`` shortens the path in the heading. A needle found nowhere is a ValueError (the code changed)."""
    path = Path(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    needles = [needles] if isinstance(needles, str) else list(needles)
    keep = set()
    for needle in needles:
        hits = [i for i, line in enumerate(lines) if needle in line]
        if not hits:
            raise ValueError(f"{needle!r} is not in {path}: the code changed; update the lecture's excerpt.")
        for i in hits:
            keep.update(range(max(0, i - context), min(len(lines), i + context + 1)))
    name = path.relative_to(root) if root is not None else path
    out, previous = [f"# {name}"], None
    for i in sorted(keep):
        if previous is not None and i > previous + 1:
            out.append("   ...")
        out.append(f"{i + 1:4d}  {lines[i]}")
        previous = i
    return "\n".join(out)


def plot_scaling(payload: dict, ax=None):
    """``benchmarks/data_parallel.py``'s table as horizontal bars: images/s (median, min-max over seeds) per
    configuration, one labelled row each (labels never overlap), with the load average recorded at the
    start in the title. ``payload``: the JSON the benchmark writes (``rows``, ``machine``). Returns the Figure.
    """
    import re

    import matplotlib.pyplot as plt

    rows = [r for r in payload.get("rows", []) if r.get("images_per_s_median") is not None]
    if not rows:
        raise ValueError("the benchmark table has no successful rows to plot: rerun benchmarks/data_parallel.py.")
    labels = [f"{r['framework'].split()[0]}, {r['devices']} device{'s' if r['devices'] > 1 else ''}, "
              f"{r['total_threads']} thread{'s' if r['total_threads'] > 1 else ''}" for r in rows]
    medians = np.array([r["images_per_s_median"] for r in rows], dtype=float)
    low = medians - np.array([r["images_per_s_min"] for r in rows], dtype=float)
    high = np.array([r["images_per_s_max"] for r in rows], dtype=float) - medians
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 0.45 * len(rows) + 1.4))
    else:
        fig = ax.figure
    y = np.arange(len(rows))[::-1]
    ax.barh(y, medians, xerr=[low, high], capsize=3,
            color=["tab:blue" if "PyTorch" in r["framework"] else "tab:orange" for r in rows])
    ax.set_yticks(y, labels)
    ax.set_xlabel("images/s (median, bar: min-max over seeds)")
    load = next((m.group(1) for line in payload.get("machine", []) for m in [re.search(r"load average[^0-9]*([0-9.]+)", line)]
                 if m), None)
    circumstances = f"load average {load} at the start" if load else "load not recorded"
    ax.set_title(f"data_parallel.json, indicative only ({circumstances})", fontsize=10)
    fig.tight_layout()
    return fig
