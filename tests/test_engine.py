"""Engine pieces: the two-view step, signals at no extra forward, non-finite loss, devices."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fer_nla.config import OptimConfig
from fer_nla.runtime import autocast_dtype, resolve_device, use_channels_last
from fer_nla.train.loop import train_one_epoch
from fer_nla.train.step import (
    NonFiniteLossError,
    TrainStep,
    build_optimizer,
    build_scheduler,
)
from fer_nla.errors import InputError
from fer_nla.losses import naw_weights
from fer_nla.methods import available, build_method, method_needs


class CountingNet(nn.Module):
    """A BatchNorm-free classifier that counts its forward calls and the images it saw."""

    def __init__(self, num_classes: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)
        self.calls = 0
        self.images = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.images += x.shape[0]
        return self.fc(torch.relu(self.conv(x)).mean(dim=(2, 3)))


def _step(loss_name: str, mode: str, seed: int = 0) -> tuple[TrainStep, CountingNet]:
    torch.manual_seed(seed)
    model = CountingNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    method = build_method(loss_name, epochs=10, check=False)  # as build_train_step builds it
    return TrainStep(model, method, optimizer, torch.device("cpu"), None, False, mode), model


def _batch(n: int = 6):
    g = torch.Generator().manual_seed(1)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 4, (n,), generator=g), torch.arange(10, 10 + n)


def test_batched_forward_is_one_call_and_equals_two_separate_forwards_without_batchnorm():
    images, targets, index = _batch()
    batched, net_b = _step("nla", "batched")
    separate, net_s = _step("nla", "separate")
    loss_b, logits_b, _ = batched(images, targets, index)
    loss_s, logits_s, _ = separate(images, targets, index)
    assert (net_b.calls, net_b.images) == (1, 12) and (net_s.calls, net_s.images) == (2, 12)
    torch.testing.assert_close(loss_b, loss_s)
    torch.testing.assert_close(logits_b, logits_s)
    for p_b, p_s in zip(net_b.parameters(), net_s.parameters()):
        torch.testing.assert_close(p_b, p_s)  # same update after one SGD step


def test_second_view_is_the_horizontal_flip():
    images, targets, index = _batch()
    step, net = _step("nla", "batched")
    seen = []
    net.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    step(images, targets, index)
    first, second = seen[0].chunk(2)
    torch.testing.assert_close(second, first.flip(3))
    torch.testing.assert_close(first, images)


def test_baselines_compute_one_view_only():
    images, targets, index = _batch()
    step, net = _step("ce", "batched")
    step(images, targets, index)
    assert (net.calls, net.images) == (1, 6)
    assert build_method("nla", epochs=3).needs.flip_view and not build_method("focal").needs.flip_view
    users = [name for name in available() if method_needs(name).flip_view]
    assert users == ["nla", "eac"]  # declared by the method (Needs.flip_view), not by an isinstance check in the engine


def test_signals_come_from_the_loss_for_nla_and_from_the_logits_otherwise():
    images, targets, index = _batch()
    step, _ = _step("nla", "batched")
    _, logits, signals = step(images, targets, index)
    expected = naw_weights(logits, targets, epoch=0, epochs=10).weights  # the weights of the logits trained on
    torch.testing.assert_close(signals.weights, expected, rtol=1e-6, atol=0)
    assert torch.equal(signals.index, index) and not signals.weights.requires_grad
    probs = torch.softmax(logits, 1)
    torch.testing.assert_close(signals.p_gt, probs[torch.arange(6), targets])
    step_ce, _ = _step("ce", "batched")
    _, logits, signals = step_ce(images, targets, index)
    probs = torch.softmax(logits, 1)
    masked = probs.clone()
    masked[torch.arange(6), targets] = -1
    torch.testing.assert_close(signals.p_nn, masked.max(1).values)
    assert signals.weights is None
    assert torch.equal(signals.prediction, logits.argmax(1))


def test_non_finite_loss_stops_with_a_clear_message():
    images, targets, index = _batch()
    step, net = _step("ce", "batched")
    with torch.no_grad():
        net.fc.bias.fill_(float("nan"))
    with pytest.raises(NonFiniteLossError, match=r"epoch 3, step 1.*last good checkpoint is kept \(runs/x/last.pt\)"):
        train_one_epoch(step, [(images, targets, index)], epoch=2, last_good="runs/x/last.pt")


def test_a_nan_midway_names_its_own_step_though_checks_come_every_few_steps():
    images, targets, index = _batch()
    step, net = _step("nla", "batched")

    def batches():
        for i in range(5):
            if i == 2:  # step 3 goes bad; the check comes at step 4 (check_every=4)
                with torch.no_grad():
                    net.fc.bias.fill_(float("nan"))
            yield images, targets, index

    with pytest.raises(NonFiniteLossError, match=r"non-finite logits \(nan or inf\) at epoch 1, step 3:"):
        train_one_epoch(step, batches(), epoch=0, last_good="-", check_every=4)


def test_an_epoch_waits_for_the_device_only_at_its_checks(monkeypatch):
    images, targets, index = _batch()
    step, _ = _step("nla", "batched")
    syncs = []
    for name in ("item", "cpu", "tolist"):
        real = getattr(torch.Tensor, name)
        monkeypatch.setattr(torch.Tensor, name, lambda self, *a, _real=real, _n=name, **k: syncs.append(_n) or _real(self, *a, **k))
    train_one_epoch(step, [(images, targets, index)] * 7, epoch=0, last_good="-", check_every=50)
    # the old loop synchronised three times a step (two finiteness checks and loss.item()): 21 here
    assert len(syncs) <= 3, syncs


def test_epoch_result_counts_loss_and_accuracy():
    images, targets, index = _batch()
    step, _ = _step("ce", "batched")
    result = train_one_epoch(step, [(images, targets, index), (images[:2], targets[:2], index[:2])], epoch=0, last_good="-")
    assert result.samples == 8 and 0.0 <= result.accuracy <= 1.0 and result.loss > 0


def test_soft_targets_give_signals_and_accuracy_by_their_argmax():
    images, _, index = _batch()
    g = torch.Generator().manual_seed(2)
    q = torch.softmax(3 * torch.randn(6, 4, generator=g), dim=1)  # label distributions [B, C]
    y = q.argmax(1)
    for name in ("ce", "nla"):
        step, _ = _step(name, "batched")
        _, logits, signals = step(images, q, index)
        probs = torch.softmax(logits, 1)
        torch.testing.assert_close(signals.p_gt, probs[torch.arange(6), y])
        masked = probs.clone()
        masked[torch.arange(6), y] = -1
        torch.testing.assert_close(signals.p_nn, masked.max(1).values)
        assert torch.equal(signals.correct, probs.argmax(1) == y)

    step, net = _step("ce", "batched")
    step.optimizer.param_groups[0]["lr"] = 0.0  # the model stays as it is: predictions known in advance
    with torch.no_grad():
        predicted = net(images).argmax(1)
    given = predicted.clone()
    given[4:] = (predicted[4:] + 1) % 4  # the last two disagree with the prediction
    targets = 0.6 * torch.nn.functional.one_hot(given, 4) + 0.1  # argmax = given, rows sum to 1
    result = train_one_epoch(step, [(images, targets, index)], epoch=0, last_good="-")
    assert result.accuracy == pytest.approx(4 / 6) and result.samples == 6


def test_a_loss_without_a_soft_form_refuses_soft_targets_in_the_step():
    images, _, index = _batch()
    step, _ = _step("focal", "batched")
    with pytest.raises(ValueError, match="loss 'focal' cannot train on soft targets"):
        step(images, torch.full((6, 4), 0.25), index)


def test_device_and_precision_choices():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto").type in ("cpu", "mps")
        with pytest.raises(InputError, match="no CUDA GPU"):
            resolve_device("cuda")
    with pytest.raises(InputError, match="not a device"):
        resolve_device("tpu9")
    cpu = torch.device("cpu")
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("bf16", cpu) is torch.bfloat16
    with pytest.raises(InputError, match="fp16 is not supported on CPU"):
        autocast_dtype("fp16", cpu)
    assert use_channels_last("auto", cpu) and not use_channels_last("off", cpu)


def test_recipe_optimizer_and_schedule():
    params = [nn.Parameter(torch.zeros(2))]
    optimizer = build_optimizer(params, OptimConfig(name="adam", lr=1e-4, weight_decay=1e-4))
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["weight_decay"] == 1e-4
    scheduler = build_scheduler(optimizer, OptimConfig(gamma=0.9), epochs=60)
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-4 * 0.9**3)
    assert isinstance(build_optimizer(params, OptimConfig(name="sgd")), torch.optim.SGD)
    assert build_scheduler(optimizer, OptimConfig(scheduler="none"), epochs=3) is None
