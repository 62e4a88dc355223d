"""Whole tiny trainings on the CPU: the run folder, kill-and-resume, eval, divergence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fer_nla.checkpoint import load_checkpoint
from fer_nla.cli import main
from fer_nla.evaluate import EVAL_KEYS, evaluate_checkpoint
from fer_nla.config import load_config
from fer_nla.errors import InputError
from fer_nla.train.fit import fit
from fer_nla.train.signals import load_signals

TINY = [
    "data.options.num_samples=48", "data.options.image_size=32", "data.image_size=32",
    "train.batch_size=16", "train.eval_batch_size=64", "train.progress=false", "optim.lr=1e-3",
]


def tiny(*extra: str, epochs: int = 2):
    return load_config(None, [*TINY, f"train.epochs={epochs}", *extra])


class SimulatedKill(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the run may swallow it."""


def test_tiny_nla_run_leaves_a_complete_folder(tmp_path):
    out = tmp_path / "run"
    result = fit(tiny(), out, log=lambda _m: None)
    names = {p.name for p in out.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "best.pt", "last.pt", "signals.npz", "report.md", "plots", "tensorboard"} <= names
    assert any(p.name.startswith("events.out.tfevents") for p in (out / "tensorboard").iterdir())
    assert {p.name for p in (out / "plots").iterdir()} == {
        "curves.png", "confusion_matrix.png", "per_class_accuracy.png", "naw_weights.png"}
    lines = [json.loads(t) for t in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    assert load_config(out / "config.yaml") == tiny()

    # signals: [epochs, N] over the training split, NaN exactly where a sample was not trained on
    sig = load_signals(out / "signals.npz")
    n = len(sig["targets"])
    assert sig["weights"].shape == sig["p_gt"].shape == (2, n) and sig["weights"].dtype == np.float16
    trained = np.isfinite(sig["p_gt"].astype(np.float32))
    assert trained.sum(axis=1).tolist() == [48, 48]  # 3 full batches of 16 per epoch
    assert (sig["prediction"] >= 0).tolist() == trained.tolist()
    assert np.all((sig["p_gt"][trained] >= 0) & (sig["p_gt"][trained] <= 1))

    # the best epoch's validation metrics are what evaluating best.pt on that split gives
    best = load_checkpoint(out / "best.pt")
    assert best["epoch"] == result.best_epoch
    again = evaluate_checkpoint(str(out / "best.pt"), split="valid")
    assert again["overall_acc"] == pytest.approx(best["metrics"]["val"]["overall_acc"], abs=1e-12)
    assert again["confusion_matrix"] == best["metrics"]["val"]["confusion_matrix"]
    assert "report.md" in result.run.report.name and "naw_weights.png" in (out / "report.md").read_text()


def test_killed_mid_epoch_then_resumed_matches_an_uninterrupted_run(tmp_path):
    config = tiny("loss.name=nla", "train.deterministic=true", epochs=3)
    reference = fit(config, tmp_path / "whole", log=lambda _m: None)

    def kill(epoch: int, step: int) -> None:
        if (epoch, step) == (1, 2):  # in the middle of the second epoch
            raise SimulatedKill

    with pytest.raises(SimulatedKill):
        fit(config, tmp_path / "killed", on_step=kill, log=lambda _m: None)
    assert load_checkpoint(tmp_path / "killed" / "last.pt")["epoch"] == 1
    resumed = fit(config, tmp_path / "killed", resume=True, log=lambda _m: None)

    whole = [json.loads(t) for t in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    again = [json.loads(t) for t in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    strip = lambda m: {k: v for k, v in m.items() if k not in ("seconds", "images_per_second")}  # noqa: E731
    assert [strip(m) for m in again] == [strip(m) for m in whole]
    assert resumed.best_epoch == reference.best_epoch
    a, b = load_checkpoint(tmp_path / "whole" / "last.pt"), load_checkpoint(tmp_path / "killed" / "last.pt")
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    sa, sb = load_signals(tmp_path / "whole" / "signals.npz"), load_signals(tmp_path / "killed" / "signals.npz")
    for key in ("p_gt", "p_nn", "weights", "correct", "prediction"):
        np.testing.assert_array_equal(sa[key], sb[key])


def test_eval_command_json_keys(tmp_path, capsys):
    out = tmp_path / "run"
    fit(tiny("loss.name=ce", epochs=1), out, log=lambda _m: None)
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out / "best.pt"), "--split", "test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report) == list(EVAL_KEYS)
    names = report["class_names"]
    assert list(report["per_class_acc"]) == names and len(report["confusion_matrix"]) == len(names)
    cm = np.array(report["confusion_matrix"])
    assert report["overall_acc"] == pytest.approx(np.trace(cm) / cm.sum())
    assert (out / "eval_best_synthetic_test.json").is_file()
    assert "naw_weights.png" not in (out / "report.md").read_text()  # CE: no NAW weights to plot
    assert "weights" not in load_signals(out / "signals.npz")


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    import fer_nla.train.fit as fit_module

    real_build = fit_module.build_model
    poisoned = {"on": False}

    def build_poisonable(*args, **kwargs):
        model = real_build(*args, **kwargs)
        model.fc.register_forward_hook(lambda _m, _i, out: out * float("nan") if poisoned["on"] else out)
        return model

    def poison(epoch: int, step: int) -> None:
        poisoned["on"] = epoch == 1 and step == 1

    monkeypatch.setattr(fit_module, "build_model", build_poisonable)
    out = tmp_path / "run"
    with pytest.raises(InputError, match=r"epoch 2, step 2.*last good checkpoint is kept .*last.pt"):
        fit(tiny(), out, on_step=poison, log=lambda _m: None)
    kept = load_checkpoint(out / "last.pt")
    assert kept["epoch"] == 1 and all(torch.isfinite(v).all() for v in kept["state_dict"].values() if v.is_floating_point())


def test_run_folder_is_not_overwritten_and_resume_needs_a_run(tmp_path):
    out = tmp_path / "run"
    with pytest.raises(InputError, match="does not exist"):
        fit(tiny(), out, resume=True, log=lambda _m: None)
    fit(tiny(epochs=1), out, log=lambda _m: None)
    with pytest.raises(InputError, match="pass resume=True"):
        fit(tiny(epochs=1), out, log=lambda _m: None)


def test_cli_train_prints_where_the_report_is(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["train", "--out", str(out), "--epochs", "1", "--loss", "focal", *TINY]) == 0
    printed = capsys.readouterr().out
    assert f"report: {out / 'report.md'}" in printed and "epoch 1/1" in printed
    assert load_config(out / "config.yaml").loss.name == "focal"


def test_soft_target_run_trains_on_distributions_and_validates_on_hard_labels(tmp_path):
    from fer_nla.train.run_data import build_run_data

    config = tiny("data.labels=distribution", "loss.name=ce", epochs=1)
    data = build_run_data(config.data, seed=0, log=lambda _m: None)
    image, target, _ = data.train[0]
    assert target.shape == (7,) and float(target.sum()) == pytest.approx(1.0)  # a distribution to train on
    assert isinstance(data.val[0][1], int)  # a hard label to score
    assert [data.val[i][1] for i in range(len(data.val))] == data.val.targets.tolist()

    out = tmp_path / "soft"
    result = fit(config, out, log=lambda _m: None)
    lines = [json.loads(t) for t in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1] and lines[0]["train_samples"] == 48
    best = load_checkpoint(out / "best.pt")["metrics"]["val"]
    again = evaluate_checkpoint(str(out / "best.pt"), split="valid", labels="majority")  # the same hard labels
    assert again["overall_acc"] == pytest.approx(best["overall_acc"], abs=1e-12)
    assert again["confusion_matrix"] == best["confusion_matrix"] == result.best_metrics["confusion_matrix"]
    assert sum(map(sum, best["confusion_matrix"])) == len(data.val)


def test_a_loss_without_a_soft_form_is_refused_before_any_epoch(tmp_path):
    steps = []
    with pytest.raises(InputError, match=r"loss 'gce' cannot train on soft targets \(data\.labels='distribution'.*loss\.name=ce"):
        fit(tiny("data.labels=distribution", "loss.name=gce"), tmp_path / "run", on_step=lambda e, s: steps.append(s),
            log=lambda _m: None)
    assert steps == [] and not (tmp_path / "run" / "last.pt").exists()


def test_soft_targets_that_are_not_distributions_are_refused():
    from fer_nla.data import build_dataset
    from fer_nla.train.run_data import check_soft_targets

    ds = build_dataset("synthetic", split="train", labels="distribution", num_samples=4, image_size=16)
    check_soft_targets(ds)
    ds.soft_targets = ds.soft_targets.copy()
    ds.soft_targets[2] = [0.5, 0.2, 0, 0, 0, 0, 0]
    with pytest.raises(InputError, match=r"synthetic split 'train'.*1 sample\(s\).*synthetic:train:2 \(row sum 0\.7\)"):
        check_soft_targets(ds)


def test_a_paper_recipe_without_its_pretrained_file_warns_that_the_backbone_is_random(tmp_path, capsys):
    from pathlib import Path

    config = Path(__file__).resolve().parents[1] / "configs" / "rafdb_nla.yaml"
    assert load_config(config).model.expect_backbone_weights is True
    out = tmp_path / "paper"
    argv = ["train", "--config", str(config), "--out", str(out), "--dataset", "synthetic", "--num-classes", "7",
            "--epochs", "1", *TINY, "data.val_split=auto", "data.num_workers=0", "train.device=cpu"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "backbone starts from random weights" in printed and "resnet18_msceleb.pth" in printed
    assert main(["train", "--out", str(tmp_path / "plain"), "--epochs", "1", *TINY]) == 0
    assert "random weights" not in capsys.readouterr().out  # the quick start's own recipe is from scratch


def test_flush_denormal_flushes_during_the_run_only(tmp_path):
    """train.flush_denormal: subnormal floats are zero while the run trains, and PyTorch's default
    (kept) holds again after it, for whatever the process runs next."""
    tiny_value = torch.tensor([1e-40])  # subnormal in float32
    seen: list[float] = []
    fit(tiny("train.flush_denormal=true", "loss.name=ce", "train.report=false", "train.tensorboard=false", epochs=1),
        tmp_path / "run", on_step=lambda _e, _s: seen.append(float((tiny_value * 1.0)[0])), log=lambda _m: None)
    assert seen and set(seen) == {0.0}
    assert float((tiny_value * 1.0)[0]) > 0.0
