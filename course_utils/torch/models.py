"""All PyTorch models of the course in one place: U-Net, FCN and DeepLabV3."""

from .unet import UNet, count_parameters  # noqa: F401
from .fcn import FCN  # noqa: F401
from .deeplab import DeepLabV3  # noqa: F401
