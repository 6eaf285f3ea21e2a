"""course_utils.tiling: overlap-tile prediction equals whole-image prediction away from borders."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.tiling import predict_tiled, tile_layout


def box3(batch, mode="constant"):
    """A 3x3 mean filter per channel with zero ('same') padding: a purely local 'model'."""
    padded = np.pad(batch, ((0, 0), (1, 1), (1, 1), (0, 0)), mode=mode)
    h, w = batch.shape[1:3]
    out = sum(padded[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)) / 9.0
    return out


def test_layout_covers_the_image():
    layout = tile_layout(100, 70, tile_size=32, overlap=8)
    assert layout.margin == (4, 4) and layout.stride == (24, 24)
    assert len(layout.origins) == 5 * 3  # ceil(100/24) x ceil(70/24)
    assert layout.padded_shape == (5 * 24 + 8, 3 * 24 + 8)


@pytest.mark.parametrize("shape, tile, overlap", [((50, 37, 2), 16, 4), ((64, 64, 1), 32, 6), ((9, 11, 3), 8, 2)])
def test_box_filter_tiled_equals_whole_image(shape, tile, overlap):
    rng = np.random.default_rng(0)
    image = rng.uniform(size=shape).astype(np.float64)
    tiled = predict_tiled(box3, image, tile_size=tile, overlap=overlap, num_classes=shape[-1])
    assert tiled.shape == shape
    whole = box3(image[None])[0]
    # interior: exactly equal (the filter's support of 1 pixel fits in the margin)
    np.testing.assert_allclose(tiled[1:-1, 1:-1], whole[1:-1, 1:-1], rtol=0, atol=1e-12)
    # borders: the tiles saw the mirrored image, the whole-image call saw zeros
    mirrored = box3(image[None], mode="reflect")[0]
    np.testing.assert_allclose(tiled, mirrored, rtol=0, atol=1e-12)


def test_without_margin_tile_edges_are_wrong():
    image = np.random.default_rng(1).uniform(size=(32, 32, 1))
    tiled = predict_tiled(box3, image, tile_size=8, overlap=0, num_classes=1)
    whole = box3(image[None])[0]
    assert not np.allclose(tiled[1:-1, 1:-1], whole[1:-1, 1:-1])  # seams at every tile edge


def test_small_conv_net_agrees_in_the_interior():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding="same"),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 8, 3, padding="same"),
        torch.nn.ReLU(),
        torch.nn.Upsample(scale_factor=2),
        torch.nn.Conv2d(8, 2, 3, padding="same"),
    ).eval()

    def predict_fn(batch):
        with torch.no_grad():
            x = torch.from_numpy(batch).permute(0, 3, 1, 2).float()
            return net(x).permute(0, 2, 3, 1).numpy()

    image = np.random.default_rng(2).uniform(size=(72, 88, 1)).astype(np.float32)
    tiled = predict_tiled(predict_fn, image, tile_size=48, overlap=16, num_classes=2, multiple_of=2)
    whole = predict_fn(image[None])[0]
    b = 8
    np.testing.assert_allclose(tiled[b:-b, b:-b], whole[b:-b, b:-b], atol=1e-5)


def test_errors_name_the_fix():
    image = np.zeros((20, 20, 1))
    with pytest.raises(ValueError, match="too small for overlap"):
        predict_tiled(box3, image, tile_size=8, overlap=8, num_classes=1)
    with pytest.raises(ValueError, match="multiple of 16.*tile_size=48 or 64"):
        predict_tiled(box3, image, tile_size=50, overlap=8, num_classes=1, multiple_of=16)
    with pytest.raises(ValueError, match=r"image\[\.\.\., None\]"):
        predict_tiled(box3, image[..., 0], tile_size=8, overlap=2, num_classes=1)
    with pytest.raises(ValueError, match="same' padding"):
        predict_tiled(lambda x: x[:, 1:-1, 1:-1], image, tile_size=8, overlap=2, num_classes=1)
    with pytest.raises(ValueError, match="channels-last"):
        predict_tiled(box3, image, tile_size=8, overlap=2, num_classes=3)
