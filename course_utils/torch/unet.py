"""U-Net in PyTorch (mirrors :mod:`course_utils.keras.unet` layer by layer).

Module paths follow the course's port naming rule: torch ``enc1.conv1`` is
Keras layer ``enc1_conv1``, so :func:`course_utils.port.keras_to_torch` copies
Keras weights into this model by name.

Architecture for ``depth=d``, ``base_filters=f`` (filters at level ``i`` are
``f * 2**(i-1)``)::

    enc1 .. encd   DoubleConv, then 2x2 max pooling
    bottleneck     DoubleConv with f * 2**d filters, then dropout
    upd .. up1     2x2 transposed conv, stride 2      (upsampling="transpose")
                   or bilinear x2 resize + 3x3 conv   (upsampling="resize": up_i.conv)
    cat            [upsampled, skip from enc_i] along dim 1 (channels)
    decd .. dec1   DoubleConv
    head           1x1 conv to num_classes logits

Initialisation: every conv, transposed conv and the head draw He-uniform weights with zero
biases (:func:`course_utils.torch.init.he_init_`), the same distribution as the Keras twin,
not PyTorch's default. BatchNorm: torch's defaults eps 1e-5, momentum 0.1 (= Keras 0.9).
"""

from __future__ import annotations

import torch
from torch import nn

from ..sizes import check_input_size
from .init import he_init_

__all__ = ["UNet", "DoubleConv", "ResizeConv", "count_parameters", "check_input_size", "resolve_norm", "group_count"]

NORMS = ("batch", "group", None)


def resolve_norm(batch_norm: bool, norm) -> str | None:
    """The normalisation a block uses: ``norm`` when given ("batch", "group" or None), else
    ``"batch"`` if ``batch_norm`` else None (``norm="auto"``, the default). Same rule in Keras."""
    if norm == "auto":
        return "batch" if batch_norm else None
    if norm not in NORMS:
        raise ValueError(f'norm must be "batch", "group", None or "auto", got {norm!r}.')
    return norm


def group_count(channels: int, max_groups: int = 8) -> int:
    """Groups of a GroupNorm over ``channels``: the largest divisor of ``channels`` up to ``max_groups``."""
    return max(g for g in range(1, max_groups + 1) if channels % g == 0)


def _norm_layer(norm, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        return nn.GroupNorm(group_count(channels), channels, eps=1e-5)
    return nn.Identity()


class DoubleConv(nn.Module):
    """(conv3x3-norm-ReLU) x2, or (conv3x3+bias-ReLU) x2 without normalisation.

    Shapes: (B, C_in, H, W) -> (B, out_channels, H, W).
    Submodules: ``conv1``, ``bn1``, ``relu1``, ``conv2``, ``bn2``, ``relu2`` (``bn*`` is a
    BatchNorm2d, a GroupNorm with :func:`group_count` groups for ``norm="group"``, or Identity).
    A GroupNorm normalises each image on its own, so it behaves the same at batch size 1 as at 32.
    """

    def __init__(self, in_channels: int, out_channels: int, batch_norm: bool = True, norm="auto"):
        super().__init__()
        norm = resolve_norm(batch_norm, norm)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=norm is None)
        self.bn1 = _norm_layer(norm, out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=norm is None)
        self.bn2 = _norm_layer(norm, out_channels)
        self.relu2 = nn.ReLU()
        he_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu1(self.bn1(self.conv1(x)))
        return self.relu2(self.bn2(self.conv2(x)))


