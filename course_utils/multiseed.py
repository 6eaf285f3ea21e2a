"""Comparisons over several seeds: the tables of ``benchmarks/loss_comparison.py`` and
``benchmarks/architecture_comparison.py``, and how lectures 05 and 07 show them.

A *run* is one dict: ``{"name": "CE", "seed": 0, "<metric>": value, ...}`` (a trained model, or a trivial
baseline). :func:`summarise` groups the runs by name and gives, per metric, the mean, the sample standard
deviation and the range over the seeds; :func:`markdown_table` prints that as ``mean ± std`` with the
min-max range. Two settings run with the **same seeds** (the same data order and initial weights) are compared
**paired**: :func:`compare_paired` takes the per-seed differences and gives their mean with a confidence interval,
the seeds won and a one-sentence verdict; :func:`compare_runs` and :func:`paired_table` do that from run dicts.
:func:`separated` (and :func:`gap`, by name) is the *unpaired* rule, kept only for runs that do not share seeds.
:func:`write_results` saves the runs and the summary as JSON, CSV and Markdown (atomically). In a lecture, :func:`load_results` reads the
committed file and :func:`plot_spread` draws the mean, the spread and every seed.
Framework-free (NumPy; Matplotlib only inside :func:`plot_spread`).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np


def _number(value, where: str = "") -> float:
    """``value`` as a float (None -> NaN); a string such as ``"n/a"`` is refused with what to store instead."""
    if value is None:
        return math.nan
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where}{value!r} is not a number: store a missing value as None (or NaN for a "
                         f"diverged run), not as text.")
    return float(value)


def _finite(values, where: str = "") -> np.ndarray:
    array = np.asarray([_number(v, where) for v in values], dtype=float)
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

    Raises ``ValueError`` for no runs, a run without ``by`` or a value that is not a number (e.g. the text
    ``"n/a"``: store None instead), and ``KeyError`` for a metric that no run has
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
            values = _finite((run.get(metric) for run in group), f"{by}={key!r}, metric {metric!r}: ")
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
    """The *unpaired* rule for "a real difference" between two summary rows (each over several seeds).

    Use it only for runs that do **not** share seeds; settings trained with the same seeds are compared with
    :func:`compare_paired`, which removes the noise the seeds share and so can show smaller effects.

    ``a`` and ``b`` hold ``<metric>_mean``, ``_std``, ``_min`` and ``_max`` (from :func:`summarise` here or
    ``course_utils.dynamics.summarise``). The difference of the means counts only when it is larger than
    **twice the larger standard deviation** *and* the seeds' ranges (min-max) do not overlap; otherwise it is
    within the seed spread. False when a mean is NaN (nothing to compare). Failing this rule is not evidence that
    two settings are equal.
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


def _signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}"


