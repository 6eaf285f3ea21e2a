"""DeepLabV3-style segmentation in Keras 3 (mirrors :mod:`course_utils.torch.deeplab`).

A compact version of Chen et al., "Rethinking Atrous Convolution for Semantic
Image Segmentation" (DeepLabV3, 2017):

- a small VGG-style backbone whose last stages use **atrous (dilated)
  convolution instead of pooling**, so the features keep 1/16 or 1/8 of the
  input size (``output_stride``) while the receptive field keeps growing;
- **ASPP** (atrous spatial pyramid pooling): parallel 1x1 conv, 3x3 atrous
  convs at ``atrous_rates`` and image pooling (global average -> 1x1 conv ->
  BN -> ReLU -> broadcast), concatenated and projected by a 1x1 conv;
- a 1x1 classifier and bilinear upsampling to the input size.

Architecture for ``base_filters=f`` and ``output_stride`` 16 (8)::

    stem              3x3 conv - BN - ReLU, f filters, full resolution
    stage1 .. stage5  [2x2 max pooling] + convs_per_stage x (3x3 conv - BN - ReLU),
                      filters f * (1, 2, 4, 8, 8); every stage starts with a pooling
                      (-> stride 32) except stage5 (OS 16: dilation 2 instead) or
                      stage4 and stage5 (OS 8: dilation 2 and 4 instead)
    aspp              ASPP(aspp_filters, atrous_rates)
    classifier        1x1 conv -> num_classes
    upsample          bilinear x output_stride (half-pixel centres, like torch's
                      ``F.interpolate(..., align_corners=False)``)

Initialisation: every conv and the classifier draw He-uniform kernels (zero biases), like the
PyTorch twin (:mod:`course_utils.keras.init`).

Layer names follow the port naming rule (Keras ``aspp_atrous1_conv`` <-> torch
``aspp.atrous1.conv``), so :func:`course_utils.port.keras_to_torch` copies the
weights into :class:`course_utils.torch.deeplab.DeepLabV3`.

Also here: :func:`build_pretrained_deeplab`, the practitioners' route - an
ImageNet-pretrained ``keras.applications`` backbone with the course's ASPP head.
"""

from __future__ import annotations

import warnings

import keras
from keras import layers

from ..sizes import OUTPUT_STRIDES, stage_dilations  # noqa: F401  (re-exported)
from .init import HE_INIT
from .fcn import _check_input_shape, _check_int, count_parameters, stage_filters, vgg_stage

__all__ = [
    "ASPP",
    "BroadcastLike",
    "ImageNetPreprocess",
    "build_deeplab",
    "build_pretrained_deeplab",
    "stage_dilations",
    "count_parameters",
]

@keras.saving.register_keras_serializable(package="course_utils")
class BroadcastLike(layers.Layer):
    """Broadcast a (B, 1, 1, C) tensor to the height and width of a reference (B, H, W, *).

    ``BroadcastLike()([pooled, features])`` -> (B, H, W, C). Upsampling a 1x1
    map bilinearly gives the same constant, so this equals torch's
    ``F.interpolate(pooled, size=(H, W), mode="bilinear")``; it also works when
    H and W are only known at run time.
    """

    def call(self, inputs):
        small, reference = inputs
        return small + keras.ops.zeros_like(reference[..., :1])

    def compute_output_shape(self, input_shapes):
        small, reference = input_shapes
        return (reference[0], reference[1], reference[2], small[-1])


class _ConvBNReLU:
    """Layers ``{name}_conv`` (no bias), ``{name}_bn``, ``{name}_relu``; call on a tensor."""

    def __init__(self, filters: int, kernel_size: int, name: str, dilation: int = 1):
        self.conv = layers.Conv2D(filters, kernel_size, padding="same", dilation_rate=dilation,
                                  use_bias=False, kernel_initializer=HE_INIT, name=f"{name}_conv")
        self.bn = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_bn")
        self.relu = layers.ReLU(name=f"{name}_relu")

    def __call__(self, x):
        return self.relu(self.bn(self.conv(x)))


