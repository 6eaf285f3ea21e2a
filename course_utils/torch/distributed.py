"""PyTorch data parallelism: ``DistributedDataParallel`` in processes started by ``torchrun``.

Mirrors :mod:`course_utils.keras.distributed` (same names where the idea is the same). One process per
device: ``torchrun --nproc_per_node=N script.py`` starts ``N`` copies of the script and tells each its
``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE`` in environment variables. The backend that moves gradients
between them is **gloo** on the CPU and **NCCL** on NVIDIA GPUs. A training script then needs four things,
each a function here:

1. :func:`setup` - join the process group and pick this process's device;
2. :func:`make_distributed_loader` - this rank's share of every global batch (a ``DistributedSampler``);
3. :func:`wrap_model` - ``DistributedDataParallel`` (optionally with ``SyncBatchNorm``), which averages
   the gradients of all ranks inside ``loss.backward()``;
4. :func:`save_checkpoint_rank0` and :class:`course_utils.distributed.RunLog` - only rank 0 writes.

A script written this way also runs as a plain ``python script.py`` (one process, no process group).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from ..distributed import RunLog, is_rank0, per_device_batch_size, scale_learning_rate, shard_indices
from .data import SegmentationDataset, SegmentationLoader
from .train import save_checkpoint

__all__ = [
    "DistContext",
    "process_info",
    "setup",
    "teardown",
    "barrier",
    "ShardedSampler",
    "DistributedLoader",
    "make_distributed_loader",
    "wrap_model",
    "unwrap",
    "save_checkpoint_rank0",
    "all_reduce_mean",
    "accumulated_backward",
    "RunLog",
    "is_rank0",
    "per_device_batch_size",
    "scale_learning_rate",
]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its global ``rank``, ``local_rank`` on its machine, ``world_size``,
    ``device`` and communication ``backend`` ("gloo", "nccl", or "none" for a single plain process)."""

    rank: int
    local_rank: int
    world_size: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and saves."""
        return self.rank == 0


def process_info() -> tuple[int, int, int]:
    """``(rank, local_rank, world_size)`` from the variables ``torchrun`` sets; ``(0, 0, 1)`` without them."""
    try:
        rank = int(os.environ.get("RANK", "0"))
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        world_size = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as error:
        raise ValueError(f"RANK, LOCAL_RANK and WORLD_SIZE must be integers ({error}); torchrun sets them, "
                         "do not set them by hand.") from None
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} is not in [0, WORLD_SIZE={world_size}): start the script with torchrun.")
    return rank, local_rank, world_size


def setup(backend: str | None = None) -> DistContext:
    """Join the process group (when started by ``torchrun``) and choose this process's device.

    backend: None picks "nccl" when CUDA GPUs are visible and "gloo" otherwise; "gloo" forces the CPU.
    On GPUs, process ``local_rank`` uses GPU ``local_rank`` (one process per GPU).
    A plain ``python`` start (no ``MASTER_ADDR``) joins nothing: backend "none", world size 1.
    """
    rank, local_rank, world_size = process_info()
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ValueError(f'backend must be "gloo" (CPU) or "nccl" (NVIDIA GPUs), got {backend!r}.')
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise RuntimeError("backend nccl needs CUDA GPUs and none is visible: use backend='gloo' on the CPU.")
        if local_rank >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK={local_rank} but only {torch.cuda.device_count()} GPU(s) here: "
                               "start at most one process per GPU (--nproc_per_node).")
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if "MASTER_ADDR" not in os.environ:  # plain `python script.py`: nothing to join
        if world_size != 1:
            raise RuntimeError(f"WORLD_SIZE={world_size} without MASTER_ADDR: start the script with torchrun.")
        return DistContext(0, 0, 1, device, "none")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                device_id=device if backend == "nccl" else None)
    return DistContext(rank, local_rank, world_size, device, backend)


def teardown() -> None:
    """Leave the process group (call at the end of the script, on every rank)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every rank reaches this line (nothing to wait for in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _rank_and_world(rank, world_size) -> tuple[int, int]:
    if (rank is None) != (world_size is None):
        raise ValueError("pass both rank and world_size, or neither (then they come from the process group).")
    if rank is None:
        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
        rank, _, world_size = process_info()
    return int(rank), int(world_size)


class ShardedSampler(DistributedSampler):
    """A ``DistributedSampler`` that visits the course's shared order (:func:`course_utils.data.epoch_order`).

    Same contract as PyTorch's own sampler (``set_epoch``, ``num_replicas``, ``rank``, ``drop_last``; rank
    ``r`` takes every ``num_replicas``-th index starting at ``r``, see
    :func:`course_utils.distributed.shard_indices`), but the shuffled order is the one the Keras pipeline
    uses too, so a Keras run and a PyTorch run see the same global batches.
    """

    def __init__(self, dataset, num_replicas: int, rank: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = True):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)

    def __iter__(self):
        indices = shard_indices(len(self.dataset), self.rank, self.num_replicas, seed=self.seed,
                                epoch=self.epoch, shuffle=self.shuffle, drop_last=self.drop_last)
        return iter(indices.tolist())


class DistributedLoader(SegmentationLoader):
    """A DataLoader over one rank's shard whose every pass is the next epoch (order and augmentation).

    ``set_epoch(e)`` makes the next pass epoch ``e`` (on the sampler and the data set's augmentation), as
    ``DistributedSampler.set_epoch`` must be called each epoch in a hand-written loop.
    """

    def __init__(self, dataset: SegmentationDataset, sampler: ShardedSampler, batch_size: int, epoch: int = 0,
                 **kwargs):
        super().__init__(dataset, batch_size=batch_size, epoch=epoch, sampler=sampler, **kwargs)


