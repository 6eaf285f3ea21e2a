"""The lecture 03/04 checks: the course's own code passes, typical mistakes fail with the right hint."""

from __future__ import annotations

import pytest

from course_utils.checks import CheckFailed
from course_utils.checks import unet as checks


def test_all_names_are_exported():
    import course_utils.checks as all_checks

    for name in checks.__all__:
        assert callable(getattr(all_checks, name)), name


def test_unknown_framework_is_a_value_error():
    with pytest.raises(ValueError, match="'keras' or 'torch'"):
        checks.check_unet(object, "jax")


# ----------------------------------------------------------------------------- Keras
@pytest.fixture(scope="module")
def keras_parts():
    keras = pytest.importorskip("keras")
    from keras import layers

    from course_utils.keras.unet import build_unet, conv_block

    return keras, layers, build_unet, conv_block


def test_keras_reference_conv_block_and_unet_pass(keras_parts, capsys):
    _, _, build_unet, conv_block = keras_parts
    checks.check_conv_block(conv_block, "keras")
    checks.check_unet(build_unet, "keras")
    out = capsys.readouterr().out
    assert out.count("\N{HEAVY CHECK MARK}") == 2


def test_keras_conv_block_mistakes(keras_parts):
    _, layers, _, _ = keras_parts

    def valid_padding(x, filters, batch_norm, name):
        for i in (1, 2):
            x = layers.Conv2D(filters, 3, use_bias=not batch_norm, name=f"{name}_conv{i}")(x)
            if batch_norm:
                x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
            x = layers.ReLU()(x)
        return x

    def bias_with_bn(x, filters, batch_norm, name):
        for i in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv{i}")(x)
            if batch_norm:
                x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
            x = layers.ReLU()(x)
        return x

    def no_relu(x, filters, batch_norm, name):
        for i in (1, 2):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm, name=f"{name}_conv{i}")(x)
            if batch_norm:
                x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        return x

    def todo(x, filters, batch_norm, name):
        raise NotImplementedError("Exercise")

    for wrong, message in (
        (valid_padding, "padding='same'"),
        (bias_with_bn, "use_bias=False"),
        (no_relu, "ReLU"),
        (todo, "todo is not written yet"),
    ):
        with pytest.raises(CheckFailed, match=message):
            checks.check_keras_conv_block(wrong)


def test_keras_unet_mistakes(keras_parts):
    keras, layers, build_unet, conv_block = keras_parts

    def with_softmax(input_shape, num_classes, base_filters, depth, batch_norm):
        model = build_unet(input_shape, num_classes=num_classes, base_filters=base_filters, depth=depth, batch_norm=batch_norm)
        return keras.Model(model.input, layers.Softmax()(model.output))

    def no_skips(input_shape, num_classes, base_filters, depth, batch_norm):
        inputs = keras.Input(input_shape)
        x = inputs
        for level in range(1, depth + 1):
            x = conv_block(x, base_filters * 2 ** (level - 1), batch_norm, f"enc{level}")
            x = layers.MaxPooling2D(2)(x)
        x = conv_block(x, base_filters * 2**depth, batch_norm, "bottleneck")
        for level in range(depth, 0, -1):
            x = layers.Conv2DTranspose(base_filters * 2 ** (level - 1), 2, strides=2)(x)
            x = conv_block(x, base_filters * 2 ** (level - 1), batch_norm, f"dec{level}")
        return keras.Model(inputs, layers.Conv2D(num_classes, 1)(x))

    def fixed_depth(input_shape, num_classes, base_filters, depth, batch_norm):
        return build_unet(input_shape, num_classes=num_classes, base_filters=base_filters, depth=2, batch_norm=batch_norm)

    def one_channel(input_shape, num_classes, base_filters, depth, batch_norm):
        return build_unet(input_shape, num_classes=1, base_filters=base_filters, depth=depth, batch_norm=batch_norm)

    for wrong, message in (
        (with_softmax, "remove the final softmax"),
        (no_skips, "no skip connections"),
        (fixed_depth, "parameters"),
        (one_channel, "num_classes filters"),
    ):
        with pytest.raises(CheckFailed, match=message):
            checks.check_keras_unet(wrong)


# ----------------------------------------------------------------------------- PyTorch
@pytest.fixture(scope="module")
def torch_parts():
    torch = pytest.importorskip("torch")
    from torch import nn

    from course_utils.torch.unet import DoubleConv, UNet

    return torch, nn, DoubleConv, UNet


