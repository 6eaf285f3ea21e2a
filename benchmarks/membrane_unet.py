#!/usr/bin/env python3
"""How well the course's U-Net segments the ISBI 2012 membranes, in Keras and PyTorch, at a chosen budget.

The recipe of lectures 03 and 04, as one script: train on random crops of slices 0-19 (flips and quarter
turns), validate on slices 20-24 after every epoch (early stopping and the best checkpoint on validation
Dice), then predict the **whole 512x512 held-out slices 25-29** (the network is fully convolutional) and
score them: membrane Dice and IoU, pixel error (the fraction of wrong pixels), boundary F1, and the
"all membrane" baseline. Both frameworks get the same configuration, seed and data.

    python benchmarks/membrane_unet.py --preset fast      # the lectures' fast mode (a minute on a CPU)
    python benchmarks/membrane_unet.py --preset cpu       # a larger budget that a 2-core CPU does in ~30 min
    python benchmarks/membrane_unet.py --preset lecture   # the lectures' full mode (the paper's width): a GPU
    python benchmarks/membrane_unet.py --preset cpu --frameworks torch --epochs 20 --json out.json

Any setting of a preset can be overridden (``--base-filters``, ``--epochs``, ...). Prints a Markdown table;
``--json PATH`` also writes it for ``benchmarks/report.py`` (section "U-Net on the membranes").

For scale: Ronneberger et al. (2015) report a pixel error of 0.0611 for the U-Net on the challenge's hidden
test stack, with the organisers' definition; the pixel error here is the plain fraction of misclassified
pixels on slices 25-29 of the public training stack, so compare the two only roughly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")

from course_utils import data, env, metrics  # noqa: E402

TRAIN_SLICES, VAL_SLICES, TEST_SLICES = np.arange(0, 20), np.arange(20, 25), np.arange(25, 30)
NUM_CLASSES = 2  # 0 = cell, 1 = membrane

# The lectures' own settings (03_unet_keras / 04_unet_pytorch) and one in between for a CPU.
PRESETS = {
    "fast": dict(crop=64, val_size=128, crops_per_slice=4, batch=8, depth=3, base_filters=8, epochs=8,
                 patience=5, learning_rate=1e-3),
    "cpu": dict(crop=256, val_size=512, crops_per_slice=8, batch=8, depth=4, base_filters=16, epochs=30,
                patience=8, learning_rate=1e-3),
    "lecture": dict(crop=256, val_size=512, crops_per_slice=8, batch=8, depth=4, base_filters=64, epochs=40,
                    patience=10, learning_rate=1e-3),
}
SETTINGS = tuple(PRESETS["fast"])


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu", help="starting settings")
    for name in SETTINGS:
        kind = float if name == "learning_rate" else int
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=None,
                            help=f"override the preset's {name}")
    parser.add_argument("--frameworks", nargs="+", default=["torch", "keras"], choices=["torch", "keras"])
    parser.add_argument("--elastic", action="store_true",
                        help="add the paper's elastic deformation to the flips and quarter turns")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data-root", type=Path, default=None,
                        help="folder holding isbi2012-membrane/ (default: COURSE_DATA_DIR or the course cache)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    config = dict(PRESETS[args.preset])
    for name in SETTINGS:
        if getattr(args, name) is not None:
            config[name] = getattr(args, name)
    if config["crop"] % 2 ** config["depth"] or config["val_size"] % 2 ** config["depth"]:
        parser.error(f"--crop {config['crop']} and --val-size {config['val_size']} must be multiples of "
                     f"2**depth = {2 ** config['depth']}")
    if not 0 < config["val_size"] <= 512 or not 0 < config["crop"] <= 512:
        parser.error("--crop and --val-size must lie in 1..512 (the slices are 512x512)")
    config["elastic"] = args.elastic
    args.config = config
    return args


def describe(config) -> str:
    transforms = "flips, quarter turns" + (" and elastic deformation" if config.get("elastic") else "")
    return (f"U-Net depth {config['depth']}, base_filters {config['base_filters']}; {config['crop']} px crops "
            f"({transforms}), {config['crops_per_slice']} per training slice per epoch, "
            f"batch {config['batch']}; at most "
            f"{config['epochs']} epochs (early stopping after {config['patience']} without a better val Dice on the "
            f"top-left {config['val_size']} px of slices 20-24); Adam {config['learning_rate']:g}")


def augmentation(config):
    """The ``augment`` argument of make_loader / make_dataset: flips and quarter turns, optionally elastic."""
    return {"elastic": True} if config.get("elastic") else True


def score(masks_true, masks_pred) -> dict:
    """Scores on the held-out slices: membrane (class 1) Dice/IoU, pixel error, boundary F1."""
    return {
        "membrane_dice": float(metrics.dice_per_class(masks_true, masks_pred, NUM_CLASSES)[1]),
        "membrane_iou": float(metrics.iou_per_class(masks_true, masks_pred, NUM_CLASSES)[1]),
        "pixel_error": float(1.0 - metrics.pixel_accuracy(masks_true, masks_pred)),
        "boundary_f1": float(metrics.boundary_f1(masks_true, masks_pred, NUM_CLASSES, tolerance=2)[1]),
    }


def run_torch(images, masks, config, seed, checkpoint_dir) -> dict:
    import torch

    from course_utils.torch import train
    from course_utils.torch.data import make_loader
    from course_utils.torch.losses import CrossEntropyLoss
    from course_utils.torch.unet import UNet, count_parameters

    device = env.torch_device()
    env.seed_everything(seed)
    train_index = np.repeat(TRAIN_SLICES, config["crops_per_slice"])
    val = np.s_[VAL_SLICES, : config["val_size"], : config["val_size"]]
    train_loader = make_loader(images[train_index], masks[train_index], batch_size=config["batch"], shuffle=True,
                               augment=augmentation(config), crop_size=config["crop"], seed=seed)
    val_loader = make_loader(images[val], masks[val], batch_size=config["batch"], shuffle=False)
    model = UNet(in_channels=1, num_classes=NUM_CLASSES, base_filters=config["base_filters"], depth=config["depth"])
    optimizer = torch.optim.Adam(model.parameters(), lr=config["learning_rate"])
    start = time.perf_counter()
    history = train.fit(model, train_loader, val_loader, CrossEntropyLoss(), optimizer, epochs=config["epochs"],
                        num_classes=NUM_CLASSES, device=device, checkpoint_path=checkpoint_dir / "unet.pt",
                        early_stopping_patience=config["patience"], monitor="val_dice",
                        progress=sys.stderr.isatty())  # a progress bar for a person, none in logs
    seconds = time.perf_counter() - start
    predicted = train.predict_masks(model, images[TEST_SLICES], batch_size=1)
    return {"framework": f"PyTorch {torch.__version__}", "device": str(device),
            "parameters": count_parameters(model), "history": history, "seconds": seconds,
            **score(masks[TEST_SLICES], predicted)}


def run_keras(images, masks, config, seed, checkpoint_dir) -> dict:
    import keras
    import tensorflow as tf

    from course_utils.keras import train
    from course_utils.keras.data import make_dataset
    from course_utils.keras.unet import build_unet, count_parameters

    env.seed_everything(seed)
    train_index = np.repeat(TRAIN_SLICES, config["crops_per_slice"])
    val = np.s_[VAL_SLICES, : config["val_size"], : config["val_size"]]
    train_ds = make_dataset(images[train_index], masks[train_index], batch_size=config["batch"], shuffle=True,
                            augment=augmentation(config), crop_size=config["crop"], seed=seed)
    val_ds = make_dataset(images[val], masks[val], batch_size=config["batch"], shuffle=False)
    model = build_unet((None, None, 1), num_classes=NUM_CLASSES, base_filters=config["base_filters"],
                       depth=config["depth"])
    train.compile_model(model, num_classes=NUM_CLASSES, learning_rate=config["learning_rate"])
    callbacks = train.training_callbacks(checkpoint_path=checkpoint_dir / "unet.keras",
                                         patience=config["patience"], monitor="val_dice")
    start = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=config["epochs"], callbacks=callbacks,
                        verbose=2 if sys.stderr.isatty() else 0)  # one line per epoch for a person
    seconds = time.perf_counter() - start
    predicted = train.predict_masks(model, images[TEST_SLICES], batch_size=1)
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    return {"framework": f"Keras {keras.__version__} / TF {tf.__version__}", "device": device,
            "parameters": count_parameters(model), "history": history.history, "seconds": seconds,
            **score(masks[TEST_SLICES], predicted)}


def summarize(result: dict) -> dict:
    """A JSON-friendly row: the scores, the epochs run and the best validation Dice."""
    history = result.pop("history")
    val_dice = [float(v) for v in history.get("val_dice", [])]
    result["epochs_run"] = len(history.get("loss", []))
    result["best_val_dice"] = max(val_dice) if val_dice else float("nan")
    result["loss_first_last"] = [float(history["loss"][0]), float(history["loss"][-1])] if history.get("loss") else []
    return result


def table(rows) -> list[str]:
    """Markdown table lines of the result rows (benchmarks/report.py uses the same)."""
    lines = [
        "| framework | device | parameters | epochs | minutes | membrane Dice | membrane IoU | pixel error | "
        "boundary F1 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['framework']} | - | - | - | - | failed: {row['error'][:80]} | | | |")
            continue
        lines.append(f"| {row['framework']} | {row['device']} | {row['parameters']:,} | {row['epochs_run']} | "
                     f"{row['seconds'] / 60:.1f} | {row['membrane_dice']:.3f} | {row['membrane_iou']:.3f} | "
                     f"{row['pixel_error']:.3f} | {row['boundary_f1']:.3f} |")
    return lines


def markdown(rows, config, baseline) -> str:
    return "\n".join([
        "## U-Net on the ISBI 2012 membranes",
        "",
        f"{describe(config)}. Scores on the whole 512x512 held-out slices 25-29; "
        f"\"all membrane\" scores membrane Dice {baseline['membrane_dice']:.3f}, \"all cell\" 0.",
        "",
        *table(rows),
    ])


def main(argv=None) -> int:
    import tempfile

    args = parse_args(argv)
    images, masks = data.load_membranes(root=args.data_root)  # clear message if the slices are missing
    baseline = score(masks[TEST_SLICES], np.ones_like(masks[TEST_SLICES]))
    runners = {"torch": run_torch, "keras": run_keras}
    rows = []
    for framework in args.frameworks:
        print(f"training the {framework} U-Net: {describe(args.config)}", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as checkpoint_dir:
            try:
                row = summarize(runners[framework](images, masks, args.config, args.seed, Path(checkpoint_dir)))
            except ImportError as error:
                row = {"framework": framework, "error": f"{type(error).__name__}: {error}"}
        rows.append(row)
        print(f"  {row}", file=sys.stderr, flush=True)
    print(markdown(rows, args.config, baseline))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"preset": args.preset, "config": args.config, "setup": describe(args.config), "seed": args.seed,
                   "baseline_all_membrane": baseline, "python": platform.python_version(), "rows": rows}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0 if all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