def compare_paired(a, b, higher_is_better: bool = True, confidence: float = 0.95, seed: int = 0,
                   names: tuple[str, str] = ("a", "b"), method: str = "t", digits: int = 3) -> dict:
    """Compare two settings that were run with the **same seeds**, seed by seed.

    Two runs with the same seed share their data order, their augmentation draws and their initial weights, so
    much of what makes one seed score high or low is common to both settings. The per-seed difference
    ``a[i] - b[i]`` cancels that shared part; its mean, with a confidence interval, says how large the effect of
    the setting is and how sure we can be of its sign. A gap that an unpaired rule (:func:`separated`) calls
    "within the spread" can be clear once paired, when it is consistent from seed to seed.

    Args:
        a, b: per-seed scores, in the **same seed order** (``a[i]`` and ``b[i]`` come from seed ``i``).
        higher_is_better: True for scores (Dice, IoU, accuracy), False for losses and errors; decides who
            "wins" a seed and who is "better" in the verdict.
        confidence: the coverage of the interval (0.95 gives a 95 % interval).
        seed: seeds the resampling when ``method="bootstrap"`` (the t interval uses no randomness).
        names: how the verdict calls the two settings.
        method: ``"t"`` (default) or ``"bootstrap"``.

    The default interval is **Student's t interval of the mean paired difference**: mean ± t(n-1) · sd / sqrt(n).
    We use it, not a bootstrap, because the course compares 3-10 seeds: with so few values a percentile
    bootstrap has only a handful of distinct resamples and its interval is too narrow (it covers the true mean
    less often than it claims), while the t interval is exact when the differences are roughly normal and
    widens honestly as ``n`` shrinks. ``method="bootstrap"`` (percentile, 10,000 resamples) is there to compare.

    Returns a dict: ``n``, ``mean_difference`` (mean of a - b), ``sd_difference``, ``ci_low``, ``ci_high``,
    ``confidence``, ``method``, ``wins`` (seeds where a is better), ``losses`` (seeds where b is better), ``ties``,
    ``shown`` (True when the interval excludes 0: the data show a difference), ``better`` (the name of the better
    setting when shown, else None) and ``verdict``, one sentence such as
    ``"a better in 5/5 seeds, mean +0.140, 95 % CI [+0.050, +0.230]: shown"``. "Not shown" means the seeds do
    not settle the sign of the difference; it never means the two settings are equal.

    Raises ``ValueError`` for sequences of different lengths, fewer than 3 seeds (an interval from 2 differences
    is almost unbounded), a NaN, an infinity or a value that is not a number.
    """
    if isinstance(a, (str, bytes)) or isinstance(b, (str, bytes)):
        raise ValueError("compare_paired takes two sequences of per-seed scores, not text.")
    a_values, b_values = list(a), list(b)
    if len(a_values) != len(b_values):
        raise ValueError(f"compare_paired needs one score per seed on both sides, in the same seed order; got "
                         f"{len(a_values)} for {names[0]!r} and {len(b_values)} for {names[1]!r}.")
    if len(a_values) < 3:
        raise ValueError(f"compare_paired needs at least 3 seeds (got {len(a_values)}): with fewer, the interval of "
                         f"the difference is too wide to say anything. Run more seeds.")
    xa = np.array([_number(v, f"{names[0]!r}, seed position {i}: ") for i, v in enumerate(a_values)])
    xb = np.array([_number(v, f"{names[1]!r}, seed position {i}: ") for i, v in enumerate(b_values)])
    for label, values in zip(names, (xa, xb)):
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise ValueError(f"{label!r} has no finite score at seed position(s) {bad.tolist()} (NaN, inf or None, "
                             f"e.g. a diverged run): leave those seeds out of both sides, or report the divergence "
                             f"separately.")
    if not 0.5 <= confidence < 1:
        raise ValueError(f"confidence must be in [0.5, 1), e.g. 0.95; got {confidence}.")
    diff = xa - xb
    n = int(diff.size)
    mean = float(diff.mean())
    sd = float(diff.std(ddof=1))
    if method == "t":
        from scipy import stats

        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
        low, high = mean - half, mean + half
    elif method == "bootstrap":
        rng = np.random.default_rng(seed)
        means = diff[rng.integers(0, n, size=(10_000, n))].mean(axis=1)
        low, high = (float(q) for q in np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2]))
    else:
        raise ValueError(f"method must be 't' or 'bootstrap', got {method!r}.")
    sign = 1.0 if higher_is_better else -1.0
    wins, losses = int(np.sum(sign * diff > 0)), int(np.sum(sign * diff < 0))
    shown = bool(low > 0 or high < 0)
    better = None
    if shown:
        better = names[0] if sign * mean > 0 else names[1]
    if abs(mean) > 0.5 * 10 ** -(digits + 1):
        leader = names[0] if sign * mean > 0 else names[1]
    else:  # no difference on average at the printed precision: name the side that won more seeds
        leader = names[0] if wins >= losses else names[1]
    leader_wins = wins if leader == names[0] else losses
    interval = f"{round(100 * confidence)} % CI [{_signed(low, digits)}, {_signed(high, digits)}]"
    verdict = (f"{leader} better in {leader_wins}/{n} seeds, mean {_signed(mean, digits)}, {interval}: "
               + ("shown" if shown else "not shown (the interval includes 0; this does not mean equal)"))
    return {"n": n, "mean_difference": mean, "sd_difference": sd, "ci_low": float(low), "ci_high": float(high),
            "confidence": confidence, "method": method, "wins": wins, "losses": losses, "ties": n - wins - losses,
            "shown": shown, "better": better, "verdict": verdict}


def paired_values(runs, metric: str, a, b, by: str = "name") -> tuple[list, np.ndarray, np.ndarray, list]:
    """Line up two settings' per-seed scores by seed: ``(seeds, a_values, b_values, dropped)``.

    runs: dicts ``{by: name, "seed": s, metric: value}``. Only seeds that both settings ran are used, in
    ascending order; a seed where either side has no finite value (None, NaN, inf: a diverged run) is dropped
    from both sides and listed in ``dropped``. Raises ``KeyError`` for a name no run has.
    """
    tables = {}
    for name in (a, b):
        chosen = [run for run in runs if run.get(by) == name]
        if not chosen:
            raise KeyError(f"no run has {by}={name!r}; the runs have {sorted({str(r.get(by)) for r in runs})}.")
        by_seed = {}
        for run in chosen:
            if "seed" not in run:
                raise ValueError(f"a run of {by}={name!r} has no 'seed' key: paired comparisons need the seed.")
            if run["seed"] in by_seed:
                raise ValueError(f"{by}={name!r} has two runs with seed {run['seed']}: one run per seed and setting.")
            by_seed[run["seed"]] = _number(run.get(metric), f"{by}={name!r}, seed {run['seed']}, {metric!r}: ")
        tables[name] = by_seed
    common = sorted(set(tables[a]) & set(tables[b]))
    kept, dropped = [], []
    for s in common:
        if math.isfinite(tables[a][s]) and math.isfinite(tables[b][s]):
            kept.append(s)
        else:
            dropped.append(s)
    return (kept, np.array([tables[a][s] for s in kept]), np.array([tables[b][s] for s in kept]), dropped)


