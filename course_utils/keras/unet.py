"""U-Net in Keras 3 (mirrors :mod:`course_utils.torch.unet` layer by layer).

Layer names follow the course's port naming rule: a weighted Keras layer is
named like the PyTorch module's dotted path with "." replaced by "_"
(torch ``enc1.conv1`` <-> Keras ``enc1_conv1``), so
:func:`course_utils.port.keras_to_torch` can copy weights by name.

Architecture for ``depth=d``, ``base_filters=f`` (filters at level ``i`` are
``f * 2**(i-1)``)::

    enc1 .. encd   double 3x3 conv block, then 2x2 max pooling (pool1 .. poold)
    bottleneck     double 3x3 conv block with f * 2**d filters, then dropout
    upd .. up1     2x2 transposed conv, stride 2      (upsampling="transpose")
                   or bilinear x2 resize + 3x3 conv   (upsampling="resize")
    concatd..1     [upsampled, skip from enc_i] along the channel axis
    decd .. dec1   double 3x3 conv block
    head           1x1 conv to num_classes logits

A double conv block is conv-BN-ReLU x2 (``batch_norm=True``, convs without
bias) or conv(bias)-ReLU x2 (``batch_norm=False``).

Initialisation: every conv, transposed conv and the head draw He-uniform kernels
(:data:`course_utils.keras.init.HE_INIT`) with zero biases, the same distribution as
the PyTorch twin (:func:`course_utils.torch.init.he_init_`). BatchNorm: epsilon 1e-5,
momentum 0.9 (= torch's ``momentum=0.1``).
"""

from __future__ import annotations

import keras
from keras import layers

from ..sizes import check_input_size
from .init import HE_INIT

__all__ = ["build_unet", "count_parameters", "check_input_size", "InputSizeCheck", "conv_block", "resolve_norm",
           "group_count"]


@keras.saving.register_keras_serializable(package="course_utils")
class InputSizeCheck(layers.Layer):
    """Pass-through layer that checks height and width are multiples of ``2**depth``.

    Known sizes (eager calls, or a fixed ``input_shape`` at build time) raise
    the ValueError of :func:`course_utils.sizes.check_input_size`. Sizes that are
    only known when the graph runs (``None`` dims inside ``fit``/``predict``)
    are checked with ``tf.debugging.assert_equal`` and fail with an
    ``InvalidArgumentError`` carrying the same advice. Under XLA
    (``jit_compile=True``, Keras' default on a GPU) TensorFlow drops such
    assertions, so a graph traced with unknown sizes then fails later with
    TensorFlow's own "Cannot concatenate arrays ..." error instead. The
    course's pipelines (NumPy arrays, ``course_utils.keras.data.make_dataset``)
    give ``fit`` batches of static height and width, so there the one-sentence
    ValueError is raised while the step is traced, with or without XLA
    (``tests/test_gpu_paths.py`` checks it).
    """

    def __init__(self, depth, **kwargs):
        super().__init__(**kwargs)
        self.depth = int(depth)

    def call(self, inputs):
        shape = keras.ops.shape(inputs)
        height, width = shape[1], shape[2]
        if isinstance(height, int) and isinstance(width, int):
            check_input_size(height, width, self.depth)
            return inputs
        if height is None or width is None:  # symbolic build with unknown sizes
            return inputs
        multiple = 2**self.depth
        if keras.backend.backend() != "tensorflow":  # pragma: no cover - course uses TF
            return inputs
        import tensorflow as tf

        message = (
            f"U-Net of depth {self.depth} needs height and width divisible by {multiple}; "
            f"this input is not (the values printed below are height and width modulo {multiple}). "
            f"Crop or pad the image to a multiple of {multiple} "
            f"(course_utils.sizes.nearest_valid_sizes(n, {multiple}) lists the nearest sizes)."
        )
        remainder = tf.stack([tf.math.floormod(height, multiple), tf.math.floormod(width, multiple)])
        check = tf.debugging.assert_equal(remainder, tf.zeros_like(remainder), message=message)
        with tf.control_dependencies([check] if check is not None else []):
            return tf.identity(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"depth": self.depth})
        return config


def resolve_norm(batch_norm: bool, norm) -> str | None:
    """The normalisation a block uses: ``norm`` when given ("batch", "group" or None), else
    ``"batch"`` if ``batch_norm`` else None (``norm="auto"``, the default). Same rule in PyTorch."""
    if norm == "auto":
        return "batch" if batch_norm else None
    if norm not in ("batch", "group", None):
        raise ValueError(f'norm must be "batch", "group", None or "auto", got {norm!r}.')
    return norm


def group_count(channels: int, max_groups: int = 8) -> int:
    """Groups of a GroupNorm over ``channels``: the largest divisor of ``channels`` up to ``max_groups``."""
    return max(g for g in range(1, max_groups + 1) if channels % g == 0)


