"""report.md: what made the run, the validation loss curve, integer epoch ticks, commands that
work from where train ran, and plot labels and titles that say what they show."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_nla import __version__
from fer_nla.config import load_config, save_config
from fer_nla.metrics import mean_cross_entropy
from fer_nla.train.report import confusion_figure, curves_figure, naw_figure, per_class_figure, write_report
from fer_nla.train.run_folder import RunFolder

CLASSES = ["neutral", "happiness", "sadness"]


def epoch_line(epoch: int, *, val_loss: float | None, best: bool) -> dict:
    line = {"epoch": epoch, "lr": 1e-3, "train_loss": 2.0 / epoch, "train_acc": 0.3 + 0.1 * epoch,
            "train_samples": 96, "images_per_second": 50.0, "seconds": 2.0,
            "val": {"overall_acc": 0.5, "mean_acc": 0.4, "top2_acc": 0.8, "macro_f1": 0.3, "mAP": 0.45},
            "val_per_class_acc": {"neutral": 0.5, "happiness": 0.25, "sadness": None},
            "val_confusion_matrix": [[2, 2, 0], [3, 1, 0], [0, 0, 0]], "best": best}
    if val_loss is not None:
        line["val_loss"] = val_loss
    return line


def make_run(root: Path, *overrides: str, epochs: int = 3) -> RunFolder:
    run = RunFolder(root)
    root.mkdir(parents=True, exist_ok=True)
    save_config(load_config(None, list(overrides)), run.config)
    lines = [epoch_line(e, val_loss=1.5 - 0.1 * e, best=e == 2) for e in range(1, epochs + 1)]
    run.metrics.write_text("".join(json.dumps(m) + "\n" for m in lines))
    return run


def rows(text: str) -> dict[str, str]:
    """The ``| what | value |`` rows of the report's run table."""
    return dict(re.findall(r"^\| ([a-z -]+) \| (.*) \|$", text, flags=re.M))


def test_mean_cross_entropy_matches_a_hand_computation():
    probs = np.array([[0.7, 0.2, 0.1], [0.25, 0.5, 0.25]])
    assert mean_cross_entropy(np.array([0, 1]), probs) == pytest.approx(-(math.log(0.7) + math.log(0.5)) / 2, abs=1e-12)
    underflow = mean_cross_entropy(np.array([1]), np.array([[1.0, 0.0]]))  # softmax underflow: finite
    assert underflow == pytest.approx(-math.log(np.finfo(np.float32).tiny), rel=1e-9) and math.isfinite(underflow)
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 3\)"):
        mean_cross_entropy(np.array([3]), probs[:1])