class ASPP:
    """Atrous spatial pyramid pooling (DeepLabV3), as a functional building block.

    ``ASPP(filters, atrous_rates, name)(x)`` adds these named layers to the graph
    (each branch conv - BN - ReLU with ``filters`` filters):
    ``{name}_conv1x1`` (1x1), ``{name}_atrous1`` .. ``{name}_atrousN`` (3x3,
    ``dilation_rate=atrous_rates[i]``), ``{name}_image_pool`` (global average pool
    -> 1x1 conv -> BN -> ReLU -> broadcast to H x W); concatenated in that order
    on the channel axis and projected by ``{name}_project`` (1x1 conv - BN - ReLU).

    Shapes: (B, H, W, C) -> (B, H, W, filters). Mirrors ``course_utils.torch.deeplab.ASPP``
    (which also takes ``in_channels``; Keras infers it). Like a torch module,
    the layers are created in ``__init__`` and used in ``__call__``.
    """

    def __init__(self, filters: int = 256, atrous_rates=(6, 12, 18), name: str = "aspp"):
        atrous_rates = tuple(int(r) for r in atrous_rates)
        if not atrous_rates or any(r < 1 for r in atrous_rates):
            raise ValueError(f"atrous_rates must be one or more positive integers, got {atrous_rates!r}.")
        self.filters, self.atrous_rates, self.name = filters, atrous_rates, name
        self.conv1x1 = _ConvBNReLU(filters, 1, f"{name}_conv1x1")
        self.atrous = [
            _ConvBNReLU(filters, 3, f"{name}_atrous{i}", dilation=rate)
            for i, rate in enumerate(atrous_rates, start=1)
        ]
        self.global_pool = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_global_pool")
        self.image_pool = _ConvBNReLU(filters, 1, f"{name}_image_pool")
        self.broadcast = BroadcastLike(name=f"{name}_broadcast")
        self.concat = layers.Concatenate(axis=-1, name=f"{name}_concat")
        self.project = _ConvBNReLU(filters, 1, f"{name}_project")

    def __call__(self, x):
        branches = [self.conv1x1(x)] + [branch(x) for branch in self.atrous]
        pooled = self.image_pool(self.global_pool(x))
        branches.append(self.broadcast([pooled, x]))
        return self.project(self.concat(branches))


def build_deeplab(
    input_shape=(None, None, 3),
    num_classes: int = 2,
    output_stride: int = 16,
    base_filters: int = 32,
    atrous_rates=(6, 12, 18),
    aspp_filters: int | None = None,
    convs_per_stage: int = 2,
    name: str | None = None,
) -> keras.Model:
    """Build a DeepLabV3-style Keras functional model returning logits.

    Args:
        input_shape: (H, W, C); H and W multiples of ``output_stride`` (or None).
        num_classes: output channels (logits).
        output_stride: 16 or 8: input size / feature size at the ASPP. Atrous
            convolution replaces the pooling of the last 1 (OS 16) or 2 (OS 8) stages.
        base_filters: filters of the stem and stage 1; stage k has ``base_filters * min(2**(k-1), 8)``.
        atrous_rates: dilation rates of ASPP's 3x3 branches (the paper: (6, 12, 18)
            at OS 16 on 513 px crops, doubled at OS 8; use smaller ones for small images).
        aspp_filters: filters of every ASPP branch (default ``4 * base_filters``).
        convs_per_stage: 3x3 conv-BN-ReLU layers per backbone stage.
        name: model name (default ``"deeplab_os16"`` etc.).

    Returns:
        keras.Model mapping (B, H, W, C) float32 to logits (B, H, W, num_classes);
        same parameter count as ``course_utils.torch.deeplab.DeepLabV3``.
    """
    plan = stage_dilations(output_stride)
    input_shape = _check_input_shape(input_shape, output_stride,
                                     f"DeepLabV3 with output_stride={output_stride}")
    num_classes = _check_int(num_classes, "num_classes")
    base_filters = _check_int(base_filters, "base_filters")
    convs_per_stage = _check_int(convs_per_stage, "convs_per_stage")
    aspp_filters = 4 * base_filters if aspp_filters is None else _check_int(aspp_filters, "aspp_filters")

    inputs = keras.Input(shape=input_shape, name="image")
    x = _ConvBNReLU(base_filters, 3, "stem")(inputs)
    for k, (f, (pool_before, dilation)) in enumerate(zip(stage_filters(base_filters), plan), start=1):
        if pool_before:
            x = layers.MaxPooling2D(2, name=f"pool{k}")(x)
        x = vgg_stage(x, f, convs_per_stage, name=f"stage{k}", dilation=dilation)
    x = ASPP(aspp_filters, atrous_rates, name="aspp")(x)
    # Classifier, bilinear resize and logits compute in float32 also under mixed precision: XLA rejects
    # the float16 graph otherwise (its ResizeBilinearGrad is float32).
    x = layers.Conv2D(num_classes, 1, kernel_initializer=HE_INIT, name="classifier", dtype="float32")(x)
    x = layers.UpSampling2D(size=output_stride, interpolation="bilinear", name="upsample", dtype="float32")(x)
    logits = layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name or f"deeplab_os{output_stride}")


