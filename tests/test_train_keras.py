"""course_utils.keras.train: compile, callbacks (checkpoint, early stopping), predict."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from course_utils import env  # noqa: E402
from course_utils.keras import train  # noqa: E402

SIZE = 16


def make_data(n, seed):
    """Foreground (class 1) where the noise image is bright: a per-pixel problem a 3x3 conv can learn."""
    rng = np.random.default_rng(seed)
    images = rng.random((n, SIZE, SIZE, 1)).astype("float32")
    masks = (images[..., 0] > 0.65).astype("int32")
    return images, masks


def tiny_model(num_classes=2):
    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 1)),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
            keras.layers.Conv2D(num_classes, 1),
        ]
    )


def ce_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def run_fit(epochs=4, learning_rate=0.02, callbacks=(), model=None):
    env.seed_everything(0)
    model = model or tiny_model()
    train.compile_model(model, num_classes=2, loss=ce_loss(), learning_rate=learning_rate)
    x, y = make_data(48, 0)
    history = model.fit(
        x, y, batch_size=8, epochs=epochs, validation_data=make_data(32, 1), callbacks=list(callbacks),
        verbose=0, shuffle=True,
    )
    return model, history.history


def test_compile_model_uses_course_loss_and_dice_iou_metrics():
    pytest.importorskip("course_utils.keras.losses", reason="course_utils.keras.losses is not written yet")
    from course_utils.keras.losses import CrossEntropyLoss

    model = train.compile_model(tiny_model(), num_classes=2)
    assert isinstance(model.loss, CrossEntropyLoss)
    x, y = make_data(8, 0)
    logs = model.evaluate(x, y, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "dice", "iou"}
    assert all(np.isfinite(v) for v in logs.values())


def test_fit_lowers_the_loss_and_beats_the_trivial_baselines():
    _, history = run_fit(epochs=6)
    assert {"loss", "dice", "iou", "val_loss", "val_dice", "val_iou"} <= set(history)
    assert all(len(v) == 6 for v in history.values())
    p = make_data(32, 1)[1].mean()
    constant_loss = -(p * np.log(p) + (1 - p) * np.log(1 - p))
    assert history["loss"][-1] < 0.8 * history["loss"][0]
    assert history["val_loss"][-1] < 0.8 * constant_loss
    assert history["val_dice"][-1] > 2 * p / (1 + p) + 0.2  # Dice of predicting "all class 1"
    assert 0 < history["val_iou"][-1] < history["val_dice"][-1] <= 1


def test_binary_metrics_score_the_foreground_class():
    model = train.compile_model(tiny_model(), num_classes=2, loss=ce_loss())
    x, y = make_data(4, 0)
    logits = train.predict(model, x)
    from course_utils import metrics

    expected = metrics.dice_per_class(y, logits.argmax(-1), 2)[1]
    logs = model.evaluate(x, y, verbose=0, return_dict=True, batch_size=4)
    assert logs["dice"] == pytest.approx(expected, abs=1e-5)


def test_num_classes_must_match_the_model():
    with pytest.raises(ValueError, match="num_classes=2"):
        train.compile_model(tiny_model(num_classes=2), num_classes=3, loss=ce_loss())


def test_checkpoint_keeps_and_restores_the_best_epoch(tmp_path):
    path = tmp_path / "ck" / "model.keras"
    # A huge learning rate in the last epoch wrecks the model: the best epoch is an earlier one.
    wreck = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.02 if epoch < 3 else 50.0)
    model, history = run_fit(epochs=4, callbacks=[wreck, *train.training_callbacks(checkpoint_path=path)])
    assert path.exists()
    dice = np.nan_to_num(history["val_dice"], nan=-1.0)
    best = int(np.argmax(dice))
    assert best < 3, f"the test needs a worse last epoch: {history['val_dice']}"
    x_val, y_val = make_data(32, 1)
    logs = model.evaluate(x_val, y_val, verbose=0, return_dict=True)
    assert logs["dice"] == pytest.approx(history["val_dice"][best], abs=1e-4)
    fresh = train.load_checkpoint(tiny_model(), path)
    x = make_data(4, 2)[0]
    np.testing.assert_allclose(train.predict(fresh, x), train.predict(model, x), rtol=0, atol=0)


def test_checkpoint_suffix_is_checked_and_missing_file_explained(tmp_path):
    with pytest.raises(ValueError, match=r"\.keras"):
        train.training_callbacks(checkpoint_path=tmp_path / "model.h5")
    with pytest.raises(FileNotFoundError, match="training_callbacks"):
        train.load_checkpoint(tiny_model(), tmp_path / "none.keras")


def test_callbacks_monitor_modes():
    callbacks = train.training_callbacks(checkpoint_path="/tmp/x/unused.weights.h5", patience=3)
    checkpoint, _, stopping, nonfinite = callbacks
    assert checkpoint.save_best_only and checkpoint.save_weights_only
    assert stopping.patience == 3 and stopping.restore_best_weights
    assert stopping.monitor == "val_dice" and stopping.mode == "max"
    assert isinstance(nonfinite, train.StopOnNonFiniteLoss)
    (loss_stopping,) = train.training_callbacks(patience=2, monitor="val_loss", stop_on_nonfinite=False)
    assert loss_stopping.mode == "min"
    assert train.training_callbacks(stop_on_nonfinite=False) == []


def test_early_stopping_stops():
    _, history = run_fit(epochs=10, learning_rate=0.0, callbacks=train.training_callbacks(patience=2))
    assert len(history["loss"]) == 3


def test_predict_is_nhwc_numpy():
    model = tiny_model(num_classes=3)
    x = make_data(5, 0)[0]
    logits = train.predict(model, x, batch_size=2)
    assert isinstance(logits, np.ndarray) and logits.shape == (5, SIZE, SIZE, 3) and logits.dtype == np.float32
    masks = train.predict_masks(model, x)
    assert masks.shape == (5, SIZE, SIZE) and masks.dtype == np.int64
    np.testing.assert_array_equal(masks, logits.argmax(-1))
    sigmoid = keras.Sequential([keras.Input((SIZE, SIZE, 1)), keras.layers.Conv2D(1, 1, activation="sigmoid")])
    probabilities = train.predict(sigmoid, x)
    np.testing.assert_array_equal(train.predict_masks(sigmoid, x), (probabilities[..., 0] > 0.5).astype(np.int64))


def test_predict_refuses_bad_input_with_the_fix():
    model = tiny_model()
    with pytest.raises(ValueError, match=r"images\[None\]"):
        train.predict(model, np.zeros((SIZE, SIZE, 1), "float32"))
    with pytest.raises(TypeError, match="255"):
        train.predict(model, np.zeros((1, SIZE, SIZE, 1), "uint8"))


def test_sigmoid_output_is_scored_at_probability_one_half():
    """The seed's sigmoid model outputs probabilities: foreground above 0.5, not above 0."""
    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 1, activation="sigmoid", name="head")(inputs))
    model.get_layer("head").set_weights([np.full((1, 1, 1, 1), 10.0, "float32"), np.full(1, -5.0, "float32")])
    train.compile_model(model, num_classes=1, loss="binary_crossentropy")
    # sigmoid(10 x - 5) > 0.5 exactly where x > 0.5 (images stay in [0, 1], as predict requires);
    # every output is a probability > 0, so a threshold at 0 would call every pixel foreground.
    images = np.array([[0.1, 0.6, 0.3, 0.9]] * 4, "float32").reshape(1, 4, 4, 1)
    masks = (images[..., 0] > 0.5).astype("int32")
    assert np.array_equal(train.predict_masks(model, images), masks)
    scores = model.evaluate(images, masks, verbose=0, return_dict=True)
    assert scores["dice"] == pytest.approx(1.0)



