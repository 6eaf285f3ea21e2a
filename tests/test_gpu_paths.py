"""Code paths that only a GPU switches on, run on the CPU.

On a GPU, Keras computes in ``mixed_float16`` (the capstone sets it) and
compiles the training step with XLA (``jit_compile="auto"`` is on there);
PyTorch's ``fit`` switches on ``torch.autocast`` and the channels-last layout.
None of that runs by default on a CPU, so these tests force it on: every model
the course trains takes one training step and one prediction, and the losses,
metrics and logits must stay finite and float32 where the course relies on it.
On the CPU PyTorch's autocast computes in bfloat16 (float16 is CUDA's type).
"""

from __future__ import annotations

import numpy as np
import pytest

from course_utils.data import make_shapes

NUM_CLASSES = 3
SIZE = 64


@pytest.fixture(scope="module")
def scenes():
    images, masks = make_shapes(4, size=SIZE, num_classes=NUM_CLASSES, seed=0)
    return images.astype(np.float32), masks.astype(np.int64)


# ----------------------------------------------------------------------------- Keras: mixed_float16 + XLA
@pytest.fixture
def mixed_precision():
    """The global ``mixed_float16`` policy for one test; the previous policy is restored afterwards."""
    keras = pytest.importorskip("keras")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield keras
    finally:
        keras.mixed_precision.set_global_policy(previous)
        keras.backend.clear_session()


def _keras_models():
    from course_utils.keras.deeplab import build_deeplab, build_pretrained_deeplab
    from course_utils.keras.fcn import build_fcn
    from course_utils.keras.unet import build_unet

    return {
        "unet_transpose": lambda: build_unet((None, None, 3), NUM_CLASSES, base_filters=4, depth=2),
        "unet_resize": lambda: build_unet((None, None, 3), NUM_CLASSES, base_filters=4, depth=2,
                                          upsampling="resize", dropout=0.1),
        "fcn_32s": lambda: build_fcn((None, None, 3), NUM_CLASSES, "32s", base_filters=4),
        "fcn_16s": lambda: build_fcn((None, None, 3), NUM_CLASSES, "16s", base_filters=4),
        "fcn_8s": lambda: build_fcn((None, None, 3), NUM_CLASSES, "8s", base_filters=4),
        "deeplab_os8": lambda: build_deeplab((None, None, 3), NUM_CLASSES, 8, base_filters=4, atrous_rates=(1, 2)),
        "deeplab_os16": lambda: build_deeplab((None, None, 3), NUM_CLASSES, 16, base_filters=4, atrous_rates=(1, 2)),
        # stand-in weights (weights=None): the same graph as lecture 07's ImageNet model, offline
        "mobilenet_v2_frozen": lambda: build_pretrained_deeplab((SIZE, SIZE, 3), NUM_CLASSES, "mobilenet_v2",
                                                                weights=None, aspp_filters=8,
                                                                trainable_backbone=False),
    }


@pytest.mark.parametrize("name", list(_keras_models()))
def test_keras_model_trains_and_predicts_in_mixed_float16_with_xla(mixed_precision, scenes, name):
    keras = mixed_precision
    from course_utils.keras.train import compile_model, predict, predict_masks

    images, masks = scenes
    model = _keras_models()[name]()
    # the policy reached the model: most layers compute in float16, the logits stay float32
    compute_dtypes = {layer.dtype_policy.compute_dtype for layer in model.layers if layer.weights}
    assert "float16" in compute_dtypes
    assert keras.backend.standardize_dtype(model.output.dtype) == "float32"

    compile_model(model, NUM_CLASSES, jit_compile=True)
    assert model.jit_compile is True
    history = model.fit(images, masks, batch_size=2, epochs=1, verbose=0)
    for key in ("loss", "dice", "iou"):
        (value,) = history.history[key]
        assert np.isfinite(value), (key, value)
    assert 0.0 <= history.history["dice"][0] <= 1.0
    assert all(np.isfinite(keras.ops.convert_to_numpy(w)).all() for w in model.trainable_weights)
    for variable in model.trainable_weights:  # mixed precision keeps the weights themselves in float32
        assert keras.backend.standardize_dtype(variable.dtype) == "float32"

    logits = predict(model, images, batch_size=2)
    assert logits.shape == (len(images), SIZE, SIZE, NUM_CLASSES) and logits.dtype == np.float32
    assert np.isfinite(logits).all()
    assert predict_masks(model, images, batch_size=2).max() < NUM_CLASSES


def test_mixed_precision_fixture_restores_the_policy():
    keras = pytest.importorskip("keras")
    assert keras.mixed_precision.global_policy().name == "float32"


def test_keras_size_check_gives_one_sentence_under_xla(mixed_precision):
    """Batches of static size (NumPy arrays, the course's make_dataset) are checked while the step is traced."""
    from course_utils.keras.data import make_dataset
    from course_utils.keras.train import compile_model
    from course_utils.keras.unet import build_unet

    images = np.random.default_rng(0).random((4, 30, 30, 1), dtype=np.float32)
    masks = np.zeros((4, 30, 30), np.int64)
    model = compile_model(build_unet((None, None, 1), 2, base_filters=4, depth=2), 2, jit_compile=True)
    sentence = ("U-Net of depth 2 needs height and width divisible by 4; 30x30 is not. "
                "Nearest valid sizes: 28 or 32 (crop or pad the image).")
    for data in ((images, masks), (make_dataset(images, masks, batch_size=2, shuffle=False),)):
        with pytest.raises(ValueError) as info:
            model.fit(*data, epochs=1, verbose=0, **({"batch_size": 2} if len(data) == 2 else {}))
        assert sentence in str(info.value)
        assert "InvalidArgumentError" not in str(info.value) and "concatenate" not in str(info.value).lower()


