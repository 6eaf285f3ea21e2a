"""course_utils.torch.dynamics and the U-Net's norm option (PyTorch side)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from course_utils import data, dynamics as dyn  # noqa: E402
from course_utils.torch import dynamics as tdyn  # noqa: E402
from course_utils.torch.unet import UNet, count_parameters, group_count  # noqa: E402


# ----------------------------------------------------------------------------- schedules == torch's schedulers
def _torch_rates(make_scheduler, total):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = make_scheduler(opt)
    rates = []
    for _ in range(total):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(rates)


def test_schedules_match_torch_schedulers():
    total = 40
    ours = dyn.schedule_rates(dyn.one_cycle_schedule(1.0, total, pct_start=0.3), total)
    ref = _torch_rates(lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=1.0, total_steps=total, pct_start=0.3, cycle_momentum=False), total)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    ours = dyn.schedule_rates(dyn.cosine_schedule(1.0, total, final_lr=0.01), total)
    ref = _torch_rates(lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=total - 1, eta_min=0.01), total)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)
    ours = dyn.schedule_rates(dyn.step_schedule(1.0, total, milestones=(0.5, 0.75)), total)
    ref = _torch_rates(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[20, 30], gamma=0.1), total)
    np.testing.assert_allclose(ours, ref, rtol=1e-6)


def test_step_schedule_sets_the_rate_of_every_step():
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=123.0)
    schedule = dyn.cosine_schedule(0.1, 6)
    hook = tdyn.StepSchedule(opt, schedule)
    seen = []
    for _ in range(6):
        opt.zero_grad()
        model(torch.ones(2, 3)).sum().backward()
        opt.step()
        seen.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(seen, dyn.schedule_rates(schedule, 6))
    assert hook.rates == pytest.approx(seen)
    hook.remove()
    opt.step()
    assert len(hook.rates) == 6
    with pytest.raises(TypeError, match="function of the step"):
        tdyn.StepSchedule(opt, 0.1)


# ----------------------------------------------------------------------------- range test on a known problem
def _regression(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 4, generator=g) * torch.tensor([3.0, 1.0, 1.0, 0.5])
    y = x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) + 0.01 * torch.randn(256, generator=g)
    return x, y


def test_lr_range_test_on_linear_regression_suggests_a_stable_rate():
    """SGD on mean squared error diverges for rates above 2 / lambda_max of the Hessian 2 X^T X / n."""
    torch.manual_seed(0)
    x, y = _regression()
    batches = [(x[i : i + 64], y[i : i + 64]) for i in range(0, 256, 64)]
    model = torch.nn.Linear(4, 1, bias=False)
    before = model.weight.detach().clone()
    loss_fn = lambda out, target: torch.mean((out[:, 0] - target) ** 2)  # noqa: E731
    result = tdyn.lr_range_test(model, batches, loss_fn, min_lr=1e-5, max_lr=10.0, num_steps=100,
                                optimizer_fn=lambda p, lr: torch.optim.SGD(p, lr=lr))
    assert torch.equal(model.weight, before)  # the test only measures
    rates, losses = result["rates"], result["losses"]
    assert len(rates) < 100  # stopped at divergence
    lam_max = float(torch.linalg.eigvalsh(2 * x.T @ x / len(x)).max())
    lr = dyn.suggest_learning_rate(rates, losses)
    assert 1e-3 / lam_max < lr < 2.0 / lam_max
    # training at the suggestion lowers the loss a lot; at 3 / lambda_max it blows up
    def train(rate, steps=60):
        w = torch.zeros(4)
        for _ in range(steps):
            w = w - rate * 2 * x.T @ (x @ w - y) / len(x)
        return float(torch.mean((x @ w - y) ** 2))
    start = train(0.0, 0)
    assert train(lr) < 0.1 * start
    assert train(3.0 / lam_max) > start


# ----------------------------------------------------------------------------- one scored run
def test_train_and_score_learns_and_reports():
    x, y = data.make_shapes(24, size=32, num_classes=2, seed=0)
    result = tdyn.train_and_score(x[:16], y[:16], x[16:], y[16:], num_classes=2, lr=1e-2, batch_size=4,
                                  epochs=3, schedule="cosine", base_filters=4, depth=2, seed=0, rare_class=1)
    assert set(result) >= {"dice", "per_class_dice", "final_loss", "history", "rare_dice"}
    losses = result["history"]["loss"]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert 0.0 < result["dice"] <= 1.0  # all-background would score 0 on the foreground
    assert result["rare_dice"] == result["dice"] == result["per_class_dice"][1]
    again = tdyn.train_and_score(x[:16], y[:16], x[16:], y[16:], num_classes=2, lr=1e-2, batch_size=4,
                                 epochs=3, schedule="cosine", base_filters=4, depth=2, seed=0)
    assert again["history"]["loss"] == pytest.approx(losses)  # seeded: the same run twice


def test_make_loss_names():
    from course_utils.torch.losses import CEDiceLoss, CrossEntropyLoss, DiceLoss

    assert isinstance(tdyn.make_loss("ce"), CrossEntropyLoss)
    assert isinstance(tdyn.make_loss("dice"), DiceLoss)
    loss = tdyn.make_loss("ce+dice", ce_weight=0.25, dice_weight=0.75)
    assert isinstance(loss, CEDiceLoss) and (loss.ce_weight, loss.dice_weight) == (0.25, 0.75)
    with pytest.raises(ValueError, match='"ce", "dice" or "ce\\+dice"'):
        tdyn.make_loss("focal")


# ----------------------------------------------------------------------------- GroupNorm in the U-Net
def test_group_count():
    assert [group_count(c) for c in (8, 12, 16, 6, 7)] == [8, 6, 8, 6, 7]


def test_unet_norm_options():
    bn = UNet(3, 2, base_filters=8, depth=2)
    gn = UNet(3, 2, base_filters=8, depth=2, norm="group")
    plain = UNet(3, 2, base_filters=8, depth=2, norm=None)
    assert isinstance(gn.enc1.bn1, torch.nn.GroupNorm) and gn.enc1.bn1.num_groups == 8
    assert isinstance(bn.enc1.bn1, torch.nn.BatchNorm2d)
    assert isinstance(plain.enc1.bn1, torch.nn.Identity) and plain.enc1.conv1.bias is not None
    assert count_parameters(gn) == count_parameters(bn)  # both: a scale and a shift per channel
    assert count_parameters(plain) == count_parameters(UNet(3, 2, base_filters=8, depth=2, batch_norm=False))
    with pytest.raises(ValueError, match='norm must be "batch", "group", None or "auto"'):
        UNet(3, 2, norm="layer")


def test_group_norm_is_independent_of_the_batch_but_batch_norm_is_not():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    for norm, independent in (("group", True), ("batch", False)):
        model = UNet(3, 2, base_filters=8, depth=2, norm=norm).train()
        alone = model(x[:1])
        together = model(x)[:1]
        assert torch.allclose(alone, together, atol=1e-5) == independent, norm
