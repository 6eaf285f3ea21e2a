"""tf.data and DataLoader pipelines: same seed + epoch -> the same batches; NHWC vs NCHW; dtypes."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import data as D

tf = pytest.importorskip("tensorflow")
torch = pytest.importorskip("torch")
from course_utils.keras.data import make_dataset  # noqa: E402
from course_utils.torch.data import SegmentationDataset, make_loader  # noqa: E402


@pytest.fixture(scope="module")
def shapes():
    return D.make_shapes(10, size=32, seed=0)


def _keras_batches(dataset):
    return [(x, y) for x, y in dataset.as_numpy_iterator()]


def _torch_batches(loader):
    return [(x.numpy().transpose(0, 2, 3, 1), y.numpy()) for x, y in loader]


def _assert_same(keras_batches, torch_batches):
    assert len(keras_batches) == len(torch_batches)
    for (kx, ky), (tx, ty) in zip(keras_batches, torch_batches):
        assert np.array_equal(kx, tx) and np.array_equal(ky, ty)


def test_keras_batches_are_nhwc_float32_and_int32(shapes):
    images, masks = shapes
    dataset = make_dataset(images, masks, batch_size=4, shuffle=False)
    assert len(dataset) == 3  # known cardinality: Keras knows the steps per epoch
    batches = _keras_batches(dataset)
    assert [len(x) for x, _ in batches] == [4, 4, 2]
    x, y = batches[0]
    assert x.shape == (4, 32, 32, 3) and x.dtype == np.float32
    assert y.shape == (4, 32, 32) and y.dtype == np.int32
    assert np.array_equal(x, images[:4]) and np.array_equal(y, masks[:4])


def test_torch_batches_are_nchw_float32_and_int64(shapes):
    images, masks = shapes
    x, y = next(iter(make_loader(images, masks, batch_size=4, shuffle=False)))
    assert tuple(x.shape) == (4, 3, 32, 32) and x.dtype == torch.float32
    assert tuple(y.shape) == (4, 32, 32) and y.dtype == torch.int64
    assert np.array_equal(x.numpy(), images[:4].transpose(0, 3, 1, 2))
    ds = SegmentationDataset(images, masks)
    assert len(ds) == 10 and tuple(ds[3][0].shape) == (3, 32, 32)


@pytest.mark.parametrize("augment", [True, {"elastic": True, "elastic_alpha": 3.0}])
def test_same_seed_and_epoch_give_identical_batches(shapes, augment):
    images, masks = shapes
    dataset = make_dataset(images, masks, batch_size=4, augment=augment, crop_size=24, seed=5)
    loader = make_loader(images, masks, batch_size=4, augment=augment, crop_size=24, seed=5)
    epoch0_keras, epoch0_torch = _keras_batches(dataset), _torch_batches(loader)
    _assert_same(epoch0_keras, epoch0_torch)
    assert epoch0_keras[0][0].shape == (4, 24, 24, 3)
    # the next pass is the next epoch: different, but again the same in both
    epoch1_keras, epoch1_torch = _keras_batches(dataset), _torch_batches(loader)
    _assert_same(epoch1_keras, epoch1_torch)
    assert not np.array_equal(epoch0_keras[0][0], epoch1_keras[0][0])
    # set_epoch replays an epoch exactly; a fresh dataset with epoch=1 starts there
    loader.set_epoch(1)
    _assert_same(epoch1_keras, _torch_batches(loader))
    _assert_same(epoch1_keras, _keras_batches(make_dataset(images, masks, 4, augment=augment, crop_size=24,
                                                           seed=5, epoch=1)))
    # another seed differs
    other = _keras_batches(make_dataset(images, masks, 4, augment=augment, crop_size=24, seed=6))
    assert not np.array_equal(other[0][0], epoch0_keras[0][0])


def test_augmented_batches_keep_labels_aligned():
    image = np.zeros((4, 16, 16, 1), np.float32)
    mask = np.zeros((4, 16, 16), np.int64)
    mask[:, 2:5, 3:9] = 1
    image[..., 0] = mask
    for x, y in make_dataset(image, mask, batch_size=2, augment=True, seed=1).as_numpy_iterator():
        assert np.array_equal(x[..., 0], y)
    for x, y in make_loader(image, mask, batch_size=2, augment=True, seed=1):
        assert torch.equal(x[:, 0], y.float())


def test_repeat_continues_with_new_epochs(shapes):
    images, masks = shapes
    dataset = make_dataset(images, masks, batch_size=5, augment=True, seed=2, repeat=True)
    loader = make_loader(images, masks, batch_size=5, augment=True, seed=2)
    keras_four = [(x, y) for x, y in dataset.take(4).as_numpy_iterator()]
    torch_four = _torch_batches(loader) + _torch_batches(loader)
    _assert_same(keras_four, torch_four)


def test_bad_inputs_name_the_fix(shapes):
    images, masks = shapes
    with pytest.raises(ValueError, match=r"images\[\.\.\., None\]"):
        make_dataset(images[..., 0], masks)
    with pytest.raises(ValueError, match=r"masks\[\.\.\., 0\]"):
        make_loader(images, masks[..., None])
    with pytest.raises(TypeError, match="astype"):
        make_loader(images, masks.astype(np.float32))


def test_worker_processes_give_the_same_batches():
    images, masks = D.make_shapes(6, size=16, seed=1)
    single = _torch_batches(make_loader(images, masks, batch_size=3, augment=True, seed=4))
    workers = _torch_batches(make_loader(images, masks, batch_size=3, augment=True, seed=4, num_workers=2))
    _assert_same(single, workers)


# ------------------------------------------------------------------ deterministic validation (issue 14)
def _crop_rows(batches, images):
    """The top row of each sample's crop inside its full image (found by matching the pixels)."""
    rows = []
    for x, _ in batches:
        for sample in x:
            for idx, full in enumerate(images):
                hits = [r for r in range(full.shape[0] - sample.shape[0] + 1)
                        for c in range(full.shape[1] - sample.shape[1] + 1)
                        if np.array_equal(full[r:r + sample.shape[0], c:c + sample.shape[1]], sample)]
                if hits:
                    rows.append(hits[0])
                    break
    return rows


