"""Training dynamics without a framework: schedules, the range test's reading, sweeps and their tables.

Lecture 08 (training dynamics) varies one knob at a time - learning rate, batch size, schedule,
loss weights - over several seeds. The parts that do not depend on Keras or PyTorch live here and
are shared by :mod:`course_utils.keras.dynamics` and :mod:`course_utils.torch.dynamics`:

- **schedules** as plain functions of the optimizer step: ``schedule(step) -> learning rate``
  (:func:`constant_schedule`, :func:`step_schedule`, :func:`cosine_schedule`,
  :func:`one_cycle_schedule`, or :func:`make_schedule` by name). Both frameworks call the same
  function after every batch, so they follow exactly the same rates;
- **the learning-rate range test's reading**: :func:`range_test_rates` (the geometric ramp) and
  :func:`suggest_learning_rate` (a rate read off the loss-vs-rate curve);
- **sweeps**: :func:`run_sweep` calls ``train_fn(setting, seed)`` for every setting and seed and
  returns a tidy table (one dict per run); :func:`summarise`, :func:`markdown_table`, :func:`lookup`
  and :func:`compare` are ``course_utils.multiseed``'s tables and its one "beyond the seed spread" rule,
  grouped by setting (the same code as lectures 05 and 07); :func:`save_rows` /
  :func:`load_rows` store the rows as JSON (``benchmarks/results/``);
- :func:`plot_histories`: several training histories on one figure.

Importing this module imports neither TensorFlow nor PyTorch (nor matplotlib, until a plot is drawn).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from . import multiseed

__all__ = [
    "constant_schedule",
    "step_schedule",
    "cosine_schedule",
    "one_cycle_schedule",
    "make_schedule",
    "SCHEDULES",
    "schedule_rates",
    "range_test_rates",
    "smooth_losses",
    "suggest_learning_rate",
    "run_sweep",
    "summarise",
    "markdown_table",
    "save_rows",
    "load_rows",
    "plot_histories",
    "compare",
    "lookup",
    "load_benchmark",
    "TrainingDivergedError",
    "divergence_message",
]

#: Where the committed benchmark tables live when the course is not a local clone (e.g. on Colab).
RESULTS_URL = "https://raw.githubusercontent.com/segmentation-course/semantic-segmentation-course/main/benchmarks/results"


# =========================================================================== a run that diverges
class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite: training was stopped at that step.

    Raised by ``course_utils.torch.train.fit`` / ``train_one_epoch`` and by the Keras callback that
    ``course_utils.keras.train.training_callbacks`` adds. Attributes: ``epoch`` and ``step`` (1-based,
    the step counted within the epoch), ``loss`` (the non-finite value) and ``history`` (what ``fit``
    recorded for the epochs that finished, or None).
    """

    def __init__(self, message: str, *, epoch=None, step=None, loss=None, history=None):
        super().__init__(message)
        self.epoch, self.step, self.loss, self.history = epoch, step, loss, history


def divergence_message(loss, epoch, step, *, mixed_precision: bool = False, framework: str = "torch") -> str:
    """The course's message for a loss that became NaN/inf at ``epoch``, ``step`` (both 1-based), with the causes.

    ``mixed_precision``: the run used float16/bfloat16 autocast (the float16 overflow hint then comes first).
    ``framework``: "torch" or "keras", for the names of the fixes.
    """
    where = f"epoch {epoch}, step {step}" if epoch is not None else f"step {step}"
    if framework == "keras":
        precision = ('float16 overflow under mixed precision: use the "mixed_bfloat16" policy, or keep '
                     'compile\'s default loss scaling (LossScaleOptimizer)')
    else:
        precision = ("float16 overflow under mixed precision: scale the loss with torch.amp.GradScaler "
                     "(fit does when amp is on) or autocast to torch.bfloat16")
    causes = ["a learning rate that is too high (try 10x lower, or read one off a learning-rate range test)",
              "bad input (NaN or inf pixels, or mask labels outside 0..num_classes-1: check a batch with "
              "np.isfinite(images).all() and masks.min(), masks.max())", precision]
    if mixed_precision:
        causes = [causes[2], causes[0], causes[1]]
    return (f"the training loss became {float(loss)} at {where}, so training was stopped (every later step would "
            f"be wasted); the usual causes: " + "; ".join(f"({i}) {c}" for i, c in enumerate(causes, 1)) + ".")


