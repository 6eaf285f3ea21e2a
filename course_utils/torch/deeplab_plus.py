"""DeepLabV3+ in PyTorch: the DeepLabV3 encoder plus a small decoder (mirrors :mod:`course_utils.keras.deeplab_plus`).

Chen et al., "Encoder-Decoder with Atrous Separable Convolution for Semantic Image
Segmentation" (DeepLabV3+, ECCV 2018), section 3.1. The decoder upsamples the ASPP output
bilinearly to stride 4 (x4 at output stride 16, x2 at 8), concatenates the backbone's
stride-4 features reduced by a 1x1 conv - BN - ReLU, refines with two 3x3 conv - BN - ReLU,
classifies (1x1 conv) and upsamples bilinearly x4. The backbone is the course's compact
VGG-style one (:class:`course_utils.torch.deeplab.DeepLabV3`), not the paper's separable
Xception: the two course models differ only by the decoder.

Module paths (port naming rule: torch ``decoder.conv1.conv`` <-> Keras ``decoder_conv1_conv``)::

    stem, stage1 .. stage5, aspp       as in DeepLabV3 (stage2's output is stride 4)
    decoder.low_level                  1x1 ConvBNReLU on stage2's output
    decoder.conv1, decoder.conv2       3x3 ConvBNReLU
    classifier                         1x1 conv -> num_classes

Initialisation: He uniform, zero biases (:func:`course_utils.torch.init.he_init_`), like the
Keras twin.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..sizes import stage_dilations
from .deeplab import ASPP, check_deeplab_input
from .fcn import ConvBNReLU, VGGStage, _check_int, stage_filters
from .init import he_init_

__all__ = ["DeepLabV3Plus", "DeepLabV3PlusDecoder", "LOW_LEVEL_STAGE"]

#: The backbone stage whose output (stride 4) feeds the decoder.
LOW_LEVEL_STAGE = 2


class DeepLabV3PlusDecoder(nn.Module):
    """DeepLabV3+'s decoder: (ASPP output at stride s, low-level features at stride 4) -> stride-4 features.

    Shapes: ``forward(x, low_level)`` with x (B, in_channels, H/s, W/s) and low_level
    (B, low_level_in, H/4, W/4) -> (B, filters, H/4, W/4).
    """

    def __init__(self, in_channels: int, low_level_in: int, low_level_filters: int, filters: int):
        super().__init__()
        self.low_level = ConvBNReLU(low_level_in, low_level_filters, 1)
        self.conv1 = ConvBNReLU(in_channels + low_level_filters, filters, 3)
        self.conv2 = ConvBNReLU(filters, filters, 3)

    def forward(self, x: torch.Tensor, low_level: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=low_level.shape[-2:], mode="bilinear", align_corners=False)  # -> stride 4
        x = torch.cat([x, self.low_level(low_level)], dim=1)
        return self.conv2(self.conv1(x))


class DeepLabV3Plus(nn.Module):
    """DeepLabV3+-style network: (B, in_channels, H, W) -> logits (B, num_classes, H, W).

    Arguments as :func:`course_utils.keras.deeplab_plus.build_deeplab_plus` (same defaults, same
    parameter count): ``output_stride`` 16 or 8, ``atrous_rates``, ``aspp_filters`` (default
    ``4 * base_filters``), ``low_level_filters`` (default ``base_filters``), ``decoder_filters``
    (default ``aspp_filters``). H and W must be multiples of ``output_stride``.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 2, output_stride: int = 16, base_filters: int = 32,
                 atrous_rates=(6, 12, 18), aspp_filters: int | None = None, low_level_filters: int | None = None,
                 decoder_filters: int | None = None, convs_per_stage: int = 2):
        super().__init__()
        in_channels = _check_int(in_channels, "in_channels")
        num_classes = _check_int(num_classes, "num_classes")
        base_filters = _check_int(base_filters, "base_filters")
        convs_per_stage = _check_int(convs_per_stage, "convs_per_stage")
        aspp_filters = 4 * base_filters if aspp_filters is None else _check_int(aspp_filters, "aspp_filters")
        low_level_filters = (base_filters if low_level_filters is None
                             else _check_int(low_level_filters, "low_level_filters"))
        decoder_filters = aspp_filters if decoder_filters is None else _check_int(decoder_filters, "decoder_filters")
        self.plan = stage_dilations(output_stride)
        self.in_channels, self.num_classes, self.output_stride = in_channels, num_classes, output_stride

        filters = stage_filters(base_filters)
        self.stem = ConvBNReLU(in_channels, base_filters, 3)
        channels = base_filters
        for k, (f, (_, dilation)) in enumerate(zip(filters, self.plan), start=1):
            self.add_module(f"stage{k}", VGGStage(channels, f, convs_per_stage, dilation=dilation))
            channels = f
        self.pool = nn.MaxPool2d(2)
        self.aspp = ASPP(channels, aspp_filters, atrous_rates)
        self.decoder = DeepLabV3PlusDecoder(aspp_filters, filters[LOW_LEVEL_STAGE - 1], low_level_filters,
                                            decoder_filters)
        self.classifier = nn.Conv2d(decoder_filters, num_classes, 1)
        he_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = check_deeplab_input(x, self.in_channels, self.output_stride, "DeepLabV3Plus")
        x, low_level = self.stem(x), None
        for k, (pool_before, _) in enumerate(self.plan, start=1):
            if pool_before:
                x = self.pool(x)
            x = getattr(self, f"stage{k}")(x)
            if k == LOW_LEVEL_STAGE:
                low_level = x                                   # stride 4
        x = self.classifier(self.decoder(self.aspp(x), low_level))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