def make_distributed_loader(images, masks, global_batch_size: int, rank: int | None = None,
                            world_size: int | None = None, shuffle: bool = True, augment=False, crop_size=None,
                            seed: int = 0, num_workers: int = 0, epoch: int = 0,
                            drop_last: bool = True) -> DistributedLoader:
    """This rank's loader: batches of ``global_batch_size / world_size`` images, ``(B, C, H, W)`` float32 and
    ``(B, H, W)`` int64 masks.

    images: NumPy (N, H, W, C) float32 in [0, 1]; masks: NumPy integer (N, H, W) (the whole data set on
    every rank: the sampler picks this rank's share). rank / world_size: None reads the process group.
    Step ``t`` of all ranks together is the global batch a single process with batch ``global_batch_size``
    would take at step ``t`` (same seed and epoch). ``drop_last=True`` keeps every step's batch full, so
    every rank's slice has the same size and the averaged gradient is the global batch's mean.
    """
    rank, world_size = _rank_and_world(rank, world_size)
    device_batch = per_device_batch_size(global_batch_size, world_size)
    dataset = SegmentationDataset(images, masks, augment=augment, crop_size=crop_size, seed=seed)
    if drop_last and len(dataset) < global_batch_size:
        raise ValueError(f"{len(dataset)} samples are fewer than one global batch of {global_batch_size}: "
                         "use more data or a smaller global batch.")
    sampler = ShardedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle, seed=seed,
                             drop_last=drop_last)
    return DistributedLoader(dataset, sampler, batch_size=device_batch, epoch=epoch, num_workers=num_workers,
                             drop_last=drop_last, pin_memory=torch.cuda.is_available())


def wrap_model(model: nn.Module, context: DistContext, sync_batchnorm: bool = False) -> nn.Module:
    """Move ``model`` to this process's device and wrap it in ``DistributedDataParallel`` (when in a group).

    DDP copies rank 0's weights to every rank once, then averages the gradients of all ranks during
    ``loss.backward()``, so every rank applies the same update and the copies stay identical.

    sync_batchnorm: replace every BatchNorm with ``nn.SyncBatchNorm``, which computes the batch statistics
    over the whole global batch instead of each rank's slice. PyTorch implements it for GPUs only, so on
    the CPU (gloo) this raises a ValueError that says what to do instead.
    """
    model = model.to(context.device)
    if sync_batchnorm:
        if context.device.type == "cpu" and context.world_size > 1:
            raise ValueError(
                "SyncBatchNorm runs on GPUs only (PyTorch has no CPU version). On the CPU train a model without "
                "BatchNorm (UNet(batch_norm=False)) or keep plain BatchNorm, whose statistics then come from each "
                "process's slice of the batch."
            )
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if context.backend == "none":
        return model
    device_ids = [context.device.index] if context.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside a ``DistributedDataParallel`` wrapper (checkpoints hold its ``state_dict``,
    so they load into an unwrapped model without the ``module.`` prefix)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def save_checkpoint_rank0(model: nn.Module, path, rank: int | None = None) -> Path | None:
    """Save the unwrapped model's ``state_dict`` to ``path`` on rank 0 only; every rank then waits for it.

    All ranks hold identical weights, so one copy is enough; several processes writing one file at once
    could leave it corrupt. Returns the path on rank 0 and None elsewhere. rank: None reads the group.
    """
    if rank is None:
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else process_info()[0]
    saved = save_checkpoint(unwrap(model), path) if is_rank0(rank) else None
    barrier()  # no rank goes on (e.g. to load it, or to exit) before the file is complete
    return saved


def all_reduce_mean(value) -> float:
    """The mean of a number over all ranks (e.g. each rank's loss -> the global batch's loss), on every rank."""
    if not (dist.is_available() and dist.is_initialized()):
        return float(value)
    backend = dist.get_backend()
    device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
    tensor = torch.tensor([float(value)], dtype=torch.float64 if backend != "nccl" else torch.float32,
                          device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return float(tensor.item()) / dist.get_world_size()


def accumulated_backward(model: nn.Module, loss_fn, images: torch.Tensor, masks: torch.Tensor,
                         micro_batch_size: int) -> float:
    """Gradients of the mean loss over ``images`` computed ``micro_batch_size`` images at a time.

    images (B, C, H, W), masks (B, H, W); B must be a multiple of ``micro_batch_size``. Each micro-batch's
    loss is divided by the number of micro-batches, so the summed gradients equal those of one batch of B
    (for a mean loss and a model without BatchNorm): gradient accumulation, the one-device substitute for
    a larger batch. Under DDP, ``no_sync()`` skips the all-reduce for all but the last micro-batch.
    Call ``optimizer.zero_grad()`` before and ``optimizer.step()`` after. Returns the mean loss.
    """
    batch = int(images.shape[0])
    if micro_batch_size < 1 or batch % micro_batch_size:
        raise ValueError(f"a batch of {batch} cannot be cut into micro-batches of {micro_batch_size}: "
                         f"choose a micro_batch_size that divides {batch}.")
    steps = batch // micro_batch_size
    total = 0.0
    for i in range(steps):
        part = slice(i * micro_batch_size, (i + 1) * micro_batch_size)
        last = i == steps - 1
        sync = contextlib.nullcontext() if last or not isinstance(model, DistributedDataParallel) else model.no_sync()
        with sync:
            loss = loss_fn(model(images[part]), masks[part]) / steps
            loss.backward()
        total += float(loss.detach())
    return total
