#!/usr/bin/env python3
"""Lecture 07's experiment over several seeds: U-Net vs FCN-8s vs DeepLabV3 and DeepLabV3+ (output stride 8), small objects.

Synthetic scenes (``data.make_shapes``, 4 classes: background, disc, square, triangle). The object scale is
the knob: every ``--size`` image is a grid of independent ``--scene``-pixel scenes, so with ``--scene 32`` in a
64-pixel image the shapes are half as large (radius 3-6 px) as in one 64-pixel scene, about the size of one
cell of an output-stride-8 grid. For every seed the data, the initial weights and the batch order change;
each model is trained with cross-entropy for a fixed number of epochs (PyTorch, CPU) and scored on held-out
images: mean and per-class Dice, per-class boundary F1 (outline of each class) and class-agnostic boundary
F1 (outlines wherever the label changes, whatever the class). Rows without training: every pixel background
(the majority class) and the *output-stride-8 oracle* of lecture 02 (the truth averaged over 8x8 blocks and
upsampled bilinearly: roughly the best a stride-8 output can draw).

Every model and baseline is scored on the same validation images of each seed, and the models share each seed's
data and batch order, so the comparisons are PAIRED: the tables end with ``multiseed.paired_table`` verdicts
(Student's t interval of the mean per-seed difference; "shown" when the 95 % interval excludes 0, "not shown"
otherwise, which never means "equal"). DeepLabV3+ OS8 is DeepLab OS8 plus DeepLabV3+'s decoder (stride-4
low-level features), so "DeepLabV3+ vs DeepLab" measures the decoder alone.

    python benchmarks/architecture_comparison.py              # the committed table (5 seeds, ~12 min on one core)
    python benchmarks/architecture_comparison.py --quick      # tiny sizes: checks that it works
    python benchmarks/architecture_comparison.py --scene 64   # one scene per image: objects twice as large
    python benchmarks/architecture_comparison.py --rebuild    # retrain nothing, rewrite the tables (and the
                                                              # paired verdicts) from the runs in the JSON

Writes ``<out>.json`` (settings, every run, the summary), ``<out>.csv`` and ``<out>.md``; lecture 07 reads them.
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

from course_utils import data, metrics  # noqa: E402
from course_utils.multiseed import markdown_table, paired_table, summarise, write_results  # noqa: E402

NUM_CLASSES = 4
CLASS_NAMES = data.SHAPE_CLASS_NAMES
MODEL_NAMES = ("U-Net", "FCN-8s", "DeepLab OS8", "DeepLabV3+ OS8")
BASELINES = ("all background (majority class)", "output-stride-8 oracle")
DEFAULTS = dict(size=64, scene=32, n_train=96, n_val=32, base_filters=8, unet_depth=3, epochs=20, batch=8,
                learning_rate=3e-3, seeds=[0, 1, 2, 3, 4])
RATES = (1, 2, 3)  # ASPP rates for an 8x8 feature map (lecture 07's fast mode)
QUICK = dict(n_train=8, n_val=4, epochs=1, seeds=[0, 1])
#: The initialisation the models are built with (recorded in the JSON; runs without it predate it).
INIT = "He uniform, zero biases (course_utils.torch.init.he_init_)"
METRICS = {"mean_dice": "mean Dice", **{f"dice_{n}": f"Dice {n}" for n in CLASS_NAMES[1:]},
           "boundary_f1": "boundary F1 (per class)", "boundary_f1_agnostic": "boundary F1 (class-agnostic)"}
#: The paired comparisons printed under the table (a, b): models against each other and against the oracle.
PAIRS = (("U-Net", "FCN-8s"), ("U-Net", "DeepLab OS8"), ("FCN-8s", "DeepLab OS8"),
         ("DeepLabV3+ OS8", "DeepLab OS8"), ("U-Net", "DeepLabV3+ OS8"), ("FCN-8s", "DeepLabV3+ OS8"),
         ("DeepLab OS8", BASELINES[1]), ("DeepLabV3+ OS8", BASELINES[1]))
PAIRED_METRICS = ("mean_dice", "boundary_f1", "boundary_f1_agnostic")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 2 seeds, 1 epoch")
    parser.add_argument("--rebuild", action="store_true",
                        help="train nothing: rebuild the summary and the tables from the runs in <out>.json")
    for key, value in DEFAULTS.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, list):
            parser.add_argument(flag, type=int, nargs="+", default=None)
        else:
            parser.add_argument(flag, type=type(value), default=None)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "architecture_comparison",
                        help="output path without suffix (.json, .csv, .md are written)")
    args = parser.parse_args(argv)
    config = dict(DEFAULTS, **(QUICK if args.quick else {}))
    config.update({k: v for k, v in vars(args).items() if k in DEFAULTS and v is not None})
    if config["size"] % 32:
        parser.error(f"--size {config['size']} must be a multiple of 32 (FCN's five poolings).")
    if config["size"] % config["scene"] or config["scene"] < 16:
        parser.error(f"--scene {config['scene']} must be at least 16 and divide --size {config['size']}.")
    config["models"] = list(MODEL_NAMES)
    config["init"] = INIT
    args.config = config
    return args


def make_data(config: dict, seed: int):
    """Train and validation images for one seed: ``(x_train, y_train, x_val, y_val)``, NHWC."""
    k = config["size"] // config["scene"]
    n = config["n_train"] + config["n_val"]
    images, masks = data.make_shapes(n * k * k, size=config["scene"], num_classes=NUM_CLASSES, seed=2000 + seed)
    images, masks = data.tile_scenes(images, masks, k)
    t = config["n_train"]
    return images[:t], masks[:t], images[t:], masks[t:]


def score(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    dice = metrics.dice_per_class(y_true, y_pred, NUM_CLASSES)
    bf1 = metrics.boundary_f1(y_true, y_pred, NUM_CLASSES, tolerance=2)
    out = {"mean_dice": metrics.nanmean(dice), "boundary_f1": metrics.nanmean(bf1[1:]),
           "boundary_f1_agnostic": metrics.boundary_f1_agnostic(y_true, y_pred, tolerance=2)}
    for c, name in enumerate(CLASS_NAMES):
        out[f"dice_{name}"] = float(dice[c])
    return out


def baseline_runs(y_val: np.ndarray, seed: int) -> list[dict]:
    return [{"name": BASELINES[0], "seed": seed, **score(y_val, np.zeros_like(y_val))},
            {"name": BASELINES[1], "seed": seed, **score(y_val, metrics.output_stride_oracle(y_val, 8, NUM_CLASSES))}]


def build_models(config: dict) -> dict:
    from course_utils.torch.deeplab import DeepLabV3
    from course_utils.torch.deeplab_plus import DeepLabV3Plus
    from course_utils.torch.fcn import FCN
    from course_utils.torch.unet import UNet

    base = config["base_filters"]
    return {"U-Net": lambda: UNet(3, NUM_CLASSES, base_filters=base, depth=config["unet_depth"]),
            "FCN-8s": lambda: FCN(3, NUM_CLASSES, variant="8s", base_filters=base),
            "DeepLab OS8": lambda: DeepLabV3(3, NUM_CLASSES, output_stride=8, base_filters=base, atrous_rates=RATES),
            "DeepLabV3+ OS8": lambda: DeepLabV3Plus(3, NUM_CLASSES, output_stride=8, base_filters=base,
                                                    atrous_rates=RATES)}


def train_models(config: dict, seed: int, x_train, y_train, x_val, y_val) -> list[dict]:
    import torch

    from course_utils import env
    from course_utils.torch import train
    from course_utils.torch.data import make_loader
    from course_utils.torch.losses import CrossEntropyLoss

    runs = []
    for name, make in build_models(config).items():
        env.seed_everything(seed)
        model = make()
        loader = make_loader(x_train, y_train, batch_size=config["batch"], shuffle=True, seed=seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
        start = time.perf_counter()
        train.fit(model, loader, None, CrossEntropyLoss(), optimizer, epochs=config["epochs"],
                  num_classes=NUM_CLASSES, device="cpu", monitor="loss", progress=False)
        seconds = time.perf_counter() - start
        pred = train.predict_masks(model, x_val, device="cpu")
        runs.append({"name": name, "seed": seed, "seconds": round(seconds, 1),
                     "parameters": sum(p.numel() for p in model.parameters()), **score(y_val, pred),
                     "predicted_classes": [int(c) for c in np.unique(pred)]})  # [0]: background only
        print(f"[architecture_comparison] seed {seed} {name:12s} mean Dice {runs[-1]['mean_dice']:.3f} "
              f"agnostic bF1 {runs[-1]['boundary_f1_agnostic']:.3f} ({seconds:.0f} s)", file=sys.stderr, flush=True)
    return runs


def describe(config: dict) -> str:
    k = config["size"] // config["scene"]
    init = config.get("init", "each framework's default (runs made before the course's He initialisation)")
    return (f"synthetic scenes, 4 classes, {config['size']} px images made of {k}x{k} scenes of "
            f"{config['scene']} px (shape radius about {0.09 * config['scene']:.0f}-{0.18 * config['scene']:.0f} px); "
            f"{config['n_train']} training / {config['n_val']} validation images per seed; PyTorch, base_filters "
            f"{config['base_filters']}, U-Net depth {config['unet_depth']}, FCN-8s, DeepLabV3 output stride 8 with "
            f"ASPP rates {RATES}{models_note(config)}; initialisation {init}; cross-entropy, {config['epochs']} epochs, batch {config['batch']}, "
            f"Adam {config['learning_rate']:g}; seeds {', '.join(map(str, config['seeds']))}; boundary F1 tolerance 2 px")


def models_note(config: dict) -> str:
    names = config.get("models", MODEL_NAMES[:3])
    return " and DeepLabV3+ (the same encoder plus its decoder)" if "DeepLabV3+ OS8" in names else ""


def paired_section(runs: list[dict]) -> list[str]:
    """Markdown lines: one ``multiseed.paired_table`` per metric in PAIRED_METRICS, for the PAIRS present in runs."""
    names = {r["name"] for r in runs}
    pairs = [(a, b) for a, b in PAIRS if a in names and b in names]
    if not pairs:
        return []
    lines = ["### Paired comparisons (same seeds, same validation images)", "",
             "Per seed, a minus b; Student's t interval of the mean difference over the seeds. **Shown**: the 95 % "
             "interval excludes 0. *Not shown*: it includes 0 - the seeds do not settle the sign; it does not mean "
             "equal.", ""]
    for metric in PAIRED_METRICS:
        lines += [paired_table(runs, metric, pairs, title=METRICS[metric]), ""]
    return lines


def build_markdown(config: dict, summary: list[dict], parameters: dict, runs: list[dict] | None = None) -> str:
    params = ", ".join(f"{n} {p:,}" for n, p in parameters.items())
    return "\n".join([
        "## Architecture comparison (lecture 07, `benchmarks/architecture_comparison.py`)", "",
        f"Setup: {describe(config)}. Parameters: {params}.",
        "Scores on the held-out images, mean ± sample std over the seeds (min-max in brackets).", "",
        markdown_table(summary, METRICS, first="model / baseline"), "", *paired_section(runs or [])])


def main(argv=None) -> int:
    args = parse_args(argv)
    config = args.config
    import torch

    torch.set_num_threads(int(os.environ.get("COURSE_BENCH_THREADS", "1")))
    runs, created = [], dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if args.rebuild:
        saved = json.loads(args.out.with_suffix(".json").read_text())
        config, runs, created = saved["config"], saved["runs"], saved.get("created", created)
    for seed in [] if args.rebuild else config["seeds"]:
        x_train, y_train, x_val, y_val = make_data(config, seed)
        runs += baseline_runs(y_val, seed)
        runs += train_models(config, seed, x_train, y_train, x_val, y_val)
    order = list(MODEL_NAMES) + list(BASELINES)
    runs.sort(key=lambda r: (order.index(r["name"]), r["seed"]))
    summary = summarise(runs, list(METRICS) + ["dice_background"])
    parameters = {r["name"]: r["parameters"] for r in runs if "parameters" in r}
    markdown = build_markdown(config, summary, parameters, runs)
    payload = {"benchmark": "architecture_comparison", "lecture": "07", "framework": "PyTorch",
               "created": created,
               "setup": describe(config), "config": config, "class_names": list(CLASS_NAMES),
               "parameters": parameters, "runs": runs, "summary": summary}
    write_results(args.out, payload, markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
