"""The method interface: declared needs become exactly those inputs, features come from the
network's forward_features/forward_head (cached frozen stages included), gradients of a
feature term reach the backbone, and what a run cannot give is refused before training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fer_nla.errors import InputError
from fer_nla.freeze import TrailingPart, freeze_stages, swap_views
from fer_nla.methods import Method, MethodInputs, MethodOutput, Needs, build_method, register_method, required_fields
from fer_nla.methods.registry import REGISTRY
from fer_nla.models import build_model
from fer_nla.train.forward import check_method_fits, forward_views
from fer_nla.train.step import TrainStep, horizontal_flip


class MapsOnly(Method):
    """A loss on the feature maps alone (and, with ``flip_view``, their flips): keeps what it got."""

    def __init__(self, needs: Needs) -> None:
        super().__init__(needs, name="maps_only")
        self.got: MethodInputs | None = None

    def forward(self, inputs: MethodInputs) -> MethodOutput:
        self.require(inputs)
        self.got = inputs
        loss = inputs.feature_maps.pow(2).mean()
        if inputs.feature_maps_flip is not None:
            loss = loss + inputs.feature_maps_flip.pow(2).mean()
        return MethodOutput(loss)


def _images(n: int = 4, size: int = 32) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.randn(n, 3, size, size, generator=g), torch.randint(0, 7, (n,), generator=g), torch.arange(5, 5 + n)


def test_needs_name_the_inputs_the_trainer_fills():
    assert required_fields(Needs()) == ["logits", "targets"]
    assert required_fields(Needs(flip_view=True, feature_maps=True, sample_index=True)) == [
        "logits", "targets", "logits_flip", "feature_maps", "feature_maps_flip", "indices"]
    assert required_fields(Needs(features=True)) == ["logits", "targets", "features"]
    assert Needs(flip_view=True, soft_targets=True).asked() == ["flip_view", "soft_targets"]
    nla = build_method("nla", epochs=5)
    with pytest.raises(ValueError, match=r"method 'nla' needs logits_flip in its MethodInputs \(it declares flip_view"):
        nla(MethodInputs(torch.zeros(2, 7), torch.tensor([0, 1])))


def test_a_feature_term_trains_the_backbone_and_not_the_head():
    torch.manual_seed(0)
    model = build_model("cnn_small", num_classes=7)
    method = MapsOnly(Needs(feature_maps=True))
    step = TrainStep(model, method, torch.optim.SGD(model.parameters(), lr=0.1), torch.device("cpu"), None, False)
    images, targets, index = _images()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loss, logits, _ = step(images, targets, index)
    got = method.got
    assert got.feature_maps.shape == (4, 128, 4, 4) and got.indices is None and got.logits_flip is None
    assert loss.item() == pytest.approx(got.feature_maps.detach().pow(2).mean().item())  # the method's loss was stepped
    after = model.state_dict()
    assert not torch.equal(after["features.0.weight"], before["features.0.weight"])  # the first convolution moved
    assert torch.equal(after["fc.weight"], before["fc.weight"]) and torch.equal(after["fc.bias"], before["fc.bias"])
    assert logits.shape == (4, 7)


@pytest.mark.parametrize("arch", ["cnn_small", "resnet10s", "resnet18"])
def test_feature_views_equal_the_plain_forward_and_the_flip(arch):
    torch.manual_seed(0)
    model = build_model(arch, num_classes=7).eval()  # eval: batched and separate forwards then agree exactly
    images, _, _ = _images(3)
    needs = Needs(flip_view=True, feature_maps=True, features=True)
    with torch.no_grad():
        batched = forward_views(model, images, needs=needs, flip=horizontal_flip)
        separate = forward_views(model, images, needs=needs, flip=horizontal_flip, two_view_forward="separate")
        torch.testing.assert_close(batched.logits, model(images), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(batched.logits_flip, model(images.flip(3)), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(batched.feature_maps_flip, model.forward_features(images.flip(3)), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(batched.features, batched.feature_maps.mean(dim=(2, 3)), rtol=1e-5, atol=1e-6)
        for field in ("logits", "logits_flip", "feature_maps", "feature_maps_flip", "features", "features_flip"):
            torch.testing.assert_close(getattr(batched, field), getattr(separate, field), rtol=1e-5, atol=1e-5)
        plain = forward_views(model, images, needs=Needs(), flip=horizontal_flip)
    assert plain.feature_maps is None and plain.logits_flip is None and plain.features is None


def test_cached_frozen_stages_give_the_whole_networks_feature_maps():
    torch.manual_seed(0)
    model = build_model("resnet10s", num_classes=7)
    freeze_stages(model, 2)
    model.eval()
    images, _, _ = _images(2, size=48)
    with torch.no_grad():
        frozen = model.features[:model.frozen_end]
        cached = torch.stack([frozen(images), frozen(images.flip(3))], dim=1)  # [B, 2, C, H, W] as the cache holds
        part = TrailingPart(model)
        torch.testing.assert_close(part.forward_features(cached), model.forward_features(images))
        torch.testing.assert_close(part.forward_features(swap_views(cached)), model.forward_features(images.flip(3)))
        views = forward_views(part, cached, needs=Needs(flip_view=True, feature_maps=True), flip=swap_views)
        torch.testing.assert_close(views.logits, model(images), rtol=1e-5, atol=1e-5)
        assert views.feature_maps.shape == (2, 256, 3, 3)


class NoFeatures(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class Tokens(NoFeatures):
    """A network whose features are tokens ``[B, N, C]`` (a ViT), not maps."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2).transpose(1, 2)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x.mean(dim=1)


class WithHead(Method):
    def __init__(self) -> None:
        super().__init__(Needs(), name="with_head")
        self.head = nn.Linear(3, 3)

    def forward(self, inputs: MethodInputs) -> MethodOutput:
        return MethodOutput(F.cross_entropy(self.head(inputs.logits), inputs.targets))


def test_a_run_that_cannot_give_what_a_method_needs_refuses_it_before_training():
    maps = MapsOnly(Needs(feature_maps=True))
    with pytest.raises(InputError, match=r"loss 'maps_only' needs the network's features, but model.arch=plain"):
        check_method_fits(maps, NoFeatures(), distributed=False, arch="plain")
    check_method_fits(maps, build_model("cnn_small", num_classes=7), distributed=False)  # no error
    check_method_fits(build_method("nla", epochs=3), NoFeatures(), distributed=True)  # NLA needs none of it
    for method, what in ((maps, "features"), (MapsOnly(Needs(sample_index=True)), "per-sample state"),
                         (WithHead(), "parameters of its own")):
        with pytest.raises(InputError, match=rf"needs {what}, which multi-process \(DDP\) training does not give yet"):
            check_method_fits(method, build_model("cnn_small", num_classes=7), distributed=True)
    with pytest.raises(InputError, match=r"feature maps \[B, C, h, w\].*shape \(2, 64, 3\)"):
        forward_views(Tokens(), torch.zeros(2, 3, 8, 8), needs=Needs(feature_maps=True), flip=horizontal_flip)


def test_registration_is_checked_against_what_the_method_declares():
    with pytest.raises(ValueError, match="a method named 'nla' is already registered"):
        register_method("nla", WithHead, needs=Needs())
    register_method("liar", lambda: MapsOnly(Needs(feature_maps=True)), needs=Needs())
    try:
        with pytest.raises(ValueError, match=r"method 'liar' was registered with Needs\(flip_view=False"):
            build_method("liar")
    finally:
        REGISTRY.pop("liar")
