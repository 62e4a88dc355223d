"""Which labels get which verdict (see :mod:`fer_nla.audit`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VERDICTS = ("likely noisy", "ambiguous", "clean")


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


# A class needs this many scored labels before its own noise count is trusted. The count is a
# binomial share: its standard error at a 20% noise rate is 0.4 / sqrt(n), which falls to the
# audit's stated tolerance at 20% (6 points: 30% of the planted share) at n = 45; 50 rounds it
# up. Under it one label moves the class's rate by more than 2 points, and its threshold ``t_k``
# is a mean of fewer than 50 confidences. FERPlus valid has 25 disgust and 16 contempt faces.
MIN_CLASS_SAMPLES = 50


@dataclass(frozen=True)
class ClassFlags:
    """The per-class ``likely noisy`` rule's outcome.

    ``flagged``: bool ``[N]``; ``counts``: int ``[C]``, labels flagged per given class;
    ``sizes``: int ``[C]``, scored labels per given class; ``too_few``: the classes with fewer
    than ``min_class_samples`` scored labels (none of their labels is flagged; the warning names
    them), as a tuple of class indices.
    """

    flagged: np.ndarray
    counts: np.ndarray
    sizes: np.ndarray
    too_few: tuple[int, ...]


def flag_per_class(
    scores: np.ndarray, given: np.ndarray, *, class_rates: np.ndarray, min_class_samples: int = MIN_CLASS_SAMPLES
) -> ClassFlags:
    """Flag, within each given class ``y``, its ``round(rate_y * n_y)`` highest finite scores.

    Confident learning's per-class count (Northcutt et al. 2021, JAIR 70, Sec. 3; cleanlab's
    ``prune_by_noise_rate`` removes the confident joint's off-diagonal mass of each row, ranked
    within the row): ``class_rates`` (float ``[C]``, :meth:`NoiseEstimate.class_rates`) is the
    calibrated off-diagonal share of each given class, ``n_y`` the finite scores labelled ``y``.
    Ranking within a class means a class the model finds hard (every score of it higher) gets no
    more flags than its own estimated noise: the global top-N of :func:`flag_highest` takes them.
    A class with fewer than ``min_class_samples`` scored labels (:data:`MIN_CLASS_SAMPLES`) gets
    none: its count cannot be trusted (``too_few`` lists it). ``scores`` float ``[N]`` (NaN =
    never trained), ``given`` int ``[N]`` in ``[0, C)``. Ties go to the earlier sample.

    Raises:
        ValueError: shapes that disagree, a label outside ``[0, C)``, a rate outside ``[0, 1]``,
            or ``min_class_samples`` negative.
    """
    scores, given = np.asarray(scores, dtype=np.float64), np.asarray(given, dtype=np.int64)
    rates = np.asarray(class_rates, dtype=np.float64)
    if scores.shape != given.shape or scores.ndim != 1 or rates.ndim != 1:
        raise ValueError(f"need scores and given shaped [N] and class_rates [C]; got {scores.shape}, {given.shape}, {rates.shape}")
    if given.size and (given.min() < 0 or given.max() >= rates.size):
        raise ValueError(f"given labels must lie in [0, {rates.size})")
    if not np.all((rates >= 0) & (rates <= 1)):
        raise ValueError(f"class_rates must lie in [0, 1], got {rates}")
    if min_class_samples < 0:
        raise ValueError(f"min_class_samples must be 0 or more, got {min_class_samples}")
    finite = np.isfinite(scores)
    sizes = np.bincount(given[finite], minlength=rates.size)
    too_few = tuple(int(y) for y in np.flatnonzero((sizes > 0) & (sizes < min_class_samples)))
    flagged = np.zeros(scores.shape, dtype=bool)
    for y in np.flatnonzero(sizes >= max(min_class_samples, 1)):
        members = np.flatnonzero(finite & (given == y))
        count = int(round(rates[y] * members.size))
        flagged[members[flag_highest(scores[members], count=count)]] = True
    counts = np.bincount(given[flagged], minlength=rates.size)
    return ClassFlags(flagged=flagged, counts=counts, sizes=sizes, too_few=too_few)
