#!/usr/bin/env python3
"""Data-parallel scaling: images/s of the U-Net for 1 and 2 devices, in both frameworks.

Runs the course's scripts as a user would: ``torchrun --standalone --nproc_per_node=N
scripts/train_ddp_torch.py`` (one process per device; gloo on the CPU) and ``scripts/train_mirrored_keras.py
--devices N`` (MirroredStrategy over N logical CPU devices, or all GPUs), each for a fixed number of steps
at the same global batch, several seeds, and reads the images/s that rank 0 logged (the first step, with
start-up and tracing, is not timed).

    python benchmarks/data_parallel.py --json benchmarks/results/data_parallel.json \
        --markdown benchmarks/results/data_parallel.md
    python benchmarks/data_parallel.py --quick         # tiny: checks that it runs

On a CPU each "device" gets ``--threads`` cores (default 1); a row "1 device, all threads" shows what one
process does with every core, the fair baseline for a CPU. Two CPU cores are no cluster: the point of the
numbers is how the mechanics cost and scale, not a speed-up to expect on GPUs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import machine  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frameworks", nargs="+", default=["torch", "keras"], choices=["torch", "keras"])
    parser.add_argument("--devices", nargs="+", type=int, default=[1, 2], help="processes / replicas to compare")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=25, help="optimizer steps per run (the first is not timed)")
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--base-filters", type=int, default=8)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per device (process or replica)")
    parser.add_argument("--json", type=Path, help="write the rows as JSON here")
    parser.add_argument("--markdown", type=Path, help="write the table as Markdown here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: only checks that the script runs")
    parser.add_argument("--note", help="a sentence on the circumstances, shown under the table")
    parser.add_argument("--render", action="store_true",
                        help="run nothing: rebuild --markdown from the saved --json (with --note, if given)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.steps, args.image_size, args.base_filters, args.depth = [0], 3, 32, 4, 2
        args.global_batch = 4
    return args


def _common(args, seed: int) -> list[str]:
    return ["--steps", str(args.steps), "--global-batch", str(args.global_batch), "--image-size",
            str(args.image_size), "--num-images", str(max(4 * args.global_batch, 64)), "--base-filters",
            str(args.base_filters), "--depth", str(args.depth), "--seed", str(seed)]


def command(framework: str, devices: int, args, seed: int, out: Path) -> list[str]:
    if framework == "torch":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={devices}",
                str(ROOT / "scripts" / "train_ddp_torch.py"), *_common(args, seed), "--out", str(out)]
    return [sys.executable, str(ROOT / "scripts" / "train_mirrored_keras.py"), "--devices", str(devices),
            *_common(args, seed), "--out", str(out)]


def run_one(framework: str, devices: int, threads: int, args, seed: int) -> dict:
    env = machine.with_local_data(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    # torch: threads per process; TensorFlow: one process, its intra-op pool is shared by the replicas
    env["OMP_NUM_THREADS"] = str(threads)
    tf_threads = threads * (devices if framework == "keras" else 1)
    env["TF_NUM_INTRAOP_THREADS"] = str(tf_threads)
    env["TF_NUM_INTEROP_THREADS"] = str(max(2, devices))
    with tempfile.TemporaryDirectory(prefix="data-parallel-") as folder:
        out = Path(folder) / "run"
        start = time.perf_counter()
        result = subprocess.run(command(framework, devices, args, seed, out), cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=1800)
        wall = time.perf_counter() - start
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
            return {"error": f"exit {result.returncode}: {' | '.join(tail)}"}
        log = json.loads((out / "log.json").read_text())
    return {"images_per_s": log["summary"]["images_per_s"], "final_loss": log["summary"]["final_loss"],
            "wall_seconds": wall}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.render:
        if not (args.json and args.markdown):
            raise SystemExit("--render needs --json (to read) and --markdown (to write)")
        payload = json.loads(args.json.read_text())
        if args.note:
            payload["note"] = args.note
            args.json.write_text(json.dumps(payload, indent=1))
        args.markdown.write_text(markdown(payload))
        return 0
    configurations = []
    for framework in args.frameworks:
        for devices in args.devices:
            configurations.append((framework, devices, args.threads))
        if 1 in args.devices and max(args.devices) > 1:  # one device with every core the others use together
            configurations.append((framework, 1, args.threads * max(args.devices)))
    rows = []
    for framework, devices, threads in configurations:
        runs = [run_one(framework, devices, threads, args, seed) for seed in args.seeds]
        errors = [run["error"] for run in runs if "error" in run]
        rates = [run["images_per_s"] for run in runs if "error" not in run]
        row = {"framework": "PyTorch DDP (torchrun)" if framework == "torch" else "Keras MirroredStrategy",
               "devices": devices, "threads_per_device": threads if framework == "torch" or devices == 1 else None,
               "total_threads": threads * devices, "global_batch": args.global_batch,
               "per_device_batch": args.global_batch // devices, "runs": len(rates),
               "images_per_s_median": statistics.median(rates) if rates else None,
               "images_per_s_min": min(rates) if rates else None, "images_per_s_max": max(rates) if rates else None,
               "images_per_s_all": rates, "final_losses": [run["final_loss"] for run in runs if "error" not in run]}
        if errors:
            row["errors"] = errors
        rows.append(row)
        print(f"{row['framework']}, {devices} device(s), {threads} thread(s) each: {rates}", flush=True)
    payload = {"benchmark": "data_parallel", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "machine": machine.description(), "settings": settings(args), "rows": rows}
    if args.note:
        payload["note"] = args.note
    text = markdown(payload)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1))
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
    return 1 if any("errors" in row for row in rows) else 0


def settings(args) -> str:
    return (f"U-Net depth {args.depth}, base_filters {args.base_filters}, {args.image_size} px synthetic scenes "
            f"(4 classes), global batch {args.global_batch}, SGD, {args.steps} steps per run (first not timed), "
            f"seeds {', '.join(map(str, args.seeds))}")


def markdown(payload: dict) -> str:
    lines = ["# Data-parallel scaling (`benchmarks/data_parallel.py`)", "",
             f"Recorded {payload['created']}. {payload['settings']}.", "", *payload["machine"], "",
             "| framework | devices | threads in all | per-device batch | images/s (median) | min - max | runs |",
             "|---|---|---|---|---|---|---|"]
    for row in payload["rows"]:
        if row["images_per_s_median"] is None:
            lines.append(f"| {row['framework']} | {row['devices']} | {row['total_threads']} | "
                         f"{row['per_device_batch']} | failed | | 0 |")
            continue
        lines.append(f"| {row['framework']} | {row['devices']} | {row['total_threads']} | {row['per_device_batch']} | "
                     f"{row['images_per_s_median']:.1f} | {row['images_per_s_min']:.1f} - "
                     f"{row['images_per_s_max']:.1f} | {row['runs']} |")
    lines += ["", "Indicative only: the machine was shared with other jobs while this ran (see the load average "
              "above), so timings move from run to run. Two CPU cores are no cluster: each device here is one core, "
              "the all-reduce goes through shared memory, and the per-device batch halves with two devices, so "
              "this shows the cost of the mechanics, not the speed-up of GPUs with their own memory and NVLink."]
    if payload.get("note"):
        lines += ["", payload["note"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
