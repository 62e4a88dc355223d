"""A seeded stratified split of sample indices (to carve a validation split from train)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def stratified_split(
    targets: Sequence[int] | np.ndarray, *, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(train_indices, val_indices)``, both sorted, with ``round(fraction * n_k)`` samples of
    each class ``k`` in the validation part, kept between 1 and ``n_k - 1`` for classes of at
    least two samples so both parts see every such class; a one-sample class stays in train."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
    labels = np.asarray(targets, dtype=np.int64).reshape(-1)
    rng = np.random.default_rng(seed)
    val_parts: list[np.ndarray] = []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        n = members.size
        n_val = min(max(int(round(fraction * n)), 1), n - 1) if n >= 2 else 0
        val_parts.append(rng.permutation(members)[:n_val])
    val = np.sort(np.concatenate(val_parts)) if val_parts else np.zeros(0, dtype=np.int64)
    is_val = np.zeros(labels.size, dtype=bool)
    is_val[val] = True
    return np.flatnonzero(~is_val), val


def stratified_subset(targets: Sequence[int] | np.ndarray, *, size: int, seed: int) -> np.ndarray:
    """Sorted positions of a seeded stratified subset of about ``size`` samples (each class
    keeps its share, rounded per class; all of them when ``size`` is not smaller)."""
    labels = np.asarray(targets, dtype=np.int64).reshape(-1)
    if size >= labels.size:
        return np.arange(labels.size)
    keep, _ = stratified_split(labels, fraction=1.0 - size / labels.size, seed=seed)
    return keep


def parse_fold(fold: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N`` and ``N >= 2``. Raises ``ValueError`` otherwise."""
    parts = str(fold).strip().split("/")
    try:
        k, n = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"a fold is written K/N (e.g. 1/2: the first of two halves), got {fold!r}") from None
    if n < 2 or not 1 <= k <= n:
        raise ValueError(f"fold {fold!r}: N must be 2 or more and K lie in 1..N")
    return k, n


def fold_indices(sample_ids: Sequence[str], fold: str, *, seed: int) -> np.ndarray:
    """Sorted indices of the samples in fold ``"K/N"``: sample ``i`` belongs to fold
    ``1 + int(blake2b(f"{seed}:{sample_ids[i]}")) % N``. The partition depends on the sample ids
    and ``seed`` only, never on the labels or the sample order, so runs with other label modes,
    label noise or subsets of the same data get the same folds (a model pretrained on fold 1/2
    never sees a face of fold 2/2). Folds are not stratified; with thousands of samples each
    class splits close to 1/N. Raises ``ValueError`` for a malformed ``fold``."""
    import hashlib

    k, n = parse_fold(fold)
    prefix = f"{int(seed)}:".encode()
    buckets = np.fromiter(
        (int.from_bytes(hashlib.blake2b(prefix + str(s).encode(), digest_size=8).digest(), "little") % n for s in sample_ids),
        dtype=np.int64, count=len(sample_ids),
    )
    return np.flatnonzero(buckets == k - 1)
