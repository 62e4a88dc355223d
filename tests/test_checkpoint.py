"""Checkpoints: atomic writes, weights_only loads, and clear errors for files that do not fit."""

from __future__ import annotations

import os

import pytest
import torch
import torchvision

from checkpoint_files import save_payload
from fer_nla.checkpoint import CheckpointMeta, check_compatible, load_checkpoint, load_model, load_state_into, save_checkpoint
from fer_nla.errors import InputError
from fer_nla.labels import class_names
from fer_nla.models import build_model


def _payload(model, *, arch="resnet18", num_classes=7, stem="small"):
    return {
        "model": {"arch": arch, "num_classes": num_classes, "stem": stem},
        "class_names": list(class_names(num_classes)),
        "preprocess": {"image_size": 48, "mean": [0.577, 0.4494, 0.4001], "std": [0.2628, 0.2395, 0.2383]},
        "state_dict": model.state_dict(),
        "config": {"optim": {"lr": 1e-4}},
        "epoch": 3,
        "metrics": {"val": {"overall_acc": 0.5}},
        "resume": {"optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]}, "rng": {"torch": torch.get_rng_state()}},
    }


def test_round_trip_with_weights_only(tmp_path):
    model = build_model("resnet18", num_classes=7, stem="small").eval()
    path = save_payload(tmp_path / "run" / "best.pt", _payload(model))
    raw = torch.load(path, weights_only=True)  # the file itself must be weights_only-safe
    assert raw["format"] == "fer-nla" and raw["format_version"] == 1
    loaded, info = load_model(path)
    assert not loaded.training
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert info.class_names == tuple(class_names(7)) and info.epoch == 3
    assert not hasattr(info, "state_dict") and not hasattr(info, "resume")  # weights and resume states stay out
    assert info.image_size == 48 and info.preprocess["image_size"] == 48


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    model = build_model("resnet18", num_classes=7, stem="small")
    path = save_payload(tmp_path / "last.pt", _payload(model))
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_payload(path, _payload(model))
    assert path.read_bytes() == before  # the old checkpoint survives whole
    assert sorted(os.listdir(tmp_path)) == ["last.pt"]  # no temporary file left behind


def test_metadata_is_written_and_read_as_one_record(tmp_path):
    model = build_model("resnet18", num_classes=7, stem="small")
    meta = CheckpointMeta.from_payload(_payload(model))
    path = save_checkpoint(tmp_path / "best.pt", meta.with_epoch(5, {"val": {"overall_acc": 0.6}}), state_dict=model.state_dict())
    read = CheckpointMeta.from_payload(load_checkpoint(path))
    assert read == meta.with_epoch(5, {"val": {"overall_acc": 0.6}}) and "resume" not in load_checkpoint(path)


def test_non_checkpoint_files_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_checkpoint(tmp_path / "best.pt")
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(InputError, match=r"notes.pt is a text file \(it starts with 'hello'\), not a fer-nla checkpoint"):
        load_checkpoint(text)
    bare = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), bare)
    with pytest.raises(InputError, match="backbone_weights"):
        load_checkpoint(bare)


def test_newer_format_version_is_refused(tmp_path):
    model = build_model("resnet18", num_classes=7, stem="small")
    path = save_payload(tmp_path / "best.pt", _payload(model))
    raw = torch.load(path, weights_only=True)
    torch.save({**raw, "format_version": 99}, path)
    with pytest.raises(InputError, match="upgrade fer-nla"):
        load_checkpoint(path)


def test_another_arch_or_class_count_is_a_clear_error(tmp_path):
    model = build_model("resnet18", num_classes=7, stem="small")
    path = save_payload(tmp_path / "best.pt", _payload(model))
    with pytest.raises(InputError, match=r"model.num_classes is 7 in the checkpoint but 8"):
        load_model(path, num_classes=8)
    with pytest.raises(InputError, match=r"model.arch is 'resnet18' in the checkpoint but 'resnet50'"):
        load_model(path, arch="resnet50")
    payload = load_checkpoint(path)
    with pytest.raises(InputError, match="class names"):
        check_compatible(CheckpointMeta.from_payload(payload), path=path, class_names=list(class_names(8)))
    with pytest.raises(InputError, match="other shape: fc.weight"):
        load_state_into(build_model("resnet18", num_classes=8, stem="small"), payload, path=path)
    with pytest.raises(InputError, match="missing"):
        load_state_into(build_model("resnet50", num_classes=7, stem="small"), payload, path=path)


def test_checkpoint_whose_spec_lies_about_its_weights(tmp_path):
    model = build_model("resnet18", num_classes=7, stem="small")
    path = save_payload(tmp_path / "best.pt", _payload(model, num_classes=8))
    with pytest.raises(InputError, match="do not fit the model"):
        load_model(path)
