"""Both frameworks' small U-Nets learn the ISBI 2012 membranes on a small CPU budget.

Train on random 64x64 crops of slices 0-24, evaluate on the whole held-out
slices 25-29 (512x512: the network is fully convolutional). The membrane Dice
must clear a fixed floor that beats both trivial baselines: "all cell" has
membrane Dice 0, "all membrane" about 0.33 on these slices.

Measured on this 2-core CPU (membrane Dice on slices 25-29, this configuration, seeds 0/1/2):
PyTorch 0.759 / 0.733 / 0.726, Keras 0.705 / 0.673 / 0.731 (all-membrane baseline 0.332 on these slices).
The floor of 0.55 leaves a margin of about 0.12 for other CPUs, library versions and seeds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from course_utils import env
from course_utils import metrics

pytestmark = pytest.mark.slow  # tens of seconds each; still part of the suite (CI runs it)

MEMBRANE_DICE_FLOOR = 0.55
TRAIN_SLICES = np.repeat(np.arange(25), 4)  # 4 random crops of each training slice per epoch
TEST_SLICES = np.arange(25, 30)
CROP, EPOCHS, BATCH, LEARNING_RATE = 64, 8, 8, 1e-3
DEPTH, BASE_FILTERS = 3, 8
SEED = 0


@pytest.fixture(scope="module")
def membranes():
    from course_utils import data

    root = Path(os.environ.get("COURSE_DATA_DIR", env.data_dir()))
    if not (root / "isbi2012-membrane").is_dir():
        pytest.skip(f"ISBI 2012 slices not found under {root}: set COURSE_DATA_DIR to the folder holding them")
    images, masks = data.load_membranes(root=root, download=False)
    assert images.shape == (30, 512, 512, 1) and masks.shape == (30, 512, 512)
    return images, masks


def check_learned(masks_true, masks_pred, losses):
    all_membrane = metrics.dice_per_class(masks_true, np.ones_like(masks_true), 2)[1]
    assert 0.3 < all_membrane < 0.42  # the baseline the floor must beat
    assert MEMBRANE_DICE_FLOOR > all_membrane
    dice = metrics.dice_per_class(masks_true, masks_pred, 2)[1]
    print(f"membrane Dice {dice:.3f} (floor {MEMBRANE_DICE_FLOOR}, all-membrane {all_membrane:.3f}); "
          f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")
    assert losses[-1] < 0.75 * losses[0], f"the training loss did not fall enough: {losses}"
    assert dice > MEMBRANE_DICE_FLOOR, f"membrane Dice {dice:.3f} on slices 25-29 is below the floor {MEMBRANE_DICE_FLOOR}"


# Membrane slices have no orientation: every flip and quarter turn (augment=True alone flips left-right only).
EVERY_FLIP_AND_TURN = {"flip": True, "rotate90": True}


def test_torch_unet_learns_membranes(membranes):
    torch = pytest.importorskip("torch")
    from course_utils.torch import train
    from course_utils.torch.data import make_loader
    from course_utils.torch.losses import CrossEntropyLoss
    from course_utils.torch.unet import UNet

    images, masks = membranes
    env.seed_everything(SEED)
    model = UNet(in_channels=1, num_classes=2, base_filters=BASE_FILTERS, depth=DEPTH)
    loader = make_loader(images[TRAIN_SLICES], masks[TRAIN_SLICES], batch_size=BATCH, crop_size=CROP,
                         augment=EVERY_FLIP_AND_TURN, seed=SEED)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    history = train.fit(model, loader, None, CrossEntropyLoss(), optimizer, epochs=EPOCHS,
                        num_classes=2, device="cpu", monitor="loss", progress=False)
    predicted = train.predict_masks(model, images[TEST_SLICES], batch_size=5)
    check_learned(masks[TEST_SLICES], predicted, history["loss"])


def test_keras_unet_learns_membranes(membranes):
    pytest.importorskip("keras")
    from course_utils.keras import train
    from course_utils.keras.data import make_dataset
    from course_utils.keras.unet import build_unet

    images, masks = membranes
    env.seed_everything(SEED)
    model = build_unet((None, None, 1), num_classes=2, base_filters=BASE_FILTERS, depth=DEPTH)
    train.compile_model(model, num_classes=2, learning_rate=LEARNING_RATE)  # course CrossEntropyLoss, Dice/IoU
    dataset = make_dataset(images[TRAIN_SLICES], masks[TRAIN_SLICES], batch_size=BATCH, crop_size=CROP,
                           augment=EVERY_FLIP_AND_TURN, seed=SEED)
    history = model.fit(dataset, epochs=EPOCHS, verbose=0)
    predicted = train.predict_masks(model, images[TEST_SLICES], batch_size=5)
    check_learned(masks[TEST_SLICES], predicted, history.history["loss"])
