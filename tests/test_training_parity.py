"""Keras and PyTorch train the same network the same way.

From ported weights (:func:`course_utils.port.keras_to_torch`) and identical batches, 30 Adam steps
of the course's own training set-up in each framework - Keras ``compile_model`` + ``train_on_batch``,
PyTorch ``train_one_epoch`` with the course's Adam (``course_utils.torch.optim.make_adam``) - end
with losses within 2 % and predictions (eval mode, argmax) that agree on at least 97 % of pixels.

What still differs by design and is inside these tolerances (see lecture 04's table): Adam's epsilon
enters after the bias correction in Keras ("epsilon hat"), before it in torch; BatchNorm's running
variance is updated with the biased (Keras) or unbiased (torch, n/(n-1)) batch variance.
"""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from course_utils.data import make_shapes  # noqa: E402
from course_utils.keras import losses as klosses  # noqa: E402
from course_utils.keras.deeplab import build_deeplab  # noqa: E402
from course_utils.keras.fcn import build_fcn  # noqa: E402
from course_utils.keras.train import compile_model  # noqa: E402
from course_utils.keras.unet import build_unet  # noqa: E402
from course_utils.port import keras_to_torch  # noqa: E402
from course_utils.torch import losses as tlosses  # noqa: E402
from course_utils.torch.deeplab import DeepLabV3  # noqa: E402
from course_utils.torch.fcn import FCN  # noqa: E402
from course_utils.torch.optim import make_adam  # noqa: E402
from course_utils.torch.train import train_one_epoch  # noqa: E402
from course_utils.torch.unet import UNet  # noqa: E402

STEPS, BATCH, SIZE, CLASSES, LR = 30, 4, 32, 3, 1e-3

MODELS = {
    "unet_bn": (lambda: build_unet((SIZE, SIZE, 3), CLASSES, base_filters=8, depth=2, batch_norm=True),
                lambda: UNet(3, CLASSES, base_filters=8, depth=2, batch_norm=True)),
    "unet_plain": (lambda: build_unet((SIZE, SIZE, 3), CLASSES, base_filters=8, depth=2, batch_norm=False),
                   lambda: UNet(3, CLASSES, base_filters=8, depth=2, batch_norm=False)),
    # FCN at 64 px: at 32 px its fc layer's batch norm would normalise only batch x 1 x 1 = 4 values per channel
    "fcn_8s": (lambda: build_fcn((2 * SIZE, 2 * SIZE, 3), CLASSES, variant="8s", base_filters=8, convs_per_stage=1),
               lambda: FCN(3, CLASSES, variant="8s", base_filters=8, convs_per_stage=1)),
    "deeplab": (lambda: build_deeplab((SIZE, SIZE, 3), CLASSES, output_stride=8, base_filters=8,
                                      atrous_rates=(1, 2)),
                lambda: DeepLabV3(3, CLASSES, output_stride=8, base_filters=8, atrous_rates=(1, 2))),
}


def _batches(ignore_index=None, size=SIZE):
    images, masks = make_shapes(STEPS * BATCH, size=size, num_classes=CLASSES, seed=21)
    if ignore_index is not None:  # a void border, as in real annotations
        masks[:, :4, :] = ignore_index
        masks[:, :, -4:] = ignore_index
    return [(images[i:i + BATCH], masks[i:i + BATCH]) for i in range(0, len(images), BATCH)]


def _train_both(name, keras_loss=None, torch_loss=None, ignore_index=None):
    """Train the ported twins on the same 30 batches; return (keras model, torch model, batches, step losses)."""
    build_keras, build_torch = MODELS[name]
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    kmodel = build_keras()
    tmodel = keras_to_torch(kmodel, build_torch())
    batches = _batches(ignore_index, size=kmodel.input_shape[1])

    compile_model(kmodel, CLASSES, loss=keras_loss, learning_rate=LR, jit_compile=False)
    keras_losses = [float(kmodel.train_on_batch(x, y, return_dict=True)["loss"]) for x, y in batches]

    loader = [(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y)) for x, y in batches]
    torch_losses = []
    loss_fn = torch_loss or tlosses.CrossEntropyLoss()
    optimizer = make_adam(tmodel.parameters(), lr=LR)
    for batch in loader:  # one step per call, to record each step's loss like train_on_batch does
        torch_losses.append(train_one_epoch(tmodel, [batch], loss_fn, optimizer, device="cpu"))
    return kmodel, tmodel, batches, np.array(keras_losses), np.array(torch_losses)