def test_training_records_a_finite_val_loss_equal_to_cross_entropy_of_the_checkpoint(tmp_path):
    from fer_nla.train.fit import fit
    from fer_nla.models import build_model
    from fer_nla.train.run_data import build_run_data

    config = load_config(None, ["data.options.num_samples=24", "data.options.image_size=32", "data.image_size=32",
                                "train.batch_size=12", "train.epochs=1", "train.progress=false", "loss.name=ce",
                                "train.tensorboard=false", "train.record_signals=false", "train.precision=fp32",
                                "model.arch=cnn_small"])
    fit(config, tmp_path / "run", log=lambda _m: None)
    (line,) = [json.loads(t) for t in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert math.isfinite(line["val_loss"]) and line["val_loss"] > 0

    # by hand: the epoch's model (last.pt) on the validation split, torch's cross-entropy
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    model = build_model("cnn_small", num_classes=len(state["class_names"]))
    model.load_state_dict(state["state_dict"])
    val = build_run_data(config.data, seed=0, log=lambda _m: None).val
    images = torch.stack([val[i][0] for i in range(len(val))])
    targets = torch.tensor([val[i][1] for i in range(len(val))])
    with torch.no_grad():
        expected = torch.nn.functional.cross_entropy(model.eval()(images), targets).item()
    assert line["val_loss"] == pytest.approx(expected, rel=1e-4)
    assert "| val_loss (cross-entropy, nats) |" in (tmp_path / "run" / "report.md").read_text()


def test_report_names_the_data_model_loss_optimiser_budget_seed_and_version(tmp_path):
    run = make_run(tmp_path / "run", "data.dataset=ferplus", f"data.root={tmp_path / 'ferplus'}",
                   "data.labels=single-vote", "data.image_size=64", "model.arch=resnet50",
                   f"model.backbone_weights={tmp_path / 'w.pth'}", "loss.name=nla", "loss.options.lam_a=0.3",
                   "optim.lr=2e-4", "train.epochs=3", "train.batch_size=24", "train.seed=7")
    write_report(run, class_names=CLASSES, loss_name="nla",
                 data={"train_split": "train", "train_samples": 96, "val_samples": 4,
                       "val_source": "the dataset's 'valid' split"})
    table = rows(run.report.read_text())
    assert table["dataset"] == f"ferplus, root {tmp_path / 'ferplus'}"
    assert table["labels"].startswith("single-vote")
    assert table["training split"] == "train: 96 samples"
    assert table["validation split"] == "the dataset's 'valid' split: 4 samples (chooses the best epoch)"
    assert table["model"] == "resnet50, stem imagenet, input 64 px"
    assert table["weights"] == f"backbone from {tmp_path / 'w.pth'}"
    assert table["loss"] == "nla; options: lam_a=0.3"
    assert table["optimiser"].startswith("adam, lr 0.0002, weight decay 0.0001")
    assert table["budget"].startswith("3 epochs, batch size 24")
    assert table["seed"].startswith("7 ")
    assert table["fer-nla"] == __version__


def test_report_without_split_sizes_counts_them_from_the_metrics(tmp_path):
    run = make_run(tmp_path / "run")
    write_report(run, class_names=CLASSES, loss_name="nla")
    table = rows(run.report.read_text())
    assert table["validation split"].startswith("val_split=auto: 8 samples")  # the confusion matrix's total
    assert table["weights"] == "none: random initialisation"
    assert table["dataset"] == "synthetic, root none (built in)"


@pytest.mark.parametrize("epochs", [1, 3, 7])
def test_curves_show_validation_loss_beside_training_loss_on_integer_epoch_ticks(epochs):
    lines = [epoch_line(e, val_loss=1.5 - 0.1 * e, best=False) for e in range(1, epochs + 1)]
    fig = curves_figure(lines, loss_name="nla", best_epoch=1)
    ax_loss, ax_acc = fig.axes
    by_label = {line.get_label(): line for line in ax_loss.get_lines()}
    assert list(by_label["validation (cross-entropy)"].get_ydata()) == pytest.approx([m["val_loss"] for m in lines])
    assert list(by_label["train (nla loss)"].get_ydata()) == pytest.approx([m["train_loss"] for m in lines])
    for ax in (ax_loss, ax_acc):
        ticks = ax.get_xticks()
        assert len(ticks) and np.all(ticks == np.round(ticks)), ticks


def test_curves_of_a_run_recorded_without_val_loss_still_draw():
    fig = curves_figure([epoch_line(e, val_loss=None, best=False) for e in (1, 2)])
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["train (training loss)"]


def test_commands_in_the_report_work_from_where_train_ran(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = make_run(Path("my runs") / "demo")  # as typed after --out, relative, with a space
    write_report(run, class_names=CLASSES, loss_name="nla")
    text = run.report.read_text()
    best = tmp_path / "my runs" / "demo" / "best.pt"
    assert f"fer-nla eval --checkpoint '{best}'" in text
    assert f"tensorboard --logdir '{tmp_path / 'my runs' / 'demo' / 'tensorboard'}'" in text
    assert "--checkpoint best.pt" not in text

    monkeypatch.chdir(tmp_path / "my runs" / "demo")  # a run written into the current folder: --out .
    here = make_run(Path("."))
    write_report(here, class_names=CLASSES, loss_name="nla")
    assert here.report.read_text().startswith("# Training report: demo\n")


def test_per_class_plot_says_na_for_a_class_without_samples_and_ends_names_under_bars():
    fig = per_class_figure({"neutral": 0.5, "happiness": 0.25, "sadness": None}, title="t")
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.texts] == ["50.0", "25.0", "n/a"]
    assert {t.get_horizontalalignment() for t in ax.get_xticklabels()} == {"right"}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["neutral", "happiness", "sadness"]


def test_naw_panel_titles_name_the_epoch_and_the_samples_shown():
    weights = np.full((5, 10), np.nan, dtype=np.float16)
    weights[:, :6] = 0.5
    signals = {"weights": weights, "p_gt": np.full((5, 10), 0.3, np.float16), "p_nn": np.full((5, 10), 0.2, np.float16)}
    fig = naw_figure(signals)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["epoch 1 of 5 (6 samples)", "epoch 3 of 5 (6 samples)", "epoch 5 of 5 (6 samples)"]
    assert naw_figure({**signals, "weights": np.full((5, 10), np.nan, np.float16)}) is None


def test_report_titles_the_confusion_matrix_with_its_epoch_and_sample_count(tmp_path):
    run = make_run(tmp_path / "run")
    write_report(run, class_names=CLASSES, loss_name="nla")
    fig = confusion_figure([[2, 2, 0], [3, 1, 0], [0, 0, 0]], CLASSES, title="validation confusion matrix, epoch 2 (8 samples)")
    assert fig.axes[0].get_title() == "validation confusion matrix, epoch 2 (8 samples)"
    assert (run.plots / "confusion_matrix.png").is_file() and (run.plots / "curves.png").is_file()
