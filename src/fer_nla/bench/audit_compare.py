"""How well the label audit finds real annotator disagreement, side by side with cleanlab.

On FERPlus single-vote labels the truth is known: a training label is noisy when the drawn
vote differs from the majority of ten. For each seed, on the robustness grid's
``single_vote`` training set and budget:

- ``nla_signals``: ``fer-nla audit`` of ONE NLA training run (:func:`fer_nla.audit_run.audit_run`:
  the mean of p_nn - p_gt over epochs after the first, recorded during training at no extra
  forward, and its calibrated ``likely noisy`` verdict);
- ``ce_signals``: the same audit of one CE run (the score does not need NLA);
- ``cleanlab``: ``cleanlab.filter.find_label_issues`` (its defaults: prune by noise rate,
  ranked by self-confidence) fed with out-of-fold probabilities of ``folds`` CE models of the
  same architecture and epochs (``folds`` training runs on (folds-1)/folds of the data each,
  folds from scikit-learn's ``StratifiedKFold``);
  its ranking score is ``1 - get_label_quality_scores``.

Every ranking is scored by precision and recall among its top K (K = the number of truly noisy
labels), ROC AUC, and, for the methods that flag a set (audit verdict ``likely noisy``,
cleanlab's issues), precision and recall of that set.

Every training run is a ``fer-nla train`` run through :mod:`fer_nla.bench.cells`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fer_nla.audit import detection_quality
from fer_nla.audit_run import audit_run
from fer_nla.bench.cells import EvalSplit, cell_config, run_cell, write_setting_manifest
from fer_nla.bench.config import BenchConfig
from fer_nla.bench.robustness import Pool, cell_recipe, machine_line, read_pool, test_set
from fer_nla.bench.settings import SettingSplit
from fer_nla.config import Config

SETTING = "single_vote"


def flagged_quality(is_noisy: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    flagged = np.asarray(flagged, dtype=bool)
    hits = int((flagged & is_noisy).sum())
    return {"flagged": int(flagged.sum()), "precision_flagged": hits / max(int(flagged.sum()), 1),
            "recall_flagged": hits / max(int(is_noisy.sum()), 1)}


def _quality(is_noisy: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    q = detection_quality(is_noisy, scores)
    return {"precision_at_k": q.precision_at_k, "recall_at_k": q.recall_at_k, "roc_auc": q.roc_auc, "k": q.k}


def _signals_score(recipe: Config, cfg: BenchConfig, manifest: Path, method: str, seed: int, is_noisy: np.ndarray,
                   test: EvalSplit, out: Path) -> dict[str, Any]:
    """``fer-nla audit`` of one training run of ``method``, against the known noisy labels."""
    config = cell_config(recipe, manifest=manifest, method=method, seed=seed, loss_options=cfg.grid.loss_options.get(method))
    run_dir = out / "cells" / f"{method}-audit-seed{seed}"
    result = run_cell(config, run_dir, test, keep_checkpoints=True)
    audit = audit_run(run_dir)
    noisy = is_noisy[audit.index]  # the training rows the run scored (the last partial batch may be unseen)
    out_row = _quality(noisy, audit.scores)
    out_row.update(flagged_quality(noisy, audit.verdict == "likely noisy"))
    out_row.update({"scored": len(audit), "training_runs": 1, "seconds": round(result["seconds"], 1),
                    "test_overall_acc": result["test"]["overall_acc"], "calibrated": audit.calibration is not None
                    and audit.calibration.reliable})
    return out_row


def _cleanlab_score(recipe: Config, pool: Pool, split: SettingSplit, seed: int, folds: int, out: Path) -> dict[str, Any]:
    """cleanlab's issues from out-of-fold probabilities of ``folds`` CE runs (scikit-learn's
    ``StratifiedKFold``, shuffled with ``seed``); each run scores its held-out fold."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores
    from sklearn.model_selection import StratifiedKFold

    started = time.perf_counter()
    labels, clean = split.train_labels, split.train_clean
    probs = np.zeros((labels.size, len(pool.class_names)), dtype=np.float64)
    for f, (kept, held) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(labels, labels)):
        part = replace(split, train_index=split.train_index[kept], train_labels=labels[kept], train_clean=clean[kept])
        manifest = write_setting_manifest(out / "settings" / f"{SETTING}-seed{seed}-fold{f}.csv", pool.by_seed[seed], part,
                                          source=pool.source, extra={"test": split.train_index[held]})
        config = cell_config(recipe, manifest=manifest, method="ce", seed=seed * 100 + f)
        held_out = EvalSplit("manifest", str(manifest.resolve()), "test", "majority", {})
        result = run_cell(config, out / "cells" / f"ce-fold{f}-seed{seed}", held_out, with_probabilities=True)
        probs[held] = result["test"]["probs"]
    probs = np.clip(probs, 1e-12, None)
    probs /= probs.sum(axis=1, keepdims=True)
    issues = find_label_issues(labels, probs)
    scores = 1.0 - get_label_quality_scores(labels, probs)
    is_noisy = labels != clean
    out_row = _quality(is_noisy, scores)
    out_row.update(flagged_quality(is_noisy, issues))
    out_row.update({"scored": int(labels.size), "training_runs": folds, "seconds": round(time.perf_counter() - started, 1),
                    "out_of_fold_acc_given": float(np.mean(probs.argmax(1) == labels)),
                    "out_of_fold_acc_majority": float(np.mean(probs.argmax(1) == clean))})
    return out_row


def run_audit_comparison(cfg: BenchConfig, out: str | Path, *, folds: int = 5, command: str = "",
                         log: Callable[[str], None] = print) -> dict[str, Any]:
    """Score the audit and cleanlab on each seed's single-vote training set; write audit.json."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    pool, recipe, test = read_pool(cfg, list(cfg.grid.seeds)), cell_recipe(cfg, out), test_set(cfg)
    rows = []
    for seed in cfg.grid.seeds:
        split = pool.split(SETTING, seed, cfg)
        manifest = write_setting_manifest(out / "settings" / f"{SETTING}-seed{seed}.csv", pool.by_seed[seed], split,
                                          source=pool.source)
        is_noisy = split.train_labels != split.train_clean
        row: dict[str, Any] = {"seed": seed, "train_size": int(is_noisy.size), "noisy": int(is_noisy.sum()),
                               "noise_rate": float(is_noisy.mean())}
        for method in ("nla", "ce"):
            row[f"{method}_signals"] = _signals_score(recipe, cfg, manifest, method, seed, is_noisy, test, out)
            log(f"seed {seed} {method}_signals: {row[f'{method}_signals']}")
        row["cleanlab"] = _cleanlab_score(recipe, pool, split, seed, folds, out)
        log(f"seed {seed} cleanlab: {row['cleanlab']}")
        rows.append(row)
    result = {"command": command, "machine": machine_line(torch.get_num_threads()),
              "seconds": round(time.perf_counter() - started, 1), "setting": SETTING, "folds": folds,
              "truth": "noisy = the drawn single vote differs from the majority of ten annotators",
              "recipe": cfg.to_dict(), "seeds": rows, "summary": summary(rows)}
    path = out / "audit.json"
    path.write_text(json.dumps(result, indent=1) + "\n")
    log(f"wrote {path}")
    return result


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean over seeds of each method's figures."""
    out: dict[str, dict[str, float]] = {}
    for method in ("nla_signals", "ce_signals", "cleanlab"):
        keys = ("precision_at_k", "recall_at_k", "roc_auc", "precision_flagged", "recall_flagged", "flagged", "training_runs")
        out[method] = {k: float(np.mean([r[method][k] for r in rows])) for k in keys}
    return out
