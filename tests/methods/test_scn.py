"""SCN against its official training loop (value, gradients, relabelling), its relabelling
schedule and state across epochs and a resume, and a tiny ``fer-nla train`` run."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tiny_runs import train_tiny
from torch import nn

from fer_nla.methods import MethodInputs, SCNMethod, build_method
from fer_nla.methods.scn import rank_regularization

# --- the official code, transcribed -------------------------------------------------------------
# github.com/kaiwang960112/Self-Cure-Network, src/train.py, commit 9f4c3ad80ff29c7eaaac3d1b283a456d3f23a587:
# Res18Feature.forward after the backbone (drop_rate 0: no dropout), and run_training's loop body
# (rank regularisation, loss, relabelling of train_loader.dataset.label). `x` is the pooled features.


class OfficialHead(nn.Module):
    def __init__(self, fc_in_dim, num_classes):
        super().__init__()
        self.fc = nn.Linear(fc_in_dim, num_classes)
        self.alpha = nn.Sequential(nn.Linear(fc_in_dim, 1), nn.Sigmoid())

    def forward(self, x):
        attention_weights = self.alpha(x)
        out = attention_weights * self.fc(x)
        return attention_weights, out


def official_step(res18, x, targets, indexes, dataset_label, i, *, beta=0.7, margin_1=0.15, margin_2=0.2,
                  relabel_epoch=10):
    batch_sz = x.size(0)
    tops = int(batch_sz * beta)
    attention_weights, outputs = res18(x)
    _, top_idx = torch.topk(attention_weights.squeeze(), tops)
    _, down_idx = torch.topk(attention_weights.squeeze(), batch_sz - tops, largest=False)
    high_group = attention_weights[top_idx]
    low_group = attention_weights[down_idx]
    high_mean = torch.mean(high_group)
    low_mean = torch.mean(low_group)
    diff = low_mean - high_mean + margin_1
    if diff > 0:
        RR_loss = diff
    else:
        RR_loss = 0.0
    loss = torch.nn.CrossEntropyLoss()(outputs, targets) + RR_loss
    if i >= relabel_epoch:
        sm = torch.softmax(outputs, dim=1)
        Pmax, predicted_labels = torch.max(sm, 1)
        Pgt = torch.gather(sm, 1, targets.view(-1, 1)).squeeze()
        true_or_false = Pmax - Pgt > margin_2
        update_idx = true_or_false.nonzero().squeeze()
        label_idx = indexes[update_idx]
        relabels = predicted_labels[update_idx]
        dataset_label[label_idx.cpu().numpy()] = relabels.cpu().numpy()
    return loss


# ------------------------------------------------------------------------------------------------

def _setup(seed, *, batch=16, channels=12, classes=7, scale=1.0):
    torch.manual_seed(seed)
    official = OfficialHead(channels, classes).double()
    method = SCNMethod(num_samples=200, num_features=channels).double()
    method.attention.load_state_dict(official.alpha.state_dict())
    g = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(batch, channels, generator=g, dtype=torch.float64)
    labels = torch.randint(0, classes, (200,), generator=g)
    indexes = torch.randperm(200, generator=g)[:batch]
    return official, method, x, labels, indexes


def _grads(loss, tensors):
    return torch.autograd.grad(loss, tensors)


SETTINGS = [(0.1, 0.15), (0.1, 0.07), (2.0, 0.15), (2.0, 0.0)]  # (feature scale, margin_1): RR on, on, off, off


@pytest.mark.parametrize(("scale", "margin_1"), SETTINGS)
@pytest.mark.parametrize("batch", [16, 7, 64])
def test_loss_and_gradients_equal_the_official_loop(batch, scale, margin_1):
    official, method, x, labels, indexes = _setup(batch, batch=batch, scale=scale)
    method.margin_1 = margin_1
    targets = labels[indexes]
    x_ours, x_off = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ours = method(MethodInputs(official.fc(x_ours), targets, features=x_ours, indices=indexes)).loss
    theirs = official_step(official, x_off, targets, indexes, labels.numpy().copy(), 1, margin_1=margin_1)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    params_ours = [x_ours, *method.attention.parameters(), *official.fc.parameters()]
    grads_ours = _grads(ours, params_ours)
    grads_theirs = _grads(theirs, [x_off, *official.alpha.parameters(), *official.fc.parameters()])
    for a, b in zip(grads_ours, grads_theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("batch", [16, 7, 64])
def test_rank_regularisation_is_active_and_inactive_in_the_comparison(batch):
    for (scale, margin), active in zip(SETTINGS, (True, True, False, False), strict=True):
        _, method, x, _, _ = _setup(batch, batch=batch, scale=scale)
        alpha = method.attention(x).squeeze(1)
        assert bool(rank_regularization(alpha, beta=0.7, margin=margin) > 0) == active, (scale, margin)
    assert rank_regularization(alpha[:1], beta=0.7, margin=0.15) == 0  # a group empty (official: nan > 0 is False)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_relabelling_equals_the_official_one_and_only_from_relabel_epoch(seed):
    official, method, x, labels, indexes = _setup(seed, scale=6.0)  # large logits: some samples pass margin_2
    given = labels.numpy().copy()
    for epoch in range(11):  # 0-based; the official loop's i = epoch + 1
        method.set_epoch(epoch)
        dataset_label = given.copy()
        official_step(official, x, torch.as_tensor(dataset_label[indexes.numpy()]), indexes, dataset_label, epoch + 1)
        method.labels.fill_(-1)
        method(MethodInputs(official.fc(x), labels[indexes], features=x, indices=indexes))
        ours = method.labels[indexes].numpy()
        np.testing.assert_array_equal(ours, dataset_label[indexes.numpy()])
        changed = int((ours != given[indexes.numpy()]).sum())
        assert (changed > 0) == (epoch >= 9), (epoch, changed)  # relabel_epoch=10 is the 10th epoch


def test_exactly_the_samples_past_margin_2_are_relabelled_and_keep_their_label_across_epochs_and_a_resume():
    method = SCNMethod(num_samples=6, num_features=2, relabel_epoch=2).double()
    with torch.no_grad():  # alpha = sigmoid(40) = 1.0 exactly in float64: the weighted logits are the logits
        method.attention[0].weight.zero_()
        method.attention[0].bias.fill_(40.0)
    features = torch.zeros(3, 2, dtype=torch.float64)
    given = torch.tensor([0, 0, 2])
    indices = torch.tensor([4, 1, 3])
    # p = softmax: sample 4: p_max - p_0 = 0.5 (relabel to 1); sample 1: 0.1 (keep); sample 3: label is the max (keep)
    p = torch.tensor([[0.2, 0.7, 0.1], [0.4, 0.5, 0.1], [0.1, 0.2, 0.7]], dtype=torch.float64)
    logits = p.log()
    method.set_epoch(0)
    method(MethodInputs(logits, given, features=features, indices=indices))
    assert method.labels[indices].tolist() == given.tolist()  # epoch 0 (1-based 1) does not relabel
    assert method.labels.tolist().count(-1) == 3  # samples never seen keep the given label
    method.set_epoch(1)
    method(MethodInputs(logits, given, features=features, indices=indices))
    assert method.labels[indices].tolist() == [1, 0, 2]  # epoch 1 (1-based 2) relabelled exactly sample 4

    method.set_epoch(2)  # later epochs train on the new label, though the data still gives the old one
    out = method(MethodInputs(logits, given, features=features, indices=indices))
    expected = F.cross_entropy(logits, torch.tensor([1, 0, 2])) + rank_regularization(
        torch.ones(3, dtype=torch.float64), beta=0.7, margin=0.15)
    torch.testing.assert_close(out.loss, expected)
    assert method.labels[indices].tolist() == [1, 0, 2]

    resumed = SCNMethod(num_samples=6, num_features=2, relabel_epoch=2).double()
    resumed.load_state_dict(method.state_dict())  # what last.pt carries
    resumed.set_epoch(3)
    again = resumed(MethodInputs(logits, given, features=features, indices=indices))
    torch.testing.assert_close(again.loss, expected)
    assert resumed.labels.tolist() == method.labels.tolist()


def test_gradcheck_in_logits_features_and_attention():
    torch.manual_seed(0)
    method = SCNMethod(num_samples=8, num_features=3, relabel_epoch=1, margin_1=0.5).double()  # RR active
    z = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    f = torch.randn(8, 3, dtype=torch.float64, requires_grad=True)
    weight = method.attention[0].weight.detach().clone().requires_grad_(True)
    bias = method.attention[0].bias.detach().clone().requires_grad_(True)
    y, idx = torch.randint(0, 3, (8,)), torch.arange(8)

    def loss(z, f, weight, bias):
        state = {"attention.0.weight": weight, "attention.0.bias": bias, "labels": torch.full((8,), -1)}
        return torch.func.functional_call(method, state, (MethodInputs(z, y, features=f, indices=idx),)).loss

    assert torch.autograd.gradcheck(loss, (z, f, weight, bias), fast_mode=True)


def test_options_are_checked_and_the_registry_builds_it():
    with pytest.raises(ValueError, match=r"beta=1.0: .* \(0, 1\)"):
        SCNMethod(num_samples=4, num_features=3, beta=1.0)
    with pytest.raises(ValueError, match="relabel_epoch=0"):
        SCNMethod(num_samples=4, num_features=3, relabel_epoch=0)
    with pytest.raises(ValueError, match="loss 'scn' needs num_features"):
        build_method("scn", num_samples=4)
    method = build_method("scn", num_samples=4, num_features=3, epochs=5, class_counts=[1, 2])
    assert (method.beta, method.margin_1, method.margin_2, method.relabel_epoch) == (0.7, 0.15, 0.2, 10)
    assert [tuple(p.shape) for p in method.own_parameters()] == [(1, 3), (1,)]
    with pytest.raises(ValueError, match="trains on class indices"):
        method(MethodInputs(torch.zeros(2, 3), torch.full((2, 3), 1 / 3), features=torch.zeros(2, 3),
                            indices=torch.tensor([0, 1])))


def test_a_tiny_training_run_relabels_and_a_resumed_run_keeps_the_labels(tmp_path):
    options = ("loss.options.relabel_epoch=1", "loss.options.margin_2=0.0")  # relabel to the top class from the start
    whole = train_tiny(tmp_path / "whole", "scn", *options, epochs=2)["resume"]["method"]
    assert whole["labels"].shape == (48,) and int(whole["labels"].min()) >= 0  # every sample seen and labelled
    first = train_tiny(tmp_path / "cut", "scn", *options, epochs=1)["resume"]["method"]
    resumed = train_tiny(tmp_path / "cut", "scn", *options, "--resume", epochs=2)["resume"]["method"]
    assert not torch.equal(first["labels"], resumed["labels"])  # epoch 2 relabelled on from epoch 1's labels
    assert torch.equal(resumed["labels"], whole["labels"])  # ... as the uninterrupted run did
    torch.testing.assert_close(resumed["attention.0.weight"], whole["attention.0.weight"], rtol=0, atol=0)
