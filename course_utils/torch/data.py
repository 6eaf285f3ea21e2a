"""PyTorch input pipeline: NumPy arrays in, batches of (images NCHW float32, masks int64) out.

Every sample goes through :func:`course_utils.data.prepare_sample` (random crop + joint augmentation) with the
random generator ``sample_rng(seed, epoch, index)``, and the visiting order is
``epoch_order(n, seed, epoch, shuffle)``: the Keras pipeline in ``course_utils.keras.data`` uses the same two
functions, so the same seed and epoch give the same batches in both frameworks.

Each ``for batch in loader`` pass is the next epoch (as in Keras); ``loader.set_epoch(e)`` chooses the epoch of
the next pass explicitly. With ``num_workers > 0`` the results are the same (no torch random numbers are used).
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from .. import env
from ..data import _ensure_dataset_arrays, _pipeline_options, epoch_order, prepare_sample

__all__ = ["SegmentationDataset", "EpochSampler", "SegmentationLoader", "make_loader"]


class SegmentationDataset(Dataset):
    """Pairs of (image float32 (C, H, W), mask int64 (H, W)) tensors from NumPy arrays.

    images: NumPy float32 (N, H, W, C) in [0, 1] (NHWC, as everywhere in NumPy); masks: integer (N, H, W).
    augment / crop_size / training: as in :func:`course_utils.data.prepare_sample` (``training=False``:
    centre crops, the same every pass).
    seed: with ``epoch`` (see :meth:`set_epoch`) and the sample index, fixes each sample's augmentation.
    """

    def __init__(self, images, masks, augment=False, crop_size=None, seed: int = 0, training: bool = True):
        self.images, self.masks = _ensure_dataset_arrays(images, masks)
        self.augment = augment
        self.crop_size = crop_size
        self.training = bool(training)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Use the augmentation of ``epoch`` from now on."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index):
        index = int(index)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for a data set of {len(self)} samples.")
        image, mask = prepare_sample(
            self.images[index], self.masks[index], self.seed, self.epoch, index, self.augment, self.crop_size,
            self.training,
        )
        image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))  # HWC -> CHW
        return image, torch.from_numpy(np.ascontiguousarray(mask, dtype=np.int64))


class EpochSampler(Sampler):
    """Visits the indices in ``epoch_order(n, seed, epoch, shuffle)`` (the order the Keras pipeline uses)."""

    def __init__(self, n: int, seed: int = 0, shuffle: bool = True):
        self.n, self.seed, self.shuffle, self.epoch = int(n), int(seed), bool(shuffle), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self):
        return iter(epoch_order(self.n, self.seed, self.epoch, self.shuffle).tolist())

    def __len__(self) -> int:
        return self.n


class SegmentationLoader(DataLoader):
    """A DataLoader whose every pass is the next epoch (order and augmentation), like the Keras pipeline.

    ``set_epoch(e)`` makes the next pass epoch ``e``; ``loader.epoch`` is the epoch of the current/last pass.
    """

    def __init__(self, dataset: SegmentationDataset, batch_size: int = 8, shuffle: bool = True, seed: int = 0,
                 num_workers: int = 0, epoch: int = 0, sampler=None, **kwargs):
        # sampler: any sampler with set_epoch (lecture 11's per-rank shard); default: the whole data set.
        sampler = EpochSampler(len(dataset), seed=seed, shuffle=shuffle) if sampler is None else sampler
        super().__init__(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, **kwargs)
        self.epoch_sampler = sampler
        self.next_epoch = int(epoch)
        self.epoch = int(epoch)

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass over the data epoch ``epoch``."""
        self.next_epoch = int(epoch)

    def __iter__(self):
        self.epoch = self.next_epoch
        self.next_epoch += 1
        self.dataset.set_epoch(self.epoch)  # workers are started after this, so they see the new epoch
        self.epoch_sampler.set_epoch(self.epoch)
        batches = super().__iter__()
        if env.is_dry_run():  # ./course dry-run: loops written out in a notebook take a few steps too
            return itertools.islice(batches, env.DRY_RUN_STEPS)
        return batches

    def __len__(self) -> int:
        batches = super().__len__()
        return min(batches, env.DRY_RUN_STEPS) if env.is_dry_run() else batches


def make_loader(
    images,
    masks,
    batch_size: int = 8,
    shuffle: bool = True,
    augment=False,
    crop_size=None,
    seed: int = 0,
    num_workers: int = 0,
    epoch: int = 0,
    training: bool | None = None,
    info=None,
) -> SegmentationLoader:
    """A DataLoader of ``(images float32 (B, C, H, W), masks int64 (B, H, W))`` batches.

    Same arguments (and the same batches for the same seed and epoch) as ``course_utils.keras.data.make_dataset``.
    images: NumPy float32 (N, H, W, C) in [0, 1]; masks: NumPy integer (N, H, W).
    num_workers: background processes that prepare batches (0 = in the main process).
    epoch: the epoch of the first pass; each further pass adds one (or call ``loader.set_epoch``).
    training: True -> random crops; False -> validation: centre crops (the same batches every pass) and no
        augmentation. None (default) -> ``shuffle``, so ``shuffle=False`` gives deterministic crops.
    augment: False; True: random left-right flips only (``data.DEFAULT_AUGMENT``, safe for scenes with an
        "up"), or with ``info=`` the data set's own flips/turns; or a dict of ``augment_pair`` options, e.g.
        ``{"flip": True, "rotate90": True, "elastic": True}`` for data without an "up" (microscopy, shapes).
    info: a ``course_utils.datasets.DatasetInfo``; with ``augment=True`` its flips/turns are used.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    augment, training = _pipeline_options(augment, shuffle, training, info)
    dataset = SegmentationDataset(images, masks, augment=augment, crop_size=crop_size, seed=seed, training=training)
    return SegmentationLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        seed=seed,
        num_workers=num_workers,
        epoch=epoch,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=False,
    )
