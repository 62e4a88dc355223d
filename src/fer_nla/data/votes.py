"""Labels from crowd votes (FERPlus): majority, plurality, probabilities and one drawn vote.

Functions take a ``(N, 10)`` array of vote counts in FERPlus's column order: the eight
emotions of :data:`fer_nla.labels.EMOTIONS`, then ``unknown`` and ``NF`` (not a face).
Labels are canonical indices, ``-1`` where the rule gives no emotion.
"""

from __future__ import annotations

import numpy as np

NUM_EMOTION_COLUMNS = 8
NUM_VOTE_COLUMNS = 10  # + unknown, not-a-face


def drop_outlier_votes(votes: np.ndarray) -> np.ndarray:
    """FERPlus's outlier removal: a count of a single vote is set to zero."""
    counts = np.asarray(votes, dtype=np.int64)
    return np.where(counts <= 1, 0, counts)


def majority_labels(votes: np.ndarray) -> np.ndarray:
    """FERPlus's majority rule: after outlier removal the top column must hold more than half
    of all remaining votes (unknown and NF included) and be an emotion; else ``-1``."""
    counts = drop_outlier_votes(votes)
    top = counts.argmax(axis=1)
    top_count = counts.max(axis=1)
    kept = (2 * top_count > counts.sum(axis=1)) & (top < NUM_EMOTION_COLUMNS)
    return np.where(kept, top, -1)


def plurality_labels(votes: np.ndarray) -> np.ndarray:
    """After outlier removal, the column with the most votes, if it is unique and an emotion."""
    counts = drop_outlier_votes(votes)
    top = counts.argmax(axis=1)
    top_count = counts.max(axis=1)
    unique = (counts == top_count[:, None]).sum(axis=1) == 1
    kept = unique & (top_count > 0) & (top < NUM_EMOTION_COLUMNS)
    return np.where(kept, top, -1)


def vote_probabilities(votes: np.ndarray, *, num_classes: int = NUM_EMOTION_COLUMNS) -> np.ndarray:
    """Soft targets: the emotion votes of the first ``num_classes`` columns after outlier
    removal, normalised per row (a row without any such vote is all zeros): the targets of
    fer-nla's ``distribution`` label mode.

    Not exactly the distribution of Barsoum et al. 2016's cross-entropy scheme ("CEL"; mode
    ``crossentropy`` of the authors' code, microsoft/FERPlus ``src/ferplus.py``). Both drop
    single votes as outliers and both leave unknown and NF out of the target (renormalising
    over the emotions), but the authors' rule also keeps only the top emotions (ties together,
    at most 3) until they cover 75% of the remaining votes, unknown and NF counted in that
    total, and drops the image when they cover 50% or less. This keeps every emotion with two
    or more votes. On FER2013Train the two agree on 22,312 of the 26,706 images both keep
    (largest difference 0.25 in one class). The authors' ``probability`` mode is another scheme:
    probabilistic label drawing (PLD), one label drawn from the distribution per epoch."""
    counts = drop_outlier_votes(votes)[:, :num_classes].astype(np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    return (counts / np.maximum(totals, 1.0)).astype(np.float32)


def single_vote_labels(votes: np.ndarray, *, num_classes: int = NUM_EMOTION_COLUMNS, seed: int = 0) -> np.ndarray:
    """One annotator's vote per row, drawn with ``seed`` uniformly among that row's raw votes
    for the first ``num_classes`` emotions (a vote for unknown or NF is not a class); ``-1``
    for a row without such votes."""
    counts = np.asarray(votes, dtype=np.int64)[:, :num_classes]
    cumulative = counts.cumsum(axis=1)
    totals = cumulative[:, -1]
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, np.maximum(totals, 1))
    labels = (cumulative > draws[:, None]).argmax(axis=1)
    return np.where(totals > 0, labels, -1)
