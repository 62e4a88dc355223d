"""Reproducible label corruption: symmetric and pairwise noise, and exponential class imbalance.

Functions take plain label arrays and keyword-only options and return new arrays; the same
seed gives the same result. Noise moves exactly ``round(rate * N)`` labels, spread over the
classes by largest remainder so class ``k`` loses ``floor`` or ``ceil`` of ``rate * n_k``
(every class gets the same noise rate up to one sample):

- symmetric: each chosen label moves to one of the other ``C - 1`` classes, uniformly;
- pairwise: each chosen label of class ``k`` moves to ``partners[k]``. The default
  partner is ``k + 1 mod C`` (pair flipping, Han et al. 2018); :func:`pair_partners`
  also offers ``"confusable"``, FER's commonly confused pairs.

Imbalance keeps ``n_r = n_max * factor ** (-r / (C - 1))`` samples of the class of rank
``r`` (Cui et al. 2019), ranks by descending frequency of the given labels (ties broken by
class index), so the most frequent class keeps the most; empty classes are left out. The
kept ratio of the largest to the smallest class equals the factor within
:data:`IMBALANCE_TOLERANCE` (rounding to whole samples), else the set is too small for the
factor and :func:`imbalance_profile` raises an :class:`InputError` naming the largest factor
it reaches (``clip`` fit aside: there a class rarer than its target stays whole).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from fer_nla.data.dataset import FERDataset
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS

NOISE_KINDS = ("symmetric", "pairwise")
PAIR_SCHEMES = ("next", "confusable")
FIT_MODES = ("exact", "clip")
# Rounding to whole samples may move the kept largest/smallest ratio from the imbalance factor
# by this share at most; a profile further off (too few samples in the smallest class) is an error.
IMBALANCE_TOLERANCE = 0.05
# FER's commonly confused expressions (by canonical name): where a pairwise flip sends a label.
CONFUSABLE = {
    "neutral": "sadness", "happiness": "neutral", "surprise": "fear", "sadness": "neutral",
    "anger": "disgust", "disgust": "anger", "fear": "surprise", "contempt": "neutral",
}


def pair_partners(num_classes: int, *, scheme: str = "next") -> np.ndarray:
    """``partners[k]``: the class a pairwise flip sends class ``k`` to."""
    if scheme == "next":
        return (np.arange(num_classes) + 1) % num_classes
    if scheme == "confusable":
        if num_classes not in (7, 8):
            raise ValueError("the confusable scheme needs the canonical 7 or 8 emotions")
        return np.array([EMOTIONS.index(CONFUSABLE[EMOTIONS[k]]) for k in range(num_classes)])
    raise ValueError(f"unknown pair scheme {scheme!r}; use one of {', '.join(PAIR_SCHEMES)}")


def noise_allocation(counts: np.ndarray, *, rate: float) -> np.ndarray:
    """How many labels of each class to move: ``floor`` or ``ceil`` of ``rate * n_k``, summing
    to ``round(rate * N)`` (largest remainder, ties to the lower class index)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"noise rate must lie in [0, 1], got {rate}")
    counts = np.asarray(counts, dtype=np.int64)
    exact = rate * counts
    moved = np.floor(exact).astype(np.int64)
    remaining = int(round(rate * int(counts.sum()))) - int(moved.sum())
    order = np.argsort(-(exact - moved), kind="stable")
    moved[order[:remaining]] += 1
    return np.minimum(moved, counts)


def _chosen_per_class(
    labels: np.ndarray, num_classes: int, rate: float, rng: np.random.Generator
) -> Iterator[tuple[int, np.ndarray]]:
    """``(class, indices to move)`` per class, ``noise_allocation`` many, drawn with ``rng``."""
    counts = np.bincount(labels, minlength=num_classes)
    for k, m in enumerate(noise_allocation(counts, rate=rate)):
        members = np.flatnonzero(labels == k)
        yield k, rng.choice(members, size=int(m), replace=False)


def _check_labels(labels: Sequence[int] | np.ndarray, num_classes: int) -> np.ndarray:
    array = np.asarray(labels, dtype=np.int64).reshape(-1)
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes}); got {array.min()}..{array.max()}")
    return array


