"""course_utils.sizes: hand-computed values and agreement with real framework layers."""

import subprocess
import sys

import numpy as np
import pytest

from course_utils.sizes import (
    check_input_size,
    nearest_valid_sizes,
    output_size,
    receptive_field,
    receptive_field_table,
    transposed_output_size,
)


def test_nearest_valid_sizes():
    assert nearest_valid_sizes(100, 16) == (96, 112)
    assert nearest_valid_sizes(128, 16) == (128,)
    assert nearest_valid_sizes(10, 16) == (16,)
    assert nearest_valid_sizes(17, 4) == (16, 20)


def test_check_input_size_message_names_nearest_sizes():
    check_input_size(128, 96, 4)
    check_input_size(7, 9, 0)
    with pytest.raises(ValueError) as info:
        check_input_size(100, 100, 4)
    assert str(info.value) == (
        "U-Net of depth 4 needs height and width divisible by 16; 100x100 is not. "
        "Nearest valid sizes: 96 or 112 (crop or pad the image)."
    )
    with pytest.raises(ValueError, match=r"divisible by 4; 128x30 is not. Nearest valid sizes: 28 or 32"):
        check_input_size(128, 30, 2)
    with pytest.raises(ValueError, match=r"Nearest valid sizes: 96, 112, 64 or 80"):
        check_input_size(100, 70, 4)
    with pytest.raises(TypeError, match="integer"):
        check_input_size(128.0, 128, 4)


@pytest.mark.parametrize(
    "args, expected",
    [
        ((64, 3), 62), ((64, 3, 1, 1), 64), ((64, 2, 2), 32), ((65, 2, 2), 32), ((64, 3, 2, 1), 32),
        ((572, 3), 570), ((64, 3, 1, 2, 2), 64), ((64, 3, 1, 0, 2), 60), ((7, 7, 1), 1), ((224, 7, 2, 3), 112),
    ],
)
def test_output_size_hand_computed(args, expected):
    assert output_size(*args) == expected


def test_output_size_rejects_too_small_input():
    with pytest.raises(ValueError, match="smaller than the kernel"):
        output_size(2, 5)


@pytest.mark.parametrize(
    "args, expected",
    [((32, 2, 2), 64), ((32, 3, 2, 1, 1, 1), 64), ((32, 3, 2), 65), ((32, 4, 2, 1), 64), ((5, 3), 7), ((5, 3, 1, 0, 2), 9)],
)
def test_transposed_output_size_hand_computed(args, expected):
    assert transposed_output_size(*args) == expected


def test_transposed_output_size_rejects_bad_output_padding():
    with pytest.raises(ValueError, match="output_padding"):
        transposed_output_size(8, 3, 2, 1, 1, 2)


GRID = [(n, k, s, p, d) for n in (15, 16, 33) for k in (1, 2, 3, 5) for s in (1, 2, 3) for p in (0, 1, 2)
        for d in (1, 2) if p <= k // 2 and d * (k - 1) + 1 <= n + 2 * p]


def test_output_size_matches_torch_layers():
    torch = pytest.importorskip("torch")

    for n, k, s, p, d in GRID:
        x = torch.zeros(1, 1, n, n + 1)
        conv = torch.nn.Conv2d(1, 1, k, stride=s, padding=p, dilation=d)
        assert tuple(conv(x).shape[2:]) == (output_size(n, k, s, p, d), output_size(n + 1, k, s, p, d))
        if d == 1 and p <= k // 2:
            pool = torch.nn.MaxPool2d(k, stride=s, padding=p)
            assert pool(x).shape[2] == output_size(n, k, s, p)


def test_transposed_output_size_matches_torch_layers():
    torch = pytest.importorskip("torch")

    for n, k, s, p, d in GRID:
        for op in range(max(s, d)):
            if (n - 1) * s - 2 * p + d * (k - 1) + op + 1 < 1:
                continue
            layer = torch.nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, dilation=d, output_padding=op)
            assert layer(torch.zeros(1, 1, n, n)).shape[2] == transposed_output_size(n, k, s, p, d, op)