class ResizeConv(nn.Module):
    """Bilinear x2 upsampling followed by a 3x3 convolution (avoids checkerboard artefacts).

    Shapes: (B, C_in, H, W) -> (B, out_channels, 2H, 2W). Submodules ``upsample``, ``conv``.
    Matches Keras ``UpSampling2D(2, interpolation="bilinear")`` + ``Conv2D(3, padding="same")``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        he_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.upsample(x))


class UNet(nn.Module):
    """U-Net returning logits of shape (B, num_classes, H, W) for input (B, in_channels, H, W).

    Args:
        in_channels: input channels (1 for the membranes, 3 for RGB).
        num_classes: output channels (logits); 2 for a binary problem with cross-entropy.
        base_filters: filters of the first level; level i has ``base_filters * 2**(i-1)``.
        depth: number of 2x2 max-pooling steps; H and W must be multiples of ``2**depth``.
        batch_norm: conv-BN-ReLU blocks (convs without bias) instead of conv-ReLU.
        upsampling: "transpose" (2x2 transposed conv, stride 2) or "resize"
            (bilinear x2 then 3x3 conv).
        dropout: dropout probability after the bottleneck block (0 = none).
        norm: "batch", "group" (GroupNorm, independent of the batch size: use it at batch sizes
            of 1-2), None (no normalisation, convs with bias) or "auto" (= ``batch_norm``'s choice).

    Same configuration -> same parameter count as ``course_utils.keras.unet.build_unet``.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 2,
        base_filters: int = 64,
        depth: int = 4,
        batch_norm: bool = True,
        upsampling: str = "transpose",
        dropout: float = 0.0,
        norm="auto",
    ):
        super().__init__()
        for value, what in ((in_channels, "in_channels"), (num_classes, "num_classes"),
                            (base_filters, "base_filters"), (depth, "depth")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be an integer of 1 or more, got {value!r}.")
        if upsampling not in ("transpose", "resize"):
            raise ValueError(f'upsampling must be "transpose" or "resize", got {upsampling!r}.')
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}.")
        norm = resolve_norm(batch_norm, norm)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.depth = depth

        channels = in_channels
        for level in range(1, depth + 1):
            filters = base_filters * 2 ** (level - 1)
            self.add_module(f"enc{level}", DoubleConv(channels, filters, norm=norm))
            channels = filters
        self.pool = nn.MaxPool2d(2)
        self.bottleneck = DoubleConv(channels, base_filters * 2**depth, norm=norm)
        self.dropout = nn.Dropout(dropout)
        channels = base_filters * 2**depth
        for level in range(depth, 0, -1):
            filters = base_filters * 2 ** (level - 1)
            if upsampling == "transpose":
                up = nn.ConvTranspose2d(channels, filters, 2, stride=2)
            else:
                up = ResizeConv(channels, filters)
            self.add_module(f"up{level}", up)
            self.add_module(f"dec{level}", DoubleConv(2 * filters, filters, norm=norm))
            channels = filters
        self.head = nn.Conv2d(channels, num_classes, 1)
        he_init_(self)  # He-uniform weights, zero biases: the same distribution as the Keras twin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(
                f"UNet expects a batch (B, C, H, W), got shape {tuple(x.shape)}: "
                "add the batch axis with x.unsqueeze(0)."
            )
        if x.shape[1] != self.in_channels:
            hint = (
                " It looks like NHWC: use x.permute(0, 3, 1, 2)."
                if x.shape[-1] == self.in_channels
                else f" Build the model with UNet(in_channels={x.shape[1]}, ...)."
            )
            raise ValueError(
                f"UNet(in_channels={self.in_channels}) got input of shape {tuple(x.shape)} "
                f"with {x.shape[1]} channels in dim 1.{hint}"
            )
        check_input_size(int(x.shape[2]), int(x.shape[3]), self.depth)
        skips = []
        for level in range(1, self.depth + 1):
            x = getattr(self, f"enc{level}")(x)
            skips.append(x)
            x = self.pool(x)
        x = self.dropout(self.bottleneck(x))
        for level in range(self.depth, 0, -1):
            x = getattr(self, f"up{level}")(x)
            x = torch.cat([x, skips[level - 1]], dim=1)
            x = getattr(self, f"dec{level}")(x)
        return self.head(x)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (``requires_grad``); BatchNorm running stats are buffers.

    Equals :func:`course_utils.keras.unet.count_parameters` for the same configuration.
    """
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
