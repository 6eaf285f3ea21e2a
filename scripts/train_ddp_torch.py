#!/usr/bin/env python3
"""Train the course's U-Net data-parallel with PyTorch DistributedDataParallel.

Start one process per device with torchrun (gloo on the CPU, NCCL on NVIDIA GPUs):

    torchrun --standalone --nproc_per_node=2 scripts/train_ddp_torch.py --out runs/ddp2     # 2 CPU processes
    torchrun --standalone --nproc_per_node=gpu scripts/train_ddp_torch.py --preset full --out runs/ddp_gpus

(``--standalone`` picks a free port, so several runs can share a machine.) Several machines: start the same
command on each with ``--nnodes=M --node_rank=i --rdzv_backend=c10d --rdzv_endpoint=HOST:29500
--rdzv_id=JOB`` in place of ``--standalone``. ``python scripts/train_ddp_torch.py`` runs one plain process.

Every process builds the same U-Net from the same seed and generates the same synthetic data
(course_utils.data.make_shapes); a DistributedSampler gives each its slice of every global batch.
Only rank 0 writes ``OUT/log.json`` (settings, per-step loss of the global batch, images/s) and
``OUT/checkpoint.pt`` (the model's state_dict).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing course_utils
    sys.path.insert(0, str(ROOT))

PRESETS = {
    # CPU-sized: seconds per step on a laptop
    "fast": dict(steps=20, global_batch=8, image_size=64, num_images=128, base_filters=8, depth=3),
    # GPU-sized: the lectures' U-Net on 128 px scenes
    "full": dict(steps=300, global_batch=64, image_size=128, num_images=2048, base_filters=32, depth=4),
}


def parse_args(argv=None):
    from course_utils.distributed import check_script_arguments, positive_float, positive_int

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="fast")
    parser.add_argument("--steps", type=positive_int, help="optimizer steps (global batches)")
    parser.add_argument("--global-batch", type=positive_int, help="images per optimizer step, over all processes")
    parser.add_argument("--image-size", type=positive_int)
    parser.add_argument("--num-images", type=positive_int, help="synthetic training images")
    parser.add_argument("--base-filters", type=positive_int)
    parser.add_argument("--depth", type=positive_int)
    parser.add_argument("--num-classes", type=positive_int, default=4)
    parser.add_argument("--no-batch-norm", action="store_true", help="conv+bias-ReLU blocks without BatchNorm")
    parser.add_argument("--sync-batchnorm", action="store_true", help="SyncBatchNorm (GPUs only in PyTorch)")
    parser.add_argument("--lr", type=positive_float, default=0.05, help="SGD learning rate tuned at --base-batch")
    parser.add_argument("--base-batch", type=positive_int, default=8, help="the batch size --lr was tuned for")
    parser.add_argument("--lr-rule", choices=("linear", "sqrt", "none"), default="linear")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--mixed-precision", action="store_true",
                        help="autocast: float16 + GradScaler on GPUs, bfloat16 on the CPU")
    parser.add_argument("--backend", choices=("gloo", "nccl"), help="default: nccl with GPUs, else gloo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/ddp_torch"))
    args = parser.parse_args(argv)
    for key, value in PRESETS[args.preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    # Up front, on every rank: torchrun's WORLD_SIZE (1 for a plain start) must divide the global batch,
    # and --out must be a folder that can be written (not a file of that name), before any training.
    try:
        check_script_arguments(args.global_batch, int(os.environ.get("WORLD_SIZE", "1")), args.out, args.num_images)
    except ValueError as error:
        parser.error(str(error))
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    from course_utils.torch import distributed as ddp

    context = ddp.setup(args.backend)
    try:
        train(args, context)
    finally:
        # The model, optimizer and loader of train() are gone by now: DDP's reducer holds the process group,
        # and a group still alive when the interpreter shuts down can abort the process after a good run
        # ("terminate called without an active exception"). So free them, then leave the group.
        gc.collect()
        ddp.teardown()
    return 0


def train(args, context) -> None:
    """The training loop of one process (rank ``context.rank``); rank 0 writes the log and checkpoint."""
    import torch

    from course_utils import data
    from course_utils.distributed import RunLog, scale_learning_rate
    from course_utils.dynamics import TrainingDivergedError, divergence_message
    from course_utils.torch import distributed as ddp
    from course_utils.torch.losses import CrossEntropyLoss
    from course_utils.torch.unet import UNet, count_parameters

    learning_rate = scale_learning_rate(args.lr, args.global_batch, args.base_batch, rule=args.lr_rule)
    config = {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(args).items()}
    config.update(world_size=context.world_size, backend=context.backend, device=str(context.device),
                  per_device_batch=ddp.per_device_batch_size(args.global_batch, context.world_size),
                  learning_rate=learning_rate, framework="PyTorch " + torch.__version__)
    log = RunLog(args.out / "log.json", rank=context.rank, config=config)
    images, masks = data.make_shapes(args.num_images, size=args.image_size, num_classes=args.num_classes,
                                     seed=args.seed)
    loader = ddp.make_distributed_loader(images, masks, args.global_batch, rank=context.rank,
                                         world_size=context.world_size, seed=args.seed)
    torch.manual_seed(args.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = UNet(in_channels=3, num_classes=args.num_classes, base_filters=args.base_filters,
                 depth=args.depth, batch_norm=not args.no_batch_norm)
    log.record["config"]["parameters"] = count_parameters(model)
    model = ddp.wrap_model(model, context, sync_batchnorm=args.sync_batchnorm)
    optimizer = torch.optim.SGD(model.parameters(), lr=learning_rate, momentum=args.momentum)
    loss_fn = CrossEntropyLoss()
    use_cuda = context.device.type == "cuda"
    amp_dtype = torch.float16 if use_cuda else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda", enabled=args.mixed_precision and use_cuda)

    model.train()
    step, start, timed_from = 0, time.perf_counter(), None
    while step < args.steps:
        for batch_images, batch_masks in loader:  # every pass is the next epoch (new shuffle)
            batch_images = batch_images.to(context.device, non_blocking=True)
            batch_masks = batch_masks.to(context.device, non_blocking=True)
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(context.device.type, dtype=amp_dtype, enabled=args.mixed_precision):
                loss = loss_fn(model(batch_images), batch_masks)
            scaler.scale(loss).backward()  # DDP averages the gradients of all ranks here
            scaler.step(optimizer)
            scaler.update()
            global_loss = ddp.all_reduce_mean(loss.detach().float())  # mean over the global batch
            if not math.isfinite(global_loss):  # the same value on every rank, so all ranks stop together
                raise TrainingDivergedError(divergence_message(global_loss, None, step + 1,
                                                               mixed_precision=args.mixed_precision),
                                            step=step + 1, loss=global_loss)
            if step == 0:
                timed_from = time.perf_counter()  # the first step (start-up, allocation) is not timed
            log.step(step=step, loss=global_loss, epoch=loader.epoch, seconds=time.perf_counter() - start)
            step += 1
            if step >= args.steps:
                break
    if use_cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - timed_from
    timed_images = (args.steps - 1) * args.global_batch
    saved = ddp.save_checkpoint_rank0(model, args.out / "checkpoint.pt", rank=context.rank)
    writers = [context.rank] if saved is not None else []
    if context.backend != "none":  # which ranks saved, as told by the save function on each rank
        gathered = [None] * context.world_size
        torch.distributed.all_gather_object(gathered, writers)
        writers = sorted(rank for ranks in gathered for rank in ranks)
    log.save(final_loss=log.record["steps"][-1]["loss"] if log.active else None,
             timed_steps=args.steps - 1, timed_seconds=seconds,
             images_per_s=timed_images / seconds if args.steps > 1 and seconds > 0 else None,
             checkpoint="checkpoint.pt", checkpoint_written_by=writers)
    if context.is_main:
        print(f"{context.world_size} process(es), {context.backend}, {context.device}: {args.steps} steps of "
              f"{args.global_batch} images, final loss {log.record['steps'][-1]['loss']:.4f}; "
              f"wrote {args.out / 'log.json'} and {args.out / 'checkpoint.pt'}")


if __name__ == "__main__":
    exit_code = main()
    # Past this point only C++ clean-up runs. In CI, a finished two-process run under mixed precision still
    # aborted there now and then ("terminate called without an active exception": a library thread destroyed
    # at exit), failing a run whose log and checkpoint were already written. Everything is saved and the
    # process group is left, so flush and exit without running those destructors.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)
