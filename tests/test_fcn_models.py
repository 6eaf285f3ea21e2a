"""FCN and DeepLabV3 in Keras and PyTorch: shapes, parameter counts, sizes, port, bilinear pieces."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from course_utils.keras import deeplab as kdl  # noqa: E402
from course_utils.keras import fcn as kfcn  # noqa: E402
from course_utils.port import keras_to_torch, max_abs_logit_difference  # noqa: E402
from course_utils.torch import deeplab as tdl  # noqa: E402
from course_utils.torch import fcn as tfcn  # noqa: E402

RNG = np.random.default_rng(0)


def randomize_batch_norm(model, rng=RNG):
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = tuple(layer.moving_mean.shape)
            layer.gamma.assign(rng.normal(1.0, 0.3, shape).astype("float32"))
            layer.beta.assign(rng.normal(0.0, 0.3, shape).astype("float32"))
            layer.moving_mean.assign(rng.normal(0.0, 0.3, shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, shape).astype("float32"))


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_fcn_port_gives_same_logits(variant):
    kmodel = kfcn.build_fcn((64, 64, 3), num_classes=3, variant=variant, base_filters=4)
    randomize_batch_norm(kmodel)
    tmodel = tfcn.FCN(3, 3, variant=variant, base_filters=4)
    assert kfcn.count_parameters(kmodel) == tfcn.count_parameters(tmodel)
    images = RNG.random((2, 64, 64, 3), dtype=np.float32)
    assert max_abs_logit_difference(kmodel, tmodel, images) > 1e-3
    keras_to_torch(kmodel, tmodel)
    assert max_abs_logit_difference(kmodel, tmodel, images) < 1e-4
    assert kmodel.output_shape == (None, 64, 64, 3)


@pytest.mark.parametrize("output_stride", [16, 8])
def test_deeplab_port_gives_same_logits(output_stride):
    kmodel = kdl.build_deeplab((64, 32, 1), num_classes=2, output_stride=output_stride, base_filters=4,
                               atrous_rates=(1, 2, 3))
    randomize_batch_norm(kmodel)
    tmodel = tdl.DeepLabV3(1, 2, output_stride=output_stride, base_filters=4, atrous_rates=(1, 2, 3))
    assert kdl.count_parameters(kmodel) == tdl.count_parameters(tmodel)
    images = RNG.random((2, 64, 32, 1), dtype=np.float32)
    keras_to_torch(kmodel, tmodel)
    assert max_abs_logit_difference(kmodel, tmodel, images) < 1e-4
    assert kmodel.output_shape == (None, 64, 32, 2)


@pytest.mark.parametrize("config", [
    dict(variant="8s", base_filters=8, convs_per_stage=1, in_channels=1, num_classes=2),
    dict(variant="16s", base_filters=6, convs_per_stage=2, in_channels=3, num_classes=4),
    dict(variant="32s", base_filters=5, convs_per_stage=3, in_channels=3, num_classes=5),
])
def test_fcn_parameter_counts_agree(config):
    c = dict(config)
    kmodel = kfcn.build_fcn((32, 32, c.pop("in_channels")), **c)
    tmodel = tfcn.FCN(config["in_channels"], **c)
    assert kfcn.count_parameters(kmodel) == tfcn.count_parameters(tmodel)


@pytest.mark.parametrize("config", [
    dict(output_stride=16, base_filters=8, atrous_rates=(6, 12, 18), aspp_filters=None, convs_per_stage=1),
    dict(output_stride=8, base_filters=4, atrous_rates=(2, 4), aspp_filters=10, convs_per_stage=2),
    dict(output_stride=16, base_filters=4, atrous_rates=(1, 2, 3, 4), aspp_filters=7, convs_per_stage=3),
])
def test_deeplab_parameter_counts_agree(config):
    kmodel = kdl.build_deeplab((32, 32, 3), num_classes=3, **config)
    tmodel = tdl.DeepLabV3(3, 3, **config)
    assert kdl.count_parameters(kmodel) == tdl.count_parameters(tmodel)


def test_deeplab_with_unknown_size_and_torch_on_other_size():
    kmodel = kdl.build_deeplab((None, None, 3), 2, 16, base_filters=4, atrous_rates=(1, 2))
    tmodel = tdl.DeepLabV3(3, 2, 16, base_filters=4, atrous_rates=(1, 2))
    keras_to_torch(kmodel, tmodel)
    images = RNG.random((1, 48, 80, 3), dtype=np.float32)
    assert max_abs_logit_difference(kmodel, tmodel, images) < 1e-4


def test_stage_dilations():
    assert tdl.stage_dilations(16) == kdl.stage_dilations(16) == [(True, 1)] * 4 + [(False, 2)]
    assert tdl.stage_dilations(8) == [(True, 1)] * 3 + [(False, 2), (False, 4)]
    with pytest.raises(ValueError, match="16 or 8"):
        tdl.DeepLabV3(output_stride=32)
    with pytest.raises(ValueError, match="16 or 8"):
        kdl.build_deeplab((64, 64, 3), output_stride=4)
    model = tdl.DeepLabV3(3, 2, 8, base_filters=4)
    assert tuple(model.features(torch.zeros(1, 3, 64, 64)).shape[-2:]) == (8, 8)


def test_input_size_errors_name_the_fix():
    with pytest.raises(ValueError, match=r"divisible by 32.*Nearest valid sizes: 96, 128"):
        kfcn.build_fcn((100, 64, 3), 2)
    with pytest.raises(ValueError, match=r"divisible by 32.*96, 128"):
        tfcn.FCN(3, 2)(torch.zeros(1, 3, 100, 64))
    with pytest.raises(ValueError, match=r"output_stride=8.*divisible by 8.*Nearest valid sizes: 64, 72"):
        kdl.build_deeplab((68, 64, 3), 2, output_stride=8)
    with pytest.raises(ValueError, match=r"divisible by 16"):
        tdl.DeepLabV3(3, 2, 16)(torch.zeros(1, 3, 40, 64))
    with pytest.raises(ValueError, match="NHWC"):
        tfcn.FCN(3, 2)(torch.zeros(1, 32, 32, 3))
    with pytest.raises(ValueError, match="variant"):
        kfcn.build_fcn((64, 64, 3), 2, variant="4s")
    with pytest.raises(ValueError, match="variant"):
        tfcn.FCN(3, 2, variant="4s")


def test_bilinear_initialisation_is_identical_and_interpolates():
    np.testing.assert_array_equal(kfcn.bilinear_kernel(8), tfcn.bilinear_kernel(8))
    np.testing.assert_allclose(kfcn.bilinear_kernel(4)[0], [0.0625, 0.1875, 0.1875, 0.0625])
    up = tfcn.bilinear_upsampling(2, 4)
    kernel = kfcn.BilinearInitializer()((8, 8, 2, 2))
    np.testing.assert_array_equal(np.asarray(kernel).transpose(3, 2, 0, 1), up.weight.detach().numpy())
    # inside the image, the transposed convolution equals bilinear interpolation (half-pixel centres)
    x = torch.rand(1, 2, 6, 6)
    with torch.no_grad():
        y = up(x)
        ref = torch.nn.functional.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    np.testing.assert_allclose(y[..., 4:-4, 4:-4].numpy(), ref[..., 4:-4, 4:-4].numpy(), atol=1e-6)


def test_keras_and_torch_bilinear_upsampling_agree():
    x = RNG.random((1, 5, 7, 3), dtype=np.float32)
    k = keras.layers.UpSampling2D(size=8, interpolation="bilinear")(x)
    t = torch.nn.functional.interpolate(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), scale_factor=8,
                                        mode="bilinear", align_corners=False)
    np.testing.assert_allclose(np.asarray(k), t.numpy().transpose(0, 2, 3, 1), atol=1e-5)


def test_fcn_score_maps_get_finer():
    model = tfcn.FCN(3, 2, "8s", base_filters=4)
    maps = model.score_maps(torch.zeros(1, 3, 64, 64))
    assert maps["score32"].shape[-1] == 2 and maps["fused16"].shape[-1] == 4 and maps["fused8"].shape[-1] == 8
    kmaps = kfcn.score_map_model(kfcn.build_fcn((64, 64, 3), 2, "16s", base_filters=4))
    out = kmaps({"image": np.zeros((1, 64, 64, 3), np.float32)})
    assert out["fused16"].shape == (1, 4, 4, 2) and "fused8" not in out


def test_models_module_reexports():
    from course_utils.keras import models as km
    from course_utils.torch import models as tm

    assert km.build_fcn is kfcn.build_fcn and km.build_deeplab is kdl.build_deeplab
    assert tm.FCN is tfcn.FCN and tm.DeepLabV3 is tdl.DeepLabV3


# ----------------------------------------------------------------------------- one initialisation in both frameworks
def _assert_same_initial_stds(kmodel, tmodel, skip=(), tolerance=0.15):
    from course_utils.keras.init import weight_stds as keras_stds
    from course_utils.torch.init import weight_stds as torch_stds

    kstd, tstd = keras_stds(kmodel), torch_stds(tmodel)
    assert set(kstd) == set(tstd) and len(kstd) > 10
    for name, (k, k_he) in kstd.items():
        t, t_he = tstd[name]
        assert k_he == pytest.approx(t_he, rel=1e-9), f"{name}: fan_in differs"
        assert abs(k / t - 1) < tolerance, f"{name}: Keras std {k:.4g} vs torch std {t:.4g}"
        if name not in skip:
            assert abs(k / k_he - 1) < tolerance and abs(t / t_he - 1) < tolerance, (name, k, t, k_he)


@pytest.mark.parametrize("variant", ["32s", "8s"])
def test_fcn_initial_weights_are_he_in_both_frameworks_and_upsampling_stays_bilinear(variant):
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    kmodel = kfcn.build_fcn((None, None, 3), num_classes=3, variant=variant, base_filters=32)
    tmodel = tfcn.FCN(3, 3, variant=variant, base_filters=32)
    upsampling = {"up32", "up2_32", "up16", "up2_16", "up8"}
    _assert_same_initial_stds(kmodel, tmodel, skip=upsampling)
    for name in upsampling & {layer.name for layer in kmodel.layers}:
        kernel = kmodel.get_layer(name).kernel.numpy()
        k = kernel.shape[0]
        np.testing.assert_allclose(kernel[:, :, 1, 1], kfcn.bilinear_kernel(k))
        np.testing.assert_allclose(getattr(tmodel, name).weight.detach().numpy()[1, 1], kfcn.bilinear_kernel(k))
    assert not tmodel.score32.bias.detach().any()


def test_deeplab_initial_weights_are_he_in_both_frameworks():
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    kmodel = kdl.build_deeplab((None, None, 3), num_classes=3, output_stride=16, base_filters=32)
    tmodel = tdl.DeepLabV3(3, 3, output_stride=16, base_filters=32)
    _assert_same_initial_stds(kmodel, tmodel)
    assert not tmodel.classifier.bias.detach().any()


def test_deeplab_and_deeplab_plus_refuse_bad_batches_with_the_same_messages():
    torch = pytest.importorskip("torch")
    from course_utils.torch.deeplab import DeepLabV3
    from course_utils.torch.deeplab_plus import DeepLabV3Plus

    for model, name in ((DeepLabV3(3, 2, output_stride=8, base_filters=4), "DeepLabV3"),
                        (DeepLabV3Plus(3, 2, output_stride=8, base_filters=4), "DeepLabV3Plus")):
        with pytest.raises(ValueError, match=rf"{name} expects a batch \(B, C, H, W\).*unsqueeze"):
            model(torch.zeros(3, 32, 32))
        with pytest.raises(ValueError, match="It looks like NHWC: use x.permute"):
            model(torch.zeros(1, 32, 32, 3))
        with pytest.raises(ValueError, match=rf"Build the model with {name}\(in_channels=1"):
            model(torch.zeros(1, 1, 32, 32))
