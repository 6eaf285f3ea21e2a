"""course_utils.torch.train: fit learns, history, checkpoints, early stopping, predict."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from course_utils import env  # noqa: E402
from course_utils.torch import train  # noqa: E402

SIZE = 16


def make_data(n, seed):
    """Bright blobs on noise: foreground (class 1) where the smoothed image is bright."""
    rng = np.random.default_rng(seed)
    images = rng.random((n, 1, SIZE, SIZE)).astype("float32")
    masks = (images[:, 0] > 0.65).astype("int64")
    return images, masks


def make_loader(n=48, seed=0, batch_size=8, shuffle=True):
    images, masks = make_data(n, seed)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(images), torch.from_numpy(masks))
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(seed)
    )


def tiny_model(num_classes=2, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, num_classes, 1))


def run_fit(model=None, epochs=4, lr=0.02, **kwargs):
    env.seed_everything(0)
    model = model if model is not None else tiny_model()
    optimizer = kwargs.pop("optimizer", None) or torch.optim.Adam(model.parameters(), lr=lr)
    kwargs.setdefault("progress", False)
    history = train.fit(
        model, make_loader(), make_loader(32, seed=1, shuffle=False), nn.CrossEntropyLoss(), optimizer,
        epochs=epochs, num_classes=2, device="cpu", **kwargs,
    )
    return model, history


def test_fit_lowers_the_loss_and_beats_the_trivial_baselines():
    model, history = run_fit(epochs=6)
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    _, val_masks = make_data(32, seed=1)
    p = val_masks.mean()
    constant_loss = -(p * np.log(p) + (1 - p) * np.log(1 - p))  # best loss of a constant prediction
    all_foreground_dice = 2 * p / (1 + p)  # Dice of "everything is class 1"
    assert history["val_loss"][-1] < 0.8 * constant_loss
    assert history["val_dice"][-1] > all_foreground_dice + 0.2
    assert 0 < history["val_iou"][-1] < history["val_dice"][-1] <= 1  # IoU <= Dice always


def test_history_has_keras_keys_one_value_per_epoch():
    _, history = run_fit(epochs=3)
    assert set(history) == {"loss", "val_loss", "val_dice", "val_iou"}
    assert all(len(values) == 3 for values in history.values())
    assert all(isinstance(v, float) for values in history.values() for v in values)


def test_fit_is_deterministic_on_the_cpu():
    _, first = run_fit(epochs=2)
    _, second = run_fit(epochs=2)
    assert first == second


def test_best_checkpoint_is_saved_and_reloaded(tmp_path):
    path = tmp_path / "ck" / "model.pt"
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    # A learning rate 10,000x larger in the last epoch wrecks the model: the best epoch is an earlier one.
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0 if epoch < 3 else 1e4)
    model, history = run_fit(model, epochs=4, optimizer=optimizer, scheduler=scheduler, checkpoint_path=path)
    dice = history["val_dice"]
    assert path.exists()
    best_epoch = int(np.nanargmax(dice))
    assert best_epoch < 3, f"the test needs a worse last epoch: {dice}"
    # fit() left the best weights in the model ...
    scores = train.evaluate(model, make_loader(32, seed=1, shuffle=False), nn.CrossEntropyLoss(), 2)
    assert scores["dice"] == pytest.approx(dice[best_epoch], abs=1e-9)
    # ... and a fresh model loaded from the file predicts exactly the same.
    fresh = train.load_checkpoint(tiny_model(seed=1), path)
    images = make_data(4, seed=2)[0].transpose(0, 2, 3, 1)
    np.testing.assert_array_equal(train.predict(model, images), train.predict(fresh, images))


def test_load_checkpoint_of_a_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint_path"):
        train.load_checkpoint(tiny_model(), tmp_path / "none.pt")


def test_early_stopping_stops_after_patience_epochs_without_improvement():
    model = tiny_model()
    frozen = torch.optim.SGD(model.parameters(), lr=0.0)  # nothing improves after epoch 1
    _, history = run_fit(model, epochs=10, optimizer=frozen, early_stopping_patience=2)
    assert len(history["loss"]) == 3


def test_scheduler_is_stepped_once_per_epoch():
    model = tiny_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    run_fit(model, epochs=3, optimizer=optimizer, scheduler=scheduler)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5**3)


def test_monitor_val_loss_and_bad_monitor():
    _, history = run_fit(epochs=2, monitor="val_loss", early_stopping_patience=1)
    assert len(history["loss"]) >= 1
    with pytest.raises(ValueError, match="val_dice"):
        run_fit(epochs=1, monitor="dice")


def test_amp_true_on_the_cpu_is_refused_with_the_fix():
    with pytest.raises(ValueError, match='amp="auto"'):
        run_fit(epochs=1, amp=True)


def test_progress_bar_shows_the_loss(capsys):
    run_fit(epochs=1, progress=True)
    captured = capsys.readouterr()
    assert "loss=" in captured.err and "Epoch 1/1" in captured.out


def test_nhwc_batches_are_refused_with_the_fix():
    images, masks = make_data(8, 0)
    nhwc = [(torch.from_numpy(images.transpose(0, 2, 3, 1)), torch.from_numpy(masks))]
    model = tiny_model()
    with pytest.raises(ValueError, match="permute"):
        train.train_one_epoch(model, nhwc, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1))


def test_train_one_epoch_returns_mean_loss_and_leaves_train_mode():
    model = tiny_model().eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    images, masks = make_data(8, 0)
    batch = (torch.from_numpy(images), torch.from_numpy(masks))
    with torch.no_grad():
        expected = nn.CrossEntropyLoss()(model(batch[0]), batch[1]).item()
    loss = train.train_one_epoch(model, [batch, batch], nn.CrossEntropyLoss(), optimizer)
    assert isinstance(loss, float) and loss == pytest.approx(expected, rel=1e-6)
    assert model.training


def test_evaluate_leaves_ignored_pixels_out():
    model = tiny_model()
    images, masks = make_data(8, 0)
    ignored = masks.copy()
    ignored[:, :4] = 255
    loss_fn = nn.CrossEntropyLoss(ignore_index=255)
    loader = [(torch.from_numpy(images), torch.from_numpy(ignored))]
    scores = train.evaluate(model, loader, loss_fn, 2)
    assert np.isfinite(scores["loss"]) and 0 <= scores["dice"] <= 1


def test_predict_is_nhwc_numpy_and_restores_the_mode():
    model = tiny_model(num_classes=3).train()
    images = np.random.default_rng(0).random((5, SIZE, SIZE, 1)).astype("float32")
    logits = train.predict(model, images, batch_size=2)
    assert isinstance(logits, np.ndarray) and logits.shape == (5, SIZE, SIZE, 3) and logits.dtype == np.float32
    masks = train.predict_masks(model, images)
    assert masks.shape == (5, SIZE, SIZE) and masks.dtype == np.int64
    np.testing.assert_array_equal(masks, logits.argmax(-1))
    assert model.training
    single = train.predict_masks(tiny_model(num_classes=1), images)
    assert single.shape == (5, SIZE, SIZE) and set(np.unique(single)) <= {0, 1}


def test_predict_refuses_bad_input_with_the_fix():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"images\[None\]"):
        train.predict(model, np.zeros((SIZE, SIZE, 1), "float32"))
    with pytest.raises(TypeError, match="255"):
        train.predict(model, np.zeros((1, SIZE, SIZE, 1), "uint8"))


def test_fit_takes_steps_per_epoch_like_keras():
    """A fixed budget of steps: 5 steps per epoch over a loader of 6 batches wraps into its next pass."""
    seen = []

    def counting_loss(logits, masks):
        seen.append(len(masks))
        return nn.functional.cross_entropy(logits, masks)

    env.seed_everything(0)
    model = tiny_model()
    history = train.fit(model, make_loader(), None, counting_loss, torch.optim.SGD(model.parameters(), lr=0.01),
                        epochs=3, num_classes=2, device="cpu", monitor="loss", progress=False, steps_per_epoch=5)
    assert len(history["loss"]) == 3 and len(seen) == 15  # 3 x 5 steps, although one pass holds 6 batches
    with pytest.raises(ValueError, match="steps_per_epoch"):
        train.fit(model, make_loader(), None, counting_loss, torch.optim.SGD(model.parameters(), lr=0.01),
                  epochs=1, num_classes=2, device="cpu", monitor="loss", progress=False, steps_per_epoch=0)
