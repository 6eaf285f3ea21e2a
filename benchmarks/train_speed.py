#!/usr/bin/env python3
"""Training speed of the course's U-Nets, and what the course's helpers cost.

Measures, for the same U-Net configuration in both frameworks:

1. the training step (forward, loss, backward, optimizer step) in images/s,
   with warm-up steps excluded and the median of several timed runs;
2. PyTorch: the course's ``course_utils.torch.train.fit`` (progress bar, loss
   bookkeeping) against a bare loop over the same model and batches;
3. Keras: ``model.fit`` compiled by ``course_utils.keras.train.compile_model``
   (Dice/IoU metrics, progress bar off) against a bare ``tf.GradientTape`` loop.

Overhead % = (bare images/s - helper images/s) / bare images/s * 100; the
course's goal is under 10 %. Prints a Markdown table with the machine.

    python benchmarks/train_speed.py --quick                 # seconds: checks that it runs
    python benchmarks/train_speed.py --size 256 --batch 8 --depth 4 --base-filters 32
    python benchmarks/train_speed.py --frameworks torch      # only one framework

Run it on a quiet machine: other processes make every number slower.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

import machine  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="image height = width (multiple of 2**depth)")
    parser.add_argument("--batch", type=int, default=8, help="batch size")
    parser.add_argument("--depth", type=int, default=2, help="U-Net depth (pooling steps)")
    parser.add_argument("--base-filters", type=int, default=16, help="filters of the first level")
    parser.add_argument("--channels", type=int, default=1, help="input channels")
    parser.add_argument("--steps", type=int, default=10, help="training steps (batches) per epoch")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per timed run (fit() is called once per run)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up epochs of --steps steps first (compilation, allocation)")
    parser.add_argument("--frameworks", nargs="+", default=["torch", "keras"], choices=["torch", "keras"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: only checks that the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.batch, args.depth, args.base_filters = 32, 2, 2, 4
        args.steps, args.repeats, args.warmup, args.epochs = 3, 2, 1, 2
    if args.size % 2**args.depth:
        parser.error(f"--size {args.size} must be a multiple of 2**depth = {2**args.depth}")
    return args


def median_rate(run, images_per_run: int, repeats: int) -> float:
    """Median images/s of ``repeats`` calls of ``run()`` (each processing ``images_per_run`` images)."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(images_per_run / (time.perf_counter() - start))
    return statistics.median(rates)


def synthetic_batches(args, seed=0):
    """``steps`` batches of NHWC float32 images and int64 masks (2 classes)."""
    rng = np.random.default_rng(seed)
    images = rng.random((args.steps * args.batch, args.size, args.size, args.channels)).astype("float32")
    masks = (images[..., 0] > 0.7).astype("int64")
    return images, masks


