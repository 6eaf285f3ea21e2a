"""course_utils.flops: multiply-add counts against the hand formulas and across frameworks."""

import pytest

from course_utils import flops


def test_formulas():
    assert flops.conv2d_macs(32, 32, 3, 16, 3) == 32 * 32 * 16 * 3 * 9
    assert flops.conv2d_macs(8, 8, 4, 4, (1, 3), groups=4) == 8 * 8 * 4 * 1 * 3
    assert flops.conv_transpose2d_macs(4, 4, 2, 2, 8) == 4 * 4 * 2 * 2 * 64
    assert flops.linear_macs(10, 5) == 50
    assert flops.format_count(1234567) == "1.23 M"


def test_torch_counter_single_layers():
    torch = pytest.importorskip("torch")
    from torch import nn

    conv = nn.Conv2d(3, 8, 3, padding=2, dilation=2)
    assert flops.count_macs_torch(conv, (3, 20, 24)) == 20 * 24 * 8 * 3 * 9
    strided = nn.Conv2d(3, 8, 3, stride=2, padding=1)
    assert flops.count_macs_torch(strided, (3, 20, 24)) == 10 * 12 * 8 * 3 * 9
    up = nn.ConvTranspose2d(4, 2, 4, stride=2, padding=1)
    assert flops.count_macs_torch(up, (4, 5, 6)) == 5 * 6 * 4 * 2 * 16
    lin = nn.Sequential(nn.Flatten(), nn.Linear(12, 7))
    assert flops.count_macs_torch(lin, (3, 2, 2)) == 84
    assert torch.is_grad_enabled()


def test_keras_and_torch_counts_agree_on_course_models():
    pytest.importorskip("keras")
    pytest.importorskip("torch")
    from course_utils.keras.deeplab import build_deeplab
    from course_utils.keras.fcn import build_fcn
    from course_utils.keras.unet import build_unet
    from course_utils.torch.deeplab import DeepLabV3
    from course_utils.torch.fcn import FCN
    from course_utils.torch.unet import UNet

    pairs = [
        (build_fcn((64, 64, 3), 3, "8s", base_filters=4), FCN(3, 3, "8s", base_filters=4)),
        (build_fcn((64, 64, 3), 3, "32s", base_filters=4), FCN(3, 3, "32s", base_filters=4)),
        (build_deeplab((64, 64, 1), 2, 8, base_filters=4, atrous_rates=(1, 2)),
         DeepLabV3(1, 2, 8, base_filters=4, atrous_rates=(1, 2))),
        (build_unet((64, 64, 1), 2, base_filters=4, depth=2), UNet(1, 2, base_filters=4, depth=2)),
    ]
    for kmodel, tmodel in pairs:
        shape = kmodel.input_shape[1:]
        k = flops.count_macs_keras(kmodel)
        t = flops.count_macs_torch(tmodel, (shape[2], shape[0], shape[1]))
        assert k == t > 0, kmodel.name


def test_keras_counter_needs_fixed_size():
    pytest.importorskip("keras")
    from course_utils.keras.fcn import build_fcn

    with pytest.raises(ValueError, match="fixed"):
        flops.count_macs_keras(build_fcn((None, None, 3), 2, base_filters=2))
