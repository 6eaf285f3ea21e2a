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
