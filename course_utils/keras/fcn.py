"""FCN-32s / 16s / 8s in Keras 3 (mirrors :mod:`course_utils.torch.fcn` layer by layer).

A compact version of Long, Shelhamer & Darrell, "Fully Convolutional Networks
for Semantic Segmentation" (CVPR 2015): a small VGG-style backbone turns the
image into class scores at 1/32 of its size; learned upsampling (transposed
convolutions initialised to bilinear interpolation) brings the scores back, and
the 16s / 8s variants add score maps from the finer pool4 / pool3 features
("skip fusion by addition") before the last upsampling.

Architecture for ``base_filters=f`` (stage ``k`` has ``f * min(2**(k-1), 8)`` filters)::

    stage1 .. stage5   convs_per_stage x (3x3 conv - BN - ReLU), then 2x2 max pooling
                       -> pool3 (stride 8), pool4 (stride 16), pool5 (stride 32)
    fc                 3x3 conv - BN - ReLU on pool5 (the paper's fc6/fc7, convolutionalised)
    score32            1x1 conv: fc -> num_classes scores at stride 32
    32s: up32          transposed conv x32 (kernel 64) -> input size
    16s: up2_32        transposed conv x2 of score32; + score16 (1x1 conv on pool4)
         up16          transposed conv x16 (kernel 32) -> input size
    8s:  up2_32 + score16, then up2_16 (x2); + score8 (1x1 conv on pool3)
         up8           transposed conv x8 (kernel 16) -> input size

Initialisation: every conv and score layer draws He-uniform kernels (zero biases), like the
PyTorch twin; the upsampling layers start as bilinear interpolation in both.

Layer names follow the course's port naming rule (Keras ``stage1_conv1`` <->
torch ``stage1.conv1``), so :func:`course_utils.port.keras_to_torch` copies the
weights into :class:`course_utils.torch.fcn.FCN`.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from ..sizes import bilinear_kernel, stage_filters
from ..sizes import check_divisible as check_input_size  # the name both FCN modules export
from .init import HE_INIT
from .unet import _check_input_shape_tuple, count_parameters

__all__ = [
    "build_fcn",
    "vgg_stage",
    "conv_bn_relu",
    "bilinear_kernel",
    "bilinear_upsampling",
    "BilinearInitializer",
    "check_input_size",
    "count_parameters",
    "stage_filters",
    "score_map_model",
    "VARIANTS",
]

VARIANTS = ("32s", "16s", "8s")


@keras.saving.register_keras_serializable(package="course_utils")
class BilinearInitializer(keras.initializers.Initializer):
    """Kernel initializer for Conv2DTranspose: bilinear filter from channel i to channel i.

    Kernel layout (h, w, out_channels, in_channels), as Keras' Conv2DTranspose stores it.
    """

    def __call__(self, shape, dtype=None):
        h, w, out_channels, in_channels = shape
        if h != w or out_channels != in_channels:
            raise ValueError(
                f"BilinearInitializer needs a square kernel with as many input as output channels, got {shape}."
            )
        kernel = np.zeros(shape, dtype=np.float32)
        idx = np.arange(in_channels)
        kernel[:, :, idx, idx] = bilinear_kernel(h)[:, :, None]
        return keras.ops.convert_to_tensor(kernel, dtype=dtype or "float32")


def bilinear_upsampling(x, factor: int, name: str):
    """Learnable x``factor`` upsampling initialised to bilinear interpolation.

    ``Conv2DTranspose(C, 2*factor, strides=factor, padding="same", use_bias=False)``;
    shapes (B, H, W, C) -> (B, factor*H, factor*W, C). Same as torch
    ``ConvTranspose2d(C, C, 2*factor, stride=factor, padding=factor//2, bias=False)``.
    """
    channels = x.shape[-1]
    layer = layers.Conv2DTranspose(
        channels, 2 * factor, strides=factor, padding="same", use_bias=False,
        kernel_initializer=BilinearInitializer(), name=name,
    )
    layer.course_fixed_init = True  # course_utils.keras.init.he_init leaves it bilinear
    return layer(x)


def conv_bn_relu(x, filters: int, kernel_size: int, name: str, dilation: int = 1):
    """conv (no bias) - BN - ReLU, layers ``{name}_conv``, ``{name}_bn``, ``{name}_relu``.

    Shapes (B, H, W, C) -> (B, H, W, filters); ``dilation`` > 1 makes it atrous.
    """
    x = layers.Conv2D(filters, kernel_size, padding="same", dilation_rate=dilation, use_bias=False,
                      kernel_initializer=HE_INIT, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def vgg_stage(x, filters: int, num_convs: int, name: str, dilation: int = 1):
    """``num_convs`` x (3x3 conv - BN - ReLU): layers ``{name}_conv1``, ``{name}_bn1``, ``{name}_relu1``, ...

    Shapes (B, H, W, C) -> (B, H, W, filters) (no pooling inside).
    """
    for i in range(1, num_convs + 1):
        x = layers.Conv2D(filters, 3, padding="same", dilation_rate=dilation, use_bias=False,
                          kernel_initializer=HE_INIT, name=f"{name}_conv{i}")(x)
        x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name=f"{name}_bn{i}")(x)
        x = layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def _check_int(value, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{what} must be an integer of {minimum} or more, got {value!r}.")
    return int(value)


def _check_input_shape(input_shape, multiple: int, model: str):
    input_shape = _check_input_shape_tuple(input_shape, example=(64, 64, 3))
    height, width, _ = input_shape
    if height is not None and width is not None:
        check_input_size(height, width, multiple, model)
    return input_shape


def build_fcn(
    input_shape=(None, None, 3),
    num_classes: int = 2,
    variant: str = "8s",
    base_filters: int = 32,
    convs_per_stage: int = 2,
    name: str | None = None,
) -> keras.Model:
    """Build FCN-32s, -16s or -8s as a Keras functional model returning logits.

    Args:
        input_shape: (H, W, C); H and W multiples of 32 (or None: then checked by
            the skip additions at run time).
        num_classes: output channels (logits).
        variant: "32s", "16s" or "8s": how many skip connections (0, 1, 2) refine
            the coarse stride-32 scores before the final upsampling.
        base_filters: filters of stage 1; stage k has ``base_filters * min(2**(k-1), 8)``.
        convs_per_stage: 3x3 conv-BN-ReLU layers per backbone stage.
        name: model name (default ``"fcn_8s"`` etc.).

    Returns:
        keras.Model mapping (B, H, W, C) float32 to logits (B, H, W, num_classes);
        same parameter count as ``course_utils.torch.fcn.FCN`` for the same configuration.
    """
    if variant not in VARIANTS:
        raise ValueError(f'variant must be one of "32s", "16s", "8s", got {variant!r}.')
    input_shape = _check_input_shape(input_shape, 32, f"FCN-{variant}")
    num_classes = _check_int(num_classes, "num_classes")
    base_filters = _check_int(base_filters, "base_filters")
    convs_per_stage = _check_int(convs_per_stage, "convs_per_stage")

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    pools = {}
    for k, f in enumerate(stage_filters(base_filters), start=1):
        x = vgg_stage(x, f, convs_per_stage, name=f"stage{k}")
        x = layers.MaxPooling2D(2, name=f"pool{k}")(x)
        pools[k] = x
    x = conv_bn_relu(x, x.shape[-1], 3, name="fc")
    score = layers.Conv2D(num_classes, 1, kernel_initializer=HE_INIT, name="score32")(x)
    if variant == "32s":
        logits = bilinear_upsampling(score, 32, name="up32")
    else:
        score = bilinear_upsampling(score, 2, name="up2_32")
        skip16 = layers.Conv2D(num_classes, 1, kernel_initializer=HE_INIT, name="score16")(pools[4])
        score = layers.Add(name="fuse16")([score, skip16])
        if variant == "16s":
            logits = bilinear_upsampling(score, 16, name="up16")
        else:
            score = bilinear_upsampling(score, 2, name="up2_16")
            skip8 = layers.Conv2D(num_classes, 1, kernel_initializer=HE_INIT, name="score8")(pools[3])
            score = layers.Add(name="fuse8")([score, skip8])
            logits = bilinear_upsampling(score, 8, name="up8")
    # float32 logits also under mixed precision
    logits = layers.Activation("linear", dtype="float32", name="logits")(logits)
    return keras.Model(inputs, logits, name=name or f"fcn_{variant}")


def score_map_model(model: keras.Model) -> keras.Model:
    """A model returning the intermediate maps of an FCN built by :func:`build_fcn`.

    Outputs a dict with ``"pool3"``, ``"pool4"``, ``"pool5"``, ``"score32"``,
    ``"fused16"`` / ``"fused8"`` (if the variant has them) and ``"logits"``, like
    ``course_utils.torch.fcn.FCN.score_maps``.
    """
    names = {"pool3": "pool3", "pool4": "pool4", "pool5": "pool5", "score32": "score32",
             "fused16": "fuse16", "fused8": "fuse8", "logits": "logits"}
    available = {layer.name for layer in model.layers}
    outputs = {key: model.get_layer(layer).output for key, layer in names.items() if layer in available}
    return keras.Model(model.inputs, outputs, name=f"{model.name}_maps")
