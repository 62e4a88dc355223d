"""Which training labels are doubtful: suspicion scores from the per-sample signals that
training records at no extra forward (p_gt, p_nn, NAW weight and branch, predicted class,
each epoch), and a calibrated verdict.

**Ranking.** The score of sample ``i`` is its mean *probability margin deficit* over the
scored epochs (all but the first ``skip_epochs``, the warm-up)::

    score_i = mean_e (p_nn[e, i] - p_gt[e, i])            in [-1, 1], higher = more suspicious

This is the area-under-the-margin statistic of Pleiss et al. (2020, "Identifying Mislabeled
Data using the Area Under the Margin Ranking") written with the very quantities NAW navigates
by: NLA's "wrong" branch is ``p_nn > p_gt``, and NAW gives the least weight to samples whose
nearest negative keeps beating the given label with confidence, which is what a large positive
mean margin deficit records. Averaging over epochs makes the score robust to the late
memorisation of noisy labels that a last-epoch score misses.

**How many are likely noisy (the default verdict rule).** A fixed score cut flags a share that
depends on how far training got (a short run's model doubts everything: 25% of the quick
start's 4-epoch demo run at a cut of 0.3, where 5% is noisy), so the number of ``likely noisy``
labels comes from an estimate of the noise rate instead: confident learning (Northcutt, Jiang
and Chuang 2021, "Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 70;
cleanlab's ``prune_by_noise_rate`` count) on the LAST recorded epoch, the model's most trained
view (:func:`estimate_noise`), and that many of the highest scores are flagged
(:func:`flag_highest`). The estimate needs a model that has learned the classes: one still
learning counts its own errors as wrong labels (over-estimate), one trained until it memorises
the noisy labels finds fewer (under-estimate). So it is trusted only when the model beats chance
clearly and the estimate has settled, moving by at most :data:`SETTLED_CHANGE` (5 points) over
the last epoch (:func:`calibrate`); otherwise no label is called ``likely noisy`` and the audit
says why. Tolerance, tested on planted symmetric noise of 5%, 20% and 40%
(``tests/audit/test_planted_noise.py``, where the measured figures are): the flagged share is
within 5 percentage points of the planted share, or 30% of it where that is more.
``noisy_threshold`` keeps the fixed-score rule.

**Other verdicts.** ``clean`` when the score is at most ``-ambiguous_band`` (the given label
beat its nearest rival by that margin across training); ``ambiguous`` otherwise (the two trade
places, or a rival led but the label was not flagged: a doubtful label is never called clean);
``likely noisy`` takes precedence.

All functions work on plain numpy arrays with keyword-only options.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VERDICTS = ("likely noisy", "ambiguous", "clean")


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


def verdicts(
    scores: np.ndarray, *, flagged: np.ndarray | None = None, noisy_threshold: float = 0.3, ambiguous_band: float = 0.3
) -> np.ndarray:
    """One of :data:`VERDICTS` per score (object array shaped like ``scores``).

    ``flagged`` (bool, shaped like ``scores``; from :func:`flag_highest`) marks the ``likely
    noisy`` labels of the calibrated rule; without it the fixed rule applies: ``likely noisy``
    where ``score >= noisy_threshold``. ``clean`` where ``score <= -ambiguous_band`` (the given
    label beat every rival by that margin) and not flagged; ``ambiguous`` for the rest (rivals
    close, or ahead but not flagged: a doubtful label is never called clean).

    Raises:
        ValueError: ``ambiguous_band`` outside ``[0, 1]``; with the fixed rule,
            ``noisy_threshold`` outside ``[-1, 1]`` or below ``ambiguous_band``; ``flagged``
            of another shape.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not 0.0 <= ambiguous_band <= 1.0:
        raise ValueError(f"ambiguous_band must lie in [0, 1], got {ambiguous_band}")
    if flagged is None:
        if not -1.0 <= noisy_threshold <= 1.0:
            raise ValueError(f"noisy_threshold must lie in [-1, 1] (the score's range), got {noisy_threshold}")
        if ambiguous_band > noisy_threshold:
            raise ValueError("need 0 <= ambiguous_band <= noisy_threshold")
        flagged = scores >= noisy_threshold
    flagged = np.asarray(flagged, dtype=bool)
    if flagged.shape != scores.shape:
        raise ValueError(f"flagged has shape {flagged.shape}, scores {scores.shape}")
    out = np.full(scores.shape, "ambiguous", dtype=object)
    out[scores <= -ambiguous_band] = "clean"  # the given label beat every rival by the band's margin
    out[flagged] = "likely noisy"
    return out