def _eval_logits(kmodel, tmodel, images):
    k = keras.ops.convert_to_numpy(kmodel(images, training=False))
    tmodel.eval()
    with torch.no_grad():
        t = tmodel(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy().transpose(0, 2, 3, 1)
    return k, t


@pytest.mark.parametrize("name", list(MODELS))
def test_thirty_adam_steps_give_the_same_losses_and_predictions(name):
    kmodel, tmodel, batches, keras_losses, torch_losses = _train_both(name)
    # the first step starts from identical weights: the same loss to float precision
    assert keras_losses[0] == pytest.approx(torch_losses[0], rel=1e-4)
    # training really moved the weights (a test on a model that did not learn could not fail)
    assert keras_losses[-5:].mean() < 0.9 * keras_losses[0]
    # Step by step the two runs drift apart by a few per cent at most (float rounding, amplified by batch
    # norm over few values); where they end is the same.
    k_end, t_end = keras_losses[-5:].mean(), torch_losses[-5:].mean()
    assert abs(k_end / t_end - 1) < 0.02, (k_end, t_end)

    images = np.concatenate([x for x, _ in batches[-4:]])
    k_logits, t_logits = _eval_logits(kmodel, tmodel, images)
    agreement = float(np.mean(k_logits.argmax(-1) == t_logits.argmax(-1)))
    assert agreement >= 0.97, f"{name}: predictions agree on {agreement:.1%} of pixels"
    # (eval-mode losses can differ by more: the batch norms' running variances differ by n / (n - 1), see below)


def test_training_parity_holds_with_class_weights_and_an_ignore_label():
    weights, ignore = [0.5, 2.0, 1.5], 255
    kmodel, tmodel, batches, keras_losses, torch_losses = _train_both(
        "unet_bn",
        keras_loss=klosses.CrossEntropyLoss(class_weights=weights, ignore_index=ignore),
        torch_loss=tlosses.CrossEntropyLoss(class_weights=weights, ignore_index=ignore),
        ignore_index=ignore,
    )
    assert keras_losses[0] == pytest.approx(torch_losses[0], rel=1e-4)
    assert abs(keras_losses[-5:].mean() / torch_losses[-5:].mean() - 1) < 0.02


def test_batch_norm_running_variance_is_biased_in_keras_and_unbiased_in_torch():
    """The one batch-norm difference by design: after one training step on n values per channel, the running
    variance is 0.9 * 1 + 0.1 * var in both, with var biased in Keras and unbiased (x n / (n - 1)) in torch."""
    from torch import nn

    x = np.random.default_rng(0).normal(1.0, 2.0, (4, 1, 1, 3)).astype("float32")  # n = 4 values per channel
    klayer = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9)
    klayer(x, training=True)
    tlayer = nn.BatchNorm2d(3)  # eps 1e-5, momentum 0.1: the same rule
    tlayer.train()(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    biased = x.reshape(-1, 3).var(axis=0)
    n = 4
    np.testing.assert_allclose(klayer.moving_variance.numpy(), 0.9 + 0.1 * biased, rtol=1e-5)
    np.testing.assert_allclose(tlayer.running_var.numpy(), 0.9 + 0.1 * biased * n / (n - 1), rtol=1e-5)
    np.testing.assert_allclose(klayer.moving_mean.numpy(), tlayer.running_mean.numpy(), rtol=1e-5, atol=1e-6)
