"""Keras (TensorFlow backend) data parallelism with ``tf.distribute``.

Mirrors :mod:`course_utils.torch.distributed`. TensorFlow runs data parallelism inside one process per
machine: ``MirroredStrategy`` keeps a copy of every variable on each device (replica), ``model.fit`` splits
each **global batch** over the replicas and sums the (1/replicas-scaled) gradients before every update.
Several machines use ``MultiWorkerMirroredStrategy``, configured by the ``TF_CONFIG`` variable. A script
needs:

1. :func:`make_strategy` - all GPUs, or ``N`` logical CPU devices on a laptop (:func:`configure_logical_cpus`),
   or ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` is set;
2. :func:`make_distributed_dataset` - the course's ``tf.data`` pipeline batched by the *global* batch, with
   per-worker sharding switched on;
3. build and compile the model inside ``strategy.scope()`` (optionally :func:`convert_sync_batchnorm`);
4. :func:`save_weights_chief` and :class:`RunLogCallback` - only the chief (rank 0) writes.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ..data import _ensure_dataset_arrays, epoch_order, prepare_sample
from ..distributed import RunLog, per_device_batch_size, scale_learning_rate, tf_config
from ..safety import atomic_write
from .data import _numpy_loader

__all__ = [
    "configure_logical_cpus",
    "make_strategy",
    "worker_rank",
    "is_chief",
    "make_distributed_dataset",
    "convert_sync_batchnorm",
    "save_weights_chief",
    "RunLogCallback",
    "tf_config",
    "RunLog",
    "per_device_batch_size",
    "scale_learning_rate",
]


def configure_logical_cpus(num_devices: int) -> list[str]:
    """Split the CPU into ``num_devices`` logical devices (``/device:CPU:0`` ...), e.g. to try
    ``MirroredStrategy`` on a laptop. Returns their names.

    Must run before TensorFlow executes anything (at the top of a script, or in a fresh notebook kernel):
    afterwards TensorFlow refuses to change its devices, and this raises a RuntimeError saying so.
    The logical devices share the same cores: this shows the mechanics, not a speed-up.
    """
    if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices < 1:
        raise ValueError(f"num_devices must be an integer of 1 or more, got {num_devices!r}.")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
    except RuntimeError:
        current = tf.config.list_logical_devices("CPU")
        if len(current) != num_devices:
            raise RuntimeError(
                f"TensorFlow is already running with {len(current)} logical CPU device(s), and devices cannot be "
                f"changed once it has started: call configure_logical_cpus({num_devices}) before anything else "
                "uses TensorFlow (restart the kernel, or start a new process)."
            ) from None
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def make_strategy(num_cpu_devices: int = 1):
    """The ``tf.distribute`` strategy for this machine.

    * ``TF_CONFIG`` set (several machines): ``MultiWorkerMirroredStrategy``;
    * GPUs visible: ``MirroredStrategy`` over all of them (``num_cpu_devices`` is ignored);
    * otherwise ``num_cpu_devices`` > 1: ``MirroredStrategy`` over that many logical CPU devices;
    * otherwise the default strategy (one device, no distribution).
    """
    if os.environ.get("TF_CONFIG"):
        return tf.distribute.MultiWorkerMirroredStrategy()
    if tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    names = configure_logical_cpus(num_cpu_devices)
    if num_cpu_devices == 1:
        return tf.distribute.get_strategy()
    return tf.distribute.MirroredStrategy(devices=names[:num_cpu_devices])


def worker_rank(strategy=None) -> int:
    """The rank of this process among the workers (0 in a single-machine run).

    ``MultiWorkerMirroredStrategy`` reads it from ``TF_CONFIG``'s ``task``: ``{"type": "worker", "index": i}``
    has rank ``i``; a task of type "chief" has rank 0 (and the workers then count from 1).
    """
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None)
    if not task_type:
        return 0
    if task_type == "chief":
        return 0
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return int(resolver.task_id) + (1 if has_chief else 0)


def is_chief(strategy=None) -> bool:
    """True in the process that writes logs and checkpoints (rank 0)."""
    return worker_rank(strategy) == 0


def make_distributed_dataset(images, masks, global_batch_size: int, strategy=None, shuffle: bool = True,
                             augment=False, crop_size=None, seed: int = 0, repeat: bool = True, epoch: int = 0):
    """The course's ``tf.data`` pipeline batched by the **global** batch, ready for ``model.fit`` under ``strategy``.

    images: NumPy (N, H, W, C) float32 in [0, 1]; masks: NumPy integer (N, H, W). Batches are
    ``(global_batch_size, H, W, C)`` float32 and ``(global_batch_size, H, W)`` int32; ``model.fit`` under a
    strategy cuts each into ``num_replicas_in_sync`` equal slices, one per replica (so the batch must
    divide evenly: a ValueError otherwise). Step ``t`` is the same global batch as step ``t`` of
    ``course_utils.torch.distributed.make_distributed_loader`` (same seed) when N is a multiple of the
    global batch. With several workers each one keeps only its share of the batches (auto-shard policy DATA:
    our data come from memory, not from files to share out).
    repeat: True (default) -> endless (use ``steps_per_epoch``), every batch full; batches then run across
    epoch boundaries (each pass over the data is the next epoch: new order, new augmentation).
    False -> one pass; the last batch may be smaller.

    Unlike ``course_utils.keras.data.make_dataset``, whose generator counts its passes, this pipeline has no
    state (the epoch follows from the position in the stream): under a strategy, Keras 3's ``fit`` first
    takes one batch from an extra pass to build the model (``_maybe_symbolic_build``), which moves a
    pass-counting pipeline one epoch ahead. Here every start yields the same batches from step 0.
    """
    strategy = strategy or tf.distribute.get_strategy()
    per_device_batch_size(global_batch_size, strategy.num_replicas_in_sync)  # checks that it splits evenly
    images, masks = _ensure_dataset_arrays(images, masks)
    n, channels = len(images), images.shape[-1]
    height, width = (images.shape[1], images.shape[2]) if crop_size is None else _pair(crop_size)
    first_epoch = int(epoch)

    @functools.lru_cache(maxsize=4)
    def order(current: int):
        return epoch_order(n, seed, current, shuffle)

    def load(position):
        # The position in the endless stream of samples fixes the epoch and the sample, so the pipeline has no
        # state: however often tf.distribute or Keras restarts its iterator, it starts again at step 0.
        position = int(position)
        current = first_epoch + position // n
        index = int(order(current)[position % n])
        image, mask = prepare_sample(images[index], masks[index], seed, current, index, augment, crop_size)
        return image.astype(np.float32), mask.astype(np.int32)

    positions = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(n)
    tf_load = _numpy_loader(load, (height, width, channels))
    dataset = positions.map(tf_load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.batch(global_batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def _pair(size) -> tuple[int, int]:
    return (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))


def convert_sync_batchnorm(model: keras.Model) -> keras.Model:
    """A copy of ``model`` (same weights) whose BatchNormalization layers compute their batch statistics over
    the whole global batch (``synchronized=True``, an all-reduce across replicas) instead of each replica's
    slice. The Keras counterpart of ``torch.nn.SyncBatchNorm.convert_sync_batchnorm``; it works on logical
    CPU devices too. Call it inside ``strategy.scope()``, before ``compile``.
    """

    def clone(layer):
        config = layer.get_config()
        if isinstance(layer, keras.layers.BatchNormalization):
            config["synchronized"] = True
        return layer.__class__.from_config(config)

    converted = keras.models.clone_model(model, clone_function=clone)
    converted.set_weights(model.get_weights())
    return converted


def save_weights_chief(model: keras.Model, path, strategy=None) -> Path | None:
    """Save ``model``'s weights to ``path`` (must end in ``.weights.h5``) on the chief only, atomically.

    Every replica holds the same weights, so one copy is enough; with several workers, files written by all
    of them at once to a shared disk would clash. Returns the path on the chief, None elsewhere.
    """
    path = Path(path)
    if not path.name.endswith(".weights.h5"):
        raise ValueError(f"Keras weight files must end in .weights.h5, got {path.name!r}.")
    if not is_chief(strategy):
        return None
    return atomic_write(path, lambda tmp: model.save_weights(str(tmp)), suffix=".weights.h5")


class RunLogCallback(keras.callbacks.Callback):
    """Writes each training step's loss and timing into a :class:`course_utils.distributed.RunLog`.

    Keras reports the *running mean* of the loss over the epoch; the callback turns it back into the loss of
    each step (``(k + 1) * mean_k - k * mean_{k-1}``), the number PyTorch's script logs. Only the chief's log
    is written (the RunLog itself ignores other ranks).
    """

    def __init__(self, log: RunLog, global_batch_size: int):
        super().__init__()
        self.log = log
        self.global_batch_size = int(global_batch_size)
        self.step = 0
        self.start = None
        self.timed_from = None

    def on_train_begin(self, logs=None):
        self.start = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.previous_mean = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        loss = (batch + 1) * mean - batch * self.previous_mean
        self.previous_mean = mean
        now = time.perf_counter()
        if self.step == 0:
            self.timed_from = now  # the first step (tracing, start-up) is not timed
        self.last = now
        self.log.step(step=self.step, loss=loss, epoch=self.epoch, seconds=now - self.start)
        self.step += 1

    def timing(self) -> dict:
        """``timed_steps``, ``timed_seconds`` and ``images_per_s`` over every step after the first."""
        seconds = (self.last - self.timed_from) if self.timed_from is not None else 0.0
        steps = max(self.step - 1, 0)
        rate = steps * self.global_batch_size / seconds if steps and seconds > 0 else None
        return {"timed_steps": steps, "timed_seconds": seconds, "images_per_s": rate}