# =========================================================================== schedules
def _check_positive(value, name: str, integer: bool = False):
    bad = isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0
    if integer:
        bad = bad or int(value) != value
    if bad:
        kind = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {kind}, got {value!r}.")


def _check_step(step, total_steps: int) -> int:
    if isinstance(step, bool) or int(step) != step or step < 0:
        raise ValueError(f"step must be an integer >= 0 (the number of optimizer steps taken so far), got {step!r}.")
    return min(int(step), total_steps - 1)


def constant_schedule(base_lr: float, total_steps: int | None = None) -> Callable[[int], float]:
    """``schedule(step) = base_lr`` for every step (``total_steps`` is accepted for a uniform signature)."""
    _check_positive(base_lr, "base_lr")

    def schedule(step: int) -> float:
        if isinstance(step, bool) or int(step) != step or step < 0:
            raise ValueError(f"step must be an integer >= 0, got {step!r}.")
        return float(base_lr)

    return schedule


def step_schedule(base_lr: float, total_steps: int, milestones=(0.5, 0.75), factor: float = 0.1):
    """Piecewise constant: ``base_lr``, multiplied by ``factor`` at each milestone.

    ``milestones`` are fractions of ``total_steps`` (0.5 = half-way). The default drops the rate
    ten-fold at 50 % and again at 75 % of the run, like the classic ImageNet recipes.
    """
    _check_positive(base_lr, "base_lr")
    _check_positive(total_steps, "total_steps", integer=True)
    _check_positive(factor, "factor")
    if any(not 0.0 < m < 1.0 for m in milestones):
        raise ValueError(f"milestones are fractions of the run strictly between 0 and 1, got {tuple(milestones)}.")
    bounds = sorted(int(round(m * total_steps)) for m in milestones)

    def schedule(step: int) -> float:
        step = _check_step(step, total_steps)
        return float(base_lr * factor ** sum(step >= b for b in bounds))

    return schedule


def cosine_schedule(base_lr: float, total_steps: int, warmup_steps: int = 0, final_lr: float = 0.0):
    """Linear warm-up from ~0 over ``warmup_steps``, then half a cosine from ``base_lr`` down to ``final_lr``.

    ``schedule(warmup_steps) = base_lr``; half-way through the decay the rate is
    ``(base_lr + final_lr) / 2``; the last step has ``final_lr``.
    """
    _check_positive(base_lr, "base_lr")
    _check_positive(total_steps, "total_steps", integer=True)
    if not 0 <= warmup_steps < total_steps:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total_steps}), got {warmup_steps!r}.")

    def schedule(step: int) -> float:
        step = _check_step(step, total_steps)
        if step < warmup_steps:
            return float(base_lr * (step + 1) / (warmup_steps + 1))
        span = max(total_steps - 1 - warmup_steps, 1)
        progress = (step - warmup_steps) / span
        return float(final_lr + 0.5 * (base_lr - final_lr) * (1.0 + math.cos(math.pi * progress)))

    return schedule


def one_cycle_schedule(base_lr: float, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
                       final_div_factor: float = 1e4):
    """One-cycle (Smith 2018, as ``torch.optim.lr_scheduler.OneCycleLR`` with cosine annealing).

    Rises along half a cosine from ``base_lr / div_factor`` to ``base_lr`` (the peak) over the first
    ``pct_start`` of the run, then falls along half a cosine to ``base_lr / div_factor / final_div_factor``.
    Here ``base_lr`` is the *peak* rate.
    """
    _check_positive(base_lr, "base_lr")
    _check_positive(total_steps, "total_steps", integer=True)
    if not 0.0 < pct_start < 1.0:
        raise ValueError(f"pct_start must be a fraction strictly between 0 and 1, got {pct_start!r}.")
    start_lr = base_lr / div_factor
    end_lr = start_lr / final_div_factor
    rise = max(float(pct_start * total_steps) - 1.0, 1.0)
    fall = max(total_steps - 1.0 - rise, 1.0)

    def _cos(a, b, t):
        return b + 0.5 * (a - b) * (1.0 + math.cos(math.pi * min(max(t, 0.0), 1.0)))

    def schedule(step: int) -> float:
        step = _check_step(step, total_steps)
        if step <= rise:
            return float(_cos(start_lr, base_lr, step / rise))
        return float(_cos(base_lr, end_lr, (step - rise) / fall))

    return schedule