def test_torch_reference_conv_block_unet_and_epoch_pass(torch_parts, capsys):
    from course_utils.torch.train import train_one_epoch

    _, _, DoubleConv, UNet = torch_parts
    checks.check_conv_block(DoubleConv, "torch")
    checks.check_unet(UNet, "torch")
    checks.check_train_one_epoch(train_one_epoch)
    out = capsys.readouterr().out
    assert out.count("\N{HEAVY CHECK MARK}") == 3


def test_torch_conv_block_mistakes(torch_parts):
    _, nn, DoubleConv, _ = torch_parts

    class NoPadding(nn.Module):
        def __init__(self, in_channels, out_channels, batch_norm=True):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 3, bias=not batch_norm), nn.ReLU(),
                nn.Conv2d(out_channels, out_channels, 3, bias=not batch_norm), nn.ReLU(),
            )

        def forward(self, x):
            return self.body(x)

    class BiasWithBN(nn.Module):
        def __init__(self, in_channels, out_channels, batch_norm=True):
            super().__init__()
            norm = (lambda: nn.BatchNorm2d(out_channels)) if batch_norm else nn.Identity
            self.body = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 3, padding=1), norm(), nn.ReLU(),
                nn.Conv2d(out_channels, out_channels, 3, padding=1), norm(), nn.ReLU(),
            )

        def forward(self, x):
            return self.body(x)

    class NoFinalReLU(DoubleConv):
        def forward(self, x):
            return self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))

    class NotAModule:
        def __init__(self, *args, **kwargs):
            pass

    for wrong, message in (
        (NoPadding, "padding=1"),
        (BiasWithBN, "bias=False"),
        (NoFinalReLU, "ReLU"),
        (NotAModule, "nn.Module"),
    ):
        with pytest.raises(CheckFailed, match=message):
            checks.check_torch_conv_block(wrong)


def test_torch_unet_mistakes(torch_parts):
    torch, nn, _, UNet = torch_parts

    class WithSoftmax(UNet):
        def forward(self, x):
            return torch.softmax(super().forward(x), dim=1)

    class NoBatchNormEver(UNet):
        def __init__(self, in_channels=1, num_classes=2, base_filters=64, depth=4, batch_norm=True):
            super().__init__(in_channels, num_classes, base_filters, depth, batch_norm=False)

    class WrongHead(UNet):
        def __init__(self, in_channels=1, num_classes=2, base_filters=64, depth=4, batch_norm=True):
            super().__init__(in_channels, num_classes + 1, base_filters, depth, batch_norm)

    class Broken(UNet):
        def forward(self, x):
            raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    for wrong, message in (
        (WithSoftmax, "remove the final softmax"),
        (NoBatchNormEver, "parameters"),
        (WrongHead, "num_classes output channels"),
        (Broken, "RuntimeError: mat1"),
    ):
        with pytest.raises(CheckFailed, match=message):
            checks.check_torch_unet(wrong)


def _epoch(order="right", train_mode=True, reduce="mean"):
    """A student-style train_one_epoch with one deliberate mistake."""

    def train_one_epoch(model, loader, loss_fn, optimizer, device):
        if train_mode:
            model.train()
        losses = []
        for images, masks in loader:
            images, masks = images.to(device), masks.to(device)
            if order == "right":
                optimizer.zero_grad()
            loss = loss_fn(model(images), masks)
            loss.backward()
            if order == "zero_between":
                optimizer.zero_grad()
            if order != "no_step":
                optimizer.step()
            losses.append(loss.item())
        if reduce == "sum":
            return sum(losses)
        if reduce == "tensor":
            return loss
        if reduce == "last":
            return losses[-1]
        return sum(losses) / len(losses)

    return train_one_epoch