@dataclass(frozen=True)
class NoiseEstimate:
    """Confident-learning estimate of the wrong labels among the samples of one epoch.

    ``rate``: estimated share of wrong labels among the ``seen`` samples; ``per_class``:
    float ``[C]``, estimated wrong labels per given class; ``thresholds``: float ``[C]``, the
    per-class confidence thresholds ``t_k``; ``agreement``: share of the seen samples whose
    predicted class is their given label (chance: about ``1 / C``).
    """

    rate: float
    per_class: np.ndarray
    thresholds: np.ndarray
    seen: int
    agreement: float

    def count(self, num_samples: int) -> int:
        """Estimated wrong labels among ``num_samples`` samples (the rate times it, rounded)."""
        return int(round(self.rate * num_samples))


def estimate_noise(
    p_gt: np.ndarray, p_nn: np.ndarray, prediction: np.ndarray, given: np.ndarray, *, num_classes: int
) -> NoiseEstimate:
    """How many given labels are wrong, by confident learning (Northcutt et al. 2021, JAIR 70).

    Inputs are one epoch's per-sample signals, each shaped ``[N]``: ``p_gt`` and ``p_nn``
    (float probabilities of the given label and of the nearest other class; NaN = not seen),
    ``prediction`` (int predicted class, -1 = not seen) and ``given`` (int given label).

    The per-class threshold is ``t_k = mean p_gt`` over the samples labelled ``k`` (the
    model's average self-confidence in class ``k``). A sample labelled ``y`` counts in the
    confident joint at ``(y, j)``, ``j != y``, when its predicted class is ``j`` and
    ``p_nn >= t_j`` (``p_nn`` is then the probability of ``j``), and at ``(y, y)`` otherwise
    when ``p_gt >= t_y``; the rest counts nowhere. Each row is calibrated to its class size as
    cleanlab does: ``wrong_y = n_y * offdiag_y / (offdiag_y + diag_y)``. Only the top class
    and the given label's probabilities are recorded, not all ``C``, so a sample whose
    predicted class is its label but whose ``p_gt`` is under ``t_y`` counts nowhere even if
    its (unrecorded) runner-up clears that class's threshold; cleanlab would count it.

    Raises:
        ValueError: arrays of different shapes or not 1-D, a class outside ``[0, num_classes)``,
            or no sample seen.
    """
    p_gt, p_nn = np.asarray(p_gt, dtype=np.float64), np.asarray(p_nn, dtype=np.float64)
    prediction, given = np.asarray(prediction, dtype=np.int64), np.asarray(given, dtype=np.int64)
    if not p_gt.ndim == 1 or not p_gt.shape == p_nn.shape == prediction.shape == given.shape:
        raise ValueError(f"need four [N] arrays; got {p_gt.shape}, {p_nn.shape}, {prediction.shape}, {given.shape}")
    if given.size and (given.min() < 0 or given.max() >= num_classes or prediction.max() >= num_classes):
        raise ValueError(f"classes must lie in [0, {num_classes})")
    seen = np.isfinite(p_gt) & np.isfinite(p_nn) & (prediction >= 0)
    if not seen.any():
        raise ValueError("no sample was seen in this epoch")
    p_gt, p_nn, prediction, given = p_gt[seen], p_nn[seen], prediction[seen], given[seen]
    n = np.bincount(given, minlength=num_classes).astype(np.float64)
    thresholds = np.bincount(given, weights=p_gt, minlength=num_classes) / np.maximum(n, 1)
    off = (prediction != given) & (p_nn >= thresholds[prediction])
    diag = ~off & (p_gt >= thresholds[given])
    off_count = np.bincount(given, weights=off, minlength=num_classes)
    confident = off_count + np.bincount(given, weights=diag, minlength=num_classes)
    per_class = n * off_count / np.maximum(confident, 1)
    return NoiseEstimate(
        rate=float(per_class.sum() / given.size), per_class=per_class, thresholds=thresholds,
        seen=int(given.size), agreement=float(np.mean(prediction == given)),
    )