SCHEDULES = {
    "constant": constant_schedule,
    "step": step_schedule,
    "cosine": cosine_schedule,
    "one-cycle": one_cycle_schedule,
}


def make_schedule(name: str, base_lr: float, total_steps: int, **kwargs) -> Callable[[int], float]:
    """The schedule called ``name`` ("constant", "step", "cosine", "one-cycle") as ``schedule(step)``."""
    if name not in SCHEDULES:
        raise ValueError(f"unknown schedule {name!r}: choose one of {tuple(SCHEDULES)}.")
    return SCHEDULES[name](base_lr, total_steps, **kwargs)


def schedule_rates(schedule: Callable[[int], float], total_steps: int) -> np.ndarray:
    """``[schedule(0), ..., schedule(total_steps - 1)]`` as a float array (for plots and tests)."""
    return np.array([schedule(s) for s in range(int(total_steps))], dtype=float)


# =========================================================================== learning-rate range test
def range_test_rates(min_lr: float = 1e-6, max_lr: float = 1.0, num_steps: int = 100) -> np.ndarray:
    """The range test's rates: ``num_steps`` values growing geometrically from ``min_lr`` to ``max_lr``."""
    _check_positive(min_lr, "min_lr")
    _check_positive(max_lr, "max_lr")
    if max_lr <= min_lr:
        raise ValueError(f"max_lr ({max_lr}) must be larger than min_lr ({min_lr}).")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 5:
        raise ValueError(f"num_steps must be an integer of at least 5, got {num_steps!r}.")
    return np.geomspace(min_lr, max_lr, num_steps)


def smooth_losses(losses, beta: float = 0.8) -> np.ndarray:
    """Exponential moving average with bias correction (as fastai's range test): one noisy
    mini-batch loss per step -> a curve that can be read. ``beta=0`` returns the losses unchanged."""
    losses = np.asarray(losses, dtype=float)
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must be in [0, 1), got {beta!r}.")
    out = np.empty_like(losses)
    average = 0.0
    for i, value in enumerate(losses):
        average = beta * average + (1.0 - beta) * value
        out[i] = average / (1.0 - beta ** (i + 1))
    return out


def _check_curve(rates, losses):
    rates = np.asarray(rates, dtype=float)
    losses = np.asarray(losses, dtype=float)
    if rates.ndim != 1 or rates.shape != losses.shape:
        raise ValueError(
            f"rates and losses must be 1-D and of the same length, got shapes {rates.shape} and {losses.shape}: "
            "pass the two lists returned by lr_range_test."
        )
    if len(rates) < 5:
        raise ValueError(f"the range test needs at least 5 steps to be read, got {len(rates)}.")
    if np.any(rates <= 0) or np.any(np.diff(rates) <= 0):
        raise ValueError("rates must be positive and increasing (the order lr_range_test records them in).")
    return rates, losses


def suggest_learning_rate(rates, losses, method: str = "steepest", beta: float = 0.8,
                          divergence_factor: float = 4.0) -> float:
    """A learning rate read off a range test's loss-vs-rate curve.

    The curve is smoothed (:func:`smooth_losses`) and cut where the loss, after its minimum, first
    exceeds ``divergence_factor`` times that minimum (or is not finite): beyond that the run diverged.

    - ``method="steepest"``: the rate where the smoothed loss falls fastest per decade of rate
      (the most negative slope against log(rate)) - the middle of the "good" region;
    - ``method="min/10"``: a tenth of the rate at the minimum of the smoothed loss. At the minimum
      the rate is already nearly too large; one order of magnitude below is a safe choice.

    Args:
        rates: increasing learning rates, one per step (N,).
        losses: the mini-batch loss measured at each rate (N,); may end in inf/NaN.

    Returns:
        The suggested learning rate (float).
    """
    rates, losses = _check_curve(rates, losses)
    finite = np.isfinite(losses)
    if not finite[0]:
        raise ValueError("the first loss of the range test is not finite: lower min_lr or check the model and data.")
    stop = len(losses) if finite.all() else int(np.argmin(finite))
    smooth = smooth_losses(losses[:stop], beta)
    lowest = int(np.argmin(smooth))
    over = np.nonzero(smooth[lowest:] > divergence_factor * smooth[lowest])[0]
    if len(over):
        stop = min(stop, lowest + int(over[0]))
    rates, smooth = rates[:stop], smooth[:stop]
    if len(rates) < 3:
        raise ValueError(
            "the loss diverged within the first steps of the range test: lower min_lr (the range starts too high)."
        )
    if method == "min/10":
        return float(rates[int(np.argmin(smooth))] / 10.0)
    if method == "steepest":
        slopes = np.gradient(smooth, np.log(rates))
        # only up to the minimum: after it the loss rises again, which is never where to train
        end = int(np.argmin(smooth)) + 1
        return float(rates[int(np.argmin(slopes[: max(end, 2)]))])
    raise ValueError(f'method must be "steepest" or "min/10", got {method!r}.')


# =========================================================================== sweeps and their tables
def _settings_items(settings):
    if isinstance(settings, Mapping):
        items = list(settings.items())
    else:
        items = [(str(s), s) for s in settings]
    if not items:
        raise ValueError("settings is empty: pass a dict {name: setting} or a list of settings.")
    return items


def run_sweep(train_fn: Callable, settings, seeds: Sequence[int] = (0, 1, 2), *, verbose: bool = True) -> list[dict]:
    """Run ``train_fn(setting, seed)`` for every setting and seed; return a tidy table.

    Args:
        train_fn: trains one model and returns a dict of numbers, e.g. ``{"dice": 0.81}``
            (a history's lists are allowed too, e.g. ``{"loss": [...]}``: kept as lists).
        settings: ``{name: setting}`` (the setting is passed to ``train_fn`` as it is) or a list of
            settings (named by ``str``).
        seeds: the seeds each setting is run with (3 or more for a spread).
        verbose: print one line per run.

    Returns:
        A list with one dict per run: ``{"setting": name, "seed": seed, **train_fn's result,
        "seconds": wall time}``, in the order setting by setting, seed by seed.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: pass e.g. seeds=(0, 1, 2).")
    rows = []
    for name, setting in _settings_items(settings):
        for seed in seeds:
            start = time.perf_counter()
            result = train_fn(setting, seed)
            if not isinstance(result, Mapping):
                raise TypeError(
                    f"train_fn must return a dict of metrics such as {{'dice': 0.8}}, got {type(result).__name__}."
                )
            clash = {"setting", "seed"} & set(result)
            if clash:
                raise ValueError(f"train_fn's result must not use the reserved keys {sorted(clash)}.")
            row = {"setting": name, "seed": seed, **dict(result), "seconds": time.perf_counter() - start}
            rows.append(row)
            if verbose:
                shown = ", ".join(f"{k}={v:.4g}" for k, v in result.items() if isinstance(v, (int, float)))
                print(f"{name} seed {seed}: {shown}", flush=True)
    return rows


def summarise(rows: Sequence[Mapping], metrics, by: str = "setting") -> list[dict]:
    """Mean, standard deviation (ddof=1), minimum and maximum of ``metrics`` per setting, over the seeds.

    ``course_utils.multiseed.summarise`` grouped by ``by`` (the one implementation the course uses for
    lectures 05, 07 and 08): one dict per setting, in the order the settings first appear,
    ``{by: value, "seeds": runs, "<m>_mean", "<m>_std", "<m>_min", "<m>_max", "<m>_n"}``; a diverged run's
    NaN (or None) is left out (``seeds - <m>_n`` counts them), and one seed gives a NaN standard deviation.
    Each entry also carries ``"<m>_by_seed"``: ``{seed: value or None}``, which :func:`compare` uses to pair
    settings run with the same seeds. A value that is not a number (e.g. the text "n/a") is a ValueError
    naming the setting and the metric (store a missing value as None).
    """
    if not rows:
        raise ValueError("rows is empty: run the sweep first.")
    rows = list(rows)
    summary = multiseed.summarise(rows, metrics, by=by)
    for metric in [metrics] if isinstance(metrics, str) else list(metrics):
        for entry in summary:  # per-seed values, for a paired comparison of settings that share seeds
            entry[f"{metric}_by_seed"] = {
                row.get("seed"): (None if row.get(metric) is None or not math.isfinite(float(row[metric]))
                                  else float(row[metric]))
                for row in rows if row.get(by) == entry[by] and "seed" in row}
    return summary


def markdown_table(summary: Sequence[Mapping], metrics, by: str = "setting", digits: int = 3) -> str:
    """A Markdown table of :func:`summarise`'s output: one row per setting, "mean ± sd (min-max)"
    (``multiseed.markdown_table``; a metric missing in some seeds, e.g. a diverged run, says "[2 of 3 seeds]")."""
    return multiseed.markdown_table(list(summary), metrics, first=by, by=by, digits=digits)


def lookup(summary: Sequence[Mapping], setting, by: str = "setting") -> dict:
    """The entry of :func:`summarise`'s output whose ``by`` equals ``setting`` (KeyError naming the choices)."""
    return dict(multiseed.row(list(summary), setting, by=by))


def _paired_values(a: Mapping, b: Mapping, metric: str):
    """Per-seed values of the seeds both entries have finite values for (seed order of ``a``), or None."""
    sa, sb = a.get(f"{metric}_by_seed"), b.get(f"{metric}_by_seed")
    if not (isinstance(sa, Mapping) and isinstance(sb, Mapping)):
        return None
    seeds = [s for s in sa if s in sb and sa[s] is not None and sb[s] is not None]
    return [sa[s] for s in seeds], [sb[s] for s in seeds]


def compare(a: Mapping, b: Mapping, metric: str = "dice", paired: bool = False) -> str:
    """Words for how setting ``a`` compares with ``b`` on ``metric``, judged against the seed spread.

    ``a`` and ``b`` are entries of :func:`summarise`. A spread needs at least two seeds with a finite value on
    each side: with fewer (one seed, or the others diverged) the answer is "not comparable (...) with",
    however far apart the two values are.

    ``paired=False`` (the default): the course's unpaired rule ``course_utils.multiseed.separated`` (as in
    lectures 05 and 07): the difference counts only when it is larger than twice the larger standard
    deviation *and* the two ranges (min-max over seeds) do not overlap; otherwise the answer is "within the
    seed spread of". ``paired=True`` for settings run with the same seeds: the per-seed differences
    (``"<m>_by_seed"``, seeds both have) go to ``course_utils.multiseed.compare_paired``; "higher than" /
    "lower than" when its 95 % interval excludes 0 (shown), else "not shown to differ from".

    Returns "higher than", "lower than", "within the seed spread of", "not shown to differ from" or
    "not comparable (...) with", for prose such as ``f"cosine is {compare(cos, const)} constant"``.
    """
    ma, mb = a[f"{metric}_mean"], b[f"{metric}_mean"]
    if not (math.isfinite(ma) and math.isfinite(mb)):
        return "not comparable (a run diverged) with"
    na, nb = a.get(f"{metric}_n"), b.get(f"{metric}_n")
    if na is None or nb is None:  # an entry made elsewhere: count what it says about its spread
        na = 1 if not math.isfinite(a.get(f"{metric}_std", math.nan)) else 2
        nb = 1 if not math.isfinite(b.get(f"{metric}_std", math.nan)) else 2
    if min(na, nb) < 2:
        return f"not comparable (a spread needs 2 or more seeds; {min(na, nb)} here) with"
    if paired:
        values = _paired_values(a, b, metric)
        if values is None:
            raise ValueError(f"paired=True needs the per-seed values '{metric}_by_seed' of dynamics.summarise on "
                             "both entries: summarise the rows with this module, or pass paired=False.")
        if len(values[0]) < 3:
            return f"not comparable (a paired comparison needs 3 or more shared seeds; {len(values[0])} here) with"
        result = multiseed.compare_paired(values[0], values[1])
        if result["shown"]:
            return "higher than" if result["mean_difference"] > 0 else "lower than"
        return "not shown to differ from"
    if multiseed.separated(a, b, metric):
        return "higher than" if ma > mb else "lower than"
    return "within the seed spread of"


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN; load_rows turns None back into NaN
    return value