@pytest.mark.parametrize(
    "wrong, message",
    [
        (_epoch(order="no_zero_grad"), "accumulate: call optimizer.zero_grad"),
        (_epoch(order="zero_between"), "not between backward and step"),
        (_epoch(order="no_step"), r"optimizer.step\(\) ran 0 times"),
        (_epoch(train_mode=False), r"model.train\(\)"),
        (_epoch(reduce="sum"), "not the sum"),
        (_epoch(reduce="last"), "that is the LAST batch's loss"),
        (_epoch(reduce="tensor"), "still holds the graph"),
    ],
)
def test_torch_train_one_epoch_mistakes(torch_parts, wrong, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_torch_train_one_epoch(wrong)


def test_student_style_epoch_passes(torch_parts, capsys):
    checks.check_train_one_epoch(_epoch())
    assert capsys.readouterr().out.startswith("\N{HEAVY CHECK MARK}")


def test_failure_messages_are_one_sentence(torch_parts):
    with pytest.raises(CheckFailed) as info:
        checks.check_torch_train_one_epoch(_epoch(order="no_zero_grad"))
    message = str(info.value)
    assert "\n" not in message and message.endswith(".")


# ----------------------------------------------------------------------------- mistake catalogues
def k_unet(concat_axis=-1, skips=True, head=None, padding="same"):
    """A student-style Keras U-Net with one deliberate mistake (the default is right)."""

    def build_unet(input_shape, num_classes, base_filters, depth, batch_norm):
        import keras
        from keras import layers

        def block(x, filters, name):
            for i in (1, 2):
                x = layers.Conv2D(filters, 3, padding=padding, use_bias=not batch_norm, name=f"{name}_conv{i}")(x)
                if batch_norm:
                    x = layers.BatchNormalization()(x)
                x = layers.ReLU()(x)
            return x

        inputs = keras.Input(input_shape)
        x, saved = inputs, []
        for level in range(1, depth + 1):
            x = block(x, base_filters * 2 ** (level - 1), f"enc{level}")
            saved.append(x)
            x = layers.MaxPooling2D(2)(x)
        x = block(x, base_filters * 2**depth, "bottleneck")
        for level in range(depth, 0, -1):
            filters = base_filters * 2 ** (level - 1)
            x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same")(x)
            if skips == "add":
                x = layers.Add()([x, saved[level - 1]])
            elif skips == "reversed":  # the shallowest skip meets the deepest decoder level
                x = layers.Concatenate(axis=concat_axis)([x, saved[depth - level]])
            elif skips:
                x = layers.Concatenate(axis=concat_axis)([x, saved[level - 1]])
            x = block(x, filters, f"dec{level}")
        outputs = layers.Conv2D(num_classes, 1)(x)
        if head == "sigmoid":
            outputs = layers.Activation("sigmoid")(outputs)
        elif head is not None:
            outputs = layers.Softmax(axis=head)(outputs)
        return keras.Model(inputs, outputs)

    return build_unet


KERAS_UNET_MISTAKES = [
    (dict(skips=False), "has no skip connections"),
    (dict(skips="add"), "adds the skip connections instead of concatenating them.*added, not concatenated"),
    (dict(skips="reversed"), "the skips are taken in the wrong order"),
    (dict(concat_axis=1), "concatenated along the height axis"),
    (dict(concat_axis=2), "concatenated along the width axis"),
    (dict(head="sigmoid"), "ends with a sigmoid"),
    (dict(head=-1), "remove the final softmax"),
    (dict(head=1), "softmax over a spatial axis"),
    (dict(padding="valid"), "padding='same'"),
]


def test_keras_student_unet_passes(keras_parts, capsys):
    checks.check_keras_unet(k_unet())
    assert "\N{HEAVY CHECK MARK}" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, message", KERAS_UNET_MISTAKES)
def test_keras_unet_mistake_catalogue(keras_parts, mistake, message):
    with pytest.raises(CheckFailed, match=message) as info:
        checks.check_keras_unet(k_unet(**mistake))
    assert "\n" not in str(info.value)


def t_unet(cat_dim=1, skips=True, head=None, padding=1, channels_last=False):
    """A student-style PyTorch U-Net class with one deliberate mistake (the default is right)."""
    import torch
    from torch import nn

    class StudentUNet(nn.Module):
        def __init__(self, in_channels, num_classes, base_filters, depth, batch_norm=True):
            super().__init__()

            def block(cin, cout):
                norm = (lambda: nn.BatchNorm2d(cout)) if batch_norm else nn.Identity
                return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=padding, bias=not batch_norm), norm(), nn.ReLU(),
                                     nn.Conv2d(cout, cout, 3, padding=padding, bias=not batch_norm), norm(), nn.ReLU())

            self.enc, self.up, self.dec, channels = nn.ModuleList(), nn.ModuleList(), nn.ModuleList(), in_channels
            for level in range(1, depth + 1):
                self.enc.append(block(channels, base_filters * 2 ** (level - 1)))
                channels = base_filters * 2 ** (level - 1)
            self.bottleneck = block(channels, base_filters * 2**depth)
            channels = base_filters * 2**depth
            for level in range(depth, 0, -1):
                filters = base_filters * 2 ** (level - 1)
                self.up.append(nn.ConvTranspose2d(channels, filters, 2, stride=2))
                self.dec.append(block(2 * filters if skips in (True, "reversed") else filters, filters))
                channels = filters
            self.head = nn.Conv2d(channels, num_classes, 1)

        def forward(self, x):
            saved = []
            for enc in self.enc:
                x = enc(x)
                saved.append(x)
                x = nn.functional.max_pool2d(x, 2)
            x = self.bottleneck(x)
            for up, dec, skip in zip(self.up, self.dec, saved if skips == "reversed" else reversed(saved)):
                x = up(x)
                if skips == "add":
                    x = x + skip
                elif skips:
                    x = torch.cat([x, skip], dim=cat_dim)
                x = dec(x)
            y = self.head(x)
            if head == "sigmoid":
                y = torch.sigmoid(y)
            elif head is not None:
                y = torch.softmax(y, dim=head)
            return y.permute(0, 2, 3, 1) if channels_last else y

    return StudentUNet


