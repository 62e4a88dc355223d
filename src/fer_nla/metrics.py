"""Classification metrics on plain numpy arrays: the accuracy family, macro-F1, mAP and the
confusion matrix, as FER papers report them, computed by :mod:`sklearn.metrics`.

``targets`` are integer class indices ``[N]``; ``predictions`` integer indices ``[N]``;
``scores`` per-class scores or probabilities ``[N, C]``. A class absent from the targets has
no accuracy (``nan``; ``None`` in :func:`classification_report`) and is left out of the
class means.

scikit-learn is imported inside the functions that use it, so importing this module (as
:mod:`fer_nla.train.report` does for :data:`HEADLINE_METRICS`) never loads it. Where
scikit-learn's function differs from the definition here, the wrapper says how:

- :func:`mean_class_accuracy` equals ``balanced_accuracy_score``, which warns whenever a
  prediction names a class absent from the targets; it averages scikit-learn's per-class
  recalls instead;
- :func:`macro_f1` averages over the classes in the targets or the predictions (scikit-learn's
  default), not over all ``C`` classes;
- :func:`average_precision` is ``nan``, not ``0`` with a warning, for a class without a
  positive, and that class is left out of :func:`mean_average_precision`; the value equals the
  former hand-written sum to float rounding (a few ulp: scikit-learn sums the curve from the
  other end);
- :func:`top_k_accuracy` is our own: ``top_k_accuracy_score`` ranks a tie with the *higher*
  class index first and refuses ``[N, 2]`` scores of two-class targets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def _labels(targets: np.ndarray, predictions: np.ndarray, *, num_classes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``targets`` and ``predictions`` as int64 ``[N]``; ``ValueError`` for shapes that differ,
    no sample, or (with ``num_classes``) an index outside ``[0, num_classes)``, which
    scikit-learn would silently leave out."""
    t, p = np.asarray(targets, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"targets and predictions must be 1-D of one length; got {t.shape} and {p.shape}")
    if t.size == 0:
        raise ValueError("no samples to score")
    if num_classes is not None and (t.min() < 0 or p.min() < 0 or t.max() >= num_classes or p.max() >= num_classes):
        raise ValueError(f"class indices must lie in [0, {num_classes})")
    return t, p


def confusion_matrix(targets: np.ndarray, predictions: np.ndarray, *, num_classes: int) -> np.ndarray:
    """``[C, C]`` int64 counts; row = true class, column = predicted class
    (``sklearn.metrics.confusion_matrix`` with ``labels=range(C)``)."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    t, p = _labels(targets, predictions, num_classes=num_classes)
    if num_classes == 1:  # scikit-learn warns that a 1x1 matrix may lack labels; here it cannot
        return np.array([[t.size]], dtype=np.int64)
    return sk_confusion_matrix(t, p, labels=np.arange(num_classes)).astype(np.int64)


def overall_accuracy(targets: np.ndarray, predictions: np.ndarray) -> float:
    """Share of samples predicted as their target (``sklearn.metrics.accuracy_score``)."""
    from sklearn.metrics import accuracy_score

    t, p = _labels(targets, predictions)
    return float(accuracy_score(t, p))


def per_class_accuracy(targets: np.ndarray, predictions: np.ndarray, *, num_classes: int) -> np.ndarray:
    """Recall of each class, float64 ``[C]`` (``nan`` for a class with no sample):
    ``sklearn.metrics.recall_score(average=None, zero_division=nan)``."""
    from sklearn.metrics import recall_score

    t, p = _labels(targets, predictions, num_classes=num_classes)
    return np.asarray(recall_score(t, p, labels=np.arange(num_classes), average=None, zero_division=np.nan),
                      dtype=np.float64)


def mean_class_accuracy(targets: np.ndarray, predictions: np.ndarray, *, num_classes: int) -> float:
    """Mean of the per-class accuracies over the classes present in ``targets``: the value of
    ``sklearn.metrics.balanced_accuracy_score``, which would warn when a prediction names a
    class absent from the targets."""
    return float(np.nanmean(per_class_accuracy(targets, predictions, num_classes=num_classes)))


def top_k_accuracy(targets: np.ndarray, scores: np.ndarray, *, k: int = 2) -> float:
    """Share of samples whose target is among the ``k`` highest scores, ties broken by index
    (the lower class index ranks first). Our own code: ``sklearn.metrics.top_k_accuracy_score``
    ranks a tie the other way and refuses ``[N, 2]`` scores when the targets have two classes;
    on scores without ties the two agree."""
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
    """Mean F1 over the classes that occur in the targets or the predictions
    (``sklearn.metrics.f1_score(average="macro")`` on those classes; a class in neither is
    left out, not counted as 0)."""
    from sklearn.metrics import f1_score

    t, p = _labels(targets, predictions, num_classes=num_classes)
    return float(f1_score(t, p, labels=np.union1d(t, p), average="macro", zero_division=0))


def average_precision(is_positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall step curve, ``sum_k (R_k - R_{k-1}) P_k`` over the
    distinct score thresholds (no interpolation): ``sklearn.metrics.average_precision_score``.
    ``nan`` when there is no positive (scikit-learn: 0 and a warning) or a score is not finite
    (scikit-learn: an error)."""
    from sklearn.metrics import average_precision_score

    y = np.asarray(is_positive, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if not y.any() or not np.isfinite(s).all():
        return float("nan")
    return float(average_precision_score(y.astype(np.int64), s))


def mean_average_precision(targets: np.ndarray, scores: np.ndarray) -> float:
    """Mean over classes (those with at least one sample) of one-vs-rest average precision;
    ``nan`` when a score is not finite."""
    s = np.asarray(scores, dtype=np.float64)
    t = np.asarray(targets, dtype=np.int64)
    if not np.isfinite(s).all():
        return float("nan")
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
        "mean_acc": float(np.nanmean(per_class)),  # mean_class_accuracy without a second pass
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
