#!/usr/bin/env python3
"""Train the course's Keras U-Net data-parallel under tf.distribute.MirroredStrategy.

One process drives all devices of a machine:

    python scripts/train_mirrored_keras.py --devices 2 --out runs/mirrored2     # 2 logical CPU devices
    python scripts/train_mirrored_keras.py --preset full --out runs/mirrored_gpus  # all GPUs of the machine

With GPUs visible, MirroredStrategy takes all of them and --devices is ignored. Several machines: set
TF_CONFIG on each (course_utils.keras.distributed.tf_config) and start the same command on every one;
the script then uses MultiWorkerMirroredStrategy.

The settings mirror scripts/train_ddp_torch.py: the same U-Net, synthetic data (course_utils.data.make_shapes),
seed, global batch, SGD with momentum and learning-rate rule. Only the chief writes ``OUT/log.json``
(settings, per-step loss of the global batch, images/s) and ``OUT/checkpoint.weights.h5``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing course_utils
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PRESETS = {
    "fast": dict(steps=20, global_batch=8, image_size=64, num_images=128, base_filters=8, depth=3),
    "full": dict(steps=300, global_batch=64, image_size=128, num_images=2048, base_filters=32, depth=4),
}


def parse_args(argv=None):
    from course_utils.distributed import check_script_arguments, positive_float, positive_int

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="fast")
    parser.add_argument("--devices", type=positive_int, default=2, help="logical CPU devices when there is no GPU")
    parser.add_argument("--steps", type=positive_int, help="optimizer steps (global batches)")
    parser.add_argument("--global-batch", type=positive_int, help="images per optimizer step, over all replicas")
    parser.add_argument("--image-size", type=positive_int)
    parser.add_argument("--num-images", type=positive_int, help="synthetic training images")
    parser.add_argument("--base-filters", type=positive_int)
    parser.add_argument("--depth", type=positive_int)
    parser.add_argument("--num-classes", type=positive_int, default=4)
    parser.add_argument("--no-batch-norm", action="store_true", help="conv+bias-ReLU blocks without BatchNorm")
    parser.add_argument("--sync-batchnorm", action="store_true",
                        help="BatchNormalization(synchronized=True): statistics over the global batch")
    parser.add_argument("--lr", type=positive_float, default=0.05, help="SGD learning rate tuned at --base-batch")
    parser.add_argument("--base-batch", type=positive_int, default=8, help="the batch size --lr was tuned for")
    parser.add_argument("--lr-rule", choices=("linear", "sqrt", "none"), default="linear")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--mixed-precision", action="store_true",
                        help="mixed_float16 on GPUs, mixed_bfloat16 on the CPU")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/mirrored_keras"))
    args = parser.parse_args(argv)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    # Up front: --out must be a folder that can be written (not a file of that name), and the global batch
    # must split over --devices (checked again once the strategy knows the real number of replicas).
    try:
        check_script_arguments(args.global_batch, args.devices, args.out, args.num_images)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    import tensorflow as tf

    from course_utils.keras import distributed as kd

    strategy = kd.make_strategy(num_cpu_devices=args.devices)  # first: devices are fixed once TF runs
    import keras

    from course_utils import data
    from course_utils.distributed import RunLog, scale_learning_rate
    from course_utils.keras.losses import CrossEntropyLoss
    from course_utils.keras.unet import build_unet, count_parameters

    on_gpu = bool(tf.config.list_physical_devices("GPU"))
    if args.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16" if on_gpu else "mixed_bfloat16")
    replicas = strategy.num_replicas_in_sync
    if args.global_batch % replicas:  # GPUs found: --devices was not the number of replicas
        from course_utils.distributed import check_script_arguments

        try:
            check_script_arguments(args.global_batch, replicas, args.out)
        except ValueError as error:
            raise SystemExit(f"{Path(sys.argv[0]).name}: error: {error}") from None
    learning_rate = scale_learning_rate(args.lr, args.global_batch, args.base_batch, rule=args.lr_rule)
    config = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    config.update(world_size=replicas, strategy=type(strategy).__name__,
                  device="GPU" if on_gpu else "CPU", per_device_batch=kd.per_device_batch_size(args.global_batch, replicas),
                  learning_rate=learning_rate, framework="Keras " + keras.__version__)
    log = RunLog(args.out / "log.json", rank=kd.worker_rank(strategy), config=config)

    images, masks = data.make_shapes(args.num_images, size=args.image_size, num_classes=args.num_classes,
                                     seed=args.seed)
    dataset = kd.make_distributed_dataset(images, masks, args.global_batch, strategy, seed=args.seed)
    keras.utils.set_random_seed(args.seed)  # the same initial weights for any number of replicas
    with strategy.scope():  # variables created here are mirrored on every replica
        model = build_unet((args.image_size, args.image_size, 3), num_classes=args.num_classes,
                           base_filters=args.base_filters, depth=args.depth, batch_norm=not args.no_batch_norm)
        if args.sync_batchnorm:
            model = kd.convert_sync_batchnorm(model)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=args.momentum),
                      loss=CrossEntropyLoss(), jit_compile="auto" if on_gpu else False)
    log.record["config"]["parameters"] = count_parameters(model)
    callback = kd.RunLogCallback(log, args.global_batch)
    from course_utils.keras.train import StopOnNonFiniteLoss  # a NaN/inf loss stops the run with the causes

    model.fit(dataset, epochs=1, steps_per_epoch=args.steps, callbacks=[callback, StopOnNonFiniteLoss()], verbose=0)
    saved = kd.save_weights_chief(model, args.out / "checkpoint.weights.h5", strategy)
    log.save(final_loss=log.record["steps"][-1]["loss"] if log.active else None, **callback.timing(),
             checkpoint="checkpoint.weights.h5", checkpoint_written_by=[kd.worker_rank(strategy)] if saved else [])
    if log.active:
        print(f"{replicas} replica(s), {type(strategy).__name__}: {args.steps} steps of {args.global_batch} images, "
              f"final loss {log.record['steps'][-1]['loss']:.4f}; wrote {args.out / 'log.json'} and {saved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
