"""course_utils.checks.fcn: the ASPP checks accept the course's ASPP and reject typical mistakes."""

import pytest

keras = pytest.importorskip("keras")
torch = pytest.importorskip("torch")

from keras import layers  # noqa: E402
from torch import nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from course_utils import checks  # noqa: E402
from course_utils.checks import CheckFailed  # noqa: E402
from course_utils.keras.deeplab import ASPP as KerasASPP, BroadcastLike  # noqa: E402
from course_utils.torch.deeplab import ASPP as TorchASPP  # noqa: E402
from course_utils.torch.fcn import ConvBNReLU  # noqa: E402


def test_exported():
    assert "check_keras_aspp" in checks.__all__ if hasattr(checks, "__all__") else True
    assert callable(checks.check_keras_aspp) and callable(checks.check_torch_aspp)


def test_reference_passes(capsys):
    checks.check_keras_aspp(KerasASPP)
    checks.check_torch_aspp(TorchASPP)
    out = capsys.readouterr().out
    assert out.count("\N{HEAVY CHECK MARK}") == 2


# ------------------------------------------------------------------ wrong Keras versions
def keras_aspp(dilate=True, pool=True, bias=False, same=True, equal=False, upsample=True):
    def build(filters, atrous_rates, name="aspp"):
        def apply(x):
            def cbr(y, k, d, n):
                y = layers.Conv2D(filters, k, padding="same" if same else "valid", dilation_rate=d,
                                  use_bias=bias, name=f"{n}_conv")(y)
                y = layers.BatchNormalization(name=f"{n}_bn")(y)
                return layers.ReLU()(y)
            branches = [cbr(x, 1, 1, f"{name}_c1")]
            branches += [cbr(x, 3, (max(atrous_rates) if equal else r) if dilate else 1, f"{name}_a{i}") for i, r in enumerate(atrous_rates)]
            if pool:
                p = cbr(layers.GlobalAveragePooling2D(keepdims=True)(x), 1, 1, f"{name}_ip")
                branches.append(BroadcastLike()([p, x]) if upsample else p)
            return cbr(layers.Concatenate()(branches), 1, 1, f"{name}_proj")
        return apply
    return build


@pytest.mark.parametrize("kwargs, message", [
    (dict(dilate=False), "dilation rates"),
    (dict(equal=True), "all equal"),
    (dict(pool=False), "concatenated channels"),
    (dict(bias=True), "parameters"),
    (dict(same=False), "could not concatenate its branches: the branches have different sizes .*padding='same'"),
    (dict(upsample=False), "upsample the pooled branch back to the feature size"),
])
def test_wrong_keras_versions_fail(kwargs, message):
    keras_aspp()  # the correct variant of the helper passes:
    checks.check_keras_aspp(keras_aspp())
    with pytest.raises(CheckFailed, match=message):
        checks.check_keras_aspp(keras_aspp(**kwargs))


def test_unimplemented_keras():
    def build(filters, atrous_rates, name="aspp"):
        raise NotImplementedError
    with pytest.raises(CheckFailed, match="^build is not written yet"):
        checks.check_keras_aspp(build)


# ------------------------------------------------------------------ wrong torch versions
class NoDilation(TorchASPP):
    def __init__(self, i, o, rates):
        super().__init__(i, o, rates)
        for k in range(1, len(rates) + 1):
            setattr(self, f"atrous{k}", ConvBNReLU(i, o, 3))


class LocalPool(TorchASPP):
    def forward(self, x):
        size = x.shape[-2:]
        branches = [self.conv1x1(x)] + [getattr(self, f"atrous{i}")(x) for i in range(1, len(self.atrous_rates) + 1)]
        pooled = self.image_pool(F.avg_pool2d(x, 2))  # not global
        branches.append(F.interpolate(pooled, size=size, mode="bilinear", align_corners=False))
        return self.project(torch.cat(branches, dim=1))


class NoPoolBranch(nn.Module):
    def __init__(self, i, o, rates):
        super().__init__()
        self.b = nn.ModuleList([ConvBNReLU(i, o, 1)] + [ConvBNReLU(i, o, 3, r) for r in rates])
        self.project = ConvBNReLU(o * (len(rates) + 1), o, 1)

    def forward(self, x):
        return self.project(torch.cat([b(x) for b in self.b], 1))


class WithBias(TorchASPP):
    def __init__(self, i, o, rates):
        super().__init__(i, o, rates)
        self.conv1x1.conv = nn.Conv2d(i, o, 1, bias=True)


class EqualRates(TorchASPP):
    def __init__(self, i, o, rates):
        super().__init__(i, o, rates)
        for k in range(1, len(rates) + 1):
            setattr(self, f"atrous{k}", ConvBNReLU(i, o, 3, max(rates)))


class NoPadding(TorchASPP):
    def __init__(self, i, o, rates):
        super().__init__(i, o, rates)
        for k, r in enumerate(rates, 1):
            branch = ConvBNReLU(i, o, 3, r)
            branch.conv = nn.Conv2d(i, o, 3, dilation=r, bias=False)  # padding 0: "valid"
            setattr(self, f"atrous{k}", branch)


class PoolNotUpsampled(TorchASPP):
    def forward(self, x):
        branches = [self.conv1x1(x)] + [getattr(self, f"atrous{i}")(x) for i in range(1, len(self.atrous_rates) + 1)]
        branches.append(self.image_pool(F.adaptive_avg_pool2d(x, 1)))  # still 1x1
        return self.project(torch.cat(branches, dim=1))


class WrongShape(TorchASPP):
    def forward(self, x):
        return super().forward(x)[..., 1:, :]


@pytest.mark.parametrize("cls, message", [
    (NoDilation, "dilations"),
    (NoPoolBranch, "concatenated channels"),
    (WithBias, "parameters"),
    (LocalPool, "whole image"),
    (WrongShape, "shape"),
    (EqualRates, "all equal"),
    (NoPadding, "padding=dilation"),
    (PoolNotUpsampled, "upsample the pooled branch back to the feature size"),
])
def test_wrong_torch_versions_fail(cls, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_torch_aspp(cls)


# ------------------------------------------------------------------ FCN-8s fusion
def fuse(score32, score16, score8, size, mistake=None):
    mode = "nearest" if mistake == "nearest" else "bilinear"
    kw = {} if mode == "nearest" else {"align_corners": mistake == "align"}

    def up(x, to):
        return F.interpolate(x, size=to, mode=mode, **kw)

    if mistake == "concat":
        x = torch.cat([up(score32, score16.shape[-2:]), score16], 1)
        return up(x, size)
    if mistake == "no_upsample":
        return score32 + score16
    x = up(score32, score16.shape[-2:]) + (0 if mistake == "fcn32" else score16)
    x = up(x, score8.shape[-2:]) + (0 if mistake in ("fcn32", "fcn16") else score8)
    return up(x, size)


def test_fcn_fusion_passes(capsys):
    checks.check_fcn_fusion(fuse)
    assert "the FCN-8s fusion" in capsys.readouterr().out


@pytest.mark.parametrize("mistake, message", [
    ("fcn32", "FCN-32s"),
    ("fcn16", "stops at FCN-16s"),
    ("nearest", "nearest neighbour"),
    ("align", "align_corners=True"),
    ("concat", "ADDING score maps"),
    ("no_upsample", "upsample the coarser map"),
])
def test_fcn_fusion_mistakes_are_named(mistake, message):
    with pytest.raises(CheckFailed, match=message):
        checks.check_fcn_fusion(lambda a, b, c, size: fuse(a, b, c, size, mistake))
