"""Losses: NumPy reference vs Keras vs PyTorch (values and gradients) and their defining properties."""

from __future__ import annotations

import numpy as np
import pytest

from course_utils import losses as ref

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from course_utils.keras import losses as klosses  # noqa: E402
from course_utils.torch import losses as tlosses  # noqa: E402

IGNORE = 255
SEEDS = (0, 1, 2)


def make_case(seed, num_classes, ignore=True, size=(2, 6, 7), scale=2.0):
    rng = np.random.default_rng(seed)
    logits = (scale * rng.normal(size=size + (num_classes,))).astype(np.float32)
    target = rng.integers(0, max(num_classes, 2), size=size).astype(np.int64)
    if ignore:
        target[rng.random(size) < 0.15] = IGNORE
    return logits, target


def torch_value(name, kwargs, logits, target, grad=False):
    x = torch.tensor(logits).permute(0, 3, 1, 2).contiguous().requires_grad_(grad)
    value = getattr(tlosses, name)(**kwargs)(x, torch.tensor(target))
    if not grad:
        return float(value)
    value.backward()
    return float(value.detach()), x.grad.permute(0, 2, 3, 1).numpy()


def keras_value(name, kwargs, logits, target, grad=False):
    loss = getattr(klosses, name)(**kwargs)
    if not grad:
        return float(loss(target, logits))
    x = tf.Variable(logits)
    with tf.GradientTape() as tape:
        value = loss(tf.constant(target, dtype=tf.int32), x)
    return float(value), tape.gradient(value, x).numpy()


WEIGHTS = {2: [0.3, 1.7], 4: [0.5, 1.0, 2.0, 4.0]}


def cases(num_classes):
    """(class name, kwargs, NumPy reference) for every multi-class loss."""
    w = WEIGHTS[num_classes]
    return [
        ("CrossEntropyLoss", dict(ignore_index=IGNORE), ref.cross_entropy),
        ("CrossEntropyLoss", dict(class_weights=w, ignore_index=IGNORE), ref.cross_entropy),
        ("DiceLoss", dict(ignore_index=IGNORE), ref.dice_loss),
        ("DiceLoss", dict(smooth=0.5, include_background=False, ignore_index=IGNORE), ref.dice_loss),
        ("CEDiceLoss", dict(ce_weight=0.7, dice_weight=1.3, class_weights=w, ignore_index=IGNORE), ref.ce_dice_loss),
        ("FocalLoss", dict(gamma=2.0, ignore_index=IGNORE), ref.focal_loss),
        ("FocalLoss", dict(gamma=1.5, class_weights=w, ignore_index=IGNORE), ref.focal_loss),
        ("TverskyLoss", dict(alpha=0.3, beta=0.7, ignore_index=IGNORE), ref.tversky_loss),
    ]


PARAMS = [(c, s, i) for c in (2, 4) for s in SEEDS for i in range(len(cases(c)))]


@pytest.mark.parametrize("num_classes,seed,index", PARAMS)
def test_keras_torch_numpy_values_agree(num_classes, seed, index):
    name, kwargs, reference = cases(num_classes)[index]
    logits, target = make_case(seed, num_classes)
    expected = reference(logits, target, **kwargs)
    tv = torch_value(name, kwargs, logits, target)
    kv = keras_value(name, kwargs, logits, target)
    assert tv == pytest.approx(expected, abs=1e-5), (name, kwargs)
    assert kv == pytest.approx(expected, abs=1e-5), (name, kwargs)
    assert kv == pytest.approx(tv, abs=1e-5)


@pytest.mark.parametrize("num_classes", [2, 4])
@pytest.mark.parametrize("index", range(len(cases(2))))
def test_gradients_agree_between_keras_and_torch(num_classes, index):
    name, kwargs, _ = cases(num_classes)[index]
    logits, target = make_case(7, num_classes)
    tv, tg = torch_value(name, kwargs, logits, target, grad=True)
    kv, kg = keras_value(name, kwargs, logits, target, grad=True)
    assert kv == pytest.approx(tv, abs=1e-5)
    assert np.isfinite(tg).all() and np.abs(tg).max() > 0
    np.testing.assert_allclose(kg, tg, atol=1e-4)
    # ignored pixels receive no gradient from any loss
    assert np.abs(tg[target == IGNORE]).max() == 0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("num_classes", [2, 4])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_equals_torch_functional(seed, num_classes, weighted):
    logits, target = make_case(seed, num_classes)
    x, t = torch.tensor(logits).permute(0, 3, 1, 2), torch.tensor(target)
    w = torch.tensor(WEIGHTS[num_classes]) if weighted else None
    expected = torch.nn.functional.cross_entropy(x, t, weight=w, ignore_index=IGNORE).item()
    kwargs = dict(class_weights=WEIGHTS[num_classes] if weighted else None, ignore_index=IGNORE)
    assert torch_value("CrossEntropyLoss", kwargs, logits, target) == pytest.approx(expected, abs=1e-5)
    assert keras_value("CrossEntropyLoss", kwargs, logits, target) == pytest.approx(expected, abs=1e-5)
    assert ref.cross_entropy(logits, target, **kwargs) == pytest.approx(expected, abs=1e-5)


