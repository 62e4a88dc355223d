"""How well the label audit finds real annotator disagreement, side by side with cleanlab.

On FERPlus single-vote labels the truth is known: a training label is noisy when the drawn
vote differs from the majority of ten. For each seed, on the robustness grid's
``single_vote`` training set and budget:

- ``nla_signals``: ``fer-nla audit``'s score (mean of p_nn - p_gt over epochs after the first)
  from ONE NLA training run, recorded during training at no extra forward;
- ``ce_signals``: the same score from one CE run (the score does not need NLA);
- ``cleanlab``: ``cleanlab.filter.find_label_issues`` (its defaults: prune by noise rate,
  ranked by self-confidence) fed with out-of-fold probabilities of ``folds`` CE models of the
  same architecture and epochs (``folds`` training runs on (folds-1)/folds of the data each);
  its ranking score is ``1 - get_label_quality_scores``.

Every ranking is scored by precision and recall among its top K (K = the number of truly noisy
labels), ROC AUC, and, for the methods that flag a set (audit verdict ``likely noisy``,
cleanlab's issues), precision and recall of that set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fer_nla.audit import detection_quality, suspicion_scores, verdicts
from fer_nla.bench.config import BenchConfig
from fer_nla.bench.robustness import Pool, build_pool, load_pool, machine_line
from fer_nla.bench.runner import CellData, train_cell

SETTING = "single_vote"


def stratified_folds(labels: np.ndarray, *, folds: int, seed: int) -> np.ndarray:
    """Fold number of each sample: every class spread evenly over the folds, seeded."""
    rng = np.random.default_rng(seed)
    fold = np.empty(labels.size, dtype=np.int64)
    offset = 0
    for k in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == k))
        fold[members] = (np.arange(members.size) + offset) % folds
        offset += members.size
    return fold


def flagged_quality(is_noisy: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    flagged = np.asarray(flagged, dtype=bool)
    hits = int((flagged & is_noisy).sum())
    return {"flagged": int(flagged.sum()), "precision_flagged": hits / max(int(flagged.sum()), 1),
            "recall_flagged": hits / max(int(is_noisy.sum()), 1)}


def _quality(is_noisy: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    q = detection_quality(is_noisy, scores)
    return {"precision_at_k": q.precision_at_k, "recall_at_k": q.recall_at_k, "roc_auc": q.roc_auc, "k": q.k}


def _signals_score(cfg: BenchConfig, pool: Pool, data: CellData, method: str, seed: int, is_noisy: np.ndarray) -> dict[str, Any]:
    result = train_cell(cfg.recipe, data, method=method, class_names=pool.class_names, seed=seed,
                        loss_options=cfg.grid.loss_options.get(method), record_signals=True)
    assert result.p_gt is not None and result.p_nn is not None
    scores = suspicion_scores(result.p_gt.astype(np.float32), result.p_nn.astype(np.float32), skip_epochs=1)
    scored = np.isfinite(scores)  # the samples of the dropped last partial batch have no record
    out = _quality(is_noisy[scored], scores[scored])
    out.update(flagged_quality(is_noisy[scored], verdicts(scores[scored]) == "likely noisy"))
    out.update({"scored": int(scored.sum()), "training_runs": 1, "seconds": round(result.seconds, 1),
                "test_overall_acc": result.test["overall_acc"]})
    return out


def _cleanlab_score(cfg: BenchConfig, pool: Pool, data: CellData, labels: np.ndarray, clean: np.ndarray, seed: int,
                    folds: int) -> dict[str, Any]:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    started = time.perf_counter()
    is_noisy = labels != clean
    fold = stratified_folds(labels, folds=folds, seed=seed)
    probs = np.zeros((labels.size, len(pool.class_names)), dtype=np.float64)
    for f in range(folds):
        held, kept = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        part = CellData(train_images=data.train_images[kept], train_labels=labels[kept], val_images=data.val_images,
                        val_labels=data.val_labels, test_images=data.test_images, test_labels=data.test_labels,
                        extra_images=data.train_images[held])
        result = train_cell(cfg.recipe, part, method="ce", class_names=pool.class_names, seed=seed * 100 + f)
        probs[held] = result.extra_probs
    probs = np.clip(probs, 1e-12, None)
    probs /= probs.sum(axis=1, keepdims=True)
    issues = find_label_issues(labels, probs)
    scores = 1.0 - get_label_quality_scores(labels, probs)
    out = _quality(is_noisy, scores)
    out.update(flagged_quality(is_noisy, issues))
    out.update({"scored": int(labels.size), "training_runs": folds, "seconds": round(time.perf_counter() - started, 1),
                "out_of_fold_acc_given": float(np.mean(probs.argmax(1) == labels)),
                "out_of_fold_acc_majority": float(np.mean(probs.argmax(1) == clean))})
    return out


def run_audit_comparison(cfg: BenchConfig, out: str | Path, *, folds: int = 5, command: str = "",
                         log: Callable[[str], None] = print) -> dict[str, Any]:
    """Score the audit and cleanlab on each seed's single-vote training set; write audit.json."""
    import json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    cells = [("nla", SETTING, seed) for seed in cfg.grid.seeds]
    cache, class_names = build_pool(cfg, cells, out / ".cache" / "audit_images.pt", log)
    pool = load_pool(cache, class_names)
    rows = []
    for seed in cfg.grid.seeds:
        split = pool.split(SETTING, seed, cfg)
        labels = split.train_labels
        is_noisy = labels != split.train_clean
        data = pool.cell_data(split)
        row: dict[str, Any] = {"seed": seed, "train_size": int(labels.size), "noisy": int(is_noisy.sum()),
                               "noise_rate": float(is_noisy.mean())}
        for method in ("nla", "ce"):
            row[f"{method}_signals"] = _signals_score(cfg, pool, data, method, seed, is_noisy)
            log(f"seed {seed} {method}_signals: {row[f'{method}_signals']}")
        row["cleanlab"] = _cleanlab_score(cfg, pool, data, labels, split.train_clean, seed, folds)
        log(f"seed {seed} cleanlab: {row['cleanlab']}")
        rows.append(row)
    cache.unlink(missing_ok=True)
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