TORCH_UNET_MISTAKES = [
    (dict(skips=False), "has no skip connections"),
    (dict(skips="add"), "adds the skip connections instead of concatenating them.*added, not concatenated"),
    (dict(skips="reversed"), "the skips are taken in the wrong order"),
    (dict(cat_dim=2), "concatenate the skip along dim=1"),
    (dict(cat_dim=3), "concatenate the skip along dim=1"),
    (dict(cat_dim=0), "concatenate the skip along dim=1"),
    (dict(head="sigmoid"), "ends with a sigmoid"),
    (dict(head=1), "remove the final softmax"),
    (dict(head=0), "softmax over the batch axis"),
    (dict(head=3), "softmax over a spatial axis"),
    (dict(padding=0), "padding='same' \\(padding=1"),
    (dict(channels_last=True), "NHWC"),
]


def test_torch_student_unet_passes(torch_parts, capsys):
    checks.check_torch_unet(t_unet())
    assert "\N{HEAVY CHECK MARK}" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, message", TORCH_UNET_MISTAKES)
def test_torch_unet_mistake_catalogue(torch_parts, mistake, message):
    with pytest.raises(CheckFailed, match=message) as info:
        checks.check_torch_unet(t_unet(**mistake))
    assert "\n" not in str(info.value)


def _epoch_variant(kind):
    def train_one_epoch(net, dataloader, criterion, opt, device="cpu"):  # other names, a default: still right
        net.eval() if kind == "eval" else net.train()
        total = 0.0
        for images, masks in dataloader:
            opt.zero_grad()
            loss = criterion(net(images.to(device)), masks.to(device))
            loss.backward()
            opt.step()
            total += loss.item() * images.size(0)
        return total / len(dataloader.dataset)

    return train_one_epoch


def test_epoch_with_len_loader_dataset_and_other_names_passes(torch_parts, capsys):
    checks.check_torch_train_one_epoch(_epoch_variant("dataset"))
    checks.check_train_one_epoch(_epoch_variant("dataset"))
    assert capsys.readouterr().out.count("\N{HEAVY CHECK MARK}") == 2


def test_epoch_with_model_eval_is_named(torch_parts):
    with pytest.raises(CheckFailed, match=r"never model.eval\(\) during training"):
        checks.check_torch_train_one_epoch(_epoch_variant("eval"))


def test_not_written_names_the_students_function(torch_parts, keras_parts):
    def build_my_unet(input_shape, num_classes, base_filters, depth, batch_norm):
        raise NotImplementedError("Exercise: write this part, then run the check below.")

    class MyUNet(torch_parts[1].Module):
        def __init__(self, *args, **kwargs):
            raise NotImplementedError("Exercise: write this part, then run the check below.")

    def my_epoch(model, loader, loss_fn, optimizer, device):
        raise NotImplementedError("Exercise: write this part, then run the check below.")

    for check, fn, name in ((checks.check_keras_unet, build_my_unet, "build_my_unet"),
                            (checks.check_torch_unet, MyUNet, "MyUNet"),
                            (checks.check_torch_train_one_epoch, my_epoch, "my_epoch")):
        with pytest.raises(CheckFailed, match=f"^{name} is not written yet"):
            check(fn)


def test_score_above_baseline_check(capsys):
    checks.check_score_above_baseline(0.71, 0.345)
    assert "membrane Dice 0.710, above the 'all membrane' baseline 0.345" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="not above the 'all membrane' baseline 0.345"):
        checks.check_score_above_baseline(0.30, 0.345)
    with pytest.raises(CheckFailed, match="not a score in"):
        checks.check_score_above_baseline(3.5, 0.345)
    with pytest.raises(CheckFailed, match="must be one number"):
        checks.check_score_above_baseline([0.9, 0.7], 0.345)
