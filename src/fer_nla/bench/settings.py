"""The label settings of the robustness grid, as index and label arrays over one FERPlus pool.

The pool is FERPlus train under its majority rule (every image with a majority emotion), with
the majority label (``majority``) and, per seed, one annotator's vote drawn per image
(``single_vote``, real human label noise). A setting gives the labels the model sees, then:

1. ``given``: ``single_vote`` the drawn votes; ``symmetric_R`` the majority labels with
   exactly R% moved uniformly to another class (per class, :func:`symmetric_noise`);
   ``imbalance_F`` and ``clean`` the majority labels; a label set of the user's own
   (:mod:`fer_nla.bench.label_sets`) its file's labels, on the images it lists.
2. A seeded stratified ``val_fraction`` of the pool (stratified on ``given``) is the
   validation split for model selection; its labels are ``given`` too, as a user's would be.
3. The training part: ``imbalance_F`` keeps an exponential profile with largest/smallest
   class exactly F (:func:`imbalance_indices`, Cui et al. 2019), as large as the pool allows or,
   with ``imbalance_budget``, scaled down to at most ``train_size`` faces (the same profile and
   factor, :func:`budget_profile`); every other setting keeps a seeded stratified ``train_size``
   of it, so noise settings share one budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer_nla.bench.config import CLEAN_SETTING
from fer_nla.data.corrupt import imbalance_indices, imbalance_profile, symmetric_noise
from fer_nla.data.split import stratified_split, stratified_subset


@dataclass
class SettingSplit:
    """Pool indices and the labels given for them; ``clean`` is the majority label."""

    name: str
    train_index: np.ndarray
    train_labels: np.ndarray
    train_clean: np.ndarray
    val_index: np.ndarray
    val_labels: np.ndarray

    @property
    def noise_rate(self) -> float:
        return float(np.mean(self.train_labels != self.train_clean)) if self.train_labels.size else 0.0

    @property
    def imbalance_ratio(self) -> float:
        counts = np.bincount(self.train_labels)
        counts = counts[counts > 0]
        return float(counts.max() / counts.min())


def given_labels(setting: str, *, majority: np.ndarray, single_vote: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
    """The labels of the whole pool under ``setting`` (before the validation carve-out)."""
    if setting == "single_vote":
        return np.asarray(single_vote, dtype=np.int64)
    if setting.startswith("symmetric_"):
        rate = int(setting.split("_")[1]) / 100.0
        return symmetric_noise(majority, num_classes=num_classes, rate=rate, seed=seed)
    if setting.startswith("imbalance_") or setting == CLEAN_SETTING:
        return np.asarray(majority, dtype=np.int64)
    raise ValueError(f"unknown setting {setting!r}")


def setting_split(
    setting: str,
    *,
    majority: np.ndarray,
    single_vote: np.ndarray,
    num_classes: int,
    seed: int,
    val_fraction: float,
    train_size: int | None,
    label_set: np.ndarray | None = None,
    imbalance_budget: bool = False,
) -> SettingSplit:
    """Training and validation indices and labels of ``setting`` for ``seed``; ``label_set``
    (``int64 [N]``, ``-1`` for an image it does not list) gives a user's setting its labels."""
    majority = np.asarray(majority, dtype=np.int64)
    if label_set is not None:
        given = np.asarray(label_set, dtype=np.int64)
    else:
        given = given_labels(setting, majority=majority, single_vote=single_vote, num_classes=num_classes, seed=seed)
    listed = np.flatnonzero(given >= 0)  # every image, but for a label set that leaves some out
    train_pool, val = stratified_split(given[listed], fraction=val_fraction, seed=seed)
    train_pool, val = listed[np.asarray(train_pool)], listed[np.asarray(val)]
    if setting.startswith("imbalance_") and imbalance_budget and train_size is not None:
        factor = float(setting.split("_")[1])
        train = train_pool[budget_profile(given[train_pool], num_classes=num_classes, factor=factor, size=train_size,
                                          seed=seed)]
    elif setting.startswith("imbalance_"):
        factor = float(setting.split("_")[1])
        keep = imbalance_indices(given[train_pool], num_classes=num_classes, factor=factor, seed=seed)
        train = train_pool[keep]
    elif train_size is not None:
        train = train_pool[stratified_subset(given[train_pool], size=train_size, seed=seed + 1)]
    else:
        train = train_pool
    train = np.sort(train)
    return SettingSplit(name=setting, train_index=train, train_labels=given[train], train_clean=majority[train],
                        val_index=val, val_labels=given[val])


def budget_profile(labels: np.ndarray, *, num_classes: int, factor: float, size: int, seed: int) -> np.ndarray:
    """Sorted indices into ``labels`` (``int64 [N]``) of an exact imbalance profile with
    largest/smallest class ``factor`` (:func:`~fer_nla.data.corrupt.imbalance_profile`) of at most
    ``size`` samples: the largest profile the labels allow, scaled down to ``size`` and fitted
    again, so the kept ratio is the factor within the profile's rounding tolerance. Raises
    :class:`~fer_nla.errors.InputError` when the scaled profile leaves its smallest class too few."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = imbalance_profile(np.bincount(labels, minlength=num_classes), factor=factor)
    if counts.sum() > size:
        counts = imbalance_profile(np.floor(counts * (size / counts.sum())).astype(np.int64), factor=factor)
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == k), size=int(counts[k]), replace=False) for k in range(num_classes)]
    return np.sort(np.concatenate(chosen))
