"""DeepLabV3+ in Keras 3: the DeepLabV3 encoder plus a small decoder (mirrors :mod:`course_utils.torch.deeplab_plus`).

Chen et al., "Encoder-Decoder with Atrous Separable Convolution for Semantic Image
Segmentation" (DeepLabV3+, ECCV 2018), section 3.1: DeepLabV3's output at stride 16 is
blurry because it is upsampled x16 in one bilinear step. The decoder

1. upsamples the ASPP output bilinearly to stride 4 (x4 at output stride 16, x2 at 8);
2. reduces the backbone's **low-level features at stride 4** with a 1x1 conv - BN - ReLU
   (48 channels against ASPP's 256 in the paper, so the fine features do not outweigh
   the semantic ones);
3. concatenates both and refines them with two 3x3 conv - BN - ReLU (256 filters in the paper);
4. classifies (1x1 conv) and upsamples bilinearly x4 to the input size.

The paper's backbone uses depthwise-separable (atrous) convolutions; the course keeps the
compact VGG-style backbone of :func:`course_utils.keras.deeplab.build_deeplab`, so the two
networks differ **only** by the decoder. Layers and names::

    stem, stage1 .. stage5, aspp_*      as in build_deeplab (stage2's output is stride 4)
    decoder_upsample                    bilinear x (output_stride / 4)
    decoder_low_level                   1x1 conv - BN - ReLU on stage2's output
    decoder_concat                      [upsampled ASPP, reduced low-level] on the channel axis
    decoder_conv1, decoder_conv2        3x3 conv - BN - ReLU
    classifier                          1x1 conv -> num_classes
    upsample                            bilinear x4 to the input size

Names follow the port naming rule (Keras ``decoder_conv1_conv`` <-> torch ``decoder.conv1.conv``),
so :func:`course_utils.port.keras_to_torch` copies the weights into
:class:`course_utils.torch.deeplab_plus.DeepLabV3Plus`. Initialisation: He uniform, zero biases
(:mod:`course_utils.keras.init`).
"""

from __future__ import annotations

import keras
from keras import layers

from ..sizes import stage_dilations
from .deeplab import ASPP, _ConvBNReLU
from .fcn import _check_input_shape, _check_int, stage_filters, vgg_stage
from .init import HE_INIT

__all__ = ["build_deeplab_plus", "LOW_LEVEL_STAGE"]

#: The backbone stage whose output (stride 4) feeds the decoder.
LOW_LEVEL_STAGE = 2


def build_deeplab_plus(
    input_shape=(None, None, 3),
    num_classes: int = 2,
    output_stride: int = 16,
    base_filters: int = 32,
    atrous_rates=(6, 12, 18),
    aspp_filters: int | None = None,
    low_level_filters: int | None = None,
    decoder_filters: int | None = None,
    convs_per_stage: int = 2,
    name: str | None = None,
) -> keras.Model:
    """Build a DeepLabV3+-style Keras model returning logits (B, H, W, num_classes).

    Args:
        input_shape: (H, W, C); H and W multiples of ``output_stride`` (or None).
        num_classes: output channels (logits).
        output_stride: 16 (the paper's) or 8: input size / feature size at the ASPP.
        base_filters: filters of the stem and stage 1 (stage k: ``base_filters * min(2**(k-1), 8)``).
        atrous_rates: ASPP's dilation rates (the paper: (6, 12, 18) at OS 16 on 513 px crops).
        aspp_filters: filters of every ASPP branch (default ``4 * base_filters``).
        low_level_filters: channels of the reduced stride-4 features (default ``base_filters``;
            the paper: 48 against 256 ASPP filters).
        decoder_filters: filters of the two 3x3 decoder convs (default ``aspp_filters``, as in the paper).
        convs_per_stage: 3x3 conv-BN-ReLU layers per backbone stage.
        name: model name (default ``"deeplab_plus_os16"`` etc.).

    Returns:
        keras.Model mapping (B, H, W, C) float32 to logits (B, H, W, num_classes); same parameter
        count as ``course_utils.torch.deeplab_plus.DeepLabV3Plus`` with the same arguments.
    """
    plan = stage_dilations(output_stride)
    input_shape = _check_input_shape(input_shape, output_stride,
                                     f"DeepLabV3+ with output_stride={output_stride}")
    num_classes = _check_int(num_classes, "num_classes")
    base_filters = _check_int(base_filters, "base_filters")
    convs_per_stage = _check_int(convs_per_stage, "convs_per_stage")
    aspp_filters = 4 * base_filters if aspp_filters is None else _check_int(aspp_filters, "aspp_filters")
    low_level_filters = (base_filters if low_level_filters is None
                         else _check_int(low_level_filters, "low_level_filters"))
    decoder_filters = aspp_filters if decoder_filters is None else _check_int(decoder_filters, "decoder_filters")

    inputs = keras.Input(shape=input_shape, name="image")
    x = _ConvBNReLU(base_filters, 3, "stem")(inputs)
    low_level = None
    for k, (f, (pool_before, dilation)) in enumerate(zip(stage_filters(base_filters), plan), start=1):
        if pool_before:
            x = layers.MaxPooling2D(2, name=f"pool{k}")(x)
        x = vgg_stage(x, f, convs_per_stage, name=f"stage{k}", dilation=dilation)
        if k == LOW_LEVEL_STAGE:
            low_level = x                                                    # stride 4
    x = ASPP(aspp_filters, atrous_rates, name="aspp")(x)                    # stride output_stride
    # Decoder (DeepLabV3+): back to stride 4, fuse the reduced low-level features, refine.
    x = layers.UpSampling2D(output_stride // 4, interpolation="bilinear", name="decoder_upsample")(x)
    low_level = _ConvBNReLU(low_level_filters, 1, "decoder_low_level")(low_level)
    x = layers.Concatenate(axis=-1, name="decoder_concat")([x, low_level])
    x = _ConvBNReLU(decoder_filters, 3, "decoder_conv1")(x)
    x = _ConvBNReLU(decoder_filters, 3, "decoder_conv2")(x)
    x = layers.Conv2D(num_classes, 1, kernel_initializer=HE_INIT, name="classifier", dtype="float32")(x)
    x = layers.UpSampling2D(size=4, interpolation="bilinear", name="upsample", dtype="float32")(x)
    logits = layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model(inputs, logits, name=name or f"deeplab_plus_os{output_stride}")
