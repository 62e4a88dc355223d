"""Each baseline against its published formula on a small case computed by hand (numpy), through
the method interface the trainer uses (``build_method`` + ``MethodInputs``)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fer_nla.losses.baselines import class_balanced_weights, focal_loss
from fer_nla.methods import MethodInputs, Needs, available, build_method, method_parameters

Z = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0]])
Y = np.array([0, 2, 1])
COUNTS = np.array([50, 30, 5])


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


P = softmax(Z)
P_Y = P[np.arange(3), Y]
CE = -np.log(P_Y)


def call(method, z, y, z_flip=None):
    """The method's loss of one batch; the flipped view only where the method asks for it."""
    return method(MethodInputs(z, y, z_flip if method.needs.flip_view else None)).loss


def run(name, **options):
    method = build_method(name, epochs=10, class_counts=COUNTS, **options)
    z = torch.tensor(Z, dtype=torch.float32)
    return call(method, z, torch.tensor(Y), z.flip(1)).item()


LOSSES = ["ce", "label_smoothing", "focal", "class_balanced", "logit_adjusted", "gce", "sce", "nla"]  # logits (and flip) only


def test_registry_names():
    assert available() == [*LOSSES, "scn", "rul", "eac"]  # then the methods with features, state or a head


def test_cross_entropy():
    assert run("ce") == pytest.approx(CE.mean(), rel=1e-6)


def test_label_smoothing():
    eps, k = 0.1, 3
    target = np.full((3, k), eps / k)
    target[np.arange(3), Y] += 1 - eps
    expected = -(target * np.log(P)).sum(axis=1).mean()
    assert run("label_smoothing") == pytest.approx(expected, rel=1e-6)
    assert run("label_smoothing", smoothing=0.0) == pytest.approx(CE.mean(), rel=1e-6)


def test_focal():
    expected = ((1 - P_Y) ** 2 * CE).mean()
    assert run("focal") == pytest.approx(expected, rel=1e-6)
    assert run("focal", gamma=0.0) == pytest.approx(CE.mean(), rel=1e-6)


def test_class_balanced():
    beta = 0.9999
    w = (1 - beta) / (1 - beta**COUNTS)
    w = w * 3 / w.sum()
    assert class_balanced_weights(COUNTS).numpy() == pytest.approx(w, rel=1e-6)
    assert run("class_balanced") == pytest.approx((w[Y] * CE).mean(), rel=1e-5)
    w_half = (1 - 0.5) / (1 - 0.5**COUNTS)
    w_half = w_half * 3 / w_half.sum()
    assert run("class_balanced", beta=0.5) == pytest.approx((w_half[Y] * CE).mean(), rel=1e-5)


def test_class_balanced_on_label_distributions_weights_each_class_term():
    beta = 0.9999
    w = (1 - beta) / (1 - beta**COUNTS)
    w = w * 3 / w.sum()
    q = np.array([[0.6, 0.4, 0.0], [0.0, 0.1, 0.9], [0.2, 0.7, 0.1]])
    expected = -(w * q * np.log(P)).sum(axis=1).mean()
    method = build_method("class_balanced", class_counts=COUNTS)
    z = torch.tensor(Z, dtype=torch.float32)
    assert call(method, z, torch.tensor(q, dtype=torch.float32)).item() == pytest.approx(expected, rel=1e-5)
    one_hot = torch.eye(3)[torch.tensor(Y)]
    assert call(method, z, one_hot).item() == pytest.approx(run("class_balanced"), rel=1e-6)


def test_logit_adjusted_losses_record_the_offset_they_add():
    log_prior = np.log(COUNTS / COUNTS.sum())
    assert build_method("logit_adjusted", class_counts=COUNTS).logit_offset() == pytest.approx(log_prior, rel=1e-6)
    assert build_method("logit_adjusted", class_counts=COUNTS, tau=0.5).logit_offset() == pytest.approx(0.5 * log_prior, rel=1e-6)
    assert build_method("nla", epochs=10, class_counts=COUNTS, prior_tau=1.0).logit_offset() == pytest.approx(log_prior, rel=1e-6)
    weights = class_balanced_weights(COUNTS).numpy()
    assert build_method("class_balanced", class_counts=COUNTS).logit_offset() == pytest.approx(-np.log(weights), rel=1e-6)
    for name in ("ce", "focal", "nla"):
        assert build_method(name, epochs=10, class_counts=COUNTS).logit_offset() is None


def test_nla_with_prior_tau_is_nla_on_the_adjusted_logits():
    offset = torch.tensor(np.log(COUNTS / COUNTS.sum()), dtype=torch.float32)
    z = torch.tensor(Z, dtype=torch.float32)
    adjusted = build_method("nla", epochs=10, class_counts=COUNTS, prior_tau=1.0)
    plain = build_method("nla", epochs=10, class_counts=COUNTS)
    expected = call(plain, z + offset, torch.tensor(Y), z.flip(1) + offset).item()
    assert call(adjusted, z, torch.tensor(Y), z.flip(1)).item() == pytest.approx(expected, rel=1e-6)
    assert expected != pytest.approx(call(plain, z, torch.tensor(Y), z.flip(1)).item(), rel=1e-3)
    with pytest.raises(ValueError, match="prior_tau needs class_counts"):
        build_method("nla", epochs=10, prior_tau=1.0)


