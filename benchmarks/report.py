#!/usr/bin/env python3
"""One command, one file: every benchmark of the course in benchmarks/RESULTS.md.

    python benchmarks/report.py            # runs everything (long: run it on a quiet machine, ideally a GPU)
    python benchmarks/report.py --quick    # tiny sizes, only the first notebook: checks that it all works
    python benchmarks/report.py --reuse    # rerun nothing: rebuild RESULTS.md from benchmarks/results/

Combines, under a description of the machine:

1. ``train_speed.py``: training step vs the course's fit helpers (its Markdown is embedded as printed,
   saved to ``results/train_speed.md``);
2. ``model_zoo.py``: U-Net / FCN-8s / DeepLabV3 training throughput in both frameworks
   (``results/model_zoo.json``);
3. ``notebook_runtimes.py``: seconds per notebook in fast mode (``results/notebook_runtimes.json``);
4. ``membrane_unet.py``: the U-Net of lectures 03/04 trained on the ISBI 2012 slices at a larger budget and
   scored on the held-out slices 25-29 (``results/membrane_unet.json``; ``--preset lecture`` on a GPU,
   ``--preset cpu`` otherwise);
6. ``loss_comparison.py`` and ``architecture_comparison.py``: lectures 05 and 07's experiments over 5 seeds, with paired verdicts
   (``results/loss_comparison.md``, ``results/architecture_comparison.md``; skipped by ``--quick``);
5. the accuracy tables of lectures 05, 07 and 09: the report executes these notebooks (``jupyter nbconvert
   --execute``) with ``COURSE_RECORD_RESULTS`` pointing at the results folder, so they write
   ``lecture05.json``, ``lecture07.json`` and ``lecture09.json`` (keys in benchmarks/README.md). They run in the caller's mode:
   full mode by default (the real numbers, for a GPU), fast mode under ``COURSE_FAST=1``; ``--quick`` leaves
   them out;
6. the training-dynamics sweeps of lecture 08 (``training_dynamics.py``): always rebuilt from the saved
   ``results/dynamics_*.json``, never rerun by this script (they take about 25 minutes on 2 CPU cores).

Use ``--skip train_speed model_zoo notebooks membranes lectures comparisons`` to leave parts out (their last saved results
are used). On a GPU, ``python benchmarks/report.py`` alone produces every full-size figure of this report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"
OUTPUT = HERE / "RESULTS.md"
sys.path.insert(0, str(HERE))

from machine import description as machine_description, gpu, with_local_data  # noqa: E402
LECTURES = {"05": "Lecture 05 · Loss functions", "07": "Lecture 07 · FCN and DeepLab",
            "09": "Lecture 09 · Capstone (Oxford-IIIT Pet)"}
PARTS = ("train_speed", "model_zoo", "notebooks", "membranes", "lectures", "comparisons")
COMPARISONS = {"loss_comparison": "Lecture 05 · loss functions over seeds",
               "architecture_comparison": "Lecture 07 · U-Net vs FCN-8s vs DeepLab over seeds"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    parser.add_argument("--reuse", action="store_true", help="run nothing; use the saved results")
    parser.add_argument("--skip", nargs="*", default=[], choices=PARTS, help="parts not to rerun")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="the Markdown file to write")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where results are saved/read")
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- running the parts
def run_script(name: str, extra: list[str]) -> tuple[int, str, str]:
    command = [sys.executable, str(HERE / name), *extra]
    print(f"[report] {' '.join(command[1:])}", file=sys.stderr, flush=True)
    result = subprocess.run(command, cwd=ROOT, env=with_local_data(os.environ), capture_output=True, text=True)
    if result.returncode:
        print(result.stderr[-3000:], file=sys.stderr)
    return result.returncode, result.stdout, result.stderr


def lecture_run(number: str, results_dir: Path, environ=None) -> tuple[list[str], dict]:
    """The command and environment that execute lecture ``number`` and record its table in ``results_dir``.

    The lecture runs in the caller's mode (``COURSE_FAST=1`` -> fast, unset -> full) from notebooks/, with
    ``COURSE_RECORD_RESULTS`` pointing at ``results_dir`` and, when the caller set no data folder, the
    ISBI slices of ``../shared/data`` if they are there.
    """
    (notebook,) = sorted((ROOT / "notebooks").glob(f"{number}_*.ipynb"))
    env = with_local_data(dict(os.environ if environ is None else environ,
                               COURSE_RECORD_RESULTS=str(results_dir.resolve())))
    env.pop("MPLBACKEND", None)  # the kernel's inline backend keeps the figures in the executed copy
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
               "--ExecutePreprocessor.timeout=7200", "--output-dir", str(results_dir.resolve()),
               "--output", f"lecture{number}-executed", str(notebook)]
    return command, env


def run_lectures(args) -> dict[str, str]:
    problems = {}
    for number in LECTURES:
        command, env = lecture_run(number, args.results_dir)
        mode = "fast" if env.get("COURSE_FAST", "").strip() not in ("", "0") else "full"
        print(f"[report] lecture {number} in {mode} mode: {' '.join(command[2:])}", file=sys.stderr, flush=True)
        result = subprocess.run(command, cwd=ROOT / "notebooks", env=env, capture_output=True, text=True)
        if result.returncode:
            print(result.stderr[-3000:], file=sys.stderr)
            problems[f"lecture {number}"] = f"the notebook failed (exit {result.returncode}): " \
                                            f"{result.stderr.strip().splitlines()[-1:]}"
    return problems


def run_parts(args) -> dict[str, str]:
    """Run the benchmarks that are not skipped; returns part -> problem text for those that failed."""
    args.results_dir.mkdir(parents=True, exist_ok=True)
    quick = ["--quick"] if args.quick else []
    problems = {}
    if args.reuse:
        return problems
    if "train_speed" not in args.skip:
        if (HERE / "train_speed.py").exists():
            code, out, err = run_script("train_speed.py", quick)
            if code == 0:
                (args.results_dir / "train_speed.md").write_text(out)
            else:
                problems["train_speed"] = f"train_speed.py failed (exit {code}): {err.strip().splitlines()[-1:]}"
        else:
            problems["train_speed"] = "benchmarks/train_speed.py is missing"
    if "model_zoo" not in args.skip:
        code, _, err = run_script("model_zoo.py", quick + ["--json", str(args.results_dir / "model_zoo.json")])
        if code:
            problems["model_zoo"] = f"model_zoo.py failed (exit {code}): {err.strip().splitlines()[-1:]}"
    if "notebooks" not in args.skip:
        code, _, _ = run_script("notebook_runtimes.py",
                                quick + ["--json", str(args.results_dir / "notebook_runtimes.json")])
        if code:
            problems["notebooks"] = "some notebooks failed: see the table"
    if "membranes" not in args.skip:
        if args.quick:
            preset = ["--preset", "fast", "--epochs", "1", "--frameworks", "torch"]
        else:
            preset = ["--preset", "lecture" if gpu() != "none" else "cpu"]
        code, _, err = run_script("membrane_unet.py", preset + ["--json", str(args.results_dir / "membrane_unet.json")])
        if code:
            problems["membranes"] = f"membrane_unet.py failed (exit {code}): {err.strip().splitlines()[-1:]}"
    if "comparisons" not in args.skip and not args.quick:  # 3 seeds each, ~25 min on 2 cores: not for --quick
        for name in COMPARISONS:
            code, _, err = run_script(f"{name}.py", ["--out", str(args.results_dir / name)])
            if code:
                problems[name] = f"{name}.py failed (exit {code}): {err.strip().splitlines()[-1:]}"
    if "lectures" not in args.skip and not args.quick:  # minutes even in fast mode: not for --quick
        problems.update(run_lectures(args))
    return problems


# ----------------------------------------------------------------------------- sections
def _load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as error:
        return {"error": f"{path.name} is not valid JSON: {error}"}


def _saved_rows(path: Path) -> tuple[dict | None, str | None]:
    """(payload, None) when ``path`` holds a script's results with "rows", else (None, what to say instead)."""
    payload = _load_json(path)
    if payload and "rows" in payload:
        return payload, None
    return None, payload.get("error", f"{path.name} has no rows.") if payload else "_Not measured yet._"


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value).replace("|", "\\|")


def _demote(markdown: str) -> str:
    """Make a script's '## Title' a '### Title' so that it nests under the report's sections."""
    return "\n".join("#" + line if line.startswith("#") else line for line in markdown.strip().splitlines())


def section_train_speed(results_dir: Path) -> list[str]:
    lines = ["## 1. Training speed and helper overhead (`train_speed.py`)", ""]
    path = results_dir / "train_speed.md"
    if path.exists():
        lines.append(_demote(path.read_text()))
    else:
        lines.append("_Not measured yet: run `python benchmarks/report.py` (or `benchmarks/train_speed.py`)._")
    return lines


def section_model_zoo(results_dir: Path) -> list[str]:
    lines = ["## 2. Model zoo: training throughput (`model_zoo.py`)", ""]
    payload, missing = _saved_rows(results_dir / "model_zoo.json")
    if missing:
        return lines + [missing]
    lines += [f"Forward + backward + update: {payload['settings']}.", "",
              "| model | framework | device | parameters | images/s | ms/step |", "|---|---|---|---:|---:|---:|"]
    batch = payload.get("batch", 1)
    for row in payload["rows"]:
        if "error" in row:
            lines.append(f"| {row['model']} | {row['framework']} | {row['device']} | - | unavailable | "
                         f"{_fmt(row['error'][:80])} |")
        else:
            lines.append(f"| {row['model']} | {row['framework']} | {row['device']} | {row['parameters']:,} | "
                         f"{row['images_per_s']:.1f} | {1000 * batch / row['images_per_s']:.1f} |")
    return lines


def section_notebooks(results_dir: Path) -> list[str]:
    lines = ["## 3. Notebook run times in fast mode (`notebook_runtimes.py`)", ""]
    payload, missing = _saved_rows(results_dir / "notebook_runtimes.json")
    if missing:
        return lines + [missing]
    if payload.get("quick"):
        lines += ["_--quick: only the first notebook was run._", ""]
    lines += ["| notebook | seconds | result |", "|---|---:|---|"]
    for row in payload["rows"]:
        lines.append(f"| {row['notebook']} | {row['seconds']:.0f} | {row['status']} |")
    total = sum(row["seconds"] for row in payload["rows"])
    passed = sum(row["status"] == "passed" for row in payload["rows"])
    lines.append(f"| **total** | **{total:.0f}** | {passed}/{len(payload['rows'])} passed |")
    return lines


def lecture_table(payload: dict) -> list[str]:
    """Markdown table of a lecture's results (the JSON contract of benchmarks/README.md)."""
    rows = payload.get("rows") or []
    if not rows:
        return ["_The file has no rows._"]
    flat_rows = []
    for row in rows:
        flat = {}
        for key, value in row.items():
            if isinstance(value, dict):  # per_class_dice: {"cell": .., "membrane": ..} -> "dice (membrane)"
                metric = key.removeprefix("per_class_")
                for cls, score in value.items():
                    flat[f"{metric} ({cls})"] = score
            else:
                flat[key] = value
        flat_rows.append(flat)
    first = ["framework", "name", "dice", "iou"]
    columns = [c for c in first if any(c in r for r in flat_rows)]
    for r in flat_rows:
        columns += [c for c in r if c not in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for r in flat_rows:
        lines.append("| " + " | ".join(_fmt(r.get(c)) for c in columns) + " |")
    return lines


def section_membranes(results_dir: Path) -> list[str]:
    lines = ["## 4. U-Net on the ISBI 2012 membranes (`membrane_unet.py`)", ""]
    payload, missing = _saved_rows(results_dir / "membrane_unet.json")
    if missing:
        return lines + [missing]
    baseline = payload.get("baseline_all_membrane", {})
    lines += [f"Preset `{payload.get('preset', '?')}`: {payload.get('setup', '')}. Trained on slices 0-19, scored "
              "on the whole 512x512 held-out slices 25-29" + (f" (\"all membrane\" scores membrane Dice "
              f"{baseline['membrane_dice']:.3f})" if "membrane_dice" in baseline else "") + ".", ""]
    from membrane_unet import table  # the script's own table: one layout for both

    lines += table(payload["rows"])
    return lines


def section_lectures(results_dir: Path) -> list[str]:
    lines = ["## 5. Accuracy tables of the lectures", ""]
    for number, title in LECTURES.items():
        lines += [f"### {title}", ""]
        payload = _load_json(results_dir / f"lecture{number}.json")
        if payload is None:
            lines += [f"_Not recorded yet: run `python benchmarks/report.py` (it executes the lecture), or "
                      f"notebooks/{number}_*.ipynb with COURSE_RECORD_RESULTS=1 (full mode for the real numbers)._", ""]
            continue
        if "error" in payload:
            lines += [payload["error"], ""]
            continue
        meta = [f"mode: **{payload.get('mode', '?')}**"]
        for key in ("dataset", "setup", "created"):
            if payload.get(key):
                meta.append(f"{key}: {payload[key]}")
        lines += ["; ".join(meta) + ".", ""] + lecture_table(payload) + [""]
    return lines


def section_comparisons(results_dir: Path) -> list[str]:
    """The multi-seed tables of loss_comparison.py and architecture_comparison.py, as the scripts wrote them."""
    lines = ["## 6. Comparisons over several seeds (lectures 05 and 07)", ""]
    for name, title in COMPARISONS.items():
        path = results_dir / f"{name}.md"
        if path.exists():
            lines += [_demote(path.read_text()), ""]
        else:
            lines += [f"### {title}", "", f"_Not measured yet: run `python benchmarks/{name}.py`._", ""]
    return lines


def section_training_dynamics(results_dir: Path) -> list[str]:
    """Lecture 08's sweep tables, rebuilt from the saved ``dynamics_*.json`` (the sweeps are not rerun here:
    they take long at a CPU budget; ``benchmarks/training_dynamics.py`` reruns them)."""
    lines = ["## 7. Training dynamics: the sweeps of lecture 08 (`training_dynamics.py`)", ""]
    if not sorted(results_dir.glob("dynamics_*.json")):
        return lines + ["_Not measured yet: run `python benchmarks/training_dynamics.py` (about 25 min on 2 CPU "
                        "cores; `report.py` does not rerun it)._"]
    from training_dynamics import summary_markdown

    body = summary_markdown(folder=results_dir).strip().splitlines()
    body = body[1:] if body and body[0].startswith("# ") else body  # the report has its own title
    lines += ["Rebuilt from the saved results; rerun with `python benchmarks/training_dynamics.py`.", ""]
    return lines + _demote("\n".join(body)).splitlines()


def build_report(args, problems: dict) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmark results",
        "",
        f"Written by `python benchmarks/report.py{' --quick' if args.quick else ''}{' --reuse' if args.reuse else ''}"
        f"{' --skip ' + ' '.join(args.skip) if args.skip else ''}` on {now}."
        + (" **--quick: tiny sizes that only show the scripts work; do not quote these numbers.**"
           if args.quick else "")
        + (" Nothing was rerun: every section comes from the files saved in benchmarks/results/ by the runs "
           "it describes." if args.reuse else "")
        + (" The skipped parts come from their earlier saved results." if args.skip and not args.reuse else ""),
        "",
        "## Machine",
        "",
        *machine_description(),
        "",
    ]
    if problems:
        lines += ["**Problems while running:**", ""] + [f"- {part}: {text}" for part, text in problems.items()] + [""]
    for section in (section_train_speed, section_model_zoo, section_notebooks, section_membranes, section_lectures,
                    section_comparisons, section_training_dynamics):
        lines += section(args.results_dir) + [""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    problems = run_parts(args)
    report = build_report(args, problems)
    args.output.write_text(report)
    print(f"[report] wrote {args.output}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