def test_fit_over_the_course_dataset_does_not_warn_about_shuffle():
    """make_dataset shuffles itself, so Keras' "shuffle=True ... ignored" warning is silenced (and only that)."""
    import warnings

    from course_utils.keras.data import make_dataset

    model = train.compile_model(tiny_model(), num_classes=2, loss=ce_loss())
    x, y = make_data(8, 0)

    def shuffle_warnings(reset_filters):
        with warnings.catch_warnings(record=True) as caught:
            dataset = make_dataset(x, y, batch_size=4, shuffle=True, seed=0)
            if reset_filters:
                warnings.resetwarnings()
                warnings.simplefilter("always")
            model.fit(dataset, epochs=1, verbose=0)
        return [w for w in caught if "shuffle" in str(w.message)]

    assert shuffle_warnings(reset_filters=True), "Keras no longer warns: the filter in keras/data.py can go"
    assert not shuffle_warnings(reset_filters=False)


def test_epoch_log_prints_one_short_fixed_point_line_per_epoch():
    lines = []
    _, history = run_fit(epochs=3, callbacks=[train.EpochLog(print_fn=lines.append)])
    assert len(lines) == 3
    for epoch, line in enumerate(lines):
        assert line.startswith(f"epoch {epoch + 1}/3  loss ")
        assert len(line) < 100 and "e+" not in line and "e-" not in line
        train_part, val_part, seconds = line.split(" | ")
        assert seconds.endswith(" s")
        shown = dict(zip(train_part.split()[2::2], train_part.split()[3::2]))
        shown_val = dict(zip(val_part.split()[1::2], val_part.split()[2::2]))
        for name in ("loss", "dice", "iou"):
            assert shown[name] == f"{history[name][epoch]:.3f}"
            assert shown_val[name] == f"{history['val_' + name][epoch]:.3f}"


def test_epoch_log_writes_zero_as_0_000_and_loss_first():
    lines = []
    log = train.EpochLog(print_fn=lines.append)
    log.set_params({"epochs": 12})
    log.on_epoch_begin(0)
    log.on_epoch_end(0, {"dice": 0.0, "loss": 1e-7, "val_dice": 0.0, "val_loss": 0.5})
    assert lines[0].startswith("epoch  1/12  loss 0.000  dice 0.000 | val loss 0.500  dice 0.000 | ")
