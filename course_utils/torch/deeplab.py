"""DeepLabV3-style segmentation in PyTorch (mirrors :mod:`course_utils.keras.deeplab`).

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
    upsample          bilinear, align_corners=False, x output_stride

Initialisation: every conv and the classifier draw He-uniform weights (zero biases), like the
Keras twin (:func:`course_utils.torch.init.he_init_`).

Module paths follow the port naming rule (torch ``aspp.atrous1.conv`` <-> Keras
``aspp_atrous1_conv``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..sizes import OUTPUT_STRIDES, stage_dilations  # noqa: F401  (re-exported)
from .init import he_init_
from .fcn import ConvBNReLU, VGGStage, _check_int, check_input_size, count_parameters, stage_filters

__all__ = [
    "ASPP",
    "DeepLabV3",
    "stage_dilations",
    "build_pretrained_deeplab",
    "PretrainedDeepLab",
    "count_parameters",
]

class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLabV3).

    Branches, each conv - BN - ReLU with ``out_channels`` filters:
    ``conv1x1`` (1x1), ``atrous1`` .. ``atrousN`` (3x3 with dilation ``atrous_rates[i]``),
    ``image_pool`` (global average pool -> 1x1 conv -> BN -> ReLU -> broadcast to H x W).
    They are concatenated in that order along dim 1 and projected by ``project``
    (1x1 conv - BN - ReLU).

    Shapes: (B, in_channels, H, W) -> (B, out_channels, H, W).
    Note: BatchNorm in the image-pooling branch sees one value per image and
    channel, so training needs batches of 2 or more images.
    """

    def __init__(self, in_channels: int, out_channels: int = 256, atrous_rates=(6, 12, 18)):
        super().__init__()
        atrous_rates = tuple(int(r) for r in atrous_rates)
        if not atrous_rates or any(r < 1 for r in atrous_rates):
            raise ValueError(f"atrous_rates must be one or more positive integers, got {atrous_rates!r}.")
        self.atrous_rates = atrous_rates
        self.conv1x1 = ConvBNReLU(in_channels, out_channels, 1)
        for i, rate in enumerate(atrous_rates, start=1):
            self.add_module(f"atrous{i}", ConvBNReLU(in_channels, out_channels, 3, dilation=rate))
        self.image_pool = ConvBNReLU(in_channels, out_channels, 1)
        self.project = ConvBNReLU((len(atrous_rates) + 2) * out_channels, out_channels, 1)
        he_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        branches = [self.conv1x1(x)]
        branches += [getattr(self, f"atrous{i}")(x) for i in range(1, len(self.atrous_rates) + 1)]
        pooled = self.image_pool(F.adaptive_avg_pool2d(x, 1))
        branches.append(F.interpolate(pooled, size=size, mode="bilinear", align_corners=False))
        return self.project(torch.cat(branches, dim=1))


def check_deeplab_input(x: torch.Tensor, in_channels: int, output_stride: int, model: str):
    """Check a DeepLab input batch (B, in_channels, H, W) and return its (H, W); a clear error otherwise.

    Shared by :class:`DeepLabV3` and ``DeepLabV3Plus`` (``model`` names the class in the messages).
    """
    if x.ndim != 4:
        raise ValueError(
            f"{model} expects a batch (B, C, H, W), got shape {tuple(x.shape)}: "
            "add the batch axis with x.unsqueeze(0)."
        )
    if x.shape[1] != in_channels:
        hint = (" It looks like NHWC: use x.permute(0, 3, 1, 2)." if x.shape[-1] == in_channels
                else f" Build the model with {model}(in_channels={x.shape[1]}, ...).")
        raise ValueError(
            f"{model}(in_channels={in_channels}) got input of shape {tuple(x.shape)} "
            f"with {x.shape[1]} channels in dim 1.{hint}"
        )
    size = x.shape[-2:]
    label = "DeepLabV3+" if model == "DeepLabV3Plus" else model
    check_input_size(int(size[0]), int(size[1]), output_stride, f"{label} with output_stride={output_stride}")
    return size