# ----------------------------------------------------------------------------- pretrained backbones
@keras.saving.register_keras_serializable(package="course_utils")
class ImageNetPreprocess(layers.Layer):
    """Images in [0, 1] -> the input range an ImageNet backbone was trained with.

    ``mode="tf"`` (MobileNetV2): [-1, 1]. ``mode="caffe"`` (ResNet50): 0..255,
    RGB -> BGR, minus the ImageNet mean per channel.
    """

    def __init__(self, mode: str = "tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("tf", "caffe"):
            raise ValueError(f'mode must be "tf" or "caffe", got {mode!r}.')
        self.mode = mode

    def call(self, x):
        if self.mode == "tf":
            return x * 2.0 - 1.0
        x = keras.ops.flip(x * 255.0, axis=-1)
        return x - keras.ops.convert_to_tensor([103.939, 116.779, 123.68], dtype=x.dtype)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


_BACKBONES = {
    # name: (keras.applications constructor name, preprocessing mode, stride-16 feature layer)
    "mobilenet_v2": ("MobileNetV2", "tf", "block_13_expand_relu"),
    "resnet50": ("ResNet50", "caffe", "conv4_block6_out"),
}


def build_pretrained_deeplab(
    input_shape,
    num_classes: int,
    backbone: str = "mobilenet_v2",
    weights="imagenet",
    atrous_rates=(6, 12, 18),
    aspp_filters: int = 256,
    trainable_backbone: bool = True,
    name: str | None = None,
) -> keras.Model:
    """DeepLabV3-style head (the course's :class:`ASPP`) on a ``keras.applications`` backbone.

    What practitioners do: take a backbone trained on ImageNet, read its
    features at stride 16 and train a segmentation head on the own data.

    Args:
        input_shape: (H, W, C) with H, W multiples of 16 and at least 32; C 1
            (grey, repeated to RGB) or 3.
        num_classes: output channels (logits).
        backbone: "mobilenet_v2" (features of ``block_13_expand_relu``) or
            "resnet50" (``conv4_block6_out``).
        weights: "imagenet" downloads the ImageNet weights on first use (needs
            internet); None builds the same network randomly initialised
            (offline, tests, fast mode).
        atrous_rates, aspp_filters: of the ASPP head.
        trainable_backbone: False freezes the backbone (train only the head first).
        name: model name.

    Returns:
        keras.Model: (B, H, W, C) in [0, 1] -> logits (B, H, W, num_classes).
    """
    if backbone not in _BACKBONES:
        raise ValueError(f"backbone must be one of {sorted(_BACKBONES)}, got {backbone!r}.")
    if weights not in ("imagenet", None):
        raise ValueError(f'weights must be "imagenet" or None (random initialisation), got {weights!r}.')
    input_shape = tuple(input_shape)
    if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
        raise ValueError(
            f"input_shape must be (height, width, 1 or 3), got {input_shape}: an ImageNet backbone needs RGB "
            "(grey images are repeated to 3 channels)."
        )
    height, width, channels = input_shape
    if height is None or width is None:
        raise ValueError("build_pretrained_deeplab needs a fixed input size, e.g. (224, 224, 3).")
    _check_input_shape(input_shape, 16, f"DeepLab on {backbone}")
    if min(height, width) < 32:
        raise ValueError(f"{backbone} needs images of at least 32x32 pixels, got {height}x{width}.")
    constructor, mode, feature_layer = _BACKBONES[backbone]
    with warnings.catch_warnings():
        # MobileNetV2 has ImageNet weights for 96-224 px inputs and warns that other sizes get the 224-px
        # ones. Its convolution filters fit any size, which is all a segmentation backbone uses.
        warnings.filterwarnings("ignore", message="`input_shape` is undefined or non-square", category=UserWarning)
        base = getattr(keras.applications, constructor)(
            input_shape=(height, width, 3), include_top=False, weights=weights
        )
    encoder = keras.Model(base.input, base.get_layer(feature_layer).output, name=f"{backbone}_encoder")
    encoder.trainable = trainable_backbone

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    if channels == 1:
        x = layers.Concatenate(axis=-1, name="grey_to_rgb")([x, x, x])
    x = ImageNetPreprocess(mode, name="preprocess")(x)
    x = encoder(x)
    x = ASPP(aspp_filters, atrous_rates, name="aspp")(x)
    # Classifier, bilinear resize and logits compute in float32 also under mixed precision: XLA rejects
    # the float16 graph otherwise (its ResizeBilinearGrad is float32).
    x = layers.Conv2D(num_classes, 1, kernel_initializer=HE_INIT, name="classifier", dtype="float32")(x)
    x = layers.UpSampling2D(size=16, interpolation="bilinear", name="upsample", dtype="float32")(x)
    logits = layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name or f"deeplab_{backbone}")
