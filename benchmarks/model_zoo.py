#!/usr/bin/env python3
"""Training throughput of the course's models: U-Net, FCN-8s and DeepLabV3, in Keras and PyTorch.

For each model and framework, at one image size: build the model (3 input channels, 3 classes, like the
Oxford-IIIT Pet capstone), then time the training step (forward, cross-entropy, backward, Adam update) on
batches already in memory. Warm-up steps (tracing, allocation, cuDNN autotuning) are excluded; the median
of several timed runs is reported, in images per second, with the parameter count. float32 throughout
(no mixed precision), so the two frameworks do the same arithmetic.

    python benchmarks/model_zoo.py --quick            # seconds: checks that it runs
    python benchmarks/model_zoo.py                    # 256 px, batch 8 (run it on a quiet machine)
    python benchmarks/model_zoo.py --frameworks torch --models unet deeplab --json out.json

Prints a Markdown table; ``--json PATH`` also writes the rows (used by benchmarks/report.py).
A model whose module is missing or fails to build is reported as "unavailable" with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # leave GPU memory for the other framework

MODELS = ("unet", "fcn", "deeplab")
MODEL_TITLES = {"unet": "U-Net", "fcn": "FCN-8s", "deeplab": "DeepLabV3"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=256, help="image height = width (multiple of 32)")
    parser.add_argument("--batch", type=int, default=8, help="batch size")
    parser.add_argument("--base-filters", type=int, default=32, help="base_filters of every model")
    parser.add_argument("--unet-depth", type=int, default=4, help="U-Net depth")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--classes", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="training steps per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs; the median is reported")
    parser.add_argument("--warmup", type=int, default=3, help="untimed warm-up steps first")
    parser.add_argument("--frameworks", nargs="+", default=["torch", "keras"], choices=["torch", "keras"])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: only checks that the script runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.batch, args.base_filters, args.unet_depth = 64, 2, 4, 2
        args.steps, args.repeats, args.warmup = 2, 2, 1
    if args.size % 32:
        parser.error(f"--size {args.size} must be a multiple of 32 (FCN-8s pools five times)")
    return args


def median_rate(step, images_per_step: int, steps: int, repeats: int, sync=lambda: None) -> tuple[float, list]:
    """Median images/s over ``repeats`` runs of ``steps`` calls of ``step()``."""
    rates = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(images_per_step * steps / (time.perf_counter() - start))
    return statistics.median(rates), rates


def synthetic_batch(args, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.random((args.batch, args.size, args.size, args.channels)).astype("float32")
    masks = rng.integers(0, args.classes, size=(args.batch, args.size, args.size)).astype("int64")
    return images, masks


def _row(framework, device, model, **extra):
    return {"framework": framework, "device": device, "model": MODEL_TITLES[model], **extra}


# ----------------------------------------------------------------------------- PyTorch
def torch_model(name, args):
    if name == "unet":
        from course_utils.torch.unet import UNet

        return UNet(in_channels=args.channels, num_classes=args.classes, base_filters=args.base_filters,
                    depth=args.unet_depth)
    if name == "fcn":
        from course_utils.torch.fcn import FCN

        return FCN(args.channels, args.classes, variant="8s", base_filters=args.base_filters)
    from course_utils.torch.deeplab import DeepLabV3

    return DeepLabV3(args.channels, args.classes, output_stride=16, base_filters=args.base_filters)


def bench_torch(args) -> list[dict]:
    import torch

    from course_utils import env

    device = env.torch_device()
    framework = f"PyTorch {torch.__version__}"
    images, masks = synthetic_batch(args)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device)
    y = torch.from_numpy(masks).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    rows = []
    for name in args.models:
        env.seed_everything(0)
        try:
            model = torch_model(name, args).to(device)
        except Exception as error:  # missing module, different signature, ...
            rows.append(_row(framework, str(device), name, error=f"{type(error).__name__}: {error}"))
            continue
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        model.train()

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()

        try:
            for _ in range(args.warmup):
                step()
            rate, rates = median_rate(step, args.batch, args.steps, args.repeats, sync)
        except Exception as error:
            rows.append(_row(framework, str(device), name, error=f"{type(error).__name__}: {error}"))
            continue
        parameters = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rows.append(_row(framework, str(device), name, parameters=parameters, images_per_s=rate, runs=rates))
        del model, optimizer
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


# ----------------------------------------------------------------------------- Keras
def keras_model(name, args):
    shape = (args.size, args.size, args.channels)
    if name == "unet":
        from course_utils.keras.unet import build_unet

        return build_unet(shape, num_classes=args.classes, base_filters=args.base_filters, depth=args.unet_depth)
    if name == "fcn":
        from course_utils.keras.fcn import build_fcn

        return build_fcn(shape, args.classes, variant="8s", base_filters=args.base_filters)
    from course_utils.keras.deeplab import build_deeplab

    return build_deeplab(shape, args.classes, output_stride=16, base_filters=args.base_filters)


def bench_keras(args) -> list[dict]:
    import keras
    import tensorflow as tf

    from course_utils import env

    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    framework = f"Keras {keras.__version__} / TF {tf.__version__}"
    images, masks = synthetic_batch(args)
    x, y = tf.constant(images), tf.constant(masks.astype("int32"))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    rows = []
    for name in args.models:
        env.seed_everything(0)
        keras.backend.clear_session()
        try:
            model = keras_model(name, args)
        except Exception as error:
            rows.append(_row(framework, device, name, error=f"{type(error).__name__}: {error}"))
            continue
        optimizer = keras.optimizers.Adam(1e-3)

        @tf.function
        def train_step(images, targets):
            with tf.GradientTape() as tape:
                loss = loss_fn(targets, model(images, training=True))
            gradients = tape.gradient(loss, model.trainable_variables)
            optimizer.apply_gradients(zip(gradients, model.trainable_variables))
            return loss

        last = {}

        def step():
            last["loss"] = train_step(x, y)

        def sync():
            if "loss" in last:
                float(last["loss"])  # waits for the queued GPU work

        try:
            for _ in range(args.warmup):
                step()
            rate, rates = median_rate(step, args.batch, args.steps, args.repeats, sync)
        except Exception as error:
            rows.append(_row(framework, device, name, error=f"{type(error).__name__}: {error}"))
            continue
        parameters = int(sum(np.prod(v.shape) for v in model.trainable_variables))
        rows.append(_row(framework, device, name, parameters=parameters, images_per_s=rate, runs=rates))
    return rows


# ----------------------------------------------------------------------------- report
def settings(args) -> str:
    return (
        f"{args.size}x{args.size}x{args.channels} images, {args.classes} classes, batch {args.batch}, "
        f"base_filters {args.base_filters} (U-Net depth {args.unet_depth}, FCN variant 8s, DeepLabV3 output "
        f"stride 16), float32, Adam; median of {args.repeats} runs of {args.steps} steps after {args.warmup} "
        "warm-up steps" + (" (--quick: sizes too small to mean anything)" if args.quick else "")
    )


def markdown(rows, args) -> str:
    lines = [
        "## Model zoo: training throughput",
        "",
        f"Forward + backward + update, {settings(args)}.",
        "",
        "| model | framework | device | parameters | images/s | ms/step |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['model']} | {row['framework']} | {row['device']} | - | unavailable | "
                         f"{row['error'][:80]} |")
        else:
            ms = 1000 * args.batch / row["images_per_s"]
            lines.append(f"| {row['model']} | {row['framework']} | {row['device']} | {row['parameters']:,} | "
                         f"{row['images_per_s']:.1f} | {ms:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = []
    if "torch" in args.frameworks:
        rows += bench_torch(args)
    if "keras" in args.frameworks:
        rows += bench_keras(args)
    print(markdown(rows, args))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        payload = {"settings": settings(args), "quick": args.quick, "batch": args.batch, "size": args.size,
                   "python": platform.python_version(), "rows": rows}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
