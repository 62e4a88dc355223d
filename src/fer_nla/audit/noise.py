"""How many given labels are wrong: confident learning (Northcutt, Jiang and Chuang 2021, JAIR 70)
on one epoch's recorded signals, and whether to trust the estimate (see :mod:`fer_nla.audit`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class NoiseEstimate:
    """Confident-learning estimate of the wrong labels among the samples of one epoch.

    ``rate``: estimated share of wrong labels among the ``seen`` samples; ``per_class``:
    float ``[C]``, estimated wrong labels per given class (the confident joint's calibrated
    off-diagonal mass of that row); ``thresholds``: float ``[C]``, the per-class confidence
    thresholds ``t_k``; ``agreement``: share of the seen samples whose predicted class is their
    given label (chance: about ``1 / C``); ``class_sizes``: int ``[C]``, seen samples per given
    class.
    """

    rate: float
    per_class: np.ndarray
    thresholds: np.ndarray
    seen: int
    agreement: float
    class_sizes: np.ndarray

    def class_rates(self) -> np.ndarray:
        """Float ``[C]``: estimated share of wrong labels per given class (0 for a class unseen)."""
        return self.per_class / np.maximum(self.class_sizes, 1)

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
    off = off_class(p_nn, prediction, given, thresholds=thresholds)
    diag = ~off & (p_gt >= thresholds[given])
    off_count = np.bincount(given, weights=off, minlength=num_classes)
    confident = off_count + np.bincount(given, weights=diag, minlength=num_classes)
    per_class = n * off_count / np.maximum(confident, 1)
    return NoiseEstimate(
        rate=float(per_class.sum() / given.size), per_class=per_class, thresholds=thresholds,
        seen=int(given.size), agreement=float(np.mean(prediction == given)), class_sizes=n.astype(np.int64),
    )


def off_class(p_nn: np.ndarray, prediction: np.ndarray, given: np.ndarray, *, thresholds: np.ndarray) -> np.ndarray:
    """Bool ``[N]``: the samples confidently another class, cleanlab's off-diagonal test.

    A sample labelled ``y`` is off-class when its predicted class ``j != y`` and the probability
    of ``j`` (``p_nn``, the nearest other class, is then that probability) reaches ``t_j``, class
    ``j``'s threshold (float ``[C]``, :attr:`NoiseEstimate.thresholds`). ``p_nn`` float ``[N]``
    (NaN = unseen: never off-class), ``prediction`` int ``[N]`` (-1 = unseen), ``given`` int ``[N]``.
    """
    p_nn, prediction, given = np.asarray(p_nn, dtype=np.float64), np.asarray(prediction), np.asarray(given)
    seen = (prediction >= 0) & np.isfinite(p_nn)
    with np.errstate(invalid="ignore"):
        return seen & (prediction != given) & (p_nn >= np.asarray(thresholds)[np.maximum(prediction, 0)])


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