def symmetric_noise(labels: Sequence[int] | np.ndarray, *, num_classes: int, rate: float, seed: int) -> np.ndarray:
    """New labels with exactly ``round(rate * N)`` moved, each to another class uniformly."""
    clean = _check_labels(labels, num_classes)
    rng = np.random.default_rng(seed)
    noisy = clean.copy()
    for k, chosen in _chosen_per_class(clean, num_classes, rate, rng):
        noisy[chosen] = (k + rng.integers(1, num_classes, size=chosen.size)) % num_classes
    return noisy


def pairwise_noise(
    labels: Sequence[int] | np.ndarray,
    *,
    num_classes: int,
    rate: float,
    seed: int,
    partners: Sequence[int] | np.ndarray | None = None,
) -> np.ndarray:
    """New labels with exactly ``round(rate * N)`` moved, class ``k`` to ``partners[k]``."""
    clean = _check_labels(labels, num_classes)
    pairs = pair_partners(num_classes) if partners is None else np.asarray(partners, dtype=np.int64)
    if pairs.shape != (num_classes,) or (pairs == np.arange(num_classes)).any() or pairs.min() < 0 or pairs.max() >= num_classes:
        raise ValueError(f"partners must give each of the {num_classes} classes another class, got {pairs.tolist()}")
    rng = np.random.default_rng(seed)
    noisy = clean.copy()
    for k, chosen in _chosen_per_class(clean, num_classes, rate, rng):
        noisy[chosen] = pairs[k]
    return noisy


def class_order(counts: np.ndarray) -> np.ndarray:
    """Non-empty classes by descending count (ties: lower class index first)."""
    counts = np.asarray(counts, dtype=np.int64)
    order = np.lexsort((np.arange(counts.size), -counts))
    return order[counts[order] > 0]


def _targets(ranked: np.ndarray, factors: np.ndarray, fit: str) -> np.ndarray:
    """Rounded profile ``[len(factors), R]`` for counts ``ranked`` (descending), before clipping
    to what each class has: ``n_max * factor ** (-r / (R - 1))``."""
    ranks = np.arange(ranked.size)
    shares = factors[:, None] ** (-ranks / max(ranked.size - 1, 1))
    n_max = np.min(ranked / shares, axis=1) if fit == "exact" else np.full(factors.size, float(ranked[0]))
    return np.round(n_max[:, None] * shares)