# The calibrated count is trusted only once the estimate has settled: it moved by at most this
# much over the last epoch (a model still learning fast counts its own errors as wrong labels).
SETTLED_CHANGE = 0.05


@dataclass(frozen=True)
class Calibration:
    """The noise estimate behind the calibrated verdict, and whether to trust it.

    ``estimate``: on the last epoch that saw any sample; ``previous``: on the epoch before it
    (None for a one-epoch run); ``reason``: why it is not trusted ('' when it is).
    """

    estimate: NoiseEstimate
    previous: NoiseEstimate | None
    reason: str

    @property
    def reliable(self) -> bool:
        return not self.reason


def calibrate(
    p_gt: np.ndarray, p_nn: np.ndarray, prediction: np.ndarray, given: np.ndarray, *, num_classes: int
) -> Calibration:
    """:func:`estimate_noise` on the last two epochs that saw any sample, and the trust test.

    ``p_gt``, ``p_nn`` (float, NaN = unseen) and ``prediction`` (int, -1 = unseen) are shaped
    ``[epochs, N]``, ``given`` ``[N]``. The estimate is trusted when the model beats chance
    clearly (its top class is the given label for at least ``2 / C`` of the samples) and the
    estimate has settled (changed by at most :data:`SETTLED_CHANGE` over the last epoch).

    Raises:
        ValueError: no epoch saw any sample, or the shapes disagree (see :func:`estimate_noise`).
    """
    p_gt = np.asarray(p_gt, dtype=np.float64)
    rows = np.flatnonzero(np.isfinite(p_gt).any(axis=1)) if p_gt.ndim == 2 else np.zeros(0, dtype=np.int64)
    if not len(rows):
        raise ValueError("no epoch saw any sample")
    p_nn, prediction = np.asarray(p_nn), np.asarray(prediction)
    last = estimate_noise(p_gt[rows[-1]], p_nn[rows[-1]], prediction[rows[-1]], given, num_classes=num_classes)
    previous = None
    if len(rows) > 1:
        previous = estimate_noise(p_gt[rows[-2]], p_nn[rows[-2]], prediction[rows[-2]], given, num_classes=num_classes)
    if last.agreement < 2.0 / num_classes:
        reason = (f"in its last epoch the model predicts the given label for {last.agreement:.0%} of the samples, "
                  f"near chance ({1 / num_classes:.0%}): it has not learned the classes yet")
    elif previous is None:
        reason = "the run recorded one epoch: whether its noise estimate has settled cannot be told"
    elif abs(last.rate - previous.rate) > SETTLED_CHANGE:
        reason = (f"the noise estimate is still moving ({previous.rate:.1%}, then {last.rate:.1%} over the last "
                  f"epoch; settled means within {SETTLED_CHANGE * 100:.0f} points): the model is still learning")
    else:
        reason = ""
    return Calibration(estimate=last, previous=previous, reason=reason)


def flag_highest(scores: np.ndarray, *, count: int) -> np.ndarray:
    """Bool mask shaped like ``scores`` (float ``[N]``): its ``count`` highest finite scores.

    Ties are broken by position (the earlier sample first), as the audit's ranking does.

    Raises:
        ValueError: ``count`` negative.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    finite = np.flatnonzero(np.isfinite(scores))
    order = finite[np.lexsort((finite, -scores[finite]))]
    flagged = np.zeros(scores.shape, dtype=bool)
    flagged[order[:count]] = True
    return flagged


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
