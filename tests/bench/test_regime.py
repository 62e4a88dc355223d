"""The pretrained regime (`fer-nla bench regime`): its cells, a cached cell scored as `eval` scores
it, its tables, and a tiny end-to-end run on the real FERPlus files (skipped where absent)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_nla.bench.cells import EvalSplit, cell_config, run_cell, write_setting_manifest
from fer_nla.bench.config import load_bench_config
from fer_nla.bench.regime import ABLATIONS, regime_cells
from fer_nla.bench.regime_tables import ablation_table, fit_epochs, fit_epochs_table, fit_table, nla_against_ce
from fer_nla.bench.settings import SettingSplit
from fer_nla.builtin import DEFAULT_MODEL
from fer_nla.cli import main
from fer_nla.config import load_config
from fer_nla.data import build_dataset
from fer_nla.data.corrupt import symmetric_noise
from fer_nla.evaluate import evaluate_checkpoint

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "pretrained_regime.yaml"


@pytest.fixture(autouse=True)
def _threads_restored():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_the_cells_are_the_grid_then_nlas_ablation_on_two_settings():
    cells = regime_cells(load_bench_config(BENCH))
    keys = [c.key for c in cells]
    assert len(cells) == 8 * 6 * 3 + 3 + len(ABLATIONS) * 2 * 3 == 177 and len(set(keys)) == 177
    ablation = cells[147:]
    assert {c.setting for c in ablation} == {"single_vote", "symmetric_30"} and {c.loss for c in ablation} == {"nla"}
    assert {c.method: c.options for c in ablation} == ABLATIONS
    assert ABLATIONS["nla_naw_only"] == {"lam_c": 0.0} and ABLATIONS["nla_consistency_only"] == {"lam_b": 0.0}
    assert [c.key for c in regime_cells(load_bench_config(BENCH), ablation=False)] == keys[:147]


def test_a_variant_named_as_an_ablation_label_is_a_grid_row_and_not_run_twice():
    from fer_nla.bench.regime import ablation_labels

    cfg = load_bench_config(BENCH, ["bench.variants={nla_consistency_mean: {loss: nla, options: "
                                    "{consistency_reduction: mean}}}"])
    cells = regime_cells(cfg)
    keys = [c.key for c in cells]
    assert len(keys) == len(set(keys)) == 9 * 6 * 3 + 3 + (len(ABLATIONS) - 1) * 2 * 3
    assert sum(c.method == "nla_consistency_mean" for c in cells) == 6 * 3  # every setting, not the ablation's two
    assert "nla_consistency_mean" not in ablation_labels(cfg) and set(ablation_labels(cfg)) < set(ABLATIONS)
    assert ablation_labels(cfg, ablation=False) == {}


def test_a_cached_cell_is_scored_as_eval_scores_its_checkpoint_on_the_images(tmp_path):
    source = {"dataset": "synthetic", "root": None, "split": "train", "labels": "majority", "num_classes": None,
              "seed": 0, "options": {"num_samples": 64, "image_size": 48}}
    pool = build_dataset("synthetic", split="train", num_samples=64, image_size=48)
    noisy = symmetric_noise(pool.targets, num_classes=len(pool.class_names), rate=0.3, seed=1)
    train, val = np.flatnonzero(np.arange(64) % 4), np.flatnonzero(np.arange(64) % 4 == 0)
    split = SettingSplit("symmetric_30", train, noisy[train], pool.targets[train], val, noisy[val])
    manifest = write_setting_manifest(tmp_path / "s.csv", pool, split, source=source)
    recipe = load_config(None, [f"model.init=builtin:{DEFAULT_MODEL}", "model.frozen_stages=3", "train.cache_frozen=true",
                                "train.select_init=false", "data.flip=false", "data.erasing=false",
                                "data.gaussian_noise=false", "data.image_size=48", "train.epochs=2", "train.batch_size=16",
                                f"data.cache_dir={tmp_path / 'cache'}", "optim.lr=1e-3"])
    config = cell_config(recipe, manifest=manifest, method="nla", seed=0, threads=1)
    test = EvalSplit("synthetic", "", "test", "majority", {"num_samples": 48, "image_size": 48})
    cell = run_cell(config, tmp_path / "cell", test, keep_checkpoints=True)
    scored = evaluate_checkpoint(str(tmp_path / "cell" / "best.pt"), dataset="synthetic", split="test",
                                 options={"num_samples": 48, "image_size": 48}, device_name="cpu")
    for key in ("overall_acc", "mean_acc", "per_class_acc", "macro_f1"):
        assert cell["test"][key] == pytest.approx(scored[key]), key
    assert cell["test"]["num_samples"] == 48
    history = cell["epochs"]
    assert [h["epoch"] for h in history] == [1, 2]
    clean_share = float(np.mean(noisy[train] == pool.targets[train]))
    for h in history:  # the manifest's clean labels give train_acc_clean beside train_acc
        assert 0.0 <= h["train_acc"] <= 1.0 and 0.0 <= h["train_acc_clean"] <= 1.0
    assert 0.5 < clean_share < 0.9


def _row(method, setting, seed, overall, mean, given, clean, per_class):
    history = [{"epoch": i + 1, "train_acc": g, "train_acc_clean": c, "val_overall_acc": 0.5} for i, (g, c) in
               enumerate(zip(given, clean, strict=True))]
    return {"method": method, "setting": setting, "seed": seed, "overall_acc": overall, "mean_acc": mean,
            "per_class_acc": per_class, "best_epoch": 1 + seed, "history": history}


def test_the_fit_table_reads_the_histories_and_the_ablation_table_the_per_class_means():
    rows = [_row("ce", "symmetric_30", 0, 0.80, 0.60, [0.6, 0.7], [0.8, 0.78], {"a": 0.9, "b": 0.1}),
            _row("ce", "symmetric_30", 1, 0.82, 0.62, [0.6, 0.8], [0.8, 0.76], {"a": 0.7, "b": 0.3}),
            _row("nla", "symmetric_30", 0, 0.78, 0.55, [0.5, 0.6], [0.7, 0.8], {"a": 1.0, "b": 0.0})]
    fit = fit_table(rows).splitlines()
    assert fit[2] == "| ce | 60.00 -> 75.00 | 80.00 -> 77.00 | 1.5 |"
    assert fit[3] == "| nla | 50.00 -> 60.00 | 70.00 -> 80.00 | 1.0 |"
    table = ablation_table(rows, ["symmetric_30"], ["ce", "nla"], ["a", "b"]).splitlines()
    assert table[2] == "| ce | symmetric_30 | 81.00 ± 1.41 | 61.00 ± 1.41 | 80.0 | 20.0 |"
    assert table[3] == "| nla | symmetric_30 | 78.00 ± 0.00 | 55.00 ± 0.00 | 100.0 | 0.0 |"


def test_fit_epochs_are_the_first_epoch_given_passes_clean_per_seed_and_never_when_it_does_not():
    pc = {"a": 0.5}
    rows = [_row("ce", "symmetric_30", 1, 0.8, 0.6, [0.3, 0.6, 0.7], [0.5, 0.6, 0.65], pc),  # equal is not past
            _row("ce", "symmetric_30", 0, 0.8, 0.6, [0.3, 0.6, 0.9], [0.5, 0.55, 0.6], pc),
            _row("ce", "single_vote", 0, 0.8, 0.6, [0.3, 0.4, 0.5], [0.5, 0.6, 0.7], pc),
            _row("nla", "single_vote", 0, 0.8, 0.6, [0.9, 0.9, 0.9], [0.1, 0.1, 0.1], pc),
            _row("ce", "clean", 0, 0.8, 0.6, [0.9, 0.9, 0.9], [0.1, 0.1, 0.1], pc),
            _row("ce", "imbalance_50", 0, 0.8, 0.6, [0.3, 0.5, 0.9], [0.3, 0.5, 0.9], pc)]  # no wrong labels
    assert fit_epochs(rows) == {"single_vote": [None], "symmetric_30": [2, 3]}
    lines = fit_epochs_table(rows).splitlines()
    assert sorted(lines[2:]) == ["| single_vote | never | 50.00 / 70.00 |", "| symmetric_30 | 2, 3 | 80.00 / 62.50 |"]


def test_nla_against_ce_pairs_the_seeds_and_ranks_nla_among_the_methods():
    pc = {"a": 0.5}
    rows = [_row("ce", "single_vote", 0, 0.80, 0.60, [0.5], [0.5], pc), _row("ce", "single_vote", 1, 0.70, 0.50, [0.5], [0.5], pc),
            _row("nla", "single_vote", 0, 0.82, 0.58, [0.5], [0.5], pc), _row("nla", "single_vote", 1, 0.74, 0.49, [0.5], [0.5], pc),
            _row("gce", "single_vote", 0, 0.90, 0.40, [0.5], [0.5], pc)]
    lines = nla_against_ce(rows).splitlines()
    assert lines[2] == "| single_vote | +3.00 ± 1.41 | -1.50 ± 0.71 | 2 of 3 | 2 of 3 |"


def test_a_tiny_regime_pretrains_on_half_p_and_fine_tunes_on_half_f_then_resumes(ferplus_root, tmp_path, capsys):
    out = tmp_path / "regime"
    args = ["bench", "regime", "--config", str(BENCH), "--quick", "--no-ablation", "--out", str(out),
            "--pretrain", "train.epochs=1", "--pretrain", "data.train_subset=400", f"data.root={ferplus_root}",
            "bench.workers=1", "bench.methods=[ce,nla]"]
    assert main(args) == 0
    data = json.loads((out / "pretrained_regime.json").read_text())
    rows, meta = data["rows"], data["meta"]
    assert [(r["method"], r["setting"], r["seed"]) for r in rows] == [("ce", "symmetric_30", 0), ("nla", "symmetric_30", 0)]
    for row in rows:
        assert [h["epoch"] for h in row["history"]] == [1, 2] and row["best_epoch"] in (1, 2)
        assert all(0 < h["train_acc"] < 1 and 0 < h["train_acc_clean"] < 1 for h in row["history"])
        assert 0.2 < row["train_noise_rate"] < 0.4 and row["train_size"] == 300
        assert set(row["per_class_acc"]) == set(meta["class_names"]) and 0 < row["overall_acc"] < 1
    assert meta["half_f_size"] == 12544 and 0 < meta["pretrained_start"]["overall_acc"] < 1
    pre = load_config(out / "pretrain" / "config.yaml")
    assert (pre.data.train_fold, pre.data.labels, pre.data.val_split) == ("1/2", "majority", "carve")
    from fer_nla.data.split import fold_indices

    for manifest in (out / "settings").glob("*.csv"):  # every face fine-tuned on or selected with is half F's
        ids = [os.path.relpath(line.split(",")[0], str(ferplus_root)) for line in manifest.read_text().splitlines()[1:]]
        assert len(ids) > 300 and len(fold_indices(ids, "2/2", seed=0)) == len(ids)
    md = (out / "pretrained_regime.md").read_text()
    assert "## Does training fit the noise? (symmetric_30" in md and "| ce | " in md
    assert main(args) == 0  # resumed: pretraining and both cells already done
    again = json.loads((out / "pretrained_regime.json").read_text())
    assert again["meta"]["cells_run_now"] == 0 and again["rows"] == rows
    assert "invocations" not in meta and [i["cells"] for i in again["meta"]["invocations"]] == [2, 0]
    first = again["meta"]["invocations"][0]["seconds"]  # its start to its last row, not to the resume
    assert 0 < first <= meta["seconds"] and again["meta"]["seconds"] == pytest.approx(first + again["meta"]["invocations"][1]["seconds"])
    assert "2 cells over 2 invocations of the command" in (out / "pretrained_regime.md").read_text()
    for changed in (["optim.lr=0.01"], ["--pretrain", "train.epochs=2"]):  # another recipe: refused, nothing reused
        assert main([*args, *changed]) == 2
        assert "holds a regime run with another recipe" in capsys.readouterr().err
    assert json.loads((out / "pretrained_regime.json").read_text()) == again


@pytest.mark.parametrize("folder", ["", "identity_regime", "identity_regime/own_label_sets"])
def test_report_only_rewrites_the_committed_report_without_a_config(tmp_path, capsys, folder):
    committed = REPO / "benchmarks" / "results" / folder
    (tmp_path / "pretrained_regime.json").write_text((committed / "pretrained_regime.json").read_text())
    assert main(["bench", "regime", "--report-only", "--out", str(tmp_path)]) == 0
    md = (tmp_path / "pretrained_regime.md").read_text()
    assert md == (committed / "pretrained_regime.md").read_text()
    for plot in re.findall(r"!\[[^]]*\]\(([^)]+\.png)\)", md):  # every plot the report shows is written
        assert (tmp_path / plot).stat().st_size > 10_000, plot
    assert folder == "identity_regime/own_label_sets" or "pretrained_regime_curves.png" in md
    assert main(["bench", "regime", "--report-only", "--out", str(tmp_path / "empty")]) == 2
    assert "does not exist: the report is rewritten from a finished run" in capsys.readouterr().err
    for bad in ("{not json", '{"rows": []}', "[1, 2]"):
        (tmp_path / "bad").mkdir(exist_ok=True)
        (tmp_path / "bad" / "pretrained_regime.json").write_text(bad)
        assert main(["bench", "regime", "--report-only", "--out", str(tmp_path / "bad")]) == 2
        assert "is not a regime report's JSON" in capsys.readouterr().err, bad


def test_a_bad_pretraining_key_is_named_as_the_pretraining_recipes(tmp_path, capsys):
    args = ["bench", "regime", "--config", str(BENCH), "--out", str(tmp_path), "--pretrain", "train.epoch=1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "the pretraining recipe" in err and "--pretrain train.epoch=1" in err and "train.epochs" in err
    assert main(["bench", "regime", "--out", str(tmp_path)]) == 2
    assert "name the bench config: --config" in capsys.readouterr().err


def test_a_backbone_start_skips_pretraining_and_reports_both_protocols_and_a_label_set(ferplus_root, tmp_path):
    """bench.start=backbone (model.backbone_weights as it is), bench.paper_protocol, a variant row
    and a label set of our own: one tiny grid through `fer-nla bench regime`."""
    from fer_nla.builtin import builtin_path

    labels = tmp_path / "mine.csv"
    rows = [line.split(",")[0] for line in (ferplus_root / "FER2013Train" / "label.csv").read_text().splitlines()]
    labels.write_text("image,label\n" + "".join(f"{name},{('neutral', 'happiness')[i % 2]}\n"
                                                 for i, name in enumerate(rows) if name))
    out = tmp_path / "regime"
    args = ["bench", "regime", "--config", str(BENCH), "--quick", "--no-ablation", "--out", str(out),
            f"data.root={ferplus_root}", "bench.workers=1", "bench.start=backbone", "bench.paper_protocol=true",
            f"model.backbone_weights={builtin_path(DEFAULT_MODEL)}", "bench.methods=[ce]",
            "bench.variants={nla_consistency_mean: {loss: nla, options: {consistency_reduction: mean}}}",
            f"bench.label_sets.mine={labels}", "bench.settings=[mine]"]
    assert main(args) == 0
    assert not (out / "pretrain").exists()
    data = json.loads((out / "pretrained_regime.json").read_text())
    got = {(r["method"], r["setting"]): r for r in data["rows"]}
    variant = ("nla_consistency_mean", "mine")  # named as an ablation label, yet a grid row: in the tables
    assert set(got) == {("ce", "mine"), variant} and got[variant]["loss"] == "nla"
    assert got[variant]["loss_options"] == {"consistency_reduction": "mean"} and data["meta"]["ablations"] == {}
    for row in got.values():
        assert set(row["train_class_counts"][2:]) == {0}  # the file's two classes only
        tests = [(h["test_overall_acc"], h["test_mean_acc"]) for h in row["history"]]
        assert len(tests) == 2 and row["paper"]["best_overall"]["overall_acc"] == max(t[0] for t in tests)
        assert row["paper"]["best_mean"]["mean_acc"] == max(t[1] for t in tests)
        # the honest figure is the test score of the epoch validation chose, one of the epochs scored
        assert row["overall_acc"] == pytest.approx(tests[row["best_epoch"] - 1][0], abs=1e-9)
    md = (out / "pretrained_regime.md").read_text()
    assert "`model.backbone_weights=" in md and "never saw an expression label" in md
    assert "## What test selection adds" in md and "| **all methods** |" in md
    assert "| nla_consistency_mean | " in md[:md.index("## Mean class accuracy")] and "## NLA's ablation" not in md
    assert data["meta"]["protocol_gap"]["overall"] >= 0


def test_workers_start_on_different_label_sets_and_every_cell_runs_once():
    from fer_nla.bench.regime import run_order

    cells = regime_cells(load_bench_config(BENCH), ablation=False)
    order = run_order(cells, workers=2)
    assert sorted(c.key for c in order) == sorted(c.key for c in cells)
    first = [(c.setting, c.seed) for c in order[:4]]
    assert first == [("single_vote", 0), ("symmetric_10", 0), ("single_vote", 0), ("symmetric_10", 0)]
    assert run_order(cells, workers=1) == cells
