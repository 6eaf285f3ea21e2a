"""All Keras models of the course in one place: U-Net, FCN and DeepLabV3."""

from .unet import build_unet, count_parameters  # noqa: F401
from .fcn import build_fcn  # noqa: F401
from .deeplab import build_deeplab  # noqa: F401
