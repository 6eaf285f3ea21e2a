"""U-Net in Keras and PyTorch: shapes, names, input-size checks, parameter counts, the seed model."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from course_utils.keras.unet import build_unet, count_parameters as keras_count  # noqa: E402
from course_utils.torch.unet import UNet, count_parameters as torch_count  # noqa: E402


def seed_unet_model(input_size=(128, 128, 3)):
    """The seed lecture's model, verbatim apart from Keras 3 imports."""
    from keras.layers import Conv2D, Conv2DTranspose, Input, MaxPooling2D, concatenate
    from keras.models import Model

    inputs = Input(input_size)
    conv1 = Conv2D(64, 3, activation="relu", padding="same")(inputs)
    conv1 = Conv2D(64, 3, activation="relu", padding="same")(conv1)
    pool1 = MaxPooling2D(pool_size=(2, 2))(conv1)
    conv2 = Conv2D(128, 3, activation="relu", padding="same")(pool1)
    conv2 = Conv2D(128, 3, activation="relu", padding="same")(conv2)
    pool2 = MaxPooling2D(pool_size=(2, 2))(conv2)
    conv3 = Conv2D(256, 3, activation="relu", padding="same")(pool2)
    conv3 = Conv2D(256, 3, activation="relu", padding="same")(conv3)
    up4 = Conv2DTranspose(128, (2, 2), strides=(2, 2), padding="same")(conv3)
    merge4 = concatenate([up4, conv2], axis=3)
    conv4 = Conv2D(128, 3, activation="relu", padding="same")(merge4)
    conv4 = Conv2D(128, 3, activation="relu", padding="same")(conv4)
    up5 = Conv2DTranspose(64, (2, 2), strides=(2, 2), padding="same")(conv4)
    merge5 = concatenate([up5, conv1], axis=3)
    conv5 = Conv2D(64, 3, activation="relu", padding="same")(merge5)
    conv5 = Conv2D(64, 3, activation="relu", padding="same")(conv5)
    outputs = Conv2D(1, 1, activation="sigmoid")(conv5)
    return Model(inputs=[inputs], outputs=[outputs])


def test_seed_model_is_reproduced():
    seed = seed_unet_model()
    ours = build_unet((128, 128, 3), num_classes=1, base_filters=64, depth=2, batch_norm=False,
                      final_activation="sigmoid")
    assert keras_count(ours) == seed.count_params() == keras_count(seed)
    assert ours.output_shape == seed.output_shape == (None, 128, 128, 1)
    # same layer types in the same order (ours adds named ReLU layers and the size check)
    kinds = lambda m: [type(l).__name__ for l in m.layers if type(l).__name__ in  # noqa: E731
                       ("Conv2D", "Conv2DTranspose", "MaxPooling2D", "Concatenate")]
    assert kinds(ours) == kinds(seed)
    assert ours.layers[-1].get_config()["activation"] == "sigmoid"
    torch_seed = UNet(in_channels=3, num_classes=1, base_filters=64, depth=2, batch_norm=False)
    assert torch_count(torch_seed) == seed.count_params()


CONFIGS = [
    dict(depth=1, base_filters=4, batch_norm=True, upsampling="transpose", num_classes=2, in_channels=1),
    dict(depth=2, base_filters=8, batch_norm=False, upsampling="resize", num_classes=1, in_channels=3),
    dict(depth=3, base_filters=4, batch_norm=True, upsampling="resize", num_classes=4, in_channels=1),
    dict(depth=3, base_filters=6, batch_norm=False, upsampling="transpose", num_classes=2, in_channels=3),
    dict(depth=4, base_filters=2, batch_norm=True, upsampling="transpose", num_classes=4, in_channels=1),
    dict(depth=4, base_filters=4, batch_norm=False, upsampling="resize", num_classes=1, in_channels=1),
    dict(depth=2, base_filters=16, batch_norm=True, upsampling="transpose", num_classes=2, in_channels=1),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(f"{v}" for v in c.values()))
