"""The suspicion score of each training label: its mean probability margin deficit over the
scored epochs, and the majority prediction over the same epochs (see :mod:`fer_nla.audit`)."""

from __future__ import annotations

import numpy as np


def scored_epochs(num_epochs: int, *, skip_epochs: int = 1) -> slice:
    """The epochs that enter the score: all but the first ``skip_epochs`` (warm-up), never none
    (a run of ``skip_epochs`` epochs or fewer is scored on its last epoch alone).

    Raises:
        ValueError: ``num_epochs`` 0 or less, or ``skip_epochs`` negative.
    """
    if num_epochs <= 0:
        raise ValueError("no recorded epochs: the run recorded no per-sample signals")
    if skip_epochs < 0:
        raise ValueError(f"skip_epochs must be 0 or more, got {skip_epochs}")
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


def majority_prediction(predictions: np.ndarray, *, num_classes: int, skip_epochs: int = 1) -> np.ndarray:
    """Most frequent predicted class per sample over the scored epochs (``-1`` = not seen)."""
    predictions = np.asarray(predictions)
    rows = predictions[scored_epochs(predictions.shape[0], skip_epochs=skip_epochs)]
    counts = np.zeros((num_classes + 1, rows.shape[1]), dtype=np.int64)
    for row in rows:  # epochs are few; samples are many: vectorise over samples
        np.add.at(counts, (np.where(row >= 0, row, num_classes), np.arange(rows.shape[1])), 1)
    best = counts[:num_classes].argmax(axis=0)
    return np.where(counts[:num_classes].sum(axis=0) > 0, best, -1)