def compare_runs(runs, metric: str, a, b, by: str = "name", higher_is_better: bool = True,
                 confidence: float = 0.95, digits: int = 3) -> dict:
    """:func:`compare_paired` of settings ``a`` and ``b`` on ``metric``, from per-seed run dicts.

    Adds ``a``, ``b``, ``metric``, ``seeds`` (those used) and ``dropped`` (seeds without a finite value on one
    side) to the result. With fewer than 3 usable seeds it returns ``shown=False`` and a verdict that says
    "not comparable" instead of raising, so a table can still be printed.
    """
    seeds, xa, xb, dropped = paired_values(runs, metric, a, b, by)
    extra = {"a": a, "b": b, "metric": metric, "seeds": seeds, "dropped": dropped}
    if len(seeds) < 3:
        note = f" ({len(dropped)} seed(s) without a finite value)" if dropped else ""
        return {**extra, "n": len(seeds), "mean_difference": math.nan, "sd_difference": math.nan,
                "ci_low": math.nan, "ci_high": math.nan, "confidence": confidence, "method": "t",
                "wins": 0, "losses": 0, "ties": 0, "shown": False, "better": None,
                "verdict": f"not comparable: {len(seeds)} seed(s) with a value on both sides{note}, 3 needed"}
    result = compare_paired(xa, xb, higher_is_better=higher_is_better, confidence=confidence,
                            names=(str(a), str(b)), digits=digits)
    if dropped:
        result["verdict"] += f" [{len(dropped)} seed(s) left out: no finite value]"
    return {**result, **extra}


def paired_table(runs, metric: str, pairs, by: str = "name", higher_is_better: bool = True,
                 confidence: float = 0.95, digits: int = 3, title: str | None = None) -> str:
    """A Markdown table of paired verdicts, one line per ``(a, b)`` in ``pairs``, from per-seed run dicts.

    Columns: the comparison, the seeds used, the mean of a - b, its interval, the seeds each side won and the
    verdict ("shown" / "not shown"). ``title`` names the metric column (default: the metric key).
    """
    level = round(100 * confidence)
    lines = [f"| {title or metric}: a vs b | seeds | mean a - b | {level} % CI | a wins | verdict |",
             "|---|---:|---:|---|---:|---|"]
    for a, b in pairs:
        r = compare_runs(runs, metric, a, b, by=by, higher_is_better=higher_is_better, confidence=confidence,
                         digits=digits)
        if not math.isfinite(r["mean_difference"]):
            lines.append(f"| {a} vs {b} | {r['n']} | n/a | n/a | - | {r['verdict']} |")
            continue
        interval = f"[{_signed(r['ci_low'], digits)}, {_signed(r['ci_high'], digits)}]"
        if r["shown"]:
            word = f"**shown**: {r['better']} better"
        else:
            word = "not shown"
        if r["dropped"]:
            word += f" ({len(r['dropped'])} seed(s) left out)"
        lines.append(f"| {a} vs {b} | {r['n']} | {_signed(r['mean_difference'], digits)} | {interval} | "
                     f"{r['wins']}/{r['n']} | {word} |")
    return "\n".join(lines)


def write_results(stem: Path, payload: dict, markdown: str) -> list[Path]:
    """Write ``<stem>.json`` (``payload``: settings, runs, summary), ``<stem>.csv`` (the summary) and ``<stem>.md``.

    Each file is written atomically (a temporary file in the same folder, then a rename): when the disk is full
    or the payload cannot be written, the files that were there stay as they were and no temporary file is left.
    The JSON text is made before anything is touched, so a payload that is not JSON raises without writing.
    """
    from .safety import atomic_write

    stem = Path(stem)
    if stem.parent.exists() and not stem.parent.is_dir():
        raise NotADirectoryError(f"{stem.parent} is a file, not a folder: choose another place for the results.")
    json_path, csv_path, md_path = stem.with_suffix(".json"), stem.with_suffix(".csv"), stem.with_suffix(".md")
    json_text = json.dumps(payload, indent=1, allow_nan=True) + "\n"
    summary = payload.get("summary", [])
    written = [atomic_write(json_path, lambda tmp: tmp.write_text(json_text))]
    if summary:
        keys = list(dict.fromkeys(k for row in summary for k in row))

        def write_csv(tmp: Path) -> None:
            with tmp.open("w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=keys)
                writer.writeheader()
                for row in summary:
                    writer.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()})

        written.append(atomic_write(csv_path, write_csv))
    else:
        written.append(csv_path)
    written.append(atomic_write(md_path, lambda tmp: tmp.write_text(markdown.rstrip() + "\n")))
    return written


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
    for i, run in enumerate(payload["runs"]):
        missing = [key for key in ("name", "seed") if key not in run]
        if missing:
            raise ValueError(f"run {i} of the results has no {' or '.join(map(repr, missing))} key (it has "
                             f"{sorted(run)}): every run needs its name and seed to be drawn; rerun the benchmark.")
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