#!/usr/bin/env python3
"""Lecture 05's experiment over several seeds: one U-Net, four losses, a rare small class.

Synthetic scenes (``data.make_shapes``, 4 classes) in which the last class, the triangle, is both rare (a
fraction ``--rare`` of the shapes) and drawn smaller. For every seed the data, the initial weights and the
batch order change; for every loss (cross-entropy, class-weighted CE with inverse-frequency weights, soft
Dice, CE + Dice) the same U-Net is trained from the same initial weights for a fixed number of epochs
(PyTorch, CPU), then scored on held-out scenes: per-class Dice and IoU, the rare class's recall and
precision. Trivial baselines (every pixel background = the majority class, every pixel the rare class)
are scored on the same scenes.

    python benchmarks/loss_comparison.py                 # the committed table (5 seeds, 20 trainings)
    python benchmarks/loss_comparison.py --quick         # tiny sizes: checks that it works
    python benchmarks/loss_comparison.py --seeds 0 1 2 3 4 5 6   # adds seeds 5 and 6 to the finished table
    python benchmarks/loss_comparison.py --reuse         # re-render the table from the committed runs (no training)

Writes ``<out>.json`` (settings, every run, the summary), ``<out>.csv`` and ``<out>.md``; lecture 05 reads
them. The budget is fixed in epochs, so the scores do not depend on how busy the machine is.

Every loss is trained with the same seeds (the same data, initial weights and batch order), so the table's
comparisons are **paired** (``multiseed.paired_table``): the per-seed differences against plain CE, their
mean and 95 % t interval. "shown" means the interval excludes 0; "not shown" means it does not (which is not
evidence that the two losses are equal).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing
sys.path.insert(0, str(HERE))

from course_utils import data, metrics, safety  # noqa: E402
from course_utils.multiseed import markdown_table, summarise, write_results  # noqa: E402

NUM_CLASSES = 4
CLASS_NAMES = data.SHAPE_CLASS_NAMES
RARE = NUM_CLASSES - 1
LOSS_NAMES = ("CE", "weighted CE", "Dice", "CE + Dice")
BASELINES = ("all background (majority class)", "all triangle (rare class)")
DEFAULTS = dict(size=64, n_train=64, n_val=48, rare=0.2, depth=3, base_filters=8, epochs=20, batch=4,
                learning_rate=3e-3, seeds=[0, 1, 2, 3, 4])
QUICK = dict(size=32, n_train=16, n_val=8, epochs=1, seeds=[0, 1])
#: The paired comparisons the table prints: each loss against plain CE (the same seeds).
PAIRS = [(name, "CE") for name in LOSS_NAMES[1:]]
#: The metrics the paired comparisons are made on.
PAIRED_METRICS = {"mean_dice": "mean Dice", "dice_triangle": "triangle (rare class) Dice"}
#: Which model the runs were trained with (stored in the JSON, printed under the table): the PyTorch U-Net's
#: initialisation changed to He-uniform in issue 21; runs of another model version are never resumed or mixed.
MODEL_VERSION = "PyTorch U-Net initialised He-uniform (course_utils.torch.init)"
METRICS = {"mean_dice": "mean Dice", **{f"dice_{n}": f"Dice {n}" for n in CLASS_NAMES},
           "recall_triangle": "recall triangle", "precision_triangle": "precision triangle"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 seeds, 1 epoch")
    parser.add_argument("--reuse", action="store_true",
                        help="train nothing: rebuild the summary and the tables from the runs in <out>.json")
    for key, value in DEFAULTS.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, list):
            parser.add_argument(flag, type=int, nargs="+", default=None)
        else:
            parser.add_argument(flag, type=type(value), default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "loss_comparison",
                        help="output path without suffix (.json, .csv, .md are written)")
    args = parser.parse_args(argv)
    config = dict(DEFAULTS, **(QUICK if args.quick else {}))
    config.update({k: v for k, v in vars(args).items() if k in DEFAULTS and v is not None})
    if config["size"] % 2 ** config["depth"]:
        parser.error(f"--size {config['size']} must be a multiple of 2**depth = {2 ** config['depth']}.")
    args.config = config
    return args


def make_data(config: dict, seed: int):
    """Train and validation scenes for one seed: ``(x_train, y_train, x_val, y_val)``, NHWC images."""
    n = config["n_train"] + config["n_val"]
    images, masks = data.make_shapes(n, size=config["size"], num_classes=NUM_CLASSES, seed=1000 + seed,
                                     rare_class_frequency=config["rare"])
    k = config["n_train"]
    return images[:k], masks[:k], images[k:], masks[k:]


def score(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Per-class Dice, mean Dice and the rare class's recall and precision (NaN when undefined)."""
    cm = metrics.confusion_matrix(y_true, y_pred, NUM_CLASSES)
    dice = metrics.dice_from_confusion(cm)
    iou = metrics.iou_from_confusion(cm)
    precision, recall = metrics.precision_recall_from_confusion(cm)
    out = {"mean_dice": metrics.nanmean(dice), "mean_iou": metrics.nanmean(iou),
           "recall_triangle": float(recall[RARE]), "precision_triangle": float(precision[RARE])}
    for c, name in enumerate(CLASS_NAMES):
        out[f"dice_{name}"] = float(dice[c])
        out[f"iou_{name}"] = float(iou[c])
    return out


def baseline_runs(y_val: np.ndarray, seed: int) -> list[dict]:
    """The trivial predictions scored like a model: every pixel background, every pixel the rare class."""
    runs = []
    for name, label in zip(BASELINES, (0, RARE)):
        runs.append({"name": name, "seed": seed, **score(y_val, np.full_like(y_val, label))})
    return runs


def _load_partial(path: Path, config: dict) -> list[dict]:
    """Trained runs saved earlier with the same settings and :data:`MODEL_VERSION` (``<out>.json`` or an
    interrupted call's ``<out>.partial.json``): a long benchmark can be resumed, or extended by more seeds."""
    runs = []
    final = path.with_name(path.name.replace(".partial.json", ".json"))
    for candidate in (final, path):  # a finished table with the same settings: add seeds to it
        if not candidate.exists():
            continue
        saved = json.loads(candidate.read_text())
        same = {k: v for k, v in saved.get("config", {}).items() if k != "seeds"} == \
               {k: v for k, v in config.items() if k != "seeds"} and saved.get("model") == MODEL_VERSION
        if same:
            runs += [r for r in saved.get("runs", []) if r["name"] in LOSS_NAMES]
    return runs


def train_losses(config: dict, seed: int, x_train, y_train, x_val, y_val, done=(), save=None) -> list[dict]:
    import torch

    from course_utils import env
    from course_utils.torch import losses, train
    from course_utils.torch.data import make_loader
    from course_utils.torch.unet import UNet

    weights = data.class_weights(y_train, NUM_CLASSES)
    loss_fns = {"CE": losses.CrossEntropyLoss(), "weighted CE": losses.CrossEntropyLoss(class_weights=weights),
                "Dice": losses.DiceLoss(), "CE + Dice": losses.CEDiceLoss()}
    runs = []
    for name in LOSS_NAMES:
        previous = [r for r in done if r["name"] == name and r["seed"] == seed]
        if previous:  # resumed: this loss and seed were trained by an earlier call with the same settings
            runs.append(previous[0])
            continue
        env.seed_everything(seed)  # the same initial weights and batch order for every loss
        model = UNet(3, NUM_CLASSES, base_filters=config["base_filters"], depth=config["depth"])
        loader = make_loader(x_train, y_train, batch_size=config["batch"], shuffle=True, seed=seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
        start = time.perf_counter()
        train.fit(model, loader, None, loss_fns[name], optimizer, epochs=config["epochs"],
                  num_classes=NUM_CLASSES, device="cpu", monitor="loss", progress=False)
        seconds = time.perf_counter() - start
        pred = train.predict_masks(model, x_val, device="cpu")
        runs.append({"name": name, "seed": seed, "seconds": round(seconds, 1), **score(y_val, pred)})
        print(f"[loss_comparison] seed {seed} {name:12s} mean Dice {runs[-1]['mean_dice']:.3f} "
              f"triangle Dice {runs[-1]['dice_triangle']:.3f} ({seconds:.0f} s)", file=sys.stderr, flush=True)
        if save is not None:
            save(runs[-1])
    return runs


def describe(config: dict) -> str:
    return (f"synthetic scenes {config['size']} px, 4 classes, rare triangle ({config['rare']:.0%} of the shapes, "
            f"drawn smaller); {config['n_train']} training / {config['n_val']} validation scenes per seed; "
            f"PyTorch U-Net depth {config['depth']}, base_filters {config['base_filters']}; "
            f"{config['epochs']} epochs, batch {config['batch']}, Adam {config['learning_rate']:g}; "
            f"seeds {', '.join(map(str, config['seeds']))} (data, initial weights and batch order change with the seed)")


def paired_section(runs: list[dict]) -> list[str]:
    """Markdown lines: each loss against CE, paired by seed, on :data:`PAIRED_METRICS` (or why not)."""
    from course_utils.multiseed import paired_table

    trained = [r for r in runs if r["name"] in LOSS_NAMES]
    n = min(len({r["seed"] for r in trained if r["name"] == name}) for name in LOSS_NAMES)
    lines = ["### Paired comparisons (each loss against CE, the same seeds)", ""]
    if n < 3:
        return lines + [f"_Paired verdicts need at least 3 seeds per loss; this table has {n}._", ""]
    lines += ["Every loss was trained with the same seeds (the same data, initial weights and batch order), so each "
              "comparison uses the per-seed differences: mean difference and its 95 % t interval. **shown**: the "
              "interval excludes 0; **not shown**: it does not (not evidence that the two are equal).", ""]
    for metric, label in PAIRED_METRICS.items():
        lines += [f"**{label}**", "", paired_table(trained, metric, PAIRS, title=label), ""]
    return lines


def build_markdown(config: dict, summary: list[dict], class_share: list[float], runs: list[dict] = (),
                   note: str = "") -> str:
    shares = ", ".join(f"{n} {s:.1%}" for n, s in zip(CLASS_NAMES, class_share))
    return "\n".join([
        "## Loss comparison (lecture 05, `benchmarks/loss_comparison.py`)", "",
        f"Setup: {describe(config)}. Pixel share of the training masks (mean over seeds): {shares}." + note,
        "Scores on the held-out scenes, mean ± sample std over the seeds (min-max in brackets).", "",
        markdown_table(summary, METRICS, first="loss / baseline"), "", *paired_section(list(runs))])


def render(payload: dict) -> tuple[list[dict], str]:
    """Summary rows and Markdown of a results payload (``config``, ``runs``, ``class_share``), trained earlier."""
    summary = summarise(payload["runs"], list(METRICS) + ["mean_iou"] + [f"iou_{n}" for n in CLASS_NAMES])
    note = f" Trained {payload['created'][:10]}" + (f" with the {payload['model']}" if payload.get("model") else "") + "." \
        if payload.get("created") else ""
    return summary, build_markdown(payload["config"], summary, payload["class_share"], payload["runs"], note)


def reuse(out: Path) -> int:
    """``--reuse``: rebuild ``<out>.csv``/``.md`` and the summary in ``<out>.json`` from its runs; train nothing."""
    path = Path(str(out) + ".json")
    if not path.exists():
        raise SystemExit(f"--reuse needs {path}: run the benchmark once without --reuse first.")
    payload = json.loads(path.read_text())
    payload["summary"], markdown = render(payload)
    write_results(out, payload, markdown)
    print(markdown)
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.reuse:
        return reuse(args.out)
    config = args.config
    import torch

    torch.set_num_threads(int(os.environ.get("COURSE_BENCH_THREADS", "1")))
    partial = Path(str(args.out) + ".partial.json")
    done = _load_partial(partial, config)
    trained: list[dict] = list(done)

    def save(run):
        trained.append(run)
        partial.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps({"config": config, "model": MODEL_VERSION, "runs": trained}))

    runs, shares = [], []
    for seed in config["seeds"]:
        x_train, y_train, x_val, y_val = make_data(config, seed)
        shares.append(data.class_frequencies(y_train, NUM_CLASSES))
        runs += baseline_runs(y_val, seed)
        runs += train_losses(config, seed, x_train, y_train, x_val, y_val, done=done, save=save)
    order = list(LOSS_NAMES) + list(BASELINES)
    runs.sort(key=lambda r: (order.index(r["name"]), r["seed"]))
    payload = {"benchmark": "loss_comparison", "lecture": "05", "framework": "PyTorch",
               "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "model": MODEL_VERSION, "setup": describe(config), "config": config,
               "class_names": list(CLASS_NAMES), "class_share": np.mean(shares, axis=0).tolist(), "runs": runs}
    payload["summary"], markdown = render(payload)
    write_results(args.out, payload, markdown)
    safety.remove(partial, inside=Path(args.out).parent)  # the finished table replaces the resume file
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
