"""Grid outputs: mean and sample spread over seeds, the best per setting in bold, the files."""

from __future__ import annotations

import json

import pytest

from fer_nla.bench.tables import metric_table, summarise, write_outputs

NAMES = ["neutral", "happiness"]


def row(method, setting, seed, acc, mean):
    return {"method": method, "setting": setting, "seed": seed, "overall_acc": acc, "mean_acc": mean,
            "per_class_acc": {"neutral": acc, "happiness": None if method == "ce" else mean}, "macro_f1": mean,
            "train_size": 100, "train_noise_rate": 0.2 if setting != "clean" else 0.0, "train_imbalance_ratio": 3.0}


ROWS = [
    row("ce", "symmetric_20", 0, 0.50, 0.40), row("ce", "symmetric_20", 1, 0.60, 0.44),
    row("nla", "symmetric_20", 0, 0.58, 0.50), row("nla", "symmetric_20", 1, 0.62, 0.52),
    row("ce", "single_vote", 0, 0.70, 0.30), row("nla", "single_vote", 0, 0.65, 0.35),
    row("ce", "clean", 0, 0.80, 0.60),
]


def test_summary_is_the_mean_and_the_sample_std():
    stats = summarise(ROWS, "overall_acc")
    assert stats[("ce", "symmetric_20")] == pytest.approx((0.55, 0.0707107, 2))
    assert stats[("nla", "single_vote")] == (0.65, 0.0, 1)


def test_table_orders_settings_canonically_and_bolds_the_best_mean():
    lines = metric_table(ROWS, "overall_acc").splitlines()
    assert lines[0] == "| method | single_vote | symmetric_20 | clean (reference) |"
    assert lines[2] == "| ce | **70.00** | 55.00 ± 7.07 | 80.00 |"
    assert lines[3] == "| nla | 65.00 | **60.00 ± 2.83** |  |"


def test_outputs_are_written(tmp_path):
    meta = {"command": "fer-nla bench robustness --config x.yaml", "machine": "test", "seconds": 60.0,
            "cells_run_now": 7, "class_names": NAMES,
            "config": {"model": {"arch": "cnn_small"}, "data": {"image_size": 32, "val_fraction": 0.1},
                       "train": {"epochs": 2, "batch_size": 32, "two_view_forward": "batched", "select_metric": "overall_acc"},
                       "optim": {"name": "adam", "lr": 1e-3, "weight_decay": 1e-4, "scheduler": "exponential"},
                       "bench": {"test_split": "valid", "test_labels": "majority", "loss_options": {}}}}
    paths = write_outputs(ROWS, meta, tmp_path)
    assert [p.name for p in paths] == ["robustness.json", "robustness.md", "robustness_noise.png", "robustness_per_class.png"]
    assert json.loads(paths[0].read_text()) == ROWS
    text = paths[1].read_text()
    assert "`fer-nla bench robustness --config x.yaml`" in text and "| nla | 65.0 | 35.0 |" in text
    assert all(p.stat().st_size > 10_000 for p in paths[2:])
