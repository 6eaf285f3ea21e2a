"""FCN-32s / 16s / 8s in PyTorch (mirrors :mod:`course_utils.keras.fcn` layer by layer).

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

Initialisation: every conv and score layer draws He-uniform weights (zero biases), like the
Keras twin (:func:`course_utils.torch.init.he_init_`); the upsampling layers start as bilinear
interpolation in both.

Module paths follow the course's port naming rule (torch ``stage1.conv1`` <->
Keras ``stage1_conv1``), so :func:`course_utils.port.keras_to_torch` copies
Keras weights into this model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..sizes import bilinear_kernel, stage_filters
from ..sizes import check_divisible as check_input_size  # the name both FCN modules export
from .init import he_init_

__all__ = [
    "FCN",
    "ConvBNReLU",
    "VGGStage",
    "bilinear_kernel",
    "bilinear_upsampling",
    "check_input_size",
    "count_parameters",
    "stage_filters",
    "VARIANTS",
]

VARIANTS = ("32s", "16s", "8s")


def bilinear_upsampling(channels: int, factor: int) -> nn.ConvTranspose2d:
    """ConvTranspose2d(channels, channels, 2*factor, stride=factor, padding=factor//2, bias=False).

    Initialised to bilinear interpolation (and still learnable).
    Shapes: (B, channels, H, W) -> (B, channels, factor*H, factor*W).
    """
    kernel = 2 * factor
    layer = nn.ConvTranspose2d(channels, channels, kernel, stride=factor, padding=factor // 2, bias=False)
    weight = np.zeros((channels, channels, kernel, kernel), dtype=np.float32)  # (in, out, h, w)
    weight[np.arange(channels), np.arange(channels)] = bilinear_kernel(kernel)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
    layer.course_fixed_init = True  # course_utils.torch.init.he_init_ leaves it bilinear
    return layer


class VGGStage(nn.Module):
    """``num_convs`` x (3x3 conv - BN - ReLU), all with the same ``dilation``.

    Shapes: (B, in_channels, H, W) -> (B, out_channels, H, W) (no pooling inside).
    Submodules ``conv1``, ``bn1``, ``relu1``, ``conv2``, ...
    """

    def __init__(self, in_channels: int, out_channels: int, num_convs: int = 2, dilation: int = 1):
        super().__init__()
        self.num_convs = num_convs
        for i in range(1, num_convs + 1):
            self.add_module(
                f"conv{i}",
                nn.Conv2d(in_channels if i == 1 else out_channels, out_channels, 3,
                          padding=dilation, dilation=dilation, bias=False),
            )
            self.add_module(f"bn{i}", nn.BatchNorm2d(out_channels))
            self.add_module(f"relu{i}", nn.ReLU())
        he_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i in range(1, self.num_convs + 1):
            x = getattr(self, f"relu{i}")(getattr(self, f"bn{i}")(getattr(self, f"conv{i}")(x)))
        return x


class ConvBNReLU(nn.Module):
    """conv (no bias) - BN - ReLU; submodules ``conv``, ``bn``, ``relu``."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1):
        super().__init__()
        padding = dilation * (kernel_size - 1) // 2
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding, dilation=dilation, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        he_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def _check_int(value, what: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{what} must be an integer of {minimum} or more, got {value!r}.")
    return int(value)


class FCN(nn.Module):
    """Fully convolutional network returning logits (B, num_classes, H, W) for input (B, in_channels, H, W).

    Args:
        in_channels: input channels (1 for the membranes, 3 for RGB).
        num_classes: output channels (logits).
        variant: "32s", "16s" or "8s": how many skip connections (0, 1, 2) refine
            the coarse stride-32 scores before the final upsampling.
        base_filters: filters of stage 1; stage k has ``base_filters * min(2**(k-1), 8)``.
        convs_per_stage: 3x3 conv-BN-ReLU layers per backbone stage.

    H and W must be multiples of 32 (five 2x2 poolings). Same configuration ->
    same parameter count as :func:`course_utils.keras.fcn.build_fcn`.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        variant: str = "8s",
        base_filters: int = 32,
        convs_per_stage: int = 2,
    ):
        super().__init__()
        in_channels = _check_int(in_channels, "in_channels")
        num_classes = _check_int(num_classes, "num_classes")
        base_filters = _check_int(base_filters, "base_filters")
        convs_per_stage = _check_int(convs_per_stage, "convs_per_stage")
        if variant not in VARIANTS:
            raise ValueError(f'variant must be one of "32s", "16s", "8s", got {variant!r}.')
        self.in_channels, self.num_classes, self.variant = in_channels, num_classes, variant

        filters = stage_filters(base_filters)
        channels = in_channels
        for k, f in enumerate(filters, start=1):
            self.add_module(f"stage{k}", VGGStage(channels, f, convs_per_stage))
            channels = f
        self.pool = nn.MaxPool2d(2)
        self.fc = ConvBNReLU(channels, channels, 3)
        self.score32 = nn.Conv2d(channels, num_classes, 1)
        if variant == "32s":
            self.up32 = bilinear_upsampling(num_classes, 32)
        else:
            self.up2_32 = bilinear_upsampling(num_classes, 2)
            self.score16 = nn.Conv2d(filters[3], num_classes, 1)
            if variant == "16s":
                self.up16 = bilinear_upsampling(num_classes, 16)
            else:
                self.up2_16 = bilinear_upsampling(num_classes, 2)
                self.score8 = nn.Conv2d(filters[2], num_classes, 1)
                self.up8 = bilinear_upsampling(num_classes, 8)
        he_init_(self)  # He-uniform convs and score layers, zero biases (as in Keras); upsampling stays bilinear

    def score_maps(self, x: torch.Tensor) -> dict:
        """The intermediate maps: ``{"pool3", "pool4", "pool5", "score32", "fused16", "fused8", "logits"}``.

        ``fused16`` / ``fused8`` only exist for the 16s / 8s variants. Useful to
        show how each skip makes the scores finer (lecture 07).
        """
        if x.ndim != 4:
            raise ValueError(
                f"FCN expects a batch (B, C, H, W), got shape {tuple(x.shape)}: add the batch axis with x.unsqueeze(0)."
            )
        if x.shape[1] != self.in_channels:
            hint = (" It looks like NHWC: use x.permute(0, 3, 1, 2)." if x.shape[-1] == self.in_channels
                    else f" Build the model with FCN(in_channels={x.shape[1]}, ...).")
            raise ValueError(
                f"FCN(in_channels={self.in_channels}) got input of shape {tuple(x.shape)} "
                f"with {x.shape[1]} channels in dim 1.{hint}"
            )
        check_input_size(int(x.shape[2]), int(x.shape[3]), 32, f"FCN-{self.variant}")
        out = {}
        for k in range(1, 6):
            x = self.pool(getattr(self, f"stage{k}")(x))
            out[f"pool{k}"] = x
        score = self.score32(self.fc(x))
        out["score32"] = score
        if self.variant == "32s":
            out["logits"] = self.up32(score)
            return out
        score = self.up2_32(score) + self.score16(out["pool4"])
        out["fused16"] = score
        if self.variant == "16s":
            out["logits"] = self.up16(score)
            return out
        score = self.up2_16(score) + self.score8(out["pool3"])
        out["fused8"] = score
        out["logits"] = self.up8(score)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score_maps(x)["logits"]


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (equals the Keras count for the same configuration)."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
