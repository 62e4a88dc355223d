"""NLALoss against an independent statement of docs/NLA-METHOD.md.

The reference below is written from the method document alone, with
``torch.distributions.MultivariateNormal`` for the density, the reference code's
top-2 rule for the nearest negative and ``F.kl_div`` for the consistency term.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import MultivariateNormal

from fer_nla.losses import NLALoss, epoch_scale, js_consistency, naw_weights, nla_loss
from fer_nla.methods import MethodInputs, NLAMethod, build_method


def reference_nla(z, z_flip, y, *, epoch, epochs, lam=(0.5, 0.5, 0.5), slope=-15.0, schedule=True, t_lambda=1.0):
    z, z_flip = z.double(), z_flip.double()
    eps = 1.0 - math.exp(slope * epoch / epochs) if schedule else 1.0
    s, r = 0.8, 2.0
    cov_t = torch.tensor(
        [[s**2 + (s / r) ** 2, eps * (-(s**2) + (s / r) ** 2)], [eps * (-(s**2) + (s / r) ** 2), s**2 + (s / r) ** 2]],
        dtype=torch.float64,
    )
    s, r = 0.91, 6.0
    cov_f = torch.tensor([[s**2 + (s / r) ** 2, s**2 - (s / r) ** 2], [s**2 - (s / r) ** 2, s**2 + (s / r) ** 2]], dtype=torch.float64)
    gauss_t = MultivariateNormal(torch.tensor([0.5, 0.5], dtype=torch.float64), covariance_matrix=cov_t)
    gauss_f = MultivariateNormal(torch.tensor([0.30, 0.15], dtype=torch.float64), covariance_matrix=cov_f)

    probs = torch.softmax(z, dim=1)
    p_gt = probs.gather(1, y.unsqueeze(1)).squeeze(1)
    top2 = probs.topk(2, dim=1).values
    is_max = top2[:, 0] == p_gt
    p_nn = torch.where(is_max, top2[:, 1], top2[:, 0])
    point = torch.stack([p_gt, p_nn], dim=1)
    w = torch.where(is_max, t_lambda * gauss_t.log_prob(point).exp(), gauss_f.log_prob(point).exp())

    ce = F.cross_entropy(z, y, reduction="none")
    m = 0.5 * (z + z_flip)
    js = 0.5 * (
        F.kl_div(F.log_softmax(z, dim=1), F.softmax(m, dim=1), reduction="sum")
        + F.kl_div(F.log_softmax(z_flip, dim=1), F.softmax(m, dim=1), reduction="sum")
    )
    loss = lam[0] * ce.mean() + lam[1] * (w * ce).mean() + lam[2] * js
    return loss, w, p_gt, p_nn, is_max


def _batch(batch, classes, seed, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, classes, generator=g) * scale
    z_flip = z + 0.5 * torch.randn(batch, classes, generator=g)
    y = torch.randint(0, classes, (batch,), generator=g)
    return z, z_flip, y


def _value_and_grads(fn, z, z_flip, y):
    z = z.clone().requires_grad_(True)
    z_flip = z_flip.clone().requires_grad_(True)
    out = fn(z, z_flip, y)
    loss = out[0] if isinstance(out, tuple) else out
    gz, gf = torch.autograd.grad(loss, (z, z_flip))
    return loss.detach(), gz, gf


@pytest.mark.parametrize("classes", [7, 8])
@pytest.mark.parametrize("batch", [1, 2, 5, 32, 128])
@pytest.mark.parametrize("epoch", [0, 1, 7, 29])
def test_value_and_gradient_match_the_method_document(classes, batch, epoch):
    epochs = 30
    z, z_flip, y = _batch(batch, classes, seed=1000 * classes + 10 * batch + epoch)
    loss = NLALoss(epochs)
    loss.set_epoch(epoch)
    ours = _value_and_grads(loss, z, z_flip, y)
    ref = _value_and_grads(lambda a, b, t: reference_nla(a, b, t, epoch=epoch, epochs=epochs), z, z_flip, y)
    assert torch.allclose(ours[0].double(), ref[0], rtol=1e-5, atol=1e-5)
    assert torch.allclose(ours[1].double(), ref[1].double(), rtol=1e-5, atol=1e-6)
    assert torch.allclose(ours[2].double(), ref[2].double(), rtol=1e-5, atol=1e-6)


def test_recorded_signals_match_the_reference():
    z, z_flip, y = _batch(64, 7, seed=3)
    loss = NLALoss(10)
    loss.set_epoch(4)
    _, last = loss.loss_and_signals(z, z_flip, y)
    _, w, p_gt, p_nn, is_max = reference_nla(z, z_flip, y, epoch=4, epochs=10)
    assert torch.allclose(last.weights.double(), w, rtol=1e-5, atol=1e-7)
    assert torch.allclose(last.p_gt.double(), p_gt, atol=1e-6)
    assert torch.allclose(last.p_nn.double(), p_nn, atol=1e-6)
    assert torch.equal(last.correct, is_max)
    recorded = NLAMethod(loss)(MethodInputs(z.clone().requires_grad_(True), y, z_flip)).sample_weights
    assert torch.equal(recorded, last.weights)  # what the trainer records is what the loss weighted
    assert not recorded.requires_grad
    assert 0 < int(is_max.sum()) < 64  # both branches exercised


def test_functional_form_equals_module_and_naw_function():
    z, z_flip, y = _batch(16, 8, seed=5)
    module = NLALoss(20, t_lambda=1.5, slope=-10.0)
    module.set_epoch(6)
    functional = nla_loss(z, z_flip, y, epoch=6, epochs=20, t_lambda=1.5, slope=-10.0)
    assert torch.allclose(module(z, z_flip, y), functional, rtol=1e-6)
    signals = naw_weights(z, y, epoch=6, epochs=20, t_lambda=1.5, slope=-10.0)
    value, last = module.loss_and_signals(z, z_flip, y)
    assert torch.allclose(signals.weights, last.weights, rtol=1e-6)
    assert torch.equal(value, module(z, z_flip, y))


def test_gradcheck_float64():
    z, z_flip, y = _batch(6, 7, seed=11, scale=1.0)
    loss = NLALoss(10)
    loss.set_epoch(3)
    z = z.double().requires_grad_(True)
    z_flip = z_flip.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: loss(a, b, y), (z, z_flip), eps=1e-6, atol=1e-5)


def test_tie_between_given_label_and_another_class_is_the_correct_branch():
    z = torch.tensor([[2.0, 2.0, 0.0, -1.0, 0.5, 0.1, 0.3]])
    z_flip = z.clone()
    for target in (0, 1):
        y = torch.tensor([target])
        loss = NLALoss(10)
        loss.set_epoch(2)
        ours = _value_and_grads(loss, z, z_flip, y)
        ref = _value_and_grads(lambda a, b, t: reference_nla(a, b, t, epoch=2, epochs=10), z, z_flip, y)
        _, last = loss.loss_and_signals(z, z_flip, y)
        assert bool(last.correct.item())
        assert last.p_gt.item() == pytest.approx(last.p_nn.item())
        assert torch.allclose(ours[0].double(), ref[0], rtol=1e-5)
        assert torch.allclose(ours[1].double(), ref[1].double(), rtol=1e-5, atol=1e-6)


def test_batch_of_one():
    z, z_flip, y = _batch(1, 8, seed=21)
    loss = NLALoss(5)
    value = loss(z, z_flip, y)
    ref, *_ = reference_nla(z, z_flip, y, epoch=0, epochs=5)
    assert value.shape == ()
    assert value.item() == pytest.approx(ref.item(), rel=1e-5)


def test_extreme_logits_stay_finite():
    z = torch.tensor([[100.0, -100.0, 0.0, 50.0, -50.0, 100.0, -100.0], [-100.0] * 6 + [100.0]])
    z_flip = -z
    y = torch.tensor([1, 0])
    z = z.requires_grad_(True)
    loss = NLALoss(10)(z, z_flip, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(z.grad).all()


def test_schedule_off_uses_full_correlation():
    z, z_flip, y = _batch(32, 7, seed=31)
    loss = NLALoss(10, schedule=False)
    loss.set_epoch(0)
    ours = loss(z, z_flip, y)
    ref, *_ = reference_nla(z, z_flip, y, epoch=0, epochs=10, schedule=False)
    assert ours.item() == pytest.approx(ref.item(), rel=1e-5)
    scheduled = NLALoss(10)(z, z_flip, y)  # epoch 0: eps = 0, no correlation
    assert abs(scheduled.item() - ours.item()) > 1e-4


def test_detach_weights_leaves_no_gradient_through_the_weights():
    z, z_flip, y = _batch(16, 7, seed=41)
    z = z.requires_grad_(True)
    lam = dict(lam_a=0.0, lam_b=1.0, lam_c=0.0)
    detached = NLALoss(10, detach_weights=True, **lam)
    value = detached(z, z_flip, y)
    (grad,) = torch.autograd.grad(value, z)
    w = detached.loss_and_signals(z, z_flip, y)[1].weights.detach()
    z2 = z.detach().clone().requires_grad_(True)
    expected = (w * F.cross_entropy(z2, y, reduction="none")).mean()
    (expected_grad,) = torch.autograd.grad(expected, z2)
    assert torch.allclose(grad, expected_grad, atol=1e-7)
    attached = NLALoss(10, **lam)
    (grad_attached,) = torch.autograd.grad(attached(z, z_flip, y), z)
    assert not torch.allclose(grad, grad_attached, atol=1e-5)


def test_only_cross_entropy_when_lam_b_and_lam_c_are_zero():
    z, z_flip, y = _batch(32, 8, seed=51)
    loss = NLALoss(10, lam_a=0.7, lam_b=0.0, lam_c=0.0)
    assert loss(z, z_flip, y).item() == pytest.approx(0.7 * F.cross_entropy(z, y).item(), rel=1e-6)


def test_consistency_is_a_batch_sum_and_zero_for_identical_views():
    z, z_flip, _ = _batch(8, 7, seed=61)
    assert js_consistency(z, z).item() == pytest.approx(0.0, abs=1e-6)
    per_row = torch.stack([js_consistency(z[i : i + 1], z_flip[i : i + 1]) for i in range(8)])
    assert js_consistency(z, z_flip).item() == pytest.approx(per_row.sum().item(), rel=1e-5)


def test_epoch_scale_schedule():
    assert epoch_scale(0, 60) == 0.0
    assert epoch_scale(30, 60) == pytest.approx(1 - math.exp(-7.5))
    assert epoch_scale(5, 60, schedule=False) == 1.0
    loss = NLALoss(60)
    loss.set_epoch(4)
    assert loss.epoch_scale == pytest.approx(1 - math.exp(-1.0))


def test_constants_are_buffers_and_follow_the_module():
    loss = NLALoss(10)
    names = {name for name, _ in loss.named_buffers()}
    assert {"mean_t", "inv_cov_t", "norm_t", "mean_f", "inv_cov_f", "norm_f"} <= names
    state = loss.state_dict()
    assert state["norm_f"].item() == pytest.approx(1 / (2 * math.pi * math.sqrt(0.851103 * 0.851103 - 0.805097**2)), rel=1e-4)


def test_half_precision_inputs_are_computed_in_float32():
    z, z_flip, y = _batch(16, 7, seed=71)
    loss = NLALoss(10)
    half = loss(z.bfloat16(), z_flip.bfloat16(), y)
    assert half.dtype == torch.float32
    full = loss(z.bfloat16().float(), z_flip.bfloat16().float(), y)
    assert half.item() == pytest.approx(full.item(), rel=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert loss(z, z_flip, y).dtype == torch.float32


@pytest.mark.parametrize(
    ("z", "z_flip", "y", "message"),
    [
        (torch.zeros(4, 7), torch.zeros(4, 7), torch.tensor([0, 1, 7, 2]), "out of range"),
        (torch.zeros(4, 7), torch.zeros(4, 7), torch.tensor([0, -1, 3, 2]), "out of range"),
        (torch.zeros(4, 7), torch.zeros(3, 7), torch.tensor([0, 1, 2, 3]), "logits_flip"),
        (torch.zeros(4, 7), torch.zeros(4, 7), torch.tensor([0, 1, 2]), "targets must have shape"),
        (torch.tensor([[float("nan")] * 7]), torch.zeros(1, 7), torch.tensor([0]), "non-finite"),
        (torch.zeros(1, 7), torch.tensor([[float("inf")] * 7]), torch.tensor([0]), "non-finite"),
        (torch.zeros(2, 7), torch.zeros(2, 7), torch.tensor([0.0, 1.0]), "integer"),
    ],
)
def test_bad_input_is_a_clear_value_error(z, z_flip, y, message):
    with pytest.raises(ValueError, match=message):
        NLALoss(10)(z, z_flip, y)


def test_invalid_construction():
    with pytest.raises(ValueError, match="epochs"):
        NLALoss(0)
    with pytest.raises(ValueError, match="positive definite"):
        NLALoss(10, sigma_f=0.0)  # det = 4 s^2 (s/r)^2 vanishes only for s = 0
    with pytest.raises(ValueError, match="needs epochs"):
        build_method("nla")


def test_consistency_averaged_is_the_summed_term_over_the_batch_size():
    """consistency_reduction="mean" (an ablation option; the reference sums): JS / B, so the
    objective with lam_a = lam_b = 0 scales by 1/B and its gradient likewise."""
    z, z_flip, y = _batch(12, 7, seed=61)
    lam = dict(lam_a=0.0, lam_b=0.0, lam_c=1.0)
    summed = NLALoss(10, **lam)(z, z_flip, y)
    averaged = NLALoss(10, consistency_reduction="mean", **lam)(z, z_flip, y)
    assert averaged.item() == pytest.approx(summed.item() / 12, rel=1e-6)
    assert js_consistency(z, z_flip, reduction="mean").item() == pytest.approx(js_consistency(z, z_flip).item() / 12, rel=1e-6)
    full = dict(lam_a=0.5, lam_b=0.5, lam_c=0.5)
    difference = NLALoss(10, **full)(z, z_flip, y) - NLALoss(10, consistency_reduction="mean", **full)(z, z_flip, y)
    assert difference.item() == pytest.approx(0.5 * summed.item() * (1 - 1 / 12), rel=1e-5)
    assert build_method("nla", epochs=10, consistency_reduction="mean").loss.consistency_reduction == "mean"
    with pytest.raises(ValueError, match="consistency_reduction"):
        NLALoss(10, consistency_reduction="max")
    z = z.detach().requires_grad_(True)
    (g_sum,) = torch.autograd.grad(NLALoss(10, **lam)(z, z_flip, y), z)
    (g_mean,) = torch.autograd.grad(NLALoss(10, consistency_reduction="mean", **lam)(z, z_flip, y), z)
    assert torch.allclose(g_mean * 12, g_sum, atol=1e-6)