def test_parameter_counts_equal_and_output_shapes(config):
    config = dict(config)
    in_channels = config.pop("in_channels")
    kmodel = build_unet((None, None, in_channels), dropout=0.1, **config)
    tmodel = UNet(in_channels=in_channels, dropout=0.1, **config)
    assert keras_count(kmodel) == torch_count(tmodel)
    size = 2 ** config["depth"] * 2
    x = np.random.default_rng(0).random((2, size, size + 2 ** config["depth"], in_channels), dtype=np.float32)
    assert kmodel(x).shape == (2, x.shape[1], x.shape[2], config["num_classes"])
    with torch.no_grad():
        out = tmodel(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    assert tuple(out.shape) == (2, config["num_classes"], x.shape[1], x.shape[2])


def test_paper_sized_unet_parameter_count():
    # 4 levels, 64..1024 filters, BN, 2 classes: the standard ~31M-parameter U-Net
    kmodel = build_unet((None, None, 1), num_classes=2, base_filters=64, depth=4)
    tmodel = UNet(in_channels=1, num_classes=2, base_filters=64, depth=4)
    def block(cin, cout):  # two bias-free 3x3 convs, each followed by BN (gamma, beta)
        return 9 * cin * cout + 2 * cout + 9 * cout * cout + 2 * cout

    f = [64, 128, 256, 512, 1024]
    expected = block(1, 64) + sum(block(f[i], f[i + 1]) for i in range(4))  # encoder + bottleneck
    expected += sum(4 * f[i + 1] * f[i] + f[i] + block(2 * f[i], f[i]) for i in range(4))  # up + dec
    expected += 64 * 2 + 2  # 1x1 head
    assert keras_count(kmodel) == torch_count(tmodel) == expected == 31_036_546


def test_keras_returns_logits_and_names_follow_port_rule():
    model = build_unet((None, None, 1), base_filters=4, depth=2, dropout=0.2)
    names = {layer.name for layer in model.layers}
    assert {"enc1_conv1", "enc1_bn1", "enc2_conv2", "bottleneck_conv1", "up2", "up1", "dec1_conv2",
            "head", "dropout"} <= names
    assert model.layers[-1].name == "head"
    assert model.layers[-1].get_config()["activation"] == "linear"
    resize = build_unet((None, None, 1), base_filters=4, depth=2, upsampling="resize", batch_norm=False)
    names = {layer.name for layer in resize.layers}
    assert {"up1_resize", "up1_conv", "dec1_conv1"} <= names and "enc1_bn1" not in names
    tnames = {name for name, _ in UNet(1, 2, 4, 2, upsampling="resize").named_modules()}
    assert {"enc1.conv1", "enc1.bn1", "up1.conv", "dec1.conv2", "head"} <= tnames


def test_keras_build_time_size_check():
    with pytest.raises(ValueError, match=r"divisible by 16; 100x100 is not. Nearest valid sizes: 96 or 112"):
        build_unet((100, 100, 1), depth=4, base_filters=2)
    build_unet((96, 112, 1), depth=4, base_filters=2)


def test_keras_runtime_size_check_eager_and_graph():
    import tensorflow as tf

    model = build_unet((None, None, 1), depth=3, base_filters=2)
    with pytest.raises(ValueError, match=r"divisible by 8; 30x32 is not. Nearest valid sizes: 24 or 32"):
        model(np.zeros((1, 30, 32, 1), "float32"))
    with pytest.raises(ValueError, match="divisible"):
        model.predict(np.zeros((1, 32, 36, 1), "float32"), verbose=0)
    graph = tf.function(lambda x: model(x, training=False),
                        input_signature=[tf.TensorSpec((None, None, None, 1), tf.float32)])
    assert graph(tf.zeros((1, 16, 24, 1))).shape == (1, 16, 24, 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="divisible by 8"):
        graph(tf.zeros((1, 20, 24, 1)))


def test_keras_argument_errors():
    with pytest.raises(ValueError, match="upsampling"):
        build_unet(upsampling="nearest")
    with pytest.raises(ValueError, match="channels"):
        build_unet((None, None, None))
    with pytest.raises(ValueError, match="batch axis"):
        build_unet((8, 64, 64, 1))


def test_keras_save_and_load_roundtrip(tmp_path):
    model = build_unet((None, None, 1), base_filters=2, depth=2)
    x = np.random.default_rng(1).random((1, 16, 16, 1), dtype=np.float32)
    path = tmp_path / "unet.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)


def test_torch_size_and_layout_checks():
    model = UNet(in_channels=1, num_classes=2, base_filters=2, depth=4)
    with pytest.raises(ValueError) as info:
        model(torch.zeros(1, 1, 100, 100))
    assert str(info.value) == (
        "U-Net of depth 4 needs height and width divisible by 16; 100x100 is not. "
        "Nearest valid sizes: 96 or 112 (crop or pad the image)."
    )
    with pytest.raises(ValueError, match="NHWC"):
        model(torch.zeros(1, 32, 32, 1))
    with pytest.raises(ValueError, match="batch"):
        model(torch.zeros(1, 32, 32))
    with pytest.raises(ValueError, match="upsampling"):
        UNet(upsampling="bilinear")


def test_torch_backward_and_dropout_in_train_mode():
    model = UNet(in_channels=1, num_classes=2, base_filters=2, depth=2, dropout=0.5)
    x = torch.rand(2, 1, 16, 16)
    model.train()
    loss = model(x).square().mean()
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


# ----------------------------------------------------------------------------- one initialisation in both frameworks
def _compare_initial_stds(kmodel, tmodel, tolerance=0.15, expected_layers=None):
    """Per layer: Keras and torch weight std within ``tolerance`` of each other and of He's sqrt(2/fan_in)."""
    from course_utils.keras.init import weight_stds as keras_stds
    from course_utils.torch.init import weight_stds as torch_stds

    kstd, tstd = keras_stds(kmodel), torch_stds(tmodel)
    assert set(kstd) == set(tstd)
    if expected_layers is not None:
        assert len(kstd) == expected_layers
    for name, (k, k_he) in kstd.items():
        t, t_he = tstd[name]
        assert k_he == pytest.approx(t_he, rel=1e-9), f"{name}: fan_in differs between the frameworks"
        assert abs(k / t - 1) < tolerance, f"{name}: Keras std {k:.4g} vs torch std {t:.4g}"
        assert abs(k / k_he - 1) < tolerance, f"{name}: Keras std {k:.4g}, He std {k_he:.4g}"
        assert abs(t / t_he - 1) < tolerance, f"{name}: torch std {t:.4g}, He std {t_he:.4g}"
    return kstd, tstd


@pytest.mark.parametrize("batch_norm", [True, False])
@pytest.mark.parametrize("upsampling", ["transpose", "resize"])
def test_initial_weights_have_the_same_he_distribution_in_both_frameworks(batch_norm, upsampling):
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    kmodel = build_unet((None, None, 3), num_classes=3, base_filters=32, depth=4, batch_norm=batch_norm,
                        upsampling=upsampling)
    tmodel = UNet(3, 3, base_filters=32, depth=4, batch_norm=batch_norm, upsampling=upsampling)
    kstd, _ = _compare_initial_stds(kmodel, tmodel, expected_layers=2 * 9 + 4 + 1)
    # biases start at zero in both
    for weight in kmodel.weights:
        if weight.path.endswith("bias"):
            assert not np.any(weight.numpy())
    for name, parameter in tmodel.named_parameters():
        if name.endswith("bias") and "bn" not in name:
            assert not parameter.detach().any(), name


def test_frameworks_default_initialisations_differ_which_is_why_the_course_sets_he():
    """Left at the defaults (glorot_uniform vs kaiming_uniform(a=sqrt(5))) the stds differ by far more than 15 %."""
    from torch import nn

    layer = nn.Conv2d(64, 64, 3)
    torch_default = float(layer.weight.detach().std())
    keras_default = float(np.std(keras.initializers.GlorotUniform(seed=0)((3, 3, 64, 64))))
    assert keras_default / torch_default > 1.15
    assert torch_default == pytest.approx(np.sqrt(1 / (3 * 64 * 9)), rel=0.05)


def test_transposed_conv_fan_in_is_the_same_in_both_frameworks():
    """Keras kernel (kh, kw, out, in) and torch weight (in, out, kh, kw) both take fan_in = kh * kw * out."""
    from torch import nn

    from course_utils.keras.init import HE_INIT
    from course_utils.torch.init import he_init_

    torch.manual_seed(0)
    tlayer = he_init_(nn.ConvTranspose2d(128, 32, 2, stride=2))
    klayer = keras.layers.Conv2DTranspose(32, 2, strides=2, kernel_initializer=HE_INIT)
    klayer.build((None, 8, 8, 128))
    bound = np.sqrt(6 / (2 * 2 * 32))
    for weights in (tlayer.weight.detach().numpy(), klayer.kernel.numpy()):
        assert np.abs(weights).max() <= bound
        assert np.abs(weights).max() > 0.99 * bound
        assert weights.std() == pytest.approx(bound / np.sqrt(3), rel=0.03)
    assert not tlayer.bias.detach().any()


def test_he_init_helpers_reinitialise_hand_written_twins():
    from torch import nn

    from course_utils.keras.init import he_init
    from course_utils.torch.init import he_init_

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 64, 3), nn.ReLU(), nn.Conv2d(64, 64, 3), nn.Linear(64, 10))
    assert he_init_(net) is net
    for layer in (net[0], net[2], net[3]):
        fan_in = layer.weight[0].numel()
        assert float(layer.weight.detach().std()) == pytest.approx(np.sqrt(2 / fan_in), rel=0.1)
        assert not layer.bias.detach().any()
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(64, 3, bias_initializer="ones")(inputs)
    kmodel = keras.Model(inputs, keras.layers.Conv2D(64, 3)(x))
    assert he_init(kmodel, seed=0) is kmodel
    first = kmodel.layers[1].kernel.numpy()
    assert first.std() == pytest.approx(np.sqrt(2 / 27), rel=0.1)
    assert not np.any(kmodel.layers[1].bias.numpy())
    with pytest.raises(TypeError, match="torch.nn.Module"):
        he_init_("not a model")
