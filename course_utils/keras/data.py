"""``tf.data`` input pipeline for Keras: NumPy arrays in, batches of (images NHWC float32, masks int32) out.

Every sample goes through :func:`course_utils.data.prepare_sample` (random crop + joint augmentation) with the
random generator ``sample_rng(seed, epoch, index)``, and the visiting order is
``epoch_order(n, seed, epoch, shuffle)``: the PyTorch loader in ``course_utils.torch.data`` uses the same two
functions, so the same seed and epoch give the same batches in both frameworks.

Each full pass over the data set (one Keras epoch) is the next epoch: the augmentation changes from epoch to
epoch, reproducibly.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf

from ..data import _ensure_dataset_arrays, _pipeline_options, epoch_order, prepare_sample

__all__ = ["make_dataset"]


def _silence_fit_shuffle_warning():
    """``model.fit`` defaults to ``shuffle=True`` and warns that it ignores it for a tf.data.Dataset. Ours
    shuffles itself (a new, reproducible order every epoch), so the warning would only puzzle students.
    Installed on every ``make_dataset`` call (``filterwarnings`` does not duplicate an identical filter), so
    that it also holds where warning filters were reset in between, e.g. under pytest."""
    warnings.filterwarnings("ignore", message=r"`shuffle=True` was passed, but will be ignored", category=UserWarning)


def _numpy_loader(load, image_shape):
    """``load(key) -> (image float32 (H, W, C), mask int32 (H, W))`` in NumPy, as a ``tf.data`` map function
    with static shapes (``image_shape`` = (H, W, C)), so that batches have a known shape."""
    def tf_load(key):
        image, mask = tf.numpy_function(load, [key], (tf.float32, tf.int32), stateful=False)
        image.set_shape(image_shape)
        mask.set_shape(image_shape[:2])
        return image, mask

    return tf_load


def make_dataset(
    images,
    masks,
    batch_size: int = 8,
    shuffle: bool = True,
    augment=False,
    crop_size=None,
    seed: int = 0,
    repeat: bool = False,
    epoch: int = 0,
    training: bool | None = None,
    info=None,
):
    """A ``tf.data.Dataset`` of ``(images float32 (B, H, W, C), masks int32 (B, H, W))`` batches.

    images:     NumPy float32 (N, H, W, C) in [0, 1]; masks: NumPy integer (N, H, W).
    batch_size: the last batch may be smaller (like PyTorch's ``drop_last=False``).
    shuffle:    a new order every epoch (``epoch_order``), reproducible from ``seed``.
    augment:    False; True: random left-right flips only (``data.DEFAULT_AUGMENT``, safe for scenes with an
                "up"), or with ``info=`` the data set's own flips/turns; or a dict of ``augment_pair`` options,
                e.g. ``{"flip": True, "rotate90": True, "elastic": True}`` for data without an "up".
    crop_size:  None or int / (h, w): a random crop per sample (then H, W of the batch = crop_size); the
                centre crop when not training.
    repeat:     True -> endless (use ``steps_per_epoch`` in ``fit``); every pass is the next epoch.
    epoch:      the epoch number of the first pass (each further pass over the data set adds one).
                Every pass that is *started* counts: under a ``tf.distribute`` strategy Keras 3 takes one batch
                from an extra pass to build the model before training, so ``fit`` then starts at epoch 1's
                order. Under a strategy use ``course_utils.keras.distributed.make_distributed_dataset``, which
                has no such state.
    training:   True -> random crops; False -> validation: centre crops (the same batches every pass) and no
                augmentation. None (default) -> ``shuffle``, so ``shuffle=False`` gives deterministic crops.
    info:       a ``course_utils.datasets.DatasetInfo``; with ``augment=True`` its flips/turns are used.
    """
    images, masks = _ensure_dataset_arrays(images, masks)
    augment, training = _pipeline_options(augment, shuffle, training, info)
    _silence_fit_shuffle_warning()
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    n = len(images)
    channels = images.shape[-1]
    if crop_size is None:
        height, width = images.shape[1], images.shape[2]
    else:
        height, width = (crop_size, crop_size) if np.isscalar(crop_size) else tuple(crop_size)
    # Rotations by 90 degrees keep the shape only when height == width; prepare_sample ensures that.

    state = {"epoch": int(epoch)}

    def index_generator():
        current = state["epoch"]
        state["epoch"] += 1  # the next pass over the data set is the next epoch
        for index in epoch_order(n, seed, current, shuffle):
            yield np.array([current, index], dtype=np.int64)

    def load(pair):
        current, index = int(pair[0]), int(pair[1])
        image, mask = prepare_sample(images[index], masks[index], seed, current, index, augment, crop_size, training)
        return image.astype(np.float32), mask.astype(np.int32)

    tf_load = _numpy_loader(load, (height, width, channels))
    dataset = tf.data.Dataset.from_generator(
        index_generator, output_signature=tf.TensorSpec(shape=(2,), dtype=tf.int64)
    ).apply(tf.data.experimental.assert_cardinality(n))  # lets Keras know the number of steps per epoch
    if repeat:
        dataset = dataset.repeat()  # each repetition calls index_generator again -> next epoch
    dataset = dataset.map(tf_load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size)
    return dataset.prefetch(tf.data.AUTOTUNE)