def conv_block(x, filters: int, batch_norm: bool, name: str, norm="auto"):
    """Double 3x3 convolution: (conv-norm-ReLU) x2, or (conv+bias-ReLU) x2 without normalisation.

    Layers are named ``{name}_conv1``, ``{name}_bn1``, ``{name}_relu1``, ``..2`` (``_bn*`` is a
    BatchNormalization, or a GroupNormalization with :func:`group_count` groups for ``norm="group"``).
    Shapes: (B, H, W, C_in) -> (B, H, W, filters).
    """
    norm = resolve_norm(batch_norm, norm)
    for i in (1, 2):
        x = layers.Conv2D(
            filters, 3, padding="same", use_bias=norm is None, kernel_initializer=HE_INIT, name=f"{name}_conv{i}"
        )(x)
        if norm == "batch":
            x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_bn{i}")(x)
        elif norm == "group":
            x = layers.GroupNormalization(groups=group_count(filters), epsilon=1e-5, name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def _check_input_shape_tuple(input_shape, example: tuple) -> tuple:
    """``input_shape`` as a (height, width, channels) tuple with known channels, or a ValueError that says how.

    ``example`` is the valid shape the messages show, e.g. ``(None, None, 1)``.
    """
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            f"input_shape must be (height, width, channels), got {input_shape}: "
            f"leave out the batch axis, e.g. {example}."
        )
    if input_shape[2] is None:
        raise ValueError(f"input_shape needs a known number of channels, e.g. {example[:2] + (1,)} for grey images.")
    return input_shape


def _upsample(x, filters: int, upsampling: str, name: str):
    if upsampling == "transpose":
        return layers.Conv2DTranspose(filters, 2, strides=2, padding="same", kernel_initializer=HE_INIT, name=name)(x)
    # The resize computes in float32 also under mixed precision: XLA rejects the float16 graph otherwise
    # (its ResizeBilinearGrad is float32); the next conv casts back to the compute dtype.
    x = layers.UpSampling2D(size=2, interpolation="bilinear", name=f"{name}_resize", dtype="float32")(x)
    return layers.Conv2D(filters, 3, padding="same", kernel_initializer=HE_INIT, name=f"{name}_conv")(x)


def build_unet(
    input_shape=(None, None, 1),
    num_classes: int = 2,
    base_filters: int = 64,
    depth: int = 4,
    batch_norm: bool = True,
    upsampling: str = "transpose",
    dropout: float = 0.0,
    final_activation=None,
    name: str = "unet",
    norm="auto",
) -> keras.Model:
    """Build a U-Net as a Keras functional model.

    Args:
        input_shape: (H, W, C); H and W may be None (any multiple of ``2**depth``
            is then accepted at run time). C must be given.
        num_classes: output channels. 2 for a binary problem with softmax/CE
            (course default); the seed model uses 1 with a sigmoid.
        base_filters: filters of the first level; level i has ``base_filters * 2**(i-1)``.
        depth: number of 2x2 max-pooling steps (the seed model has 2, the paper 4).
        batch_norm: conv-BN-ReLU blocks (convs without bias) instead of conv-ReLU.
        upsampling: "transpose" (2x2 transposed conv, stride 2) or "resize"
            (bilinear x2 then 3x3 conv).
        dropout: dropout rate after the bottleneck block (0 = none).
        final_activation: None -> the model returns logits (course default);
            e.g. "sigmoid" reproduces the seed's model.
        name: model name.
        norm: "batch", "group" (GroupNorm, independent of the batch size: use it at batch sizes
            of 1-2), None (no normalisation, convs with bias) or "auto" (= ``batch_norm``'s choice).

    Returns:
        keras.Model mapping (B, H, W, C) float32 to (B, H, W, num_classes).

    >>> model = build_unet((128, 128, 3), num_classes=1, base_filters=64, depth=2,
    ...                    batch_norm=False, final_activation="sigmoid")   # the seed's model
    """
    input_shape = _check_input_shape_tuple(input_shape, example=(None, None, 1))
    height, width, channels = input_shape
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be an integer of 1 or more, got {depth!r}.")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer of 1 or more, got {num_classes!r}.")
    if isinstance(base_filters, bool) or not isinstance(base_filters, int) or base_filters < 1:
        raise ValueError(f"base_filters must be an integer of 1 or more, got {base_filters!r}.")
    if upsampling not in ("transpose", "resize"):
        raise ValueError(f'upsampling must be "transpose" or "resize", got {upsampling!r}.')
    if not 0.0 <= float(dropout) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
    norm = resolve_norm(batch_norm, norm)
    if height is not None and width is not None:
        check_input_size(height, width, depth)  # fail at build time with a clear message

    inputs = keras.Input(shape=input_shape, name="image")
    x = InputSizeCheck(depth, name="input_size_check")(inputs)

    skips = []
    for level in range(1, depth + 1):
        x = conv_block(x, base_filters * 2 ** (level - 1), batch_norm, name=f"enc{level}", norm=norm)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)

    x = conv_block(x, base_filters * 2**depth, batch_norm, name="bottleneck", norm=norm)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)

    for level in range(depth, 0, -1):
        filters = base_filters * 2 ** (level - 1)
        x = _upsample(x, filters, upsampling, name=f"up{level}")
        x = layers.Concatenate(axis=-1, name=f"concat{level}")([x, skips[level - 1]])
        x = conv_block(x, filters, batch_norm, name=f"dec{level}", norm=norm)

    # The head computes in float32 so that logits stay float32 under mixed precision.
    outputs = layers.Conv2D(num_classes, 1, kernel_initializer=HE_INIT, name="head", dtype="float32")(x)
    if final_activation is not None:
        outputs = layers.Activation(final_activation, name="final_activation", dtype="float32")(outputs)
    return keras.Model(inputs, outputs, name=name)


def count_parameters(model) -> int:
    """Number of trainable parameters (BatchNorm's moving statistics are not counted).

    Equals :func:`course_utils.torch.unet.count_parameters` for the same configuration.
    """
    import numpy as np

    return int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