def _within_tolerance(targets: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Whether each profile's largest/smallest ratio is its factor within the tolerance."""
    smallest = targets[:, -1]
    ratio = np.where(smallest >= 1, targets[:, 0] / np.maximum(smallest, 1), np.inf)
    return np.abs(ratio / factors - 1.0) <= IMBALANCE_TOLERANCE


def reachable_factors(counts: Sequence[int] | np.ndarray, *, fit: str = "exact") -> tuple[float, float]:
    """``(up_to, largest)`` for these class counts: every factor from 1 to ``up_to`` works, and
    ``largest`` is the largest kept largest/smallest ratio that asking for it gives, both within
    :data:`IMBALANCE_TOLERANCE`. On small sets rounding leaves gaps between the two. Searched
    over factors on a grid of steps under 1%, to 2 decimals; ``(1.0, 1.0)`` with fewer than two
    non-empty classes."""
    ranked = np.asarray(counts, dtype=np.int64)[class_order(counts)].astype(np.float64)
    if ranked.size < 2:
        return 1.0, 1.0
    grid = np.unique(np.round(np.geomspace(1.0, max(2.0, 2.0 * ranked[0]), 4000), 2))
    targets = _targets(ranked, grid, fit)
    ok = _within_tolerance(targets, grid)
    up_to = float(grid[-1] if ok.all() else grid[np.argmin(ok) - 1])  # ok[0]: factor 1 always works
    ratios = np.unique(np.round(targets[ok, 0] / targets[ok, -1], 2))  # what those profiles keep
    works = ratios[_within_tolerance(_targets(ranked, ratios, fit), ratios)]
    return up_to, max(up_to, float(works.max()) if works.size else 1.0)


def _unreachable(ranked: np.ndarray, target: np.ndarray, factor: float, fit: str, counts: np.ndarray) -> InputError:
    up_to, largest = reachable_factors(counts, fit=fit)
    ratio = ("no ratio at all (the smallest class keeps no sample)" if target[-1] < 1
             else f"a ratio of {target[0] / target[-1]:.3g}")
    gaps = f", and every factor up to {up_to:g} works (rounding leaves gaps between)" if up_to < largest else ""
    return InputError(
        f"factor={factor:g} (largest/smallest class) cannot be reached with fit={fit!r} on class counts "
        f"{ranked.astype(int).tolist()} (largest first): the profile keeps {int(target[0])} of the largest class "
        f"and {int(target[-1])} of the smallest, {ratio}, not {factor:g} within "
        f"{IMBALANCE_TOLERANCE:.0%}. The largest ratio this set reaches is factor={largest:g}{gaps}; "
        "ask for one of those, or use a bigger set"
    )


def imbalance_profile(counts: Sequence[int] | np.ndarray, *, factor: float, fit: str = "exact") -> np.ndarray:
    """Per-class sample counts to keep (``int64``, shape of ``counts``). ``exact``: the largest
    ``n_max`` whose profile fits the available counts, so the ratio of the largest to the smallest
    kept class is the factor; ``clip``: ``n_max`` is the largest class and each class keeps at
    most what it has (a class already rarer than its target stays whole, so the kept ratio can
    exceed the factor). Rounding to whole samples may move the profile's ratio by at most
    :data:`IMBALANCE_TOLERANCE` (relative); a set too small for that (the smallest class would
    keep too few samples, or none) raises :class:`InputError` naming :func:`reachable_factors`."""
    if factor < 1.0:
        raise ValueError(f"imbalance factor must be at least 1, got {factor}")
    if fit not in FIT_MODES:
        raise ValueError(f"fit must be one of {', '.join(FIT_MODES)}, got {fit!r}")
    available = np.asarray(counts, dtype=np.int64)
    order = class_order(available)
    keep = np.zeros_like(available)
    if order.size == 0:
        return keep
    ranked = available[order].astype(np.float64)
    target = _targets(ranked, np.array([float(factor)]), fit)
    if not _within_tolerance(target, np.array([float(factor)]))[0]:
        raise _unreachable(ranked, target[0], float(factor), fit, available)
    keep[order] = np.minimum(available[order], target[0]).astype(np.int64)
    return keep


def imbalance_indices(
    labels: Sequence[int] | np.ndarray, *, num_classes: int, factor: float, seed: int, fit: str = "exact"
) -> np.ndarray:
    """Sorted indices of the samples kept so class counts follow :func:`imbalance_profile`."""
    array = _check_labels(labels, num_classes)
    keep = imbalance_profile(np.bincount(array, minlength=num_classes), factor=factor, fit=fit)
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(array == k), size=int(keep[k]), replace=False) for k in range(num_classes)]
    return np.sort(np.concatenate(chosen))


def corrupt_dataset(
    dataset: FERDataset,
    *,
    seed: int,
    noise: str | None = None,
    rate: float = 0.0,
    imbalance: float | None = None,
    partners: Sequence[int] | np.ndarray | None = None,
    fit: str = "exact",
) -> FERDataset:
    """A copy of ``dataset``, first subsampled to the imbalance factor (if given), then with
    label noise (if given). ``clean_targets`` becomes the dataset's clean label where known,
    else its given label, so ``noise_rate()`` counts every changed label."""
    if noise is not None and noise not in NOISE_KINDS:
        raise ValueError(f"noise must be one of {', '.join(NOISE_KINDS)}, got {noise!r}")
    c = dataset.num_classes
    result = dataset.subset(np.arange(len(dataset)))
    achieved = None
    if imbalance is not None:
        result = result.subset(imbalance_indices(result.targets, num_classes=c, factor=imbalance, seed=seed, fit=fit))
        kept = np.bincount(result.targets, minlength=c)
        achieved = float(kept.max() / kept[kept > 0].min()) if kept.any() else None
    given = result.targets
    clean = given if result.clean_targets is None else np.where(result.clean_targets >= 0, result.clean_targets, given)
    if noise == "symmetric":
        given = symmetric_noise(given, num_classes=c, rate=rate, seed=seed)
    elif noise == "pairwise":
        given = pairwise_noise(given, num_classes=c, rate=rate, seed=seed, partners=partners)
    if noise is not None:
        result.target_mode = "hard"  # soft targets describe the votes, not the corrupted labels
    moved = int((np.asarray(given) != result.targets).sum())
    result.targets = np.asarray(given, dtype=np.int64)
    result.clean_targets = np.asarray(clean, dtype=np.int64)
    result.info = {
        **dataset.info,
        "corruption": {"noise": noise, "rate": rate, "imbalance": imbalance, "seed": seed, "fit": fit, "moved": moved,
                       "imbalance_achieved": achieved},
    }
    return result
