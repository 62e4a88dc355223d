"""A user's small folder, fine-tuned (issue 24): eval scores the run's carved validation split by
name and says so where there is no test split, the report prints a command that works, a tiny
validation set is warned about, epoch 0 is on the curves, and a small set's last batch is trained on."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from fer_nla.cli import main
from fer_nla.config import load_config
from fer_nla.train.fit import fit
from fer_nla.train.report import curves_figure


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """36 images of 3 classes in class folders (train only: no valid/ or test/)."""
    root = tmp_path_factory.mktemp("mine")
    rng = np.random.default_rng(0)
    for c, name in enumerate(("happy", "sad", "neutral")):
        (root / name).mkdir()
        for i in range(12):
            Image.fromarray((rng.integers(0, 255, (24, 24, 3)) // (c + 1)).astype(np.uint8)).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def run(folder, tmp_path_factory):
    out, lines, threads = tmp_path_factory.mktemp("runs") / "mine", [], torch.get_num_threads()
    config = load_config(None, ["data.dataset=folder", f"data.root={folder}", "model.arch=cnn_small", "train.epochs=1",
                                "data.image_size=24", "train.batch_size=10", "train.progress=false",
                                "train.tensorboard=false", "train.threads=1", "train.record_signals=false"])
    try:
        fit(config, out, log=lines.append)
    finally:
        torch.set_num_threads(threads)
    return out, lines


def test_a_small_validation_set_and_a_kept_last_batch_are_said(run):
    _, lines = run
    assert any(line.startswith("data: the last batch of each epoch holds 3 samples, not 10: trained on") for line in lines)
    warning = next(line for line in lines if line.startswith("warning: the validation set (3 images"))
    assert "fewer than 10 images of neutral 1, happiness 1, sadness 1" in warning and "last.pt" in warning


def test_eval_scores_the_runs_carved_validation_split_by_name(run, capsys, tmp_path):
    out, _ = run
    best = out / "best.pt"
    assert main(["eval", "--checkpoint", str(best), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "the run's folder data has no test split (only train)" in err
    assert f"fer-nla eval --checkpoint {best} --split valid" in err
    assert main(["eval", "--checkpoint", str(best), "--split", "valid", "--device", "cpu", "--json",
                 "--output", str(tmp_path / "valid.json")]) == 0
    scored = json.loads(capsys.readouterr().out)
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert scored["num_samples"] == 3  # the carve training validated on, rebuilt from the run's config
    assert scored["operating_points"]["train"]["overall_acc"] == pytest.approx(metrics[-1]["val"]["overall_acc"])
    report = (out / "report.md").read_text()
    assert f"`fer-nla eval --checkpoint {best} --split valid`" in report


def test_epoch_zero_is_on_the_validation_curves():
    start = {"val": {"overall_acc": 0.5, "mean_acc": 0.4}, "val_loss": 1.2}
    lines = [{"epoch": 1, "train_loss": 1.0, "train_acc": 0.6, "val": {"overall_acc": 0.55, "mean_acc": 0.45},
              "val_loss": 1.1}]
    ax_loss, ax_acc = curves_figure(lines, best_epoch=0, start=start).axes
    val_acc = next(line for line in ax_acc.lines if line.get_label() == "val acc")
    assert list(val_acc.get_xdata()) == [0, 1] and list(val_acc.get_ydata()) == pytest.approx([50.0, 55.0])
    train_acc = next(line for line in ax_acc.lines if line.get_label() == "train acc")
    assert list(train_acc.get_xdata()) == [1]  # no training before epoch 1
    val_loss = next(line for line in ax_loss.lines if line.get_label() == "validation (cross-entropy)")
    assert list(val_loss.get_ydata()) == [1.2, 1.1]


def test_eval_refuses_to_rebuild_the_carve_from_other_data(run, folder, tmp_path, capsys):
    """Data with an image more than the run had: the carve would differ and mix in trained images."""
    import shutil

    out, _ = run
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)
    Image.fromarray(np.full((24, 24, 3), 7, np.uint8)).save(moved / "happy" / "extra.png")
    assert main(["eval", "--checkpoint", str(out / "best.pt"), "--split", "valid", "--root", str(moved),
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "is not what it trained on (36 and 3 samples in its training and validation splits then, 37 and 3 now" in err
    (moved / "happy" / "extra.png").unlink()  # the same data, moved: its counts match, so it is scored
    assert main(["eval", "--checkpoint", str(out / "best.pt"), "--split", "valid", "--root", str(moved),
                 "--device", "cpu", "--output", str(tmp_path / "e.json")]) == 0
