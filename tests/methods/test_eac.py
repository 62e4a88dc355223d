"""EAC against its official code (value and gradients), its zero consistency on flip-symmetric
maps, the classifier kept out of the consistency gradient, and tiny ``fer-nla train`` runs
(plain and through the cached frozen path)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_runs import train_tiny
from torch import nn

from fer_nla.errors import InputError
from fer_nla.methods import EACMethod, MethodInputs, build_method
from fer_nla.methods.eac import class_activation_maps, flip_attention_consistency
from fer_nla.models import build_model
from fer_nla.train.forward import check_method_fits, network_classifier

# --- the official code, transcribed -------------------------------------------------------------
# github.com/zyh-uaiaaaa/Erasing-Attention-Consistency, commit 61efdfd373b6d2fe7c6d31712427aa263f72900d:
# src/model.py (Model.forward after self.features: features2 is the ResNet's avgpool, params[-2] is
# fc.weight), src/utils.py (generate_flip_grid), src/loss.py (ACLoss) and src/main.py's train loop.
# Variable(..., requires_grad=False) is a plain tensor now; the grid is cast to the maps' dtype
# (float64 here; F.grid_sample needs the input's dtype).


class OfficialHead(nn.Module):
    def __init__(self, channels, num_classes=7):
        super().__init__()
        self.features2 = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(channels, num_classes)
        self.num_classes, self.channels = num_classes, channels

    def forward(self, x):
        feature = self.features2(x)
        feature = feature.view(feature.size(0), -1)
        output = self.fc(feature)
        params = list(self.parameters())
        fc_weights = params[-2].data
        fc_weights = fc_weights.view(1, self.num_classes, self.channels, 1, 1)
        feat = x.unsqueeze(1)  # N * 1 * C * H * W
        hm = feat * fc_weights
        hm = hm.sum(2)  # N * self.num_labels * H * W
        return output, hm


def generate_flip_grid(w, h, device):
    x_ = torch.arange(w).view(1, -1).expand(h, -1)
    y_ = torch.arange(h).view(-1, 1).expand(-1, w)
    grid = torch.stack([x_, y_], dim=0).float().to(device)
    grid = grid.unsqueeze(0).expand(1, -1, -1, -1)
    grid[:, 0, :, :] = 2 * grid[:, 0, :, :] / (w - 1) - 1
    grid[:, 1, :, :] = 2 * grid[:, 1, :, :] / (h - 1) - 1
    grid[:, 0, :, :] = -grid[:, 0, :, :]
    return grid


def ACLoss(att_map1, att_map2, grid_l, output):
    flip_grid_large = grid_l.expand(output.size(0), -1, -1, -1)
    flip_grid_large = flip_grid_large.permute(0, 2, 3, 1)
    att_map2_flip = F.grid_sample(att_map2, flip_grid_large.to(att_map2.dtype), mode='bilinear',
                                  padding_mode='border', align_corners=True)
    flip_loss_l = F.mse_loss(att_map1, att_map2_flip)
    return flip_loss_l


def official_loss(model, maps1, maps2, labels, lam):
    output, hm1 = model(maps1)
    output_flip, hm2 = model(maps2)  # noqa: RUF059 - as in main.py, which leaves it unused
    grid_l = generate_flip_grid(maps1.shape[3], maps1.shape[2], maps1.device)  # main.py: args.w, args.h (7, 7)
    loss1 = nn.CrossEntropyLoss()(output, labels)
    flip_loss_l = ACLoss(hm1, hm2, grid_l, output)
    return loss1 + lam * flip_loss_l


# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("lam", [5.0, 0.5])
@pytest.mark.parametrize(("batch", "h", "w"), [(4, 7, 7), (3, 3, 3), (5, 4, 6), (2, 2, 2)])
def test_loss_and_gradients_equal_the_official_code(batch, h, w, lam):
    torch.manual_seed(batch * h * w)
    official = OfficialHead(16).double()
    maps = torch.randn(batch, 16, h, w, dtype=torch.float64)
    maps_flip = maps.flip(3) + 0.3 * torch.randn(batch, 16, h, w, dtype=torch.float64)  # not quite the mirror
    labels = torch.randint(0, 7, (batch,))
    m1, m2 = maps.clone().requires_grad_(True), maps_flip.clone().requires_grad_(True)
    n1, n2 = maps.clone().requires_grad_(True), maps_flip.clone().requires_grad_(True)
    fc = official.fc
    logits, logits_flip = fc(m1.mean(dim=(2, 3))), fc(m2.mean(dim=(2, 3)))
    ours = EACMethod(lam=lam)(MethodInputs(logits, labels, logits_flip=logits_flip, feature_maps=m1,
                                           feature_maps_flip=m2, classifier=fc)).loss
    theirs = official_loss(official, n1, n2, labels, lam)
    # the official grid is float32: it samples ~1e-7 pixel off the mirrored centres (ours mirrors exactly)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-6)
    for a, b in zip(torch.autograd.grad(ours, (m1, m2, *fc.parameters())),
                    torch.autograd.grad(theirs, (n1, n2, *fc.parameters())), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_the_flip_grid_samples_exactly_the_mirror():
    maps = torch.randn(2, 7, 7, 5, dtype=torch.float64)
    grid = generate_flip_grid(5, 7, "cpu").expand(2, -1, -1, -1).permute(0, 2, 3, 1).to(torch.float64)
    mirrored = F.grid_sample(maps, grid, mode="bilinear", padding_mode="border", align_corners=True)
    torch.testing.assert_close(mirrored, maps.flip(3), rtol=0, atol=1e-6)  # float32 grid: ~1e-7 off the centres


def test_the_consistency_is_zero_for_flip_symmetric_maps_and_not_otherwise():
    torch.manual_seed(0)
    head = nn.Linear(8, 7)
    half = torch.randn(3, 8, 4, 2)
    symmetric = torch.cat([half, half.flip(3)], dim=3)  # a map equal to its own mirror
    labels = torch.tensor([0, 3, 6])
    logits = head(symmetric.mean(dim=(2, 3)))
    method = EACMethod()
    for maps, maps_flip in ((symmetric, symmetric), (half, half.flip(3))):  # a symmetric face; any face and its flip
        out = method(MethodInputs(logits, labels, logits_flip=logits, feature_maps=maps, feature_maps_flip=maps_flip,
                                  classifier=head))
        torch.testing.assert_close(out.loss, F.cross_entropy(logits, labels), rtol=0, atol=1e-6)
    cams = class_activation_maps(half, head.weight)
    assert float(flip_attention_consistency(cams, cams).detach()) > 0.01  # an asymmetric map and itself: not consistent


def test_the_consistency_trains_the_maps_and_never_the_classifier():
    torch.manual_seed(1)
    head = nn.Linear(8, 7)
    maps = torch.randn(2, 8, 3, 3, requires_grad=True)
    maps_flip = torch.randn(2, 8, 3, 3, requires_grad=True)
    labels = torch.tensor([1, 2])
    logits = head(maps.mean(dim=(2, 3)))
    loss = EACMethod(lam=5.0)(MethodInputs(logits, labels, logits_flip=logits, feature_maps=maps,
                                           feature_maps_flip=maps_flip, classifier=head)).loss
    grads = torch.autograd.grad(loss, (maps_flip, head.weight))
    ce_only = torch.autograd.grad(F.cross_entropy(head(maps.mean(dim=(2, 3))), labels), head.weight)[0]
    assert float(grads[0].abs().sum()) > 0  # the flip's maps get the consistency gradient
    torch.testing.assert_close(grads[1], ce_only)  # the classifier's weights get CE's gradient only


def test_the_classifier_is_found_in_every_network_and_refused_where_there_is_none():
    for arch in ("cnn_small", "resnet10s", "resnet18"):
        model = build_model(arch, num_classes=7)
        assert network_classifier(model) is model.fc
    method = build_method("eac")
    check_method_fits(method, build_model("cnn_small", num_classes=7), distributed=False)  # no error

    class PoolOnly(nn.Module):
        fc = nn.Identity()

        def forward_features(self, x):
            return x

        def forward_head(self, x, pre_logits=False):
            return x.mean(dim=(2, 3))

    with pytest.raises(InputError, match=r"loss 'eac': the method needs the network's final linear classifier.*Identity"):
        check_method_fits(method, PoolOnly(), distributed=False, arch="pool_only")
    with pytest.raises(InputError, match=r"needs features and the network's classifier, which multi-process \(DDP\)"):
        check_method_fits(method, build_model("cnn_small", num_classes=7), distributed=True)
    with pytest.raises(ValueError, match="lam=-1"):
        EACMethod(lam=-1)


@pytest.mark.parametrize("cached", [False, True])
def test_a_tiny_training_run_writes_a_checkpoint(tmp_path, cached):
    last = train_tiny(tmp_path / "run", "eac", cached=cached)
    assert last["epoch"] == 1 and last["resume"]["method"] == {}
