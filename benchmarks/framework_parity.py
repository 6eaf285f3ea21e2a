"""Do fresh Keras and PyTorch U-Nets train alike? Collapse rate and scores over seeds, before and after issue 21.

"Before": each framework's default initialisation (Keras ``glorot_uniform``; PyTorch
``kaiming_uniform_(a=sqrt(5))`` with a random bias) and Keras Adam's default ``epsilon=1e-7``.
"After": the course's He-uniform initialisation with zero biases in both
(``course_utils.keras.init`` / ``course_utils.torch.init``) and Adam with ``epsilon=1e-8`` in both
(``course_utils.keras.optim.make_adam`` / ``course_utils.torch.optim.make_adam``).

Settings (the fast-mode budgets of the lectures that train both frameworks):

- ``l05_ce``: lecture 05, cross-entropy: U-Net depth 3, 8 base filters, 48 synthetic scenes of 64 px
  (rare triangle 20 %), 12 epochs, batch 4, Adam 3e-3; scored on 16 held-out scenes.
- ``l07_unet``: lecture 07's U-Net: depth 3, 8 base filters, 2x2 tiled scenes of 64 px (54 train / 18 val),
  10 epochs, batch 4, Adam 5e-3.

A run "collapses" when it predicts background only on the held-out images. Metric: mean Dice over the
4 classes (``course_utils.metrics.mean_dice``). Keras trains with ``fit`` on ``make_dataset``; PyTorch
with the course's ``fit`` on ``make_loader``; both with the course's ``CrossEntropyLoss``.

Usage::

    nice -n 5 .venv/bin/python benchmarks/framework_parity.py --seeds 4 --settings l05_ce
    nice -n 5 .venv/bin/python benchmarks/framework_parity.py --seeds 4 --settings l07_unet --stem framework_parity_l07
    # 4 more seeds added to a finished file; --seeds 0 --add only rebuilds the Markdown
    nice -n 5 .venv/bin/python benchmarks/framework_parity.py --seeds 4 --first-seed 4 --add --settings l05_ce
    .venv/bin/python benchmarks/framework_parity.py --quick                 # 1 seed, 1 epoch: checks that it runs

Writes ``benchmarks/results/framework_parity.json`` and ``.md`` (``--stem`` names other files).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import numpy as np  # noqa: E402

from course_utils import data, env, metrics  # noqa: E402

RESULTS = HERE / "results"
NUM_CLASSES = 4

SETTINGS = {
    "l05_ce": dict(epochs=12, batch=4, lr=3e-3, depth=3, base=8),
    "l07_unet": dict(epochs=10, batch=4, lr=5e-3, depth=3, base=8),
}


def load(setting: str, seed: int = 0):
    """(x_train, y_train, x_val, y_val) of a setting, built as the lecture builds it (data seed fixed)."""
    if setting == "l05_ce":
        images, masks = data.make_shapes(64, size=64, num_classes=NUM_CLASSES, seed=seed, rare_class_frequency=0.2)
        return images[:48], masks[:48], images[48:], masks[48:]
    scenes, scene_masks = data.make_shapes(4 * 72, size=32, num_classes=NUM_CLASSES, seed=seed)
    images, masks = data.tile_scenes(scenes, scene_masks, 2)
    return data.train_val_split(images, masks, val_fraction=0.25, seed=seed)


def run_keras(split, config, seed: int, after: bool) -> np.ndarray:
    import keras

    from course_utils.keras.data import make_dataset
    from course_utils.keras.losses import CrossEntropyLoss
    from course_utils.keras.optim import make_adam
    from course_utils.keras.train import predict_masks
    from course_utils.keras.unet import build_unet

    x_train, y_train, x_val, _ = split
    env.seed_everything(seed)
    model = build_unet(x_train.shape[1:], NUM_CLASSES, base_filters=config["base"], depth=config["depth"])
    if not after:  # Keras' default initialisation: glorot_uniform kernels (biases are zero either way)
        glorot = keras.initializers.GlorotUniform(seed=seed)
        for layer in model.layers:
            if hasattr(layer, "kernel"):
                layer.kernel.assign(glorot(tuple(layer.kernel.shape)))
    optimizer = make_adam(config["lr"]) if after else keras.optimizers.Adam(config["lr"])
    model.compile(optimizer=optimizer, loss=CrossEntropyLoss())
    ds = make_dataset(x_train, y_train, batch_size=config["batch"], shuffle=True, seed=seed)
    model.fit(ds, epochs=config["epochs"], verbose=0)
    return predict_masks(model, x_val)


def run_torch(split, config, seed: int, after: bool) -> np.ndarray:
    import torch

    from course_utils.torch.data import make_loader
    from course_utils.torch.losses import CrossEntropyLoss
    from course_utils.torch.optim import make_adam
    from course_utils.torch.train import fit, predict_masks
    from course_utils.torch.unet import UNet

    x_train, y_train, x_val, _ = split
    env.seed_everything(seed)
    model = UNet(x_train.shape[-1], NUM_CLASSES, base_filters=config["base"], depth=config["depth"])
    if not after:  # PyTorch's default initialisation
        for module in model.modules():
            if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                module.reset_parameters()
    loader = make_loader(x_train, y_train, batch_size=config["batch"], shuffle=True, seed=seed)
    fit(model, loader, None, CrossEntropyLoss(), make_adam(model.parameters(), lr=config["lr"]),
        epochs=config["epochs"], num_classes=NUM_CLASSES, device="cpu", monitor="loss", progress=False)
    return predict_masks(model, x_val, device="cpu")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch, nothing written")
    parser.add_argument("--stem", default="framework_parity", help="results file name (without .json/.md)")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    parser.add_argument("--add", action="store_true", help="add these runs to those already in the results file")
    args = parser.parse_args(argv)
    import keras  # noqa: F401  (imported before seeding, so seed_everything seeds it)
    import torch

    torch.set_num_threads(1)
    seeds = [0] if args.quick else list(range(args.first_seed, args.first_seed + args.seeds))
    runs = []
    if args.add and (RESULTS / f"{args.stem}.json").exists():
        runs = json.loads((RESULTS / f"{args.stem}.json").read_text())["runs"]
    for setting in args.settings:
        config = dict(SETTINGS[setting], epochs=1) if args.quick else SETTINGS[setting]
        split = load(setting)
        for seed in seeds:
            for when in ("before", "after"):
                for framework, runner in (("keras", run_keras), ("torch", run_torch)):
                    start = time.process_time()
                    pred = runner(split, config, seed, when == "after")
                    dice = float(metrics.mean_dice(split[3], pred, NUM_CLASSES))
                    row = dict(setting=setting, when=when, framework=framework, seed=seed, mean_dice=dice,
                               collapsed=bool(np.all(pred == 0)), classes=np.unique(pred).tolist(),
                               cpu_s=time.process_time() - start)
                    runs.append(row)
                    print(json.dumps(row), flush=True)
    if args.quick:
        return runs
    runs = sorted({(r["setting"], r["when"], r["framework"], r["seed"]): r for r in runs}.values(),
                  key=lambda r: (r["setting"], r["seed"], r["when"], r["framework"]))
    args.settings = sorted({r["setting"] for r in runs}, key=list(SETTINGS).index)
    lines = ["# Keras vs PyTorch U-Net from fresh initialisation: before and after issue 21", "",
             "Written by `benchmarks/framework_parity.py`; metric: mean Dice over 4 classes on held-out images; "
             "collapsed = background predicted everywhere.", "",
             "| setting | when | framework | seeds | collapsed | mean Dice (mean ± sd) | range |",
             "|---|---|---|---|---|---|---|"]
    for setting in args.settings:
        for when in ("before", "after"):
            for framework in ("keras", "torch"):
                rows = [r for r in runs if (r["setting"], r["when"], r["framework"]) == (setting, when, framework)]
                d = np.array([r["mean_dice"] for r in rows])
                lines.append(f"| {setting} | {when} | {framework} | {len(rows)} | "
                             f"{sum(r['collapsed'] for r in rows)}/{len(rows)} | {d.mean():.3f} ± {d.std(ddof=1):.3f} | "
                             f"{d.min():.3f}-{d.max():.3f} |")
    try:
        from course_utils.multiseed import compare_paired

        lines += ["", "Paired by seed, Keras minus PyTorch (mean Dice):", ""]
        for setting in args.settings:
            for when in ("before", "after"):
                k = [r["mean_dice"] for r in runs if (r["setting"], r["when"], r["framework"]) == (setting, when, "keras")]
                t = [r["mean_dice"] for r in runs if (r["setting"], r["when"], r["framework"]) == (setting, when, "torch")]
                lines.append(f"- {setting}, {when}: {compare_paired(k, t)['verdict']}")
        lines += ["", "Paired by seed, after minus before (mean Dice), per framework:", ""]
        for setting in args.settings:
            for framework in ("keras", "torch"):
                a, b = ([r["mean_dice"] for r in runs if (r["setting"], r["when"], r["framework"]) == (setting, w, framework)]
                        for w in ("after", "before"))
                lines.append(f"- {setting}, {framework}: {compare_paired(a, b)['verdict']}")
    except Exception as error:  # pragma: no cover - older multiseed
        lines += ["", f"(paired comparison unavailable: {error})"]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.stem}.json").write_text(json.dumps(dict(settings=SETTINGS, runs=runs), indent=1))
    (RESULTS / f"{args.stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return runs


if __name__ == "__main__":
    main()
