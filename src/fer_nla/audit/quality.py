"""How well a score or a flagged set finds labels known to be noisy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    """Area under the ROC curve of ``scores`` (float ``[N]``, higher = more suspicious) for
    ``is_noisy`` (bool ``[N]``): scikit-learn's ``roc_auc_score`` (ties count one half).

    Raises:
        ValueError: ``is_noisy`` holds only noisy or only clean samples.
    """
    from sklearn.metrics import roc_auc_score

    is_noisy = np.asarray(is_noisy, dtype=bool)
    if is_noisy.all() or not is_noisy.any():
        raise ValueError("ROC AUC needs both noisy and clean samples")
    return float(roc_auc_score(is_noisy, np.asarray(scores, dtype=np.float64)))


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


@dataclass(frozen=True)
class ClassDetection:
    """A flagged set against known noise, per given class (each float ``[C]``, NaN where the
    class has nothing to divide by): ``precision`` (share of its flags that are noisy),
    ``recall`` (share of its noisy labels flagged), ``clean_flag_rate`` (share of its clean
    labels flagged: a rule that flags difficulty, not noise, shows here)."""

    precision: np.ndarray
    recall: np.ndarray
    clean_flag_rate: np.ndarray


def class_detection(is_noisy: np.ndarray, flagged: np.ndarray, given: np.ndarray, *, num_classes: int) -> ClassDetection:
    """Per-class precision, recall and clean flag rate of ``flagged`` (bool ``[N]``) for
    ``is_noisy`` (bool ``[N]``), grouped by ``given`` (int ``[N]`` in ``[0, num_classes)``)."""
    is_noisy, flagged = np.asarray(is_noisy, dtype=bool), np.asarray(flagged, dtype=bool)
    given = np.asarray(given, dtype=np.int64)

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(given[mask], minlength=num_classes).astype(np.float64)

    with np.errstate(invalid="ignore", divide="ignore"):
        return ClassDetection(
            precision=count(flagged & is_noisy) / count(flagged),
            recall=count(flagged & is_noisy) / count(is_noisy),
            clean_flag_rate=count(flagged & ~is_noisy) / count(~is_noisy),
        )
