"""Pretrained-backbone code paths, exercised without downloading (weights=None)."""

import numpy as np
import pytest


def test_keras_deeplab_on_mobilenet_v2_builds():
    keras = pytest.importorskip("keras")
    from course_utils.keras.deeplab import build_pretrained_deeplab

    model = build_pretrained_deeplab((64, 64, 1), num_classes=3, backbone="mobilenet_v2", weights=None,
                                     atrous_rates=(1, 2, 3), aspp_filters=16)
    assert model.output_shape == (None, 64, 64, 3)
    out = keras.ops.convert_to_numpy(model(np.zeros((2, 64, 64, 1), np.float32)))
    assert out.shape == (2, 64, 64, 3) and np.isfinite(out).all()


def test_keras_mobilenet_v2_at_a_size_without_its_own_weights_does_not_warn(monkeypatch):
    """Lecture 07 asks for ImageNet weights at 64 px; Keras warned that 224-px weights are used, which is fine
    for a backbone (convolutions fit any size) and only confused students. The download is stubbed out."""
    pytest.importorskip("keras")
    import warnings

    from keras.src.applications import mobilenet_v2

    from course_utils.keras.deeplab import build_pretrained_deeplab

    def offline(*args, **kwargs):
        raise OSError("offline in this test")

    monkeypatch.setattr(mobilenet_v2.file_utils, "get_file", offline)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(OSError, match="offline"):  # it got as far as the download
            build_pretrained_deeplab((64, 64, 3), 2, backbone="mobilenet_v2", weights="imagenet")
    assert not [w for w in caught if "input_shape" in str(w.message)]


def test_keras_pretrained_errors():
    pytest.importorskip("keras")
    from course_utils.keras.deeplab import build_pretrained_deeplab

    with pytest.raises(ValueError, match="backbone"):
        build_pretrained_deeplab((64, 64, 3), 2, backbone="vgg99", weights=None)
    with pytest.raises(ValueError, match="divisible by 16"):
        build_pretrained_deeplab((72, 64, 3), 2, weights=None)


def test_keras_resnet50_backbone_is_frozen_when_asked():
    pytest.importorskip("keras")
    from course_utils.keras.deeplab import build_pretrained_deeplab

    model = build_pretrained_deeplab((32, 32, 3), 2, backbone="resnet50", weights=None, aspp_filters=8,
                                     trainable_backbone=False)
    assert model.output_shape == (None, 32, 32, 2)
    assert model.get_layer("resnet50_encoder").trainable is False


def test_torch_pretrained_deeplab_without_torchvision_says_so():
    pytest.importorskip("torch")
    from course_utils.torch.deeplab import build_pretrained_deeplab

    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install torchvision"):
            build_pretrained_deeplab(num_classes=2, weights=None)
    else:
        pytest.skip("torchvision is installed: the next test exercises it")


def test_torch_pretrained_deeplab_with_torchvision():
    torch = pytest.importorskip("torch")
    pytest.importorskip("torchvision", reason="torchvision is not installed: pip install torchvision to run this test")
    from course_utils.torch.deeplab import build_pretrained_deeplab

    model = build_pretrained_deeplab(num_classes=3, in_channels=1, weights=None).eval()
    with torch.no_grad():
        out = model(torch.zeros(2, 1, 64, 64))
    assert tuple(out.shape) == (2, 3, 64, 64)
