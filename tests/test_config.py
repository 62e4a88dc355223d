"""Config: defaults, YAML, key=value overrides with coercion, and errors that say the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fer_nla.config import Config, config_from_dict, load_config, parse_overrides, save_config, valid_keys
from fer_nla.errors import InputError

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_overrides_are_coerced_to_the_declared_types():
    config = load_config(None, [
        "optim.lr=3e-4", "train.epochs=7", "train.deterministic=true", "data.root=/data/raf",
        "model.backbone_weights=null", "train.grad_clip=5", "loss.options.lam_a=0.25",
        "data.options.num_samples=1200", "train.channels_last=off", "data.train_subset=1e3",
    ])
    assert config.optim.lr == pytest.approx(3e-4) and isinstance(config.optim.lr, float)
    assert config.train.epochs == 7 and config.train.deterministic is True
    assert config.data.root == "/data/raf" and config.model.backbone_weights is None
    assert config.train.grad_clip == 5.0 and isinstance(config.train.grad_clip, float)
    assert config.loss.options == {"lam_a": 0.25}
    assert config.data.options == {"num_samples": 1200}
    assert config.train.channels_last == "off"
    assert config.data.train_subset == 1000


@pytest.mark.parametrize("text,expected", [("true", True), ("false", False), ("yes", True), ("no", False), ("on", True), ("0", False)])
def test_booleans_switch_both_ways(text, expected):
    assert load_config(None, [f"data.flip={text}"]).data.flip is expected
    assert load_config(None, [f"train.progress={text}"]).train.progress is expected


def test_unknown_key_names_the_closest_valid_key():
    with pytest.raises(InputError, match=r"unknown config key 'optim.lr_rate'; did you mean 'optim.lr'"):
        load_config(None, ["optim.lr_rate=1"])
    with pytest.raises(InputError, match="did you mean 'train.epochs'"):
        load_config(None, ["train.epoch=3"])
    with pytest.raises(InputError, match="did you mean 'train.batch_size'"):
        load_config(None, ["batch_size=3"])


def test_bad_values_name_the_key():
    with pytest.raises(InputError, match="train.epochs must be an integer"):
        load_config(None, ["train.epochs=2.5"])
    with pytest.raises(InputError, match="train.precision must be one of auto, fp32, bf16, fp16"):
        load_config(None, ["train.precision=fp8"])
    with pytest.raises(InputError, match="data.flip must be true or false"):
        load_config(None, ["data.flip=maybe"])
    with pytest.raises(InputError, match=r"train.epochs must lie in 1..100000"):
        load_config(None, ["train.epochs=0"])
    with pytest.raises(InputError, match="did you mean 'nla'"):
        load_config(None, ["loss.name=nlaa"])
    with pytest.raises(InputError, match="section.key=value"):
        parse_overrides(["optim.lr"])


def test_yaml_file_error_names_file_and_line(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("optim:\n  lr: 1.0e-4\n  gama: 0.9\n")
    with pytest.raises(InputError, match=r"run.yaml:3: unknown config key 'optim.gama'; did you mean 'optim.gamma'"):
        load_config(path)


def test_yaml_then_overrides_then_save_round_trip(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  dataset: ferplus\n  image_size: 64\nloss:\n  name: ce\n  options: {}\noptim:\n  lr: 1e-4\n")
    config = load_config(path, ["data.image_size=56"])
    assert config.data.dataset == "ferplus" and config.data.image_size == 56
    assert config.optim.lr == pytest.approx(1e-4) and config.loss.name == "ce"
    saved = save_config(config, tmp_path / "out" / "config.yaml")
    assert load_config(saved) == config
    assert config_from_dict(yaml.safe_load(saved.read_text())) == config
    assert config_from_dict(config.to_dict()) == config


def test_every_key_is_documented_by_valid_keys():
    keys = valid_keys()
    assert "optim.lr" in keys and "loss.options" in keys and "train.two_view_forward" in keys
    assert len(keys) == len(set(keys))
    assert set(Config().to_dict()) == {k.split(".")[0] for k in keys}


@pytest.mark.parametrize("name", ["rafdb_nla", "affectnet7_nla", "affectnet8_nla", "ferplus_nla", "ferplus_cpu"])
def test_shipped_configs_load(name):
    config = load_config(CONFIGS / f"{name}.yaml")
    if name != "ferplus_cpu":  # the reference recipe
        assert (config.model.arch, config.data.image_size, config.train.batch_size) == ("resnet18", 224, 32)
        assert (config.optim.name, config.optim.lr, config.optim.weight_decay, config.optim.gamma) == ("adam", 1e-4, 1e-4, 0.9)
        assert config.train.epochs == 60 and config.loss.name == "nla"


def test_paper_configs_keep_the_references_two_forwards_and_cpu_configs_batch_the_views():
    configs = Path(__file__).resolve().parents[1] / "configs"
    for name in ("rafdb_nla", "affectnet7_nla", "affectnet8_nla", "ferplus_nla"):
        config = load_config(configs / f"{name}.yaml")
        assert (config.data.image_size, config.train.two_view_forward) == (224, "separate"), name
        assert config.model.expect_backbone_weights, name
    assert load_config(configs / "ferplus_cpu.yaml").train.two_view_forward == "batched"
