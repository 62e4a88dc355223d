"""RUL against its official code (value and gradients, dropout and pairing included), its mixing
weights, and tiny ``fer-nla train`` runs (plain and through the cached frozen path)."""

from __future__ import annotations

import pytest
import torch
from tiny_runs import train_tiny
from torch import nn

from fer_nla.methods import MethodInputs, RULMethod, build_method
from fer_nla.methods.rul import add_up_loss, relative_mix

# --- the official code, transcribed -------------------------------------------------------------
# github.com/zyh-uaiaaaa/Relative-Uncertainty-Learning, commit 63b73f29da4c0f2e3c7776ac5141ff0a44b6120f:
# src/rul.py (Flatten, res18feature.log_var, the 'train' branch of forward), src/utils.py (mixup_data,
# mixup_criterion), src/main.py (outputs = fc(mixed_x); loss). The official `mu` branch is the
# embedding fc reads; fer-nla's pooled features take its part, so `mu` here is the features themselves,
# and log_var reads them as 1 x 1 maps (use_cuda=False: the CPU).


class Flatten(nn.Module):
    def forward(self, input):
        return input.view(input.size(0), -1)


def official_log_var(channels, out_dim, drop_rate):
    return nn.Sequential(
        nn.BatchNorm2d(channels, eps=2e-5, affine=False),
        nn.Dropout(p=drop_rate),
        Flatten(),
        nn.Linear(channels * 1 * 1, out_dim),
        nn.BatchNorm1d(out_dim, eps=2e-5))


def mixup_data(x, y, att, use_cuda=True):
    batch_size = x.size()[0]
    if use_cuda:
        index = torch.randperm(batch_size).cuda()
    else:
        index = torch.randperm(batch_size)
    att1 = att / (att + att[index])
    att2 = att[index] / (att + att[index])
    mixed_x = att1 * x + att2 * x[index, :]
    y_a, y_b = y, y[index]
    return mixed_x, y_a, y_b, att1, att2


def mixup_criterion(y_a, y_b):
    return lambda criterion, pred: 0.5 * criterion(pred, y_a) + 0.5 * criterion(pred, y_b)


def official_loss(log_var, fc, mu, labels):
    logvar = log_var(mu[:, :, None, None])
    mixed_x, y_a, y_b, att1, att2 = mixup_data(mu, labels, logvar.exp().mean(dim=1, keepdim=True), use_cuda=False)  # noqa: RUF059
    outputs = fc(mixed_x)
    criterion = nn.CrossEntropyLoss()
    loss_func = mixup_criterion(y_a, y_b)
    return loss_func(criterion, outputs)


# ------------------------------------------------------------------------------------------------

def _pair(channels, drop_rate, seed):
    torch.manual_seed(seed)
    theirs = official_log_var(channels, 16, drop_rate).double()
    with torch.no_grad():  # a non-trivial affine BatchNorm at the end
        theirs[4].weight.uniform_(0.5, 1.5)
        theirs[4].bias.uniform_(-0.5, 0.5)
    method = RULMethod(num_features=channels, out_dim=16, drop_rate=drop_rate).double()
    method.uncertainty[2].load_state_dict(theirs[3].state_dict())
    method.uncertainty[3].load_state_dict(theirs[4].state_dict())
    return method, theirs


@pytest.mark.parametrize("drop_rate", [0.0, 0.4])
@pytest.mark.parametrize("batch", [2, 9, 32])
def test_loss_and_gradients_equal_the_official_code(batch, drop_rate):
    method, theirs = _pair(10, drop_rate, seed=batch)
    fc = nn.Linear(10, 7).double()
    g = torch.Generator().manual_seed(batch)
    features = torch.randn(batch, 10, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 7, (batch,), generator=g)
    f_ours, f_theirs = features.clone().requires_grad_(True), features.clone().requires_grad_(True)
    torch.manual_seed(100 + batch)  # the same dropout masks, then the same randperm, in both
    ours = method(MethodInputs(fc(f_ours), labels, features=f_ours, classifier=fc)).loss
    torch.manual_seed(100 + batch)
    official = official_loss(theirs, fc, f_theirs, labels)
    torch.testing.assert_close(ours, official, rtol=0, atol=1e-12)
    ours_params = [f_ours, *method.uncertainty.parameters(), *fc.parameters()]
    their_params = [f_theirs, *theirs[3].parameters(), *theirs[4].parameters(), *fc.parameters()]
    for a, b in zip(torch.autograd.grad(ours, ours_params), torch.autograd.grad(official, their_params), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    assert all(p.grad is None for p in fc.parameters())  # autograd.grad: nothing accumulated


def test_mixing_weights_are_the_relative_uncertainties():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]], dtype=torch.float64)
    uncertainty = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64)
    perm = torch.tensor([1, 0, 2])
    mixed, weights = relative_mix(features, uncertainty, perm)
    torch.testing.assert_close(weights, torch.tensor([0.25, 0.75, 0.5], dtype=torch.float64))
    torch.testing.assert_close(mixed[0], 0.25 * features[0] + 0.75 * features[1])  # the more uncertain one weighs more
    torch.testing.assert_close(mixed[1], 0.75 * features[1] + 0.25 * features[0])
    torch.testing.assert_close(mixed[2], features[2])  # paired with itself
    _, equal = relative_mix(features, torch.full((3,), 0.7, dtype=torch.float64), torch.tensor([2, 0, 1]))
    torch.testing.assert_close(equal, torch.full((3,), 0.5, dtype=torch.float64))  # equal uncertainty: mixup at 1/2


def test_add_up_loss_and_a_batch_of_one():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    targets, perm = torch.tensor([0, 2]), torch.tensor([1, 0])
    ce = nn.functional.cross_entropy
    expected = 0.5 * ce(logits, targets) + 0.5 * ce(logits, torch.tensor([2, 0]))
    torch.testing.assert_close(add_up_loss(logits, targets, perm), expected)
    head = nn.Linear(4, 3)
    one = torch.randn(1, 4)
    out = RULMethod(num_features=4)(MethodInputs(head(one), torch.tensor([1]), features=one, classifier=head))
    torch.testing.assert_close(out.loss, ce(head(one), torch.tensor([1])))  # its own pair: no crash in BatchNorm


def test_options_needs_and_registry():
    method = build_method("rul", num_features=12, num_samples=3, epochs=4, class_counts=[1, 1])
    assert method.needs.features and method.needs.classifier and not method.needs.sample_index
    assert [tuple(p.shape) for p in method.own_parameters()] == [(64, 12), (64,), (64,), (64,)]
    assert method.uncertainty[1].p == 0.4
    with pytest.raises(ValueError, match="drop_rate=1.0"):
        RULMethod(num_features=3, drop_rate=1.0)
    with pytest.raises(ValueError, match=r"method 'rul' needs classifier in its MethodInputs"):
        method(MethodInputs(torch.zeros(2, 7), torch.tensor([0, 1]), features=torch.zeros(2, 12)))


@pytest.mark.parametrize("cached", [False, True])
def test_a_tiny_training_run_trains_the_branch_and_writes_a_checkpoint(tmp_path, cached):
    last = train_tiny(tmp_path / "run", "rul", cached=cached)
    state = last["resume"]["method"]
    assert state["uncertainty.2.weight"].shape[0] == 64 and int(state["uncertainty.3.num_batches_tracked"]) == 3
