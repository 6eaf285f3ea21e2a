"""course_utils.keras.dynamics and the U-Net's norm option (Keras side, compared with PyTorch)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from course_utils import data, dynamics as dyn  # noqa: E402
from course_utils.keras import dynamics as kdyn  # noqa: E402
from course_utils.keras.unet import build_unet, count_parameters  # noqa: E402


def test_step_schedule_callback_follows_the_schedule():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(123.0), loss="mse")
    x, y = np.ones((12, 3), "float32"), np.zeros((12, 1), "float32")
    schedule = dyn.one_cycle_schedule(0.1, 6)
    callback = kdyn.StepSchedule(schedule)
    model.fit(x, y, batch_size=4, epochs=2, callbacks=[callback], verbose=0)
    np.testing.assert_allclose(callback.rates, dyn.schedule_rates(schedule, 6))
    assert float(model.optimizer.learning_rate) == pytest.approx(schedule(5), rel=1e-6)
    with pytest.raises(TypeError, match="function of the step"):
        kdyn.StepSchedule(0.1)


def test_lr_range_test_on_linear_regression_suggests_a_stable_rate():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(256, 4)) * [3.0, 1.0, 1.0, 0.5]).astype("float32")
    y = (x @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.01 * rng.normal(size=256)).astype("float32")[:, None]
    batches = [(x[i : i + 64], y[i : i + 64]) for i in range(0, 256, 64)]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1, use_bias=False)])
    before = [w.copy() for w in model.get_weights()]
    result = kdyn.lr_range_test(model, batches, keras.losses.MeanSquaredError(), min_lr=1e-5, max_lr=10.0,
                                num_steps=100, optimizer_fn=lambda lr: keras.optimizers.SGD(lr))
    np.testing.assert_array_equal(model.get_weights()[0], before[0])
    assert len(result["rates"]) < 100
    lam_max = float(np.linalg.eigvalsh(2 * x.T @ x / len(x)).max())
    lr = dyn.suggest_learning_rate(result["rates"], result["losses"])
    assert 1e-3 / lam_max < lr < 2.0 / lam_max


def test_train_and_score_learns_and_reports():
    x, y = data.make_shapes(24, size=32, num_classes=2, seed=0)
    result = kdyn.train_and_score(x[:16], y[:16], x[16:], y[16:], num_classes=2, lr=1e-2, batch_size=4,
                                  epochs=3, schedule="cosine", base_filters=4, depth=2, seed=0, rare_class=1)
    losses = result["history"]["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert 0.0 < result["dice"] <= 1.0
    assert result["rare_dice"] == result["per_class_dice"][1]


def test_make_loss_names():
    from course_utils.keras.losses import CEDiceLoss, CrossEntropyLoss

    assert isinstance(kdyn.make_loss("ce"), CrossEntropyLoss)
    loss = kdyn.make_loss("ce+dice", ce_weight=0.25, dice_weight=0.75)
    assert isinstance(loss, CEDiceLoss) and (loss.ce_weight, loss.dice_weight) == (0.25, 0.75)
    with pytest.raises(ValueError, match='"ce", "dice" or "ce\\+dice"'):
        kdyn.make_loss("focal")


@pytest.mark.parametrize("norm", ["batch", "group", None])
def test_unet_norm_parameter_counts_match_pytorch(norm):
    torch_unet = pytest.importorskip("course_utils.torch.unet")
    model = build_unet((32, 32, 3), num_classes=2, base_filters=8, depth=2, norm=norm)
    ours = count_parameters(model)
    assert ours == torch_unet.count_parameters(torch_unet.UNet(3, 2, base_filters=8, depth=2, norm=norm))
    kinds = {type(layer).__name__ for layer in model.layers}
    expected = {"batch": "BatchNormalization", "group": "GroupNormalization"}.get(norm)
    assert (expected in kinds) if expected else not ({"BatchNormalization", "GroupNormalization"} & kinds)
    with pytest.raises(ValueError, match='norm must be "batch", "group", None or "auto"'):
        build_unet((32, 32, 3), norm="layer")


def test_group_norm_is_independent_of_the_batch():
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    for norm, independent in (("group", True), ("batch", False)):
        model = build_unet((16, 16, 3), num_classes=2, base_filters=8, depth=2, norm=norm)
        alone = np.asarray(model(x[:1], training=True))
        together = np.asarray(model(x, training=True))[:1]
        assert np.allclose(alone, together, atol=1e-4) == independent, norm