def test_sizes_match_keras_layers():
    keras = pytest.importorskip("keras")

    for n, k, s in [(16, 3, 1), (16, 3, 2), (15, 2, 2), (33, 5, 3), (16, 1, 1)]:
        x = np.zeros((1, n, n, 1), "float32")
        valid = keras.layers.Conv2D(1, k, strides=s, padding="valid")(x)
        assert valid.shape[1] == output_size(n, k, s)
        same = keras.layers.Conv2D(1, k, padding="same")(x)
        assert same.shape[1] == output_size(n, k, 1, (k - 1) // 2) or k % 2 == 0
        transposed = keras.layers.Conv2DTranspose(1, k, strides=s, padding="valid")(x)
        if k >= s:
            assert transposed.shape[1] == transposed_output_size(n, k, s)
    dilated = keras.layers.Conv2D(1, 3, dilation_rate=2)(np.zeros((1, 16, 16, 1), "float32"))
    assert dilated.shape[1] == output_size(16, 3, dilation=2)


def test_receptive_field_hand_computed():
    assert receptive_field([]) == 1
    assert receptive_field([(3, 1, 1)]) == 3
    assert receptive_field([(3, 1, 1), (3, 1, 1)]) == 5
    assert receptive_field([(3, 1), (3, 1), (2, 2), (3, 1), (3, 1)]) == 14
    assert receptive_field([(3, 1, 1), (3, 1, 2), (3, 1, 4)]) == 15  # dilated stack: 1 + 2 + 4 + 8
    # original U-Net encoder (valid 3x3 convs, 2x2 pooling), down to the bottleneck: 140
    unet = []
    for _ in range(4):
        unet += [(3, 1), (3, 1), (2, 2)]
    unet += [(3, 1), (3, 1)]
    assert receptive_field(unet) == 140
    table = receptive_field_table([(3, 1), (2, 2), (3, 1)])
    assert [row["rf"] for row in table] == [3, 4, 8]
    assert [row["jump"] for row in table] == [1, 2, 2]


def test_receptive_field_matches_gradient_of_one_output_pixel():
    torch = pytest.importorskip("torch")

    layers_spec = [(3, 1, 1), (3, 1, 1), (2, 2, 1), (3, 1, 2), (3, 2, 1), (5, 1, 1)]
    modules = []
    for k, s, d in layers_spec:
        if k == 2 and s == 2:
            modules.append(torch.nn.AvgPool2d(2))  # average pooling: every input in the window counts
        else:
            conv = torch.nn.Conv2d(1, 1, k, stride=s, dilation=d, bias=False)
            torch.nn.init.constant_(conv.weight, 1.0)
            modules.append(conv)
    net = torch.nn.Sequential(*modules)
    x = torch.zeros(1, 1, 96, 96, requires_grad=True)
    y = net(x)
    centre = y.shape[2] // 2
    y[0, 0, centre, centre].backward()
    rows = torch.nonzero(x.grad[0, 0].abs().sum(dim=1)).flatten()
    assert int(rows.max() - rows.min() + 1) == receptive_field(layers_spec)


def test_input_validation_of_layers():
    with pytest.raises(TypeError, match="tuple"):
        receptive_field([3, 3])
    with pytest.raises(ValueError, match="tuple"):
        receptive_field([(3, 1, 1, 1)])


def test_sizes_imports_no_framework():
    code = "import sys, course_utils.sizes; assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fcn_and_deeplab_helpers_are_one_framework_free_function_each():
    from course_utils import sizes

    assert sizes.stage_filters(8) == [8, 16, 32, 64, 64]  # VGG: doubles up to 8x base, then stays
    assert sizes.stage_filters(4, num_stages=3) == [4, 8, 16]
    sizes.check_divisible(64, None, 32)  # None: a dynamic size, checked when the data arrives
    with pytest.raises(ValueError, match=r"DeepLab needs height and width divisible by 16; 64x40 is not\. "
                                         r"Nearest valid sizes: 32, 48"):
        sizes.check_divisible(64, 40, 16, model="DeepLab")
    for framework in ("keras", "torch"):
        fcn = pytest.importorskip(f"course_utils.{framework}.fcn")
        assert fcn.stage_filters is sizes.stage_filters and fcn.check_input_size is sizes.check_divisible