def test_cross_entropy_with_class_weights_from_course_data():
    from course_utils.data import class_weights

    logits, target = make_case(3, 4, ignore=False)
    w = class_weights(target, 4)
    x, t = torch.tensor(logits).permute(0, 3, 1, 2), torch.tensor(target)
    expected = torch.nn.functional.cross_entropy(x, t, weight=torch.tensor(w)).item()
    assert keras_value("CrossEntropyLoss", dict(class_weights=w), logits, target) == pytest.approx(expected, abs=1e-5)
    assert torch_value("CrossEntropyLoss", dict(class_weights=w), logits, target) == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_binary_cross_entropy_matches_torch_and_two_class_softmax(seed):
    logits, target = make_case(seed, 1)
    x, t = torch.tensor(logits).permute(0, 3, 1, 2), torch.tensor(target)
    valid = t != IGNORE
    for pos_weight in (None, 3.0):
        kwargs = dict(pos_weight=pos_weight, ignore_index=IGNORE)
        pw = None if pos_weight is None else torch.tensor(pos_weight)
        expected = torch.nn.functional.binary_cross_entropy_with_logits(
            x[:, 0][valid], t[valid].float(), pos_weight=pw).item()
        assert ref.binary_cross_entropy(logits, target, **kwargs) == pytest.approx(expected, abs=1e-5)
        assert torch_value("BinaryCrossEntropyLoss", kwargs, logits, target) == pytest.approx(expected, abs=1e-5)
        assert keras_value("BinaryCrossEntropyLoss", kwargs, logits, target) == pytest.approx(expected, abs=1e-5)
    # sigmoid(z) == softmax([0, z])[1]: the 1-logit and the 2-logit formulations agree
    two = np.concatenate([np.zeros_like(logits), logits], axis=-1)
    ce2 = torch_value("CrossEntropyLoss", dict(ignore_index=IGNORE), two, target)
    assert torch_value("BinaryCrossEntropyLoss", dict(ignore_index=IGNORE), logits, target) == pytest.approx(ce2, abs=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("include_background", [True, False])
def test_binary_dice_equals_two_class_softmax_dice(seed, include_background):
    logits, target = make_case(seed, 1)
    two = np.concatenate([np.zeros_like(logits), logits], axis=-1)
    kwargs = dict(include_background=include_background, ignore_index=IGNORE)
    expected = ref.dice_loss(two, target, **kwargs)
    assert ref.dice_loss(logits, target, **kwargs) == pytest.approx(expected, abs=1e-10)
    assert torch_value("DiceLoss", kwargs, logits, target) == pytest.approx(expected, abs=1e-5)
    assert keras_value("DiceLoss", kwargs, logits, target) == pytest.approx(expected, abs=1e-5)
    _, kg = keras_value("DiceLoss", kwargs, logits, target, grad=True)
    _, tg = torch_value("DiceLoss", kwargs, logits, target, grad=True)
    np.testing.assert_allclose(kg, tg, atol=1e-4)


def confident(target, num_classes, margin=30.0):
    return (margin * np.eye(num_classes)[np.where(target == IGNORE, 0, target)]).astype(np.float32)


@pytest.mark.parametrize("num_classes", [2, 4])
def test_dice_of_a_perfect_prediction_is_zero(num_classes):
    _, target = make_case(0, num_classes, size=(2, 16, 16))
    logits = confident(target, num_classes)
    for include_background in (True, False):
        kwargs = dict(include_background=include_background, ignore_index=IGNORE)
        assert ref.dice_loss(logits, target, **kwargs) == pytest.approx(0.0, abs=1e-6)
        assert torch_value("DiceLoss", kwargs, logits, target) == pytest.approx(0.0, abs=1e-5)
        assert keras_value("DiceLoss", kwargs, logits, target) == pytest.approx(0.0, abs=1e-5)
    # and a confidently wrong prediction is close to 1
    wrong = confident((np.where(target == IGNORE, 0, target) + 1) % num_classes, num_classes)
    assert ref.dice_loss(wrong, target, smooth=0.0, ignore_index=IGNORE) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("name", ["DiceLoss", "CEDiceLoss", "TverskyLoss", "CrossEntropyLoss", "FocalLoss"])
def test_empty_mask_gives_finite_loss_and_gradients(name):
    logits, _ = make_case(1, 4, ignore=False)
    target = np.zeros(logits.shape[:3], dtype=np.int64)  # classes 1..3 absent
    tv, tg = torch_value(name, {}, logits, target, grad=True)
    kv, kg = keras_value(name, {}, logits, target, grad=True)
    assert np.isfinite(tv) and np.isfinite(kv) and np.isfinite(tg).all() and np.isfinite(kg).all()
    assert kv == pytest.approx(tv, abs=1e-5)
    np.testing.assert_allclose(kg, tg, atol=1e-4)


def test_empty_class_scores_zero_without_smoothing_and_one_with_it():
    # 0/0 without smoothing: the reason for the smooth term (what the exercise check looks for)
    logits = np.full((1, 4, 4, 2), [5.0, -5.0], dtype=np.float32)
    target = np.zeros((1, 4, 4), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        per_class = ref.soft_dice_per_class(logits, target, smooth=0.0)
    assert per_class[0] == pytest.approx(1.0, abs=1e-3)
    # predicted mass of class 1 is tiny but nonzero -> dice_1 ~ 0 without smoothing; with a
    # strictly zero prediction (one-hot probabilities) it is 0/0 = NaN
    assert per_class[1] == pytest.approx(0.0, abs=1e-3)
    assert ref.soft_dice_per_class(logits, target, smooth=1.0)[1] == pytest.approx(1.0, abs=0.1)


def test_all_pixels_ignored_gives_zero_not_nan():
    logits, _ = make_case(0, 3, ignore=False)
    target = np.full(logits.shape[:3], IGNORE, dtype=np.int64)
    for name in ("CrossEntropyLoss", "FocalLoss"):
        assert torch_value(name, dict(ignore_index=IGNORE), logits, target) == 0.0
        assert keras_value(name, dict(ignore_index=IGNORE), logits, target) == 0.0
        assert ref.cross_entropy(logits, target, ignore_index=IGNORE) == 0.0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("num_classes", [2, 4])
def test_focal_with_gamma_zero_equals_cross_entropy(seed, num_classes):
    logits, target = make_case(seed, num_classes)
    for w in (None, WEIGHTS[num_classes]):
        ce = torch_value("CrossEntropyLoss", dict(class_weights=w, ignore_index=IGNORE), logits, target)
        kwargs = dict(gamma=0.0, class_weights=w, ignore_index=IGNORE)
        assert torch_value("FocalLoss", kwargs, logits, target) == pytest.approx(ce, abs=1e-6)
        assert keras_value("FocalLoss", kwargs, logits, target) == pytest.approx(ce, abs=1e-5)
        assert ref.focal_loss(logits, target, **kwargs) == pytest.approx(ce, abs=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("num_classes", [2, 4])
def test_tversky_half_half_equals_dice(seed, num_classes):
    logits, target = make_case(seed, num_classes)
    for smooth in (0.0, 1.0):
        dice = torch_value("DiceLoss", dict(smooth=2 * smooth, ignore_index=IGNORE), logits, target)
        kwargs = dict(alpha=0.5, beta=0.5, smooth=smooth, ignore_index=IGNORE)
        assert torch_value("TverskyLoss", kwargs, logits, target) == pytest.approx(dice, abs=1e-6)
        assert keras_value("TverskyLoss", kwargs, logits, target) == pytest.approx(dice, abs=1e-5)
    assert ref.tversky_loss(logits, target, 0.5, 0.5, smooth=0.0, ignore_index=IGNORE) == pytest.approx(
        ref.dice_loss(logits, target, smooth=0.0, ignore_index=IGNORE), abs=1e-10)


def test_ignored_pixels_do_not_change_the_loss():
    logits, target = make_case(4, 3, ignore=False)
    garbage = target.copy()
    garbage[:, :2] = IGNORE
    other = logits.copy()
    other[:, :2] = 100.0 * np.random.default_rng(0).normal(size=other[:, :2].shape)
    for name, _, _ in cases(4):
        kwargs = dict(ignore_index=IGNORE)
        assert torch_value(name, kwargs, logits, garbage) == pytest.approx(
            torch_value(name, kwargs, other, garbage), abs=1e-6)
        # ... and equal the loss on the cropped batch
        assert torch_value(name, kwargs, logits, garbage) == pytest.approx(
            torch_value(name, kwargs, logits[:, 2:], target[:, 2:]), abs=1e-6)


def test_keras_sample_weight_zero_acts_like_ignore_index():
    logits, target = make_case(5, 3, ignore=False)
    sw = np.ones(target.shape, dtype=np.float32)
    sw[:, :3] = 0.0
    ignored = target.copy()
    ignored[:, :3] = IGNORE
    for cls, kwargs in [(klosses.CrossEntropyLoss, dict(class_weights=[1.0, 2.0, 3.0])), (klosses.DiceLoss, {})]:
        a = float(cls(**kwargs)(target, logits, sample_weight=sw))
        b = float(cls(ignore_index=IGNORE, **kwargs)(ignored, logits))
        assert a == pytest.approx(b, abs=1e-6)
        assert float(cls(**kwargs)(target, logits, sample_weight=np.ones(2, np.float32))) == pytest.approx(
            float(cls(**kwargs)(target, logits)), abs=1e-6)


def test_bad_inputs_raise_clear_errors():
    logits, target = make_case(0, 3, ignore=False)
    x = torch.tensor(logits).permute(0, 3, 1, 2)
    with pytest.raises(TypeError, match="long"):
        tlosses.CrossEntropyLoss()(x, torch.tensor(target).float())
    with pytest.raises(ValueError, match="squeeze"):
        tlosses.DiceLoss()(x, torch.tensor(target)[:, None])
    with pytest.raises(ValueError, match="BinaryCrossEntropyLoss"):
        tlosses.CrossEntropyLoss()(x[:, :1], torch.tensor(target))
    with pytest.raises(ValueError, match="channel axis"):
        klosses.CrossEntropyLoss()(target[..., None], logits)
    with pytest.raises(ValueError, match="BinaryCrossEntropyLoss"):
        klosses.CEDiceLoss()(target, logits[..., :1])
    with pytest.raises(ValueError, match="CrossEntropyLoss"):
        klosses.BinaryCrossEntropyLoss()(target, logits)
    with pytest.raises(ValueError, match="class_weights"):
        tlosses.CrossEntropyLoss(class_weights=[1.0, -1.0, 1.0])


def test_keras_loss_config_round_trip():
    loss = klosses.CEDiceLoss(ce_weight=0.5, class_weights=np.array([1.0, 2.0], np.float32), ignore_index=255)
    again = klosses.CEDiceLoss.from_config(loss.get_config())
    logits, target = make_case(0, 2)
    assert float(again(target, logits)) == pytest.approx(float(loss(target, logits)), abs=1e-7)


@pytest.mark.parametrize("name", ["CrossEntropyLoss", "DiceLoss", "CEDiceLoss", "FocalLoss", "TverskyLoss"])
def test_keras_losses_work_inside_model_fit(name):
    """One fit step in graph mode with y_true (B, H, W) int32; Keras adds no channel axis."""
    seen = []

    class Spy(getattr(klosses, name)):
        def compute(self, y_true, y_pred, sample_weight=None):
            seen.append((tuple(y_true.shape), tuple(y_pred.shape)))
            return super().compute(y_true, y_pred, sample_weight)

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 3, padding="same")(inputs))
    model.compile(optimizer="adam", loss=Spy(ignore_index=IGNORE))
    images = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    masks = np.random.default_rng(1).integers(0, 3, (4, 8, 8)).astype(np.int32)
    masks[:, 0] = IGNORE
    history = model.fit(images, masks, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    assert seen and seen[0][0][1:] == (8, 8) and len(seen[0][0]) == 3 and seen[0][1][1:] == (8, 8, 3)


def test_keras_binary_loss_inside_model_fit():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    model = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs))
    model.compile(optimizer="adam", loss=klosses.BinaryCrossEntropyLoss(pos_weight=2.0))
    images = np.random.default_rng(0).random((4, 8, 8, 1)).astype(np.float32)
    masks = (images[..., 0] > 0.5).astype(np.int32)
    history = model.fit(images, masks, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_torch_losses_expose_ignore_index_and_train_a_step():
    torch.manual_seed(0)
    model = torch.nn.Conv2d(1, 3, 3, padding=1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.rand(2, 1, 8, 8)
    y = torch.randint(0, 3, (2, 8, 8))
    for cls in (tlosses.CrossEntropyLoss, tlosses.CEDiceLoss, tlosses.DiceLoss):
        loss_fn = cls(ignore_index=IGNORE)
        assert loss_fn.ignore_index == IGNORE
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)


def test_keras_loss_lets_float_labels_through_only_in_keras_symbolic_build():
    """Under tf.distribute, fit builds the loss with a float y_true placeholder; real float labels still fail."""
    keras = pytest.importorskip("keras")
    from keras.src import backend

    from course_utils.keras.losses import CrossEntropyLoss

    loss = CrossEntropyLoss()
    spec = backend.compute_output_spec(loss, keras.KerasTensor((2, 4, 4), "float64"),
                                       keras.KerasTensor((2, 4, 4, 3), "float32"))
    assert tuple(spec.shape) == ()
    with pytest.raises(TypeError, match="integer class indices"):
        loss(np.zeros((2, 4, 4), np.float64), np.zeros((2, 4, 4, 3), np.float32))