def save_rows(path, rows: Sequence[Mapping], **meta) -> Path:
    """Write ``{"meta": meta, "rows": rows}`` as JSON (NaN/inf stored as null); return the path.

    Atomic (:func:`course_utils.safety.atomic_write`): the text goes to a uniquely named temporary file in
    the same folder, which replaces ``path`` only when complete and is removed when the write fails (a full
    disk), so a good file is never replaced by half a file and nothing is left behind.
    """
    from .results import check_writable_folder
    from .safety import atomic_write

    path = Path(path)
    text = json.dumps({"meta": _plain(meta), "rows": _plain(list(rows))}, indent=1)
    check_writable_folder(path.parent, "the results folder")
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def load_rows(path) -> tuple[list[dict], dict]:
    """Read a file written by :func:`save_rows`: ``(rows, meta)``; null metrics come back as NaN.

    A file that is not JSON, or JSON without a list of ``"rows"``, is a ValueError naming the file and
    how to get a good one.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no sweep results at {path}: run the benchmark script that writes them first.")
    again = "write it again with dynamics.save_rows (or rerun the benchmark script that made it)"
    try:
        payload = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not a valid JSON file ({error}): it may be cut short or edited by hand; "
                         f"{again}.") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("rows"), list):
        found = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path} has no list of 'rows' (found {found}): it is not a file written by "
                         f"dynamics.save_rows; {again}.")
    if not all(isinstance(row, dict) for row in payload["rows"]):
        raise ValueError(f"{path}: every entry of 'rows' must be an object {{'setting': ..., 'seed': ...}}; {again}.")
    rows = [{k: (float("nan") if v is None else v) for k, v in row.items()} for row in payload["rows"]]
    meta = payload.get("meta", {})
    return rows, meta if isinstance(meta, dict) else {}


def load_benchmark(section: str, folder=None, download: bool = True) -> tuple[list[dict], dict]:
    """The committed rows of ``benchmarks/training_dynamics.py``'s ``section`` (e.g. "lr"): ``(rows, meta)``.

    Looks in ``folder`` if given, else in ``benchmarks/results`` of the clone this package was imported
    from and of the working directory and its parent (a notebook runs in ``notebooks/``). When none has
    the file (a pip install, e.g. on Colab) and ``download`` is True, the file is read from the
    course's repository on GitHub.
    """
    name = f"dynamics_{section}.json"
    here = Path(__file__).resolve().parents[1]
    folders = [Path(folder)] if folder is not None else [
        here / "benchmarks" / "results", Path.cwd() / "benchmarks" / "results", Path.cwd().parent / "benchmarks" / "results"]
    for candidate in folders:
        if (candidate / name).exists():
            return load_rows(candidate / name)
    if folder is not None or not download:
        raise FileNotFoundError(
            f"no {name} in {[str(f) for f in folders]}: run `python benchmarks/training_dynamics.py --only {section}` "
            "in a clone of the course."
        )
    import tempfile
    import urllib.request

    target = Path(tempfile.mkdtemp(prefix="course-results-")) / name
    urllib.request.urlretrieve(f"{RESULTS_URL}/{name}", target)  # noqa: S310 - fixed https URL
    return load_rows(target)


# =========================================================================== figures
def plot_histories(histories: Mapping, metric: str = "loss", ax=None, logy: bool = False, title=None,
                   colors=None):
    """Several training histories on one axis: ``metric`` against the epoch, one line per entry.

    Args:
        histories: ``{label: history}``; a history is a dict of lists (PyTorch ``fit``) or a Keras
            ``History`` (its ``.history``), or a list of such histories (several seeds: drawn as their
            mean with a band from the minimum to the maximum).
        metric: the key to draw, e.g. "loss", "val_loss", "val_dice".
        logy: logarithmic y axis (losses that diverge span orders of magnitude).

    Returns:
        The matplotlib Figure.
    """
    import matplotlib.pyplot as plt

    if not histories:
        raise ValueError("histories is empty: pass {label: history}.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6.5, 4))
    else:
        fig = ax.figure
    for i, (label, history) in enumerate(histories.items()):
        runs = history if isinstance(history, (list, tuple)) else [history]
        curves = []
        for run in runs:
            run = getattr(run, "history", run)
            if metric not in run:
                raise KeyError(f"history {label!r} has no {metric!r}; it has {sorted(run)}.")
            curves.append(np.asarray(run[metric], dtype=float))
        length = min(len(c) for c in curves)
        stack = np.stack([c[:length] for c in curves])
        epochs = np.arange(1, length + 1)
        color = None if colors is None else colors[i]
        line = ax.plot(epochs, np.nanmean(stack, axis=0), marker="o", ms=3, label=str(label), color=color)[0]
        if len(curves) > 1:
            ax.fill_between(epochs, np.nanmin(stack, axis=0), np.nanmax(stack, axis=0), alpha=0.2,
                            color=line.get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig
