"""Comparisons over several seeds: the tables of ``benchmarks/loss_comparison.py`` and
``benchmarks/architecture_comparison.py``, and how lectures 05 and 07 show them.

A *run* is one dict: ``{"name": "CE", "seed": 0, "<metric>": value, ...}`` (a trained model, or a trivial
baseline). :func:`summarise` groups the runs by name and gives, per metric, the mean, the sample standard
deviation and the range over the seeds; :func:`markdown_table` prints that as ``mean ± std`` with the
min-max range; :func:`separated` is the course's one rule for whether two rows differ by more than their
spread (lecture 08's ``dynamics.compare`` uses it too) and :func:`gap` applies it by name; :func:`write_results`
saves the runs and the summary as JSON, CSV and Markdown. In a lecture, :func:`load_results` reads the
committed file and :func:`plot_spread` draws the mean, the spread and every seed.
Framework-free (NumPy; Matplotlib only inside :func:`plot_spread`).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np


def _finite(values) -> np.ndarray:
    array = np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)
    return array[np.isfinite(array)]


def summarise(runs, metrics, by: str = "name") -> list[dict]:
    """One row per value of ``by`` (in first-seen order), for every comparison over seeds in the course.

    Args:
        runs: dicts such as ``{"name": "CE", "seed": 0, "dice": 0.8}`` (lectures 05, 07) or
            ``{"setting": "lr=0.01", "seed": 0, "dice": 0.8}`` (lecture 08, ``by="setting"``).
        metrics: a metric key or a list of them.
        by: the key that names a row.

    Returns rows ``{by: value, "seeds": runs in the group, "<m>_mean", "<m>_std", "<m>_min", "<m>_max",
    "<m>_n"}``. ``n`` counts the seeds where the metric is a finite number: a value of None (undefined, e.g. a
    precision where nothing was predicted), NaN or inf (a diverged run) or a missing key is left out, so
    ``seeds - n`` says how many seeds had none. ``std`` is the sample standard deviation (ddof=1) over those
    seeds, NaN when only one has a value (no spread can be measured from one seed); a metric with no value
    in any seed of a row gives NaN throughout.

    Raises ``ValueError`` for no runs or a run without ``by``, and ``KeyError`` for a metric that no run has
    (a misspelt name).
    """
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not runs:
        raise ValueError("summarise needs at least one run, got an empty list.")
    for metric in metrics:
        if not any(metric in run for run in runs):
            raise KeyError(f"no run has the metric {metric!r}; the runs have {sorted(set().union(*runs))}.")
    groups: dict = {}
    for run in runs:
        if by not in run:
            raise ValueError(f"every run needs a {by!r} key to be grouped by; got keys {sorted(run)}.")
        groups.setdefault(run[by], []).append(run)
    rows = []
    for key, group in groups.items():
        row = {by: key, "seeds": len(group)}
        for metric in metrics:
            values = _finite(run.get(metric) for run in group)
            row[f"{metric}_n"] = int(values.size)
            if values.size == 0:
                row.update({f"{metric}_{k}": math.nan for k in ("mean", "std", "min", "max")})
                continue
            row[f"{metric}_mean"] = float(values.mean())
            row[f"{metric}_std"] = float(values.std(ddof=1)) if values.size > 1 else math.nan
            row[f"{metric}_min"] = float(values.min())
            row[f"{metric}_max"] = float(values.max())
        rows.append(row)
    return rows


def cell(row: dict, metric: str, digits: int = 2) -> str:
    """``"0.41 ± 0.05 (0.35-0.46)"`` for a summary row; ``"n/a"`` when the metric has no value.

    One seed (or all seeds equal at ``digits``) shows the mean alone. When the metric has a value in fewer
    seeds than the row has (a precision where nothing was predicted, a diverged run), ``" [2 of 3 seeds]"``
    is appended.
    """
    mean = row.get(f"{metric}_mean", math.nan)
    if mean is None or math.isnan(mean):
        return "n/a"
    n, seeds = row.get(f"{metric}_n", row.get("seeds", 1)), row.get("seeds", 1)
    note = f" [{n} of {seeds} seeds]" if n < seeds else ""
    low, high = f"{row[f'{metric}_min']:.{digits}f}", f"{row[f'{metric}_max']:.{digits}f}"
    if n == 1 or low == high:
        return f"{mean:.{digits}f}{note}"
    return f"{mean:.{digits}f} ± {row[f'{metric}_std']:.{digits}f} ({low}-{high}){note}"


def markdown_table(rows: list[dict], metrics, first: str = "model", by: str = "name", digits: int = 2) -> str:
    """A Markdown table: one line per summary row (named by its ``by`` key), one column per metric.

    metrics: ``{key: column title}``, or a list of keys (the keys are the titles). first: the first
    column's title.
    """
    metrics = {metrics: metrics} if isinstance(metrics, str) else (
        dict(metrics) if isinstance(metrics, dict) else {m: m for m in metrics})
    head = f"| {first} | seeds | " + " | ".join(metrics.values()) + " |"
    rule = "|---|---:|" + "---:|" * len(metrics)
    lines = [head, rule]
    for row in rows:
        lines.append(f"| {row[by]} | {row['seeds']} | " + " | ".join(cell(row, m, digits) for m in metrics) + " |")
    return "\n".join(lines)


def _spread_of(row: dict, metric: str) -> float:
    std = row[f"{metric}_std"]
    return float(std) if std is not None and math.isfinite(std) else 0.0  # one seed: no measured spread


def separated(a: dict, b: dict, metric: str) -> bool:
    """The course's one rule for "a real difference" between two summary rows (each over several seeds).

    ``a`` and ``b`` hold ``<metric>_mean``, ``_std``, ``_min`` and ``_max`` (from :func:`summarise` here or
    ``course_utils.dynamics.summarise``). The difference of the means counts only when it is larger than
    **twice the larger standard deviation** *and* the seeds' ranges (min-max) do not overlap; otherwise it is
    within the seed spread. Lectures 05, 07 and 08 all judge their comparisons by this rule. False when a
    mean is NaN (nothing to compare).
    """
    ma, mb = a[f"{metric}_mean"], b[f"{metric}_mean"]
    if ma is None or mb is None or not (math.isfinite(ma) and math.isfinite(mb)):
        return False
    disjoint = a[f"{metric}_min"] > b[f"{metric}_max"] or b[f"{metric}_min"] > a[f"{metric}_max"]
    return bool(abs(ma - mb) > 2 * max(_spread_of(a, metric), _spread_of(b, metric)) and disjoint)


def gap(rows: list[dict], metric: str, a: str, b: str) -> dict:
    """How far apart two names are on ``metric``: difference of the means and the larger of the two stds.

    Returns ``{"difference": mean(a) - mean(b), "spread": max(std(a), std(b)), "separated": bool}``;
    *separated* is the course's rule, :func:`separated` (a gap beyond twice that spread, ranges disjoint).
    """
    by_name = {row["name"]: row for row in rows}
    for name in (a, b):
        if name not in by_name:
            raise KeyError(f"{name!r} is not in the table; names: {sorted(by_name)}.")
    ra, rb = by_name[a], by_name[b]
    difference = ra[f"{metric}_mean"] - rb[f"{metric}_mean"]
    spread = max(_spread_of(ra, metric), _spread_of(rb, metric))
    return {"difference": float(difference), "spread": float(spread), "separated": separated(ra, rb, metric)}


def write_results(stem: Path, payload: dict, markdown: str) -> list[Path]:
    """Write ``<stem>.json`` (``payload``: settings, runs, summary), ``<stem>.csv`` (the summary) and ``<stem>.md``."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    json_path, csv_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".csv"), stem.with_suffix(".md")
    json_path.write_text(json.dumps(payload, indent=1) + "\n")
    summary = payload.get("summary", [])
    if summary:
        keys = list(dict.fromkeys(k for row in summary for k in row))
        with csv_path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            for row in summary:
                writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})
    md_path.write_text(markdown.rstrip() + "\n")
    return [json_path, csv_path, md_path]