def test_class_balanced_beta_zero_is_plain_ce():
    assert run("class_balanced", beta=0.0) == pytest.approx(CE.mean(), rel=1e-6)


def test_logit_adjusted():
    prior = COUNTS / COUNTS.sum()
    adjusted = softmax(Z + np.log(prior))
    expected = -np.log(adjusted[np.arange(3), Y]).mean()
    assert run("logit_adjusted") == pytest.approx(expected, rel=1e-6)
    assert run("logit_adjusted", tau=0.0) == pytest.approx(CE.mean(), rel=1e-6)


def test_generalized_ce():
    q = 0.7
    assert run("gce") == pytest.approx(((1 - P_Y**q) / q).mean(), rel=1e-6)
    # q -> 0 recovers CE, q = 1 is the mean absolute error of the softmax
    assert run("gce", q=1.0) == pytest.approx((1 - P_Y).mean(), rel=1e-6)


def test_symmetric_ce():
    # RCE = -sum_k p_k log(clip(onehot_k, 1e-4, 1)) = -log(1e-4) * (sum of the other classes' p)
    p = np.clip(P, 1e-7, 1)
    rce = -math.log(1e-4) * (p.sum(axis=1) - p[np.arange(3), Y])
    assert run("sce") == pytest.approx(0.1 * CE.mean() + 1.0 * rce.mean(), rel=1e-6)
    assert run("sce", alpha=1.0, beta=0.0) == pytest.approx(CE.mean(), rel=1e-6)


def test_baselines_need_nothing_beyond_logits_and_targets():
    for name in LOSSES:
        if name == "nla":
            continue
        method = build_method(name, epochs=10, class_counts=COUNTS)
        assert method.needs == Needs(soft_targets=method.needs.soft_targets), name  # no flip, features or index
        assert not method.sample_weights and method.own_parameters() == []
        z, y = torch.tensor(Z, dtype=torch.float32), torch.tensor(Y)
        assert method(MethodInputs(z, y)).sample_weights is None
        assert call(method, z, y).item() == method.loss(z, y).item()  # the adapter adds nothing


def test_focal_is_kornias_and_equals_the_formula_in_value_and_gradient():
    g = torch.Generator().manual_seed(7)
    for gamma in (0.0, 0.5, 2.0, 5.0):
        for dtype in (torch.float32, torch.float64):
            z = (4 * torch.randn(64, 8, generator=g)).to(dtype).requires_grad_(True)
            y = torch.randint(0, 8, (64,), generator=g)
            log_pt = F.log_softmax(z, dim=1).gather(1, y.unsqueeze(1)).squeeze(1)
            expected = (-((1.0 - log_pt.exp()) ** gamma) * log_pt).mean()  # the formula written out
            ours = focal_loss(z, y, gamma=gamma)
            (g_expected,) = torch.autograd.grad(expected, z)
            (g_ours,) = torch.autograd.grad(ours, z)
            torch.testing.assert_close(ours, expected, rtol=1e-6, atol=1e-7)
            torch.testing.assert_close(g_ours, g_expected, rtol=1e-5, atol=1e-7)
    # p_t rounds to 1 with gamma < 1: the formula's gradient is nan (0 * inf), kornia's is 0
    z = torch.tensor([[50.0, 0.0, 0.0]], requires_grad=True)
    (grad,) = torch.autograd.grad(focal_loss(z, torch.tensor([0]), gamma=0.5), z)
    assert grad.tolist() == [[0.0, 0.0, 0.0]]


def test_every_loss_backpropagates_and_has_set_epoch():
    torch.manual_seed(0)
    z = torch.randn(16, 3, requires_grad=True)
    y = torch.randint(0, 3, (16,))
    for name in LOSSES:  # SCN, RUL and EAC: tests/methods/test_scn.py, test_rul.py, test_eac.py
        method = build_method(name, epochs=4, class_counts=COUNTS)
        method.set_epoch(2)
        value = call(method, z, y, z.detach().flip(0))
        (grad,) = torch.autograd.grad(value, z)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_context_goes_only_where_it_is_taken_and_errors_name_the_fix():
    assert "class_counts" in method_parameters("class_balanced")
    assert "class_counts" not in method_parameters("ce")
    with pytest.raises(ValueError, match="needs class_counts"):
        build_method("logit_adjusted")
    with pytest.raises(ValueError, match="no option gamma; its options are: smoothing"):
        build_method("label_smoothing", gamma=2.0)
    with pytest.raises(ValueError, match="unknown loss 'nope'; available: ce"):
        build_method("nope")
    method = build_method("class_balanced", class_counts=[1, 2])
    with pytest.raises(ValueError, match="2 class counts but logits have 3"):
        method(MethodInputs(torch.zeros(2, 3), torch.tensor([0, 1])))