@pytest.mark.parametrize("framework", ["keras", "torch"])
def test_validation_crops_are_the_same_centre_crops_on_every_pass(shapes, framework):
    images, masks = shapes
    if framework == "keras":
        make = lambda **kw: _keras_batches(make_dataset(images, masks, batch_size=4, crop_size=24, **kw))  # noqa: E731
        loader = make_dataset(images, masks, batch_size=4, crop_size=24, shuffle=False)
        passes = [_keras_batches(loader) for _ in range(3)]
    else:
        make = lambda **kw: _torch_batches(make_loader(images, masks, batch_size=4, crop_size=24, **kw))  # noqa: E731
        loader = make_loader(images, masks, batch_size=4, crop_size=24, shuffle=False)
        passes = [_torch_batches(loader) for _ in range(3)]
    for other in passes[1:]:
        _assert_same(passes[0], other)  # the same batches every pass (the old code cropped at random)
    x0, y0 = passes[0][0]
    assert np.array_equal(x0[0], images[0, 4:28, 4:28]) and np.array_equal(y0[0], masks[0, 4:28, 4:28])
    # an explicit training=False also with shuffle=True is deterministic; training=True crops at random
    val = make(shuffle=False, training=False)
    _assert_same(passes[0], val)
    rows = _crop_rows(make(shuffle=False, training=True, epoch=1), images[:10])
    assert len(set(rows)) > 1
    with pytest.raises(ValueError, match="augment=False"):
        make(shuffle=False, training=False, augment=True)


def test_info_gives_both_pipelines_the_data_sets_flips():
    from course_utils.datasets import STREET

    images = np.repeat(np.arange(32, dtype=np.float32)[None, :, None, None] / 32, 32, axis=2)
    images = np.repeat(images, 3, axis=-1).repeat(4, axis=0)  # value = row index: up-down flips are visible
    masks = np.repeat(np.arange(32)[None, :, None], 32, axis=2).repeat(4, axis=0)
    for epoch in range(4):
        k = _keras_batches(make_dataset(images, masks, 4, augment=True, info=STREET, epoch=epoch))
        t = _torch_batches(make_loader(images, masks, 4, augment=True, info=STREET, epoch=epoch))
        _assert_same(k, t)
        assert np.all(k[0][1][:, 0] == 0)  # row 0 (sky) stays on top
