"""Classification metrics on plain numpy arrays: the accuracy family, macro-F1, mAP and the
confusion matrix, as FER papers report them.

``targets`` are integer class indices ``[N]``; ``predictions`` integer indices ``[N]``;
``scores`` per-class scores or probabilities ``[N, C]``. A class absent from the targets has
no accuracy (``nan``; ``None`` in :func:`classification_report`) and is left out of the
class means.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _labels(targets: np.ndarray, predictions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(targets, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"targets and predictions must be 1-D of one length; got {t.shape} and {p.shape}")
    if t.size == 0:
        raise ValueError("no samples to score")
    return t, p


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, *, num_classes: int) -> np.ndarray:
    """``[C, C]`` counts; row = true class, column = predicted class."""
    t, p = _labels(targets, predictions)
    if t.min() < 0 or p.min() < 0 or t.max() >= num_classes or p.max() >= num_classes:
        raise ValueError(f"class indices must lie in [0, {num_classes})")
    return np.bincount(t * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def overall_accuracy(targets: np.ndarray, predictions: np.ndarray) -> float:
    """Share of samples predicted as their target."""
    t, p = _labels(targets, predictions)
    return float((t == p).mean())


def per_class_accuracy(targets: np.ndarray, predictions: np.ndarray, *, num_classes: int) -> np.ndarray:
    """Recall of each class (``nan`` for a class with no sample)."""
    cm = confusion_matrix(targets, predictions, num_classes=num_classes)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def mean_class_accuracy(targets: np.ndarray, predictions: np.ndarray, *, num_classes: int) -> float:
    """Mean of the per-class accuracies over the classes present in ``targets``."""
    return float(np.nanmean(per_class_accuracy(targets, predictions, num_classes=num_classes)))


def top_k_accuracy(targets: np.ndarray, scores: np.ndarray, *, k: int = 2) -> float:
    """Share of samples whose target is among the ``k`` highest scores (ties broken by index)."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(targets, dtype=np.int64)
    if s.ndim != 2 or s.shape[0] != t.shape[0]:
        raise ValueError(f"scores must be [N, C] with N = {t.shape[0]}; got {s.shape}")
    # rank of the target = number of classes scoring strictly higher, plus ties at lower index
    target_score = s[np.arange(len(t)), t][:, None]
    higher = (s > target_score).sum(axis=1)
    tied_before = ((s == target_score) & (np.arange(s.shape[1])[None, :] < t[:, None])).sum(axis=1)
    return float((higher + tied_before < k).mean())


def macro_f1(targets: np.ndarray, predictions: np.ndarray, *, num_classes: int) -> float:
    """Mean F1 over the classes that occur in the targets or the predictions."""
    cm = confusion_matrix(targets, predictions, num_classes=num_classes).astype(np.float64)
    tp = np.diag(cm)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    present = (support + predicted) > 0
    f1 = np.where(support + predicted > 0, 2 * tp / np.maximum(support + predicted, 1), 0.0)
    return float(f1[present].mean())


def average_precision(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall step curve, ``sum_k (R_k - R_{k-1}) P_k`` over the
    distinct score thresholds (no interpolation); ``nan`` when there is no positive."""
    y = np.asarray(is_positive, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tps = np.cumsum(y)[last_of_tie]
    precision = tps / (last_of_tie + 1)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def mean_average_precision(targets: np.ndarray, scores: np.ndarray) -> float:
    """Mean over classes (those with at least one sample) of one-vs-rest average precision."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(targets, dtype=np.int64)
    aps = [average_precision(t == c, s[:, c]) for c in range(s.shape[1])]
    return float(np.nanmean(aps))


def classification_report(
    targets: np.ndarray, scores: np.ndarray, *, class_names: Sequence[str]
) -> dict[str, Any]:
    """Every metric as JSON-ready plain types: ``overall_acc``, ``mean_acc``, ``top2_acc``,
    ``per_class_acc`` (name -> accuracy, ``None`` where the class has no sample), ``macro_f1``,
    ``mAP``, ``confusion_matrix`` (rows = true class in ``class_names`` order),
    ``class_names`` and ``num_samples``."""
    s = np.asarray(scores, dtype=np.float64)
    num_classes = len(class_names)
    if s.ndim != 2 or s.shape[1] != num_classes:
        raise ValueError(f"scores must be [N, {num_classes}] for {num_classes} class names; got {s.shape}")
    predictions = s.argmax(axis=1)
    per_class = per_class_accuracy(targets, predictions, num_classes=num_classes)
    return {
        "overall_acc": overall_accuracy(targets, predictions),
        "mean_acc": float(np.nanmean(per_class)),
        "top2_acc": top_k_accuracy(targets, s, k=min(2, num_classes)),
        "per_class_acc": {name: (None if np.isnan(a) else float(a)) for name, a in zip(class_names, per_class)},
        "macro_f1": macro_f1(targets, predictions, num_classes=num_classes),
        "mAP": mean_average_precision(targets, s),
        "confusion_matrix": confusion_matrix(targets, predictions, num_classes=num_classes).tolist(),
        "class_names": list(class_names),
        "num_samples": int(len(predictions)),
    }


def mean_cross_entropy(targets: np.ndarray, probs: np.ndarray) -> float:
    """Mean ``-ln p[i, targets[i]]`` (nats) of probabilities ``[N, C]`` against class indices
    ``[N]``; a probability below float32's smallest normal (``~1.2e-38``, a softmax underflow)
    counts as that value, so the result is finite (at most ``~87.3`` per sample).

    Raises:
        ValueError: shapes that do not match, no sample, or a class index outside ``[0, C)``."""
    p = np.asarray(probs, dtype=np.float64)
    t = np.asarray(targets, dtype=np.int64)
    if p.ndim != 2 or t.ndim != 1 or p.shape[0] != t.shape[0]:
        raise ValueError(f"probs must be [N, C] with N = len(targets); got {p.shape} and {t.shape}")
    if t.size == 0:
        raise ValueError("no samples to score")
    if t.min() < 0 or t.max() >= p.shape[1]:
        raise ValueError(f"class indices must lie in [0, {p.shape[1]})")
    given = np.maximum(p[np.arange(t.size), t], np.finfo(np.float32).tiny)
    return float(-np.log(given).mean())


HEADLINE_METRICS: tuple[str, ...] = ("overall_acc", "mean_acc", "top2_acc", "macro_f1", "mAP")


def format_report(report: dict[str, Any]) -> str:
    """A plain-text table of a :func:`classification_report` for the terminal."""
    lines = [f"samples: {report['num_samples']}"]
    lines += [f"{key:<12} {100 * report[key]:6.2f}%" for key in HEADLINE_METRICS]
    lines.append("per class accuracy:")
    for name, acc in report["per_class_acc"].items():
        lines.append(f"  {name:<10} {'   n/a' if acc is None else f'{100 * acc:6.2f}%'}")
    width = max(len(n) for n in report["class_names"])
    header = " " * (width + 2) + " ".join(f"{n[:5]:>5}" for n in report["class_names"])
    lines += ["confusion matrix (rows = true class):", header]
    for name, row in zip(report["class_names"], report["confusion_matrix"]):
        lines.append(f"  {name:<{width}}" + " ".join(f"{v:>5}" for v in row))
    return "\n".join(lines)