# ----------------------------------------------------------------------------- PyTorch: autocast + channels-last
def _torch_models():
    from course_utils.torch.deeplab import DeepLabV3
    from course_utils.torch.fcn import FCN
    from course_utils.torch.unet import UNet

    return {
        "unet_transpose": lambda: UNet(3, NUM_CLASSES, base_filters=4, depth=2),
        "unet_resize": lambda: UNet(3, NUM_CLASSES, base_filters=4, depth=2, upsampling="resize", dropout=0.1),
        "fcn_32s": lambda: FCN(3, NUM_CLASSES, "32s", base_filters=4),
        "fcn_16s": lambda: FCN(3, NUM_CLASSES, "16s", base_filters=4),
        "fcn_8s": lambda: FCN(3, NUM_CLASSES, "8s", base_filters=4),
        "deeplab_os8": lambda: DeepLabV3(3, NUM_CLASSES, 8, base_filters=4, atrous_rates=(1, 2)),
        "deeplab_os16": lambda: DeepLabV3(3, NUM_CLASSES, 16, base_filters=4, atrous_rates=(1, 2)),
        "pretrained_mobilenet_v3": "mobilenet_v3_large",  # the backbone lecture 07 uses
        # the course's wrapper around torchvision's model (ImageNet normalisation, dict -> logits), with the
        # course's DeepLab as a stand-in for torchvision's: runs where torchvision does not import (CI)
        "pretrained_wrapper_stand_in": _pretrained_wrapper_stand_in,
    }


def _pretrained_wrapper_stand_in():
    import torch

    from course_utils.torch.deeplab import DeepLabV3, PretrainedDeepLab

    class DictOutput(torch.nn.Module):  # torchvision's segmentation models return {"out": logits}
        def __init__(self):
            super().__init__()
            self.net = DeepLabV3(3, NUM_CLASSES, 16, base_filters=4, atrous_rates=(1, 2))

        def forward(self, x):
            return {"out": self.net(x)}

    return PretrainedDeepLab(DictOutput(), in_channels=3)


@pytest.mark.parametrize("name", list(_torch_models()))
def test_torch_model_trains_and_predicts_with_autocast_and_channels_last(scenes, name):
    torch = pytest.importorskip("torch")
    from course_utils.torch.data import make_loader
    from course_utils.torch.losses import CrossEntropyLoss
    from course_utils.torch.train import _autocast, evaluate, predict, train_one_epoch

    builder = _torch_models()[name]
    if isinstance(builder, str):  # torchvision's model with stand-in (random) weights
        pytest.importorskip("torchvision")
        from course_utils.torch.deeplab import build_pretrained_deeplab

        model = build_pretrained_deeplab(NUM_CLASSES, 3, backbone=builder, weights=None)
    else:
        model = builder()
    torch.manual_seed(0)
    images, masks = scenes
    cpu = torch.device("cpu")
    model.to(memory_format=torch.channels_last)
    loss_fn = CrossEntropyLoss(class_weights=[0.5, 1.0, 2.0])

    # inside autocast the network computes in bfloat16; the course's losses compute in float32
    batch = torch.from_numpy(images[:2]).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    with _autocast(cpu, True):
        logits = model(batch)
        loss = loss_fn(logits, torch.from_numpy(masks[:2]))
    assert logits.dtype == torch.bfloat16 and logits.shape == (2, NUM_CLASSES, SIZE, SIZE)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)

    loader = make_loader(images, masks, batch_size=2, shuffle=False)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_loss = train_one_epoch(model, loader, loss_fn, optimizer, cpu, amp=True, channels_last=True)
    assert np.isfinite(train_loss)
    changed = [not torch.equal(a, b) for a, b in zip(before, model.parameters())]
    assert sum(changed) > len(changed) // 2  # the step reached (most of) the weights
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())

    scores = evaluate(model, loader, loss_fn, NUM_CLASSES, cpu, amp=True, channels_last=True)
    assert all(np.isfinite(v) for v in scores.values()) and 0.0 <= scores["dice"] <= 1.0
    out = predict(model, images, batch_size=2, device=cpu)
    assert out.shape == (len(images), SIZE, SIZE, NUM_CLASSES) and out.dtype == np.float32
    assert np.isfinite(out).all()


# ----------------------------------------------------------------------------- fit moves the loss
def test_torch_fit_moves_a_class_weighted_loss_to_the_device(scenes):
    """Lecture 06's nn.CrossEntropyLoss(weight=...) on a GPU: fit must move the loss with the model."""
    torch = pytest.importorskip("torch")
    from course_utils.torch.data import make_loader
    from course_utils.torch.train import fit
    from course_utils.torch.unet import UNet

    images, masks = scenes
    loader = make_loader(images, masks, batch_size=2, shuffle=False)
    model = UNet(3, NUM_CLASSES, base_filters=4, depth=2)
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor([0.5, 1.0, 2.0]))

    moved_to = []
    original_to = torch.nn.Module.to

    def recording_to(module, *args, **kwargs):
        if module is loss_fn:
            moved_to.append(torch.device(args[0]) if args else kwargs.get("device"))
        return original_to(module, *args, **kwargs)

    torch.nn.Module.to = recording_to
    try:
        fit(model, loader, None, loss_fn, torch.optim.Adam(model.parameters()), epochs=1,
            num_classes=NUM_CLASSES, device="cpu", monitor="loss", progress=False)
    finally:
        torch.nn.Module.to = original_to
    assert moved_to == [torch.device("cpu")]

