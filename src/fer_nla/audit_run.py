"""The label audit of a run folder: its recorded signals turned into a ranked table, a CSV
and a contact sheet of the most suspicious faces (scores: :mod:`fer_nla.audit`)."""

from __future__ import annotations

import csv
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.audit import detection_quality, majority_prediction, suspicion_scores, verdicts
from fer_nla.errors import InputError
from fer_nla.train.run_folder import RunFolder
from fer_nla.train.signals import load_signals

CSV_COLUMNS = ("rank", "index", "path", "given_label", "predicted_label", "score", "mean_weight", "verdict")


@dataclass
class Audit:
    """Every trained sample of a run, most suspicious first."""

    class_names: tuple[str, ...]
    index: np.ndarray  # sample index in the run's training split
    sample_ids: np.ndarray
    given: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray
    mean_weight: np.ndarray | None
    verdict: np.ndarray

    def __len__(self) -> int:
        return len(self.index)

    def rows(self, top: int | None = None) -> list[dict[str, Any]]:
        n = len(self) if top is None else min(top, len(self))
        out = []
        for r in range(n):
            pred = int(self.predicted[r])
            weight = None if self.mean_weight is None else float(self.mean_weight[r])
            out.append({
                "rank": r + 1, "index": int(self.index[r]), "path": str(self.sample_ids[r]),
                "given_label": self.class_names[int(self.given[r])],
                "predicted_label": self.class_names[pred] if pred >= 0 else "",
                "score": round(float(self.scores[r]), 6),
                "mean_weight": None if weight is None or math.isnan(weight) else round(weight, 6),
                "verdict": str(self.verdict[r]),
            })
        return out

    def counts(self) -> dict[str, int]:
        values, counts = np.unique(self.verdict.astype(str), return_counts=True)
        return {str(v): int(c) for v, c in zip(values, counts)}


def run_class_names(run: RunFolder) -> tuple[str, ...]:
    from fer_nla.checkpoint import load_checkpoint

    for path in (run.last, run.best):
        if path.is_file():
            return tuple(load_checkpoint(path)["class_names"])
    raise InputError(f"{run.root} has neither last.pt nor best.pt; is it a fer-nla run folder?")


def audit_run(
    run_dir: str | Path, *, skip_epochs: int = 1, noisy_threshold: float = 0.3, ambiguous_band: float = 0.3
) -> Audit:
    """Rank the trained samples of ``run_dir`` by suspicion (highest first, ties by index)."""
    run = RunFolder(Path(run_dir))
    if not run.signals.is_file():
        raise InputError(
            f"{run.signals} does not exist: train with train.record_signals=true (the default) to audit a run"
        )
    sig = load_signals(run.signals)
    class_names = run_class_names(run)
    p_gt, p_nn = sig["p_gt"].astype(np.float32), sig["p_nn"].astype(np.float32)
    if p_gt.shape[0] == 0:
        raise InputError(f"{run.signals} holds no finished epoch; let the run finish at least one")
    scores = suspicion_scores(p_gt, p_nn, skip_epochs=skip_epochs)
    predicted = majority_prediction(sig["prediction"], num_classes=len(class_names), skip_epochs=skip_epochs)
    weight = None
    if "weights" in sig:
        w = sig["weights"].astype(np.float32)[slice(min(skip_epochs, len(p_gt) - 1), None)]
        with warnings.catch_warnings():  # 'mean of empty slice' for samples never trained on
            warnings.simplefilter("ignore", RuntimeWarning)
            weight = np.nanmean(w, axis=0)
    trained = np.flatnonzero(np.isfinite(scores))
    order = trained[np.lexsort((trained, -scores[trained]))]
    return Audit(
        class_names=class_names, index=order, sample_ids=sig["sample_ids"][order], given=sig["targets"][order],
        predicted=predicted[order], scores=scores[order], mean_weight=None if weight is None else weight[order],
        verdict=verdicts(scores[order], noisy_threshold=noisy_threshold, ambiguous_band=ambiguous_band),
    )


def write_csv(audit: Audit, path: str | Path, *, top: int | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in audit.rows(top):
            writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS})
    return path


def training_dataset(run_dir: str | Path) -> Any:
    """The run's full training split, rebuilt from its ``config.yaml`` (images load lazily)."""
    from fer_nla.config import load_config
    from fer_nla.train.run_data import _load

    run = RunFolder(Path(run_dir))
    config = load_config(run.config)
    return _load(config.data, config.data.train_split, seed=config.train.seed)


def evaluate_against_clean(audit: Audit, clean_targets: np.ndarray, *, k: int | None = None) -> dict[str, Any]:
    """Precision at K, recall at K and ROC AUC of the ranking where clean labels are known."""
    clean = np.asarray(clean_targets)[audit.index]
    known = clean >= 0
    noisy = (audit.given != clean)[known]
    quality = detection_quality(noisy, audit.scores[known], k=k)
    return {**quality.as_dict(), "num_scored": int(known.sum()), "noise_rate": float(noisy.mean())}


def contact_sheet(audit: Audit, dataset: Any, path: str | Path, *, top: int = 36, columns: int = 6) -> Path:
    """A grid of the ``top`` most suspicious faces titled ``given -> predicted (score)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = audit.rows(top)
    if not rows:
        raise InputError("nothing to draw: the audit holds no trained sample")
    n_rows = math.ceil(len(rows) / columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(columns * 1.9, n_rows * 2.2), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), rows):
        ax.imshow(np.asarray(dataset.load_image(row["index"]).convert("RGB")))
        ax.set_title(f"#{row['rank']} {row['given_label']}\n-> {row['predicted_label']} ({row['score']:+.2f})", fontsize=7)
    fig.suptitle("most suspicious training labels: given -> predicted (score)", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
