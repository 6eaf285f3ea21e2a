"""course_utils.port: Keras -> PyTorch weight copy, verified on outputs."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from course_utils.keras.unet import build_unet  # noqa: E402
from course_utils.port import keras_to_torch, max_abs_logit_difference  # noqa: E402
from course_utils.torch.unet import UNet  # noqa: E402

RNG = np.random.default_rng(0)


def randomize_batch_norm(model, rng):
    """Give every Keras BatchNormalization non-trivial statistics, so that the copy is really tested."""
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            shape = tuple(layer.moving_mean.shape)
            layer.gamma.assign(rng.normal(1.0, 0.3, shape).astype("float32"))
            layer.beta.assign(rng.normal(0.0, 0.3, shape).astype("float32"))
            layer.moving_mean.assign(rng.normal(0.0, 0.3, shape).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, shape).astype("float32"))


def randomize_biases(model, rng):
    for weight in model.weights:
        if weight.path.endswith("bias"):
            weight.assign(rng.normal(0.0, 0.1, tuple(weight.shape)).astype("float32"))


@pytest.mark.parametrize("depth", [2, 3])
@pytest.mark.parametrize("upsampling", ["transpose", "resize"])
@pytest.mark.parametrize("batch_norm", [True, False])
def test_unet_logits_agree_after_port(depth, upsampling, batch_norm):
    kmodel = build_unet((None, None, 3), num_classes=3, base_filters=4, depth=depth,
                        batch_norm=batch_norm, upsampling=upsampling, dropout=0.3)
    randomize_batch_norm(kmodel, RNG)
    randomize_biases(kmodel, RNG)
    tmodel = UNet(in_channels=3, num_classes=3, base_filters=4, depth=depth,
                  batch_norm=batch_norm, upsampling=upsampling, dropout=0.3)
    images = RNG.random((2, 32, 48, 3), dtype=np.float32)
    assert max_abs_logit_difference(kmodel, tmodel, images) > 1e-3  # different random weights at first
    tmodel.train()
    assert keras_to_torch(kmodel, tmodel) is tmodel
    assert max_abs_logit_difference(kmodel, tmodel, images) < 1e-4
    assert tmodel.training  # mode restored


def test_seed_model_with_sigmoid_ports_after_dropping_activation():
    kmodel = build_unet((32, 32, 3), num_classes=1, base_filters=4, depth=2, batch_norm=False,
                        final_activation="sigmoid")
    tmodel = keras_to_torch(kmodel, UNet(3, 1, 4, 2, batch_norm=False))
    images = RNG.random((1, 32, 32, 3), dtype=np.float32)
    probabilities = keras.ops.convert_to_numpy(kmodel(images))
    with torch.no_grad():
        logits = tmodel.eval()(torch.from_numpy(images.transpose(0, 3, 1, 2).copy()))
    np.testing.assert_allclose(torch.sigmoid(logits).numpy().transpose(0, 2, 3, 1), probabilities, atol=1e-5)


def single_layer_models(keras_layer, torch_layer, channels):
    inputs = keras.Input((None, None, channels))
    kmodel = keras.Model(inputs, keras_layer(inputs))
    tmodel = torch.nn.Sequential()
    tmodel.add_module(keras_layer.name, torch_layer)
    return kmodel, tmodel


@pytest.mark.parametrize(
    "kwargs, torch_kwargs",
    [
        (dict(kernel_size=3, padding="same"), dict(kernel_size=3, padding=1)),
        (dict(kernel_size=3, padding="valid", strides=2), dict(kernel_size=3, stride=2)),
        (dict(kernel_size=(3, 5), padding="same", dilation_rate=2), dict(kernel_size=(3, 5), padding=(2, 4), dilation=2)),
        (dict(kernel_size=1, use_bias=False), dict(kernel_size=1, bias=False)),
    ],
)
def test_single_conv2d(kwargs, torch_kwargs):
    kmodel, tmodel = single_layer_models(keras.layers.Conv2D(5, name="conv", **kwargs),
                                         torch.nn.Conv2d(3, 5, **torch_kwargs), 3)
    randomize_biases(kmodel, RNG)
    keras_to_torch(kmodel, tmodel)
    assert max_abs_logit_difference(kmodel, tmodel, RNG.random((2, 17, 20, 3), dtype=np.float32)) < 1e-5


@pytest.mark.parametrize(
    "kwargs, torch_kwargs",
    [
        (dict(kernel_size=2, strides=2, padding="same"), dict(kernel_size=2, stride=2)),
        (dict(kernel_size=3, strides=2, padding="valid"), dict(kernel_size=3, stride=2)),
        (dict(kernel_size=4, strides=2, padding="same"), dict(kernel_size=4, stride=2, padding=1)),
        (dict(kernel_size=(3, 2), strides=1, padding="valid"), dict(kernel_size=(3, 2))),
    ],
)
def test_single_conv2d_transpose_no_kernel_flip_needed(kwargs, torch_kwargs):
    # asymmetric random kernels: a missing or extra spatial flip would show up here
    kmodel, tmodel = single_layer_models(keras.layers.Conv2DTranspose(4, name="up", **kwargs),
                                         torch.nn.ConvTranspose2d(3, 4, **torch_kwargs), 3)
    randomize_biases(kmodel, RNG)
    keras_to_torch(kmodel, tmodel)
    assert max_abs_logit_difference(kmodel, tmodel, RNG.random((2, 9, 12, 3), dtype=np.float32)) < 1e-5


def test_depthwise_dense_and_batch_norm_1d():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(6, name="fc")(x)
    x = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, name="norm")(x)
    kmodel = keras.Model(inputs, x)
    randomize_batch_norm(kmodel, RNG)
    randomize_biases(kmodel, RNG)

    class Twin(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.dw = torch.nn.Conv2d(4, 8, 3, padding=1, groups=4)
            self.fc = torch.nn.Linear(8, 6)
            self.norm = torch.nn.BatchNorm1d(6)

        def forward(self, x):
            return self.norm(self.fc(self.dw(x).mean(dim=(2, 3))))

    tmodel = keras_to_torch(kmodel, Twin())
    assert max_abs_logit_difference(kmodel, tmodel, RNG.random((3, 8, 8, 4), dtype=np.float32)) < 1e-5


def test_errors_list_unmatched_names_and_shapes_and_copy_nothing():
    kmodel = build_unet((None, None, 1), num_classes=2, base_filters=4, depth=2)
    tmodel = UNet(in_channels=1, num_classes=2, base_filters=8, depth=2)  # wrong width
    before = {k: v.clone() for k, v in tmodel.state_dict().items()}
    with pytest.raises(ValueError, match=r"enc1_conv1: kernel has shape \(4, 1, 3, 3\).*expects \(8, 1, 3, 3\)"):
        keras_to_torch(kmodel, tmodel)
    assert all(torch.equal(before[k], v) for k, v in tmodel.state_dict().items())

    deeper = UNet(in_channels=1, num_classes=2, base_filters=4, depth=3)
    with pytest.raises(ValueError) as info:
        keras_to_torch(kmodel, deeper)
    assert "torch module 'enc3.conv1' (Conv2d) has no Keras layer named 'enc3_conv1'" in str(info.value)

    with pytest.raises(ValueError) as info:
        keras_to_torch(build_unet((None, None, 1), base_filters=4, depth=3), UNet(1, 2, 4, 2))
    assert "Keras layer 'enc3_conv1' (Conv2D) has weights but no torch module" in str(info.value)

    with pytest.raises(ValueError, match="bias in Keras=False but in torch=True"):
        keras_to_torch(kmodel, UNet(1, 2, 4, 2, batch_norm=False))


def test_error_on_batch_norm_epsilon_and_geometry():
    kmodel, tmodel = single_layer_models(keras.layers.BatchNormalization(name="bn"), torch.nn.BatchNorm2d(3), 3)
    with pytest.raises(ValueError, match="epsilon=1e-5"):
        keras_to_torch(kmodel, tmodel)
    kmodel, tmodel = single_layer_models(keras.layers.Conv2D(2, 3, padding="same", name="conv"),
                                         torch.nn.Conv2d(3, 2, 3), 3)
    with pytest.raises(ValueError, match='padding="same" needs torch padding=1'):
        keras_to_torch(kmodel, tmodel)


def test_max_abs_logit_difference_checks_input():
    kmodel = build_unet((None, None, 1), base_filters=2, depth=1)
    with pytest.raises(ValueError, match="batch"):
        max_abs_logit_difference(kmodel, UNet(1, 2, 2, 1), np.zeros((8, 8, 1), "float32"))


def test_exact_float32_switches_tf32_off_in_both_frameworks_and_restores_it():
    """On Ampere GPUs TF32 is on by default; cross-device checks must compare true float32 results."""
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("tensorflow")
    from course_utils.port import exact_float32

    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
              tf.config.experimental.tensor_float_32_execution_enabled())
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    tf.config.experimental.enable_tensor_float_32_execution(True)
    try:
        with exact_float32():
            assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
            assert not tf.config.experimental.tensor_float_32_execution_enabled()
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert tf.config.experimental.tensor_float_32_execution_enabled()
        with pytest.raises(RuntimeError), exact_float32():  # restored also when the check fails
            raise RuntimeError("a failing comparison")
        assert torch.backends.cudnn.allow_tf32 and tf.config.experimental.tensor_float_32_execution_enabled()
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before[:2]
        tf.config.experimental.enable_tensor_float_32_execution(before[2])