# ----------------------------------------------------------------------------- PyTorch
def bench_torch(args) -> list[dict]:
    import torch

    from course_utils import env
    from course_utils.torch import train
    from course_utils.torch.unet import UNet

    env.seed_everything(0)
    device = env.torch_device()
    amp = device.type == "cuda"  # the same choice fit(amp="auto", channels_last="auto") makes
    memory_format = torch.channels_last if amp else torch.preserve_format
    images, masks = synthetic_batches(args)
    batches = [
        (
            torch.from_numpy(images[i : i + args.batch]).permute(0, 3, 1, 2).contiguous(),
            torch.from_numpy(masks[i : i + args.batch]),
        )
        for i in range(0, len(images), args.batch)
    ]
    model = UNet(args.channels, 2, base_filters=args.base_filters, depth=args.depth).to(device)
    model = model.to(memory_format=memory_format)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler("cuda") if amp else None

    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize()

    def bare_epoch():
        """The plain loop of lecture 04: no progress bar, no bookkeeping."""
        model.train()
        for x, y in batches:
            x = x.to(device, non_blocking=True, memory_format=memory_format)
            y = y.to(device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                loss = loss_fn(model(x), y)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
        synchronize()

    def bare_run():
        for _ in range(args.epochs):
            bare_epoch()

    def fit_run():
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            train.fit(model, batches, None, loss_fn, optimizer, epochs=args.epochs, num_classes=2, device=device,
                      monitor="loss", progress=True)
        synchronize()

    for _ in range(args.warmup):
        bare_epoch()
    fit_run()  # warm-up (imports tqdm, allocates the scaler)
    per_run = args.epochs * args.steps * args.batch
    bare = median_rate(bare_run, per_run, args.repeats)
    helper = median_rate(fit_run, per_run, args.repeats)
    return [
        {"framework": f"PyTorch {torch.__version__}", "device": str(device), "what": "training step (bare loop)",
         "rate": bare, "overhead": None},
        {"framework": f"PyTorch {torch.__version__}", "device": str(device), "what": "course fit() (progress bar)",
         "rate": helper, "overhead": 100 * (bare - helper) / bare},
    ]


# ----------------------------------------------------------------------------- Keras
def bench_keras(args) -> list[dict]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import tensorflow as tf

    from course_utils import env
    from course_utils.keras import train
    from course_utils.keras.unet import build_unet

    env.seed_everything(0)
    images, masks = synthetic_batches(args)
    masks = masks.astype("int32")
    shape = (args.size, args.size, args.channels)

    # Bare loop: a tf.function train step over the same batches (what model.fit compiles, minus metrics).
    bare_model = build_unet(shape, 2, base_filters=args.base_filters, depth=args.depth)
    optimizer = keras.optimizers.Adam(1e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    batches = [
        (tf.constant(images[i : i + args.batch]), tf.constant(masks[i : i + args.batch]))
        for i in range(0, len(images), args.batch)
    ]

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, bare_model(x, training=True))
        gradients = tape.gradient(loss, bare_model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, bare_model.trainable_variables))
        return loss

    def bare_epoch():
        for x, y in batches:
            loss = train_step(x, y)
        float(loss)  # wait for the last step

    # model.fit with the course's compile_model: Dice/IoU metrics, the loss tracker, callbacks.
    fit_model = build_unet(shape, 2, base_filters=args.base_filters, depth=args.depth)
    train.compile_model(fit_model, num_classes=2)  # course CrossEntropyLoss + Dice/IoU metrics
    loss_name = "course CrossEntropyLoss"
    dataset = tf.data.Dataset.from_tensor_slices((images, masks)).batch(args.batch).cache()

    def bare_run():
        for _ in range(args.epochs):
            bare_epoch()

    def fit_run():
        fit_model.fit(dataset, epochs=args.epochs, verbose=0)

    for _ in range(args.warmup):
        bare_epoch()
    fit_run()  # warm-up: traces and compiles the train function
    per_run = args.epochs * args.steps * args.batch
    bare = median_rate(bare_run, per_run, args.repeats)
    helper = median_rate(fit_run, per_run, args.repeats)
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    version = f"Keras {keras.__version__} / TF {tf.__version__}"
    return [
        {"framework": version, "device": device, "what": "training step (bare GradientTape loop)",
         "rate": bare, "overhead": None},
        {"framework": version, "device": device, "what": f"model.fit + compile_model ({loss_name}, Dice, IoU)",
         "rate": helper, "overhead": 100 * (bare - helper) / bare},
    ]


# ----------------------------------------------------------------------------- report
def markdown(rows, args) -> str:
    lines = [
        "## Training speed",
        "",
        f"- Machine: {machine.one_line()}",
        f"- Python {platform.python_version()}, NumPy {np.__version__}",
        f"- U-Net depth {args.depth}, base_filters {args.base_filters}, input {args.size}x{args.size}x{args.channels}, "
        f"batch {args.batch}, 2 classes; runs of {args.epochs} epochs x {args.steps} steps, median of {args.repeats} runs after "
        f"{args.warmup} warm-up epochs" + (" (--quick: sizes too small to mean anything)" if args.quick else ""),
        "",
        "| framework | device | what | images/s | ms/step | overhead vs bare |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in rows:
        overhead = "-" if row["overhead"] is None else f"{row['overhead']:+.1f} %"
        ms = 1000 * args.batch / row["rate"]
        lines.append(f"| {row['framework']} | {row['device']} | {row['what']} | {row['rate']:.1f} | {ms:.1f} | {overhead} |")
    lines.append("")
    lines.append("Overhead > 0: the helper is slower than the bare loop (goal: < 10 %); small negative values are noise.")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = []
    if "torch" in args.frameworks:
        rows += bench_torch(args)
    if "keras" in args.frameworks:
        rows += bench_keras(args)
    print(markdown(rows, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