class DeepLabV3(nn.Module):
    """DeepLabV3-style network returning logits (B, num_classes, H, W) for input (B, in_channels, H, W).

    Args:
        in_channels: input channels (1 for the membranes, 3 for RGB).
        num_classes: output channels (logits).
        output_stride: 16 or 8: input size / feature size at the ASPP. Atrous
            convolution replaces the pooling of the last 1 (OS 16) or 2 (OS 8) stages.
        base_filters: filters of the stem and stage 1; stage k has ``base_filters * min(2**(k-1), 8)``.
        atrous_rates: dilation rates of ASPP's 3x3 branches (the paper: (6, 12, 18)
            at OS 16 on 513 px crops, doubled at OS 8; use smaller ones for small images).
        aspp_filters: filters of every ASPP branch (default ``4 * base_filters``).
        convs_per_stage: 3x3 conv-BN-ReLU layers per backbone stage.

    H and W must be multiples of ``output_stride``. Same configuration -> same
    parameter count as :func:`course_utils.keras.deeplab.build_deeplab`.
    """

    def __init__(
        self,
        in_channels: int = 3,
        num_classes: int = 2,
        output_stride: int = 16,
        base_filters: int = 32,
        atrous_rates=(6, 12, 18),
        aspp_filters: int | None = None,
        convs_per_stage: int = 2,
    ):
        super().__init__()
        in_channels = _check_int(in_channels, "in_channels")
        num_classes = _check_int(num_classes, "num_classes")
        base_filters = _check_int(base_filters, "base_filters")
        convs_per_stage = _check_int(convs_per_stage, "convs_per_stage")
        aspp_filters = 4 * base_filters if aspp_filters is None else _check_int(aspp_filters, "aspp_filters")
        plan = stage_dilations(output_stride)
        self.in_channels, self.num_classes, self.output_stride = in_channels, num_classes, output_stride
        self.plan = plan

        self.stem = ConvBNReLU(in_channels, base_filters, 3)
        channels = base_filters
        for k, (f, (_, dilation)) in enumerate(zip(stage_filters(base_filters), plan), start=1):
            self.add_module(f"stage{k}", VGGStage(channels, f, convs_per_stage, dilation=dilation))
            channels = f
        self.pool = nn.MaxPool2d(2)
        self.aspp = ASPP(channels, aspp_filters, atrous_rates)
        self.classifier = nn.Conv2d(aspp_filters, num_classes, 1)
        he_init_(self)  # He-uniform weights, zero biases: the same distribution as the Keras twin

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Backbone output (B, C, H/output_stride, W/output_stride)."""
        x = self.stem(x)
        for k, (pool_before, _) in enumerate(self.plan, start=1):
            if pool_before:
                x = self.pool(x)
            x = getattr(self, f"stage{k}")(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = check_deeplab_input(x, self.in_channels, self.output_stride, "DeepLabV3")
        x = self.classifier(self.aspp(self.features(x)))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


# ----------------------------------------------------------------------------- pretrained backbones
class PretrainedDeepLab(nn.Module):
    """Wraps a torchvision segmentation model so that it returns the logits tensor.

    torchvision's models return a dict ``{"out": logits, "aux": ...}``; the
    course's training helpers expect a tensor (B, K, H, W). Grey images
    (``in_channels=1``) are repeated to 3 channels; images in [0, 1] are
    normalised with the ImageNet mean and standard deviation.
    """

    def __init__(self, model: nn.Module, in_channels: int = 3):
        super().__init__()
        self.model = model
        self.in_channels = in_channels
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        x = (x - self.mean) / self.std
        return self.model(x)["out"]


def build_pretrained_deeplab(num_classes: int, in_channels: int = 3, backbone: str = "mobilenet_v3_large",
                             weights="imagenet") -> nn.Module:
    """torchvision's DeepLabV3 with an ImageNet-pretrained backbone and a new head.

    What practitioners do: take a backbone trained on ImageNet and train a
    segmentation head (and fine-tune the backbone) on the own data.

    Args:
        num_classes: output channels (logits).
        in_channels: 1 (grey, repeated to RGB) or 3.
        backbone: "mobilenet_v3_large" or "resnet50".
        weights: "imagenet" downloads the backbone's ImageNet weights on first use
            (needs internet); None builds the same network randomly initialised
            (offline, tests, fast mode).

    Returns:
        :class:`PretrainedDeepLab`: (B, in_channels, H, W) in [0, 1] -> logits (B, num_classes, H, W).

    Raises:
        ImportError: when torchvision is not installed (``pip install torchvision``).
    """
    try:
        from torchvision.models import segmentation
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError(
            "build_pretrained_deeplab needs torchvision, which is not installed: "
            "run `pip install torchvision` (the version matching your torch), or use the course's "
            "DeepLabV3 class, which needs only torch."
        ) from error
    if in_channels not in (1, 3):
        raise ValueError(f"in_channels must be 1 or 3 for an ImageNet backbone, got {in_channels!r}.")
    if weights not in ("imagenet", None):
        raise ValueError(f'weights must be "imagenet" or None, got {weights!r}.')
    if backbone == "mobilenet_v3_large":
        from torchvision.models import MobileNet_V3_Large_Weights as Weights

        builder = segmentation.deeplabv3_mobilenet_v3_large
    elif backbone == "resnet50":
        from torchvision.models import ResNet50_Weights as Weights

        builder = segmentation.deeplabv3_resnet50
    else:
        raise ValueError(f'backbone must be "mobilenet_v3_large" or "resnet50", got {backbone!r}.')
    weights_backbone = Weights.IMAGENET1K_V1 if weights == "imagenet" else None
    model = builder(weights=None, weights_backbone=weights_backbone, num_classes=num_classes, aux_loss=False)
    return PretrainedDeepLab(model, in_channels)
