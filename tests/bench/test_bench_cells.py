"""A benchmark cell is a `fer-nla train` run: the same config and seed give identical metrics."""

from __future__ import annotations

import json

import numpy as np
import torch

from fer_nla.bench.cells import EvalSplit, cell_config, run_cell, write_setting_manifest
from fer_nla.bench.settings import SettingSplit
from fer_nla.cli import main
from fer_nla.config import load_config
from fer_nla.data import build_dataset
from fer_nla.data.corrupt import symmetric_noise

RECIPE = ["model.arch=cnn_small", "data.image_size=32", "train.epochs=2", "train.batch_size=16",
          "train.eval_batch_size=64", "optim.lr=1e-3", "train.device=cpu"]


def _cell(tmp_path):
    source = {"dataset": "synthetic", "root": None, "split": "train", "labels": "majority", "num_classes": None,
              "seed": 0, "options": {"num_samples": 96, "image_size": 32}}
    pool = build_dataset("synthetic", split="train", num_samples=96, image_size=32)
    majority = pool.targets
    noisy = symmetric_noise(majority, num_classes=len(pool.class_names), rate=0.2, seed=3)
    train, val = np.flatnonzero(np.arange(96) % 4), np.flatnonzero(np.arange(96) % 4 == 0)
    split = SettingSplit("symmetric_20", train, noisy[train], majority[train], val, noisy[val])
    manifest = write_setting_manifest(tmp_path / "settings" / "sym20.csv", pool, split, source=source)
    config = cell_config(load_config(None, RECIPE), manifest=manifest, method="nla", seed=5)
    return config, EvalSplit("synthetic", "", "test", "majority", {"num_samples": 64, "image_size": 32})


def test_a_cell_and_fer_nla_train_with_its_config_give_identical_metrics(tmp_path):
    config, test = _cell(tmp_path)
    cell = run_cell(config, tmp_path / "cell", test, keep_checkpoints=True)
    assert cell["best_epoch"] in (1, 2) and set(cell["test"]) >= {"overall_acc", "mean_acc", "per_class_acc"}
    assert main(["train", "--config", str(tmp_path / "cell" / "config.yaml"), "--out", str(tmp_path / "again")]) == 0
    lines = [(tmp_path / run / "metrics.jsonl").read_text().splitlines() for run in ("cell", "again")]
    strip = [[{k: v for k, v in json.loads(line).items() if k not in ("seconds", "images_per_second")} for line in run]
             for run in lines]
    assert strip[0] == strip[1] and len(strip[0]) == 2
    again = main(["eval", "--checkpoint", str(tmp_path / "again" / "best.pt"), "--dataset", "synthetic", "--split", "test",
                  "-o", "num_samples=64", "-o", "image_size=32", "--json", "--output", str(tmp_path / "e.json")])
    assert again == 0
    scored = json.loads((tmp_path / "e.json").read_text())
    assert scored["overall_acc"] == cell["test"]["overall_acc"] and scored["mean_acc"] == cell["test"]["mean_acc"]


def test_the_cell_trains_on_the_settings_labels_and_selects_on_its_valid_rows(tmp_path):
    config, _ = _cell(tmp_path)
    train = build_dataset("manifest", root=config.data.root, split="train")
    valid = build_dataset("manifest", root=config.data.root, split="valid")
    assert (len(train), len(valid)) == (72, 24)
    assert 0 < float(np.mean(train.targets != train.clean_targets)) < 0.5  # the planted noise travels in the labels
    assert (config.loss.name, config.train.seed, config.data.val_split) == ("nla", 5, "auto")
    assert not config.train.report and not config.train.tensorboard and config.train.record_signals
    assert config.train.threads == torch.get_num_threads()  # recorded: a re-run sums floats alike
