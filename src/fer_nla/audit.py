"""Which training labels are doubtful: suspicion scores from the per-sample signals that
training records at no extra forward (p_gt, p_nn, NAW weight and branch, each epoch).

The score of sample ``i`` is its mean *probability margin deficit* over the scored epochs::

    score_i = mean_e (p_nn[e, i] - p_gt[e, i])            in [-1, 1], higher = more suspicious

This is the area-under-the-margin statistic of Pleiss et al. (2020) written with the very
quantities NAW navigates by: NLA's "wrong" branch is ``p_nn > p_gt``, and NAW gives the least
weight to samples whose nearest negative keeps beating the given label with confidence,
which is what a large positive mean margin deficit records. Averaging over epochs makes
the score robust to the late memorisation of noisy labels that a last-epoch score misses.
Verdicts: ``likely noisy`` when the score is at least ``noisy_threshold`` (the model prefers
another class by a wide margin across training), ``ambiguous`` when the score lies within
``ambiguous_band`` of zero (the given label and its nearest rival trade places), ``clean``
otherwise.

All functions work on plain numpy arrays with keyword-only options.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VERDICTS = ("likely noisy", "ambiguous", "clean")


def scored_epochs(num_epochs: int, *, skip_epochs: int = 1) -> slice:
    """The epochs that enter the score: all but the first ``skip_epochs`` (warm-up), never none."""
    if num_epochs <= 0:
        raise ValueError("no recorded epochs: the run recorded no per-sample signals")
    return slice(min(skip_epochs, num_epochs - 1), num_epochs)


def suspicion_scores(p_gt: np.ndarray, p_nn: np.ndarray, *, skip_epochs: int = 1) -> np.ndarray:
    """``mean_e (p_nn - p_gt)`` per sample from arrays shaped ``[epochs, samples]``.

    Entries that are NaN (a sample not seen in an epoch, e.g. a resumed partial epoch) are
    left out of that sample's mean; a sample never seen gets NaN.
    """
    p_gt, p_nn = np.asarray(p_gt, dtype=np.float64), np.asarray(p_nn, dtype=np.float64)
    if p_gt.shape != p_nn.shape or p_gt.ndim != 2:
        raise ValueError(f"p_gt and p_nn must both be [epochs, samples]; got {p_gt.shape} and {p_nn.shape}")
    rows = scored_epochs(p_gt.shape[0], skip_epochs=skip_epochs)
    deficit = p_nn[rows] - p_gt[rows]
    seen = np.isfinite(deficit)
    total = np.where(seen, deficit, 0.0).sum(axis=0)
    count = seen.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def verdicts(scores: np.ndarray, *, noisy_threshold: float = 0.3, ambiguous_band: float = 0.3) -> np.ndarray:
    """One of :data:`VERDICTS` per score (see the module docstring for the rule)."""
    if not 0.0 <= ambiguous_band <= noisy_threshold:
        raise ValueError("need 0 <= ambiguous_band <= noisy_threshold")
    scores = np.asarray(scores, dtype=np.float64)
    out = np.full(scores.shape, "clean", dtype=object)
    out[np.abs(scores) < ambiguous_band] = "ambiguous"
    out[scores >= noisy_threshold] = "likely noisy"
    return out


def majority_prediction(predictions: np.ndarray, *, num_classes: int, skip_epochs: int = 1) -> np.ndarray:
    """Most frequent predicted class per sample over the scored epochs (``-1`` = not seen)."""
    predictions = np.asarray(predictions)
    rows = predictions[scored_epochs(predictions.shape[0], skip_epochs=skip_epochs)]
    counts = np.zeros((num_classes + 1, rows.shape[1]), dtype=np.int64)
    for row in rows:  # epochs are few; samples are many: vectorise over samples
        np.add.at(counts, (np.where(row >= 0, row, num_classes), np.arange(rows.shape[1])), 1)
    best = counts[:num_classes].argmax(axis=0)
    return np.where(counts[:num_classes].sum(axis=0) > 0, best, -1)


# -- evaluation against known noise ----------------------------------------------------------
@dataclass(frozen=True)
class DetectionQuality:
    """How well a score ranks the truly noisy labels first."""

    precision_at_k: float
    recall_at_k: float
    roc_auc: float
    k: int
    num_noisy: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "k": self.k, "num_noisy": self.num_noisy, "precision_at_k": self.precision_at_k,
            "recall_at_k": self.recall_at_k, "roc_auc": self.roc_auc,
        }


def roc_auc(is_noisy: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for ``is_noisy`` (Mann-Whitney U, ties halved)."""
    is_noisy = np.asarray(is_noisy, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(is_noisy.sum()), int((~is_noisy).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC AUC needs both noisy and clean samples")
    # 1-based ranks, averaged over ties: a group of c equal values after s smaller ones has rank s + (c + 1) / 2
    _, group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    smaller = np.cumsum(counts) - counts
    ranks = (smaller + 0.5 * (counts + 1))[group]
    return float((ranks[is_noisy].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def detection_quality(is_noisy: np.ndarray, scores: np.ndarray, *, k: int | None = None) -> DetectionQuality:
    """Precision and recall among the ``k`` highest scores (default: as many as are noisy) and ROC AUC."""
    is_noisy = np.asarray(is_noisy, dtype=bool)
    scores = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    num_noisy = int(is_noisy.sum())
    k = num_noisy if k is None else int(k)
    if not 0 < k <= len(scores):
        raise ValueError(f"k must lie in [1, {len(scores)}], got {k}")
    top = np.argsort(-scores, kind="mergesort")[:k]
    hits = int(is_noisy[top].sum())
    return DetectionQuality(
        precision_at_k=hits / k,
        recall_at_k=hits / num_noisy if num_noisy else float("nan"),
        roc_auc=roc_auc(is_noisy, scores),
        k=k,
        num_noisy=num_noisy,
    )
