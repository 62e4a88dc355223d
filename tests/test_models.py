"""Models: heads, the small stem, and backbone files of the shapes users actually have."""

from __future__ import annotations

import pytest
import torch
import torchvision

from fer_nla.errors import InputError
from fer_nla.models import available_models, build_model, load_backbone_weights, read_weight_file


@pytest.mark.parametrize("num_classes", [7, 8])
def test_resnet18_head_and_small_stem_feature_map(num_classes):
    model = build_model("resnet18", num_classes=num_classes, stem="small").eval()
    assert model.fc.out_features == num_classes
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    feats = {}
    model.layer4.register_forward_hook(lambda _m, _i, out: feats.setdefault("x", out))
    with torch.no_grad():
        logits = model(torch.randn(2, 3, 48, 48))
    assert logits.shape == (2, num_classes)
    assert feats["x"].shape[-2:] == (6, 6)  # 48 / 8; the ImageNet stem would give 2x2


def test_imagenet_stem_is_torchvision_resnet():
    model = build_model("resnet50", num_classes=7)
    reference = torchvision.models.resnet50(num_classes=7)
    assert [(k, v.shape) for k, v in model.state_dict().items()] == [(k, v.shape) for k, v in reference.state_dict().items()]


def test_unknown_arch_and_stem_name_the_choices():
    with pytest.raises(InputError, match="resnet18"):
        build_model("resnet19", num_classes=7)
    with pytest.raises(InputError, match="imagenet, small"):
        build_model("resnet18", num_classes=7, stem="tiny")
    assert available_models()[:2] == ["resnet18", "resnet50"]


def test_timm_without_timm_is_a_clear_error():
    try:
        import timm  # noqa: F401
    except ImportError:
        with pytest.raises(InputError, match=r"fer-nla\[timm\]"):
            build_model("timm:resnet18", num_classes=7)
    else:
        model = build_model("timm:resnet18", num_classes=7)
        assert model(torch.randn(1, 3, 64, 64)).shape == (1, 7)


def _msceleb_style_file(tmp_path, *, prefix: str):
    """A file shaped like the MS-Celeb-1M ResNet-18 the paper starts from: a dict with
    'state_dict', keys under a DataParallel prefix, a 12,666-way classifier, other entries."""
    source = torchvision.models.resnet18(num_classes=12666)
    torch.nn.init.constant_(source.layer3[0].conv1.weight, 0.125)
    state = {prefix + k: v for k, v in source.state_dict().items()}
    path = tmp_path / "resnet18_msceleb.pth"
    torch.save({"state_dict": state, "epoch": 30, "arch": "resnet18"}, path)
    return path, source


@pytest.mark.parametrize("prefix", ["", "module."])
def test_msceleb_file_loads_backbone_and_reports_the_classifier(tmp_path, prefix):
    path, source = _msceleb_style_file(tmp_path, prefix=prefix)
    model = build_model("resnet18", num_classes=7)
    head_before = model.fc.weight.clone()
    report = load_backbone_weights(model, path)
    assert torch.equal(model.layer3[0].conv1.weight, source.layer3[0].conv1.weight)
    assert torch.equal(model.conv1.weight, source.conv1.weight)
    assert torch.equal(model.fc.weight, head_before)  # the 7-way head is not touched
    assert sorted(report.shape_mismatch) == ["fc.bias", "fc.weight"]
    assert sorted(report.missing) == [] and report.unexpected == []
    assert len(report.loaded) == len(source.state_dict()) - 2
    assert "fc.weight" in report.summary()


def test_torchvision_plain_state_dict_into_small_stem_skips_conv1(tmp_path):
    source = torchvision.models.resnet18()  # ImageNet layout: 1000 classes, 7x7 stem
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(source.state_dict(), path)
    model = build_model("resnet18", num_classes=8, stem="small")
    report = load_backbone_weights(model, path)
    assert sorted(report.shape_mismatch) == ["conv1.weight", "fc.bias", "fc.weight"]
    assert torch.equal(model.layer4[1].bn2.running_var, source.layer4[1].bn2.running_var)


def test_backbone_file_of_another_architecture_is_an_error(tmp_path):
    path = tmp_path / "r50.pth"
    torch.save(torchvision.models.resnet50().state_dict(), path)
    with pytest.raises(InputError, match="another architecture"):
        build_model("resnet18", num_classes=7, backbone_weights=path)


def test_unreadable_and_missing_backbone_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_weight_file(tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_text("not a weight file")
    with pytest.raises(InputError, match="junk.pth is a text file .*not a PyTorch weight file"):
        read_weight_file(junk)
    no_tensors = tmp_path / "meta.pth"
    torch.save({"epoch": 3}, no_tensors)
    with pytest.raises(InputError, match="no state dict"):
        read_weight_file(no_tensors)


def test_small_cnns_are_cpu_sized_and_take_any_face_size(tmp_path):
    small = build_model("cnn_small", num_classes=8)
    medium = build_model("cnn_medium", num_classes=7)
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 8)
    assert medium(torch.randn(2, 3, 48, 48)).shape == (2, 7)
    n_small = sum(p.numel() for p in small.parameters())
    # 3*16*9 + 16*32*9 + 32*64*9 + 64*128*9 convolutions, 2*240 BatchNorm, 128*8+8 head
    assert n_small == 3 * 16 * 9 + 16 * 32 * 9 + 32 * 64 * 9 + 64 * 128 * 9 + 2 * (16 + 32 + 64 + 128) + 128 * 8 + 8
    with pytest.raises(InputError, match="stem"):
        build_model("cnn_small", num_classes=8, stem="small")
    # A trained small CNN is a backbone file for another head size: the head is skipped.
    torch.save(small.state_dict(), tmp_path / "w.pth")
    report = load_backbone_weights(build_model("cnn_small", num_classes=7), tmp_path / "w.pth")
    assert sorted(report.shape_mismatch) == ["fc.bias", "fc.weight"]
    assert "cnn_small" in available_models()