def find_results(name: str, start: Path | None = None) -> Path | None:
    """``benchmarks/results/<name>.json`` of the course repository above ``start`` (default: the working folder).

    Returns None when there is none (e.g. on Colab, where only the package is installed).
    """
    start = Path.cwd() if start is None else Path(start)
    for folder in [start, *start.resolve().parents]:
        candidate = folder / "benchmarks" / "results" / f"{name}.json"
        if candidate.is_file() and (folder / "course_utils").is_dir():
            return candidate
    return None


def load_results(name: str, start: Path | None = None) -> dict | None:
    """The committed multi-seed results ``<name>.json`` as a dict (keys ``setup``, ``config``, ``runs``,
    ``summary``), or None with a printed note when the file is not there."""
    path = find_results(name, start)
    if path is None:
        print(f"benchmarks/results/{name}.json is not here (the course repository is not checked out): "
              f"see it on GitHub, or run benchmarks/{name}.py.")
        return None
    payload = json.loads(path.read_text())
    for key in ("runs", "summary"):
        if key not in payload:
            raise ValueError(f"{path} has no {key!r}: rerun benchmarks/{name}.py to rewrite it.")
    return payload


def row(summary: list[dict], name, by: str = "name") -> dict:
    """The summary row whose ``by`` key is ``name`` (KeyError listing the names when there is none)."""
    for entry in summary:
        if entry[by] == name:
            return entry
    raise KeyError(f"no {by} {name!r} in the table; it has {[entry[by] for entry in summary]}.")


def plot_spread(payload: dict, metrics: dict[str, str], names: list[str] | None = None, title: str | None = None,
                ylabel: str = "score"):
    """Grouped bars (mean over seeds) with error bars (sample std) and one dot per seed.

    Args:
        payload: a loaded results dict (``runs`` and ``summary``).
        metrics: ``{metric key: label}``, one group of bars per metric.
        names: the rows to draw, in order (default: all).
    Returns the Matplotlib figure (the caller shows it).
    """
    import matplotlib.pyplot as plt

    summary = payload["summary"]
    names = [entry["name"] for entry in summary] if names is None else list(names)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.3 * len(metrics) * (len(names) + 1) * 0.45), 4.2))
    width = 0.8 / len(names)
    x = np.arange(len(metrics))
    for i, name in enumerate(names):
        entry = row(summary, name)
        means = [entry.get(f"{m}_mean", math.nan) for m in metrics]
        stds = np.nan_to_num([entry.get(f"{m}_std", 0.0) for m in metrics])  # one seed: no error bar
        offset = x - 0.4 + (i + 0.5) * width
        bars = ax.bar(offset, means, width * 0.9, yerr=stds, capsize=3, label=name, alpha=0.75)
        color = bars.patches[0].get_facecolor()
        for j, metric in enumerate(metrics):
            seeds = _finite(run.get(metric) for run in payload["runs"] if run["name"] == name)
            ax.plot(np.full(seeds.size, offset[j]), seeds, "o", ms=3, color="black", alpha=0.7,
                    markerfacecolor=color)
    ax.set_xticks(x, list(metrics.values()))
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    seeds = sorted({run["seed"] for run in payload["runs"]})
    ax.set_title(title or f"mean over {len(seeds)} seeds; bars: ± std, dots: single seeds", fontsize=10)
    fig.tight_layout()
    return fig