"""Soft targets (label distributions [B, C]): each accepting loss against its formula written in
numpy, one-hot soft == hard (value and gradient), NLA's argmax rule, and clear refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fer_nla.errors import InputError
from fer_nla.losses import NLALoss, check_inputs, hard_labels, nla_loss
from fer_nla.methods import MethodInputs, available, build_method, require_soft_target_support, soft_target_methods

Z = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0], [0.4, -0.3, 1.2]])
Q = np.array([[0.6, 0.3, 0.1], [0.0, 0.25, 0.75], [0.5, 0.5, 0.0], [0.2, 0.2, 0.6]])  # row 2: a tie
COUNTS = np.array([50, 30, 5])


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def soft_ce(z, q):
    return -(q * np.log(softmax(z))).sum(axis=1).mean()


def call(method, z, targets, z_flip=None):
    """The method's loss of one batch; the flipped view only where the method asks for it."""
    return method(MethodInputs(z, targets, z_flip if method.needs.flip_view else None)).loss


def run(name, z=Z, q=Q, **options):
    method = build_method(name, epochs=10, class_counts=COUNTS, **options)
    zt = torch.tensor(z, dtype=torch.float64)
    return call(method, zt, torch.tensor(q, dtype=torch.float64), zt.flip(1)).item()


def test_which_losses_take_distributions():
    assert soft_target_methods() == ["ce", "label_smoothing", "class_balanced", "logit_adjusted", "sce", "nla"]


def test_soft_ce_is_the_formula():
    assert run("ce") == pytest.approx(soft_ce(Z, Q), rel=1e-12)
    expected = -(0.6 * math.log(softmax(Z)[0, 0]) + 0.3 * math.log(softmax(Z)[0, 1]) + 0.1 * math.log(softmax(Z)[0, 2]))
    assert run("ce", z=Z[:1], q=Q[:1]) == pytest.approx(expected, rel=1e-12)


def test_label_smoothing_smooths_the_given_distribution():
    eps = 0.1
    assert run("label_smoothing") == pytest.approx(soft_ce(Z, (1 - eps) * Q + eps / 3), rel=1e-12)
    assert run("label_smoothing", smoothing=0.0) == pytest.approx(soft_ce(Z, Q), rel=1e-12)


def test_logit_adjusted_is_soft_ce_of_the_adjusted_logits():
    prior = COUNTS / COUNTS.sum()
    assert run("logit_adjusted") == pytest.approx(soft_ce(Z + np.log(prior), Q), rel=1e-6)
    assert run("logit_adjusted", tau=0.5) == pytest.approx(soft_ce(Z + 0.5 * np.log(prior), Q), rel=1e-6)


def test_sce_uses_the_distribution_in_both_terms():
    p = np.clip(softmax(Z), 1e-7, 1)
    rce = -(p * np.log(np.clip(Q, 1e-4, 1))).sum(axis=1).mean()
    assert run("sce") == pytest.approx(0.1 * soft_ce(Z, Q) + 1.0 * rce, rel=1e-12)


def _value_and_grad(loss, z, z_flip, targets):
    z, z_flip = z.clone().requires_grad_(True), z_flip.clone().requires_grad_(True)
    value = call(loss, z, targets, z_flip)
    value.backward()
    return value.detach(), z.grad, z_flip.grad


@pytest.mark.parametrize("name", ["ce", "label_smoothing", "logit_adjusted", "sce", "nla"])
def test_one_hot_soft_targets_equal_hard_targets(name):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(12, 5, generator=g) * 2
    z_flip = z + 0.3 * torch.randn(12, 5, generator=g)
    y = torch.randint(0, 5, (12,), generator=g)
    loss = build_method(name, epochs=10, class_counts=[40, 30, 20, 10, 5])
    loss.set_epoch(4)
    hard = _value_and_grad(loss, z, z_flip, y)
    soft = _value_and_grad(loss, z, z_flip, F.one_hot(y, 5).float())
    for a, b in zip(hard, soft):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_nla_uses_the_argmax_of_the_distribution():
    g = torch.Generator().manual_seed(5)
    z = torch.randn(10, 4, generator=g) * 3
    z_flip = z + 0.5 * torch.randn(10, 4, generator=g)
    q = torch.softmax(torch.randn(10, 4, generator=g) * 2, dim=1)
    y = q.argmax(dim=1)
    loss = NLALoss(10)
    loss.set_epoch(2)
    value, signals = loss.loss_and_signals(z, z_flip, q)
    assert value.item() == pytest.approx(loss(z, z_flip, y).item(), rel=1e-7)
    probs = torch.softmax(z, dim=1)
    torch.testing.assert_close(signals.p_gt, probs[torch.arange(10), y])  # the probability of the argmax class
    others = probs.clone()
    others[torch.arange(10), y] = -1
    torch.testing.assert_close(signals.p_nn, others.max(dim=1).values)  # the top other class
    # the functional form agrees
    assert nla_loss(z, z_flip, q, epoch=2, epochs=10).item() == pytest.approx(value.item(), rel=1e-7)
    assert hard_labels(torch.tensor([[0.4, 0.4, 0.2]])).tolist() == [0]  # a tie: the first maximum


def test_soft_ce_gradcheck_float64():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(4, 3, dtype=torch.float64, generator=g, requires_grad=True)
    q = torch.tensor(Q, dtype=torch.float64)
    for name in ("ce", "label_smoothing", "sce"):
        loss = build_method(name)
        assert torch.autograd.gradcheck(lambda x: call(loss, x, q), (z,))  # noqa: B023
    # and the analytic gradient of soft CE: (softmax(z) - q) / B
    z.grad = None
    call(build_method("ce"), z, q).backward()
    torch.testing.assert_close(z.grad, (torch.softmax(z, 1) - q).detach() / 4)


@pytest.mark.parametrize(("name", "why"), [
    ("focal", "Lin et al. 2017"), ("gce", "Zhang and Sabuncu 2018"),
])
def test_losses_without_a_soft_form_refuse_clearly(name, why):
    z, q = torch.zeros(2, 3), torch.full((2, 3), 1 / 3)
    for check in (True, False):  # the trainer builds losses with check=False: still a clear refusal
        loss = build_method(name, class_counts=COUNTS, check=check)
        with pytest.raises(ValueError, match=rf"loss '{name}' cannot train on soft targets.*{why}.*loss\.name=ce"):
            call(loss, z, q)
        with pytest.raises(ValueError, match=rf"loss '{name}' cannot train on soft targets.*{why}"):
            loss.loss(z, q)  # the plain loss refuses too, without the registry's list of alternatives
    with pytest.raises(InputError, match=rf"loss '{name}'.*data\.labels='distribution'.*data\.labels=plurality"):
        require_soft_target_support(name, label_mode="distribution")


def test_every_loss_either_takes_distributions_or_refuses():
    for name in soft_target_methods():
        require_soft_target_support(name, label_mode="distribution")  # no error
    assert set(available()) - set(soft_target_methods()) == {"focal", "gce", "scn", "rul", "eac"}


def test_check_inputs_accepts_distributions_and_names_what_is_wrong():
    z = torch.zeros(3, 4)
    check_inputs(z, None, torch.full((3, 4), 0.25))
    check_inputs(z, None, torch.full((3, 4), 0.25) + 1e-4)  # within the tolerance
    bad = torch.full((3, 4), 0.25)
    bad[1] = torch.tensor([0.5, 0.5, 0.5, 0.0])
    with pytest.raises(ValueError, match=r"rows \[1\] are not \(row sums \[1\.5\]\)"):
        check_inputs(z, None, bad)
    negative = torch.tensor([[1.2, -0.2, 0.0, 0.0]] * 3)
    with pytest.raises(ValueError, match=r"rows \[0, 1, 2\] are not"):
        check_inputs(z, None, negative)
    with pytest.raises(ValueError, match=r"soft targets must have shape \(3, 4\).*got \(3, 5\)"):
        check_inputs(z, None, torch.full((3, 5), 0.2))
    with pytest.raises(ValueError, match=r"must be integer class indices, got dtype torch.float32"):
        check_inputs(z, None, torch.zeros(3))
    with pytest.raises(ValueError, match=r"\(3, 4\) \(float probabilities\)"):
        check_inputs(z, None, torch.zeros(3, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="soft targets must be probabilities"):
        call(build_method("ce"), z, bad)
