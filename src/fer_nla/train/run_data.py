"""The training and validation sets of a run, as the config describes them.

The validation split chooses the best epoch; it is never the test split. ``val_split=auto``
uses the dataset's own ``valid`` split when the source declares one (its split folders, a
``Usage`` or ``split`` column: :func:`fer_nla.data.dataset_splits`), and then a ``valid``
split that cannot be read is an error; a source without one gets a seeded, stratified
``val_fraction`` carved out of train (``carve`` always carves).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fer_nla.config import DataConfig
from fer_nla.data import build_dataset, dataset_splits
from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources.common import canonical_split
from fer_nla.data.split import fold_indices, stratified_split, stratified_subset
from fer_nla.data.stats import counted_facts
from fer_nla.data.transforms import RECIPE_MEAN, RECIPE_STD, eval_transform, train_transform
from fer_nla.errors import InputError
from fer_nla.inference.scoring import class_prior
from fer_nla.losses.base import SOFT_TARGET_TOLERANCE

COMMON_ARGUMENTS = ("root", "split", "labels", "num_classes", "seed", "skip_bad_images")


@dataclass
class RunData:
    """The full training split (indices and signals refer to it), the part trained on, and
    the validation set; ``val_source`` says where validation came from, and ``val_indices``
    which rows of ``full_train`` it is when it was carved from it (``None``: its own split)."""

    full_train: FERDataset
    train_indices: np.ndarray
    train: FERDataset
    val: FERDataset
    val_source: str
    val_indices: np.ndarray | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.full_train.class_names

    def class_counts(self) -> np.ndarray:
        """``int64 [C]``: how many training samples carry each hard label (a distribution's
        argmax), what the class-aware losses are built with."""
        return np.bincount(self.full_train.targets[self.train_indices], minlength=len(self.class_names))

    def class_prior(self) -> tuple[float, ...]:
        """The class shares of the targets trained on (label distributions: their mean), saved
        in checkpoints as ``class_prior`` (:mod:`fer_nla.inference.scoring`)."""
        soft = self.train.target_mode == "soft" and self.full_train.soft_targets is not None
        targets = self.full_train.soft_targets if soft else self.full_train.targets
        return class_prior(targets[self.train_indices], num_classes=len(self.class_names))


MIN_VAL_PER_CLASS = 10  # below this many validation images, one image moves a class's accuracy by over 10 points


def small_validation_warning(data: RunData) -> str | None:
    """A warning when a class trained on has fewer than :data:`MIN_VAL_PER_CLASS` validation
    images (one image then moves its accuracy, and mean-class accuracy, by more than 10 points, so
    the best epoch is picked largely by chance), naming each such class and its count; else ``None``."""
    trained = data.class_counts() > 0
    val = np.bincount(data.val.targets, minlength=len(data.class_names))
    few = [f"{name} {int(n)}" for name, n, used in zip(data.class_names, val, trained) if used and n < MIN_VAL_PER_CLASS]
    if not few:
        return None
    return (f"warning: the validation set ({len(data.val)} images, {data.val_source}) has fewer than "
            f"{MIN_VAL_PER_CLASS} images of {', '.join(few)}: one image moves such a class's accuracy (and "
            "mean-class accuracy with it) by more than 10 points, so the best epoch is chosen largely by chance; "
            "give more validation images (a valid/ split, or a larger data.val_fraction), or train a "
            "fixed number of epochs and use last.pt")


def preprocess_spec(cfg: DataConfig) -> dict[str, object]:
    """What inference needs to prepare an image as training did (saved in checkpoints):
    ``image_size`` (px), ``mean``/``std`` (per RGB channel, on 0..1 values) and ``grayscale``
    (bool: images made gray, :func:`fer_nla.data.transforms.to_gray`, before anything else)."""
    return {"image_size": cfg.image_size, "mean": list(RECIPE_MEAN), "std": list(RECIPE_STD),
            "grayscale": bool(cfg.grayscale)}


def _load(cfg: DataConfig, split: str, *, seed: int) -> FERDataset:
    common = sorted(set(cfg.options) & set(COMMON_ARGUMENTS))
    if common:
        key = common[0]
        raise InputError(
            f"data.options.{key} is not a dataset option but an argument every dataset has: set "
            f"{key}={cfg.options[key]!r} instead"
        )
    try:
        return build_dataset(
            cfg.dataset, root=cfg.root, split=split, labels=cfg.labels, num_classes=cfg.num_classes,
            seed=seed, skip_bad_images=cfg.skip_bad_images, **cfg.options,
        )
    except (TypeError, KeyError) as err:
        raise InputError(f"data: cannot build {cfg.dataset!r} split {split!r}: {err}; check data.options") from None


def check_soft_targets(dataset: FERDataset) -> None:
    """Raise :class:`InputError` unless every row of ``dataset.soft_targets`` (``[N, C]`` float)
    is a probability distribution: finite, >= 0, summing to 1 within the losses' tolerance."""
    where = f"{dataset.name or 'dataset'} split {dataset.split!r}"
    soft = dataset.soft_targets
    if soft is None:
        raise InputError(f"{where} yields soft targets but has no soft_targets; use hard labels (data.labels=plurality)")
    sums = soft.astype(np.float64).sum(axis=1)
    broken = ~np.isfinite(soft).all(axis=1) | (soft < 0).any(axis=1) | (np.abs(sums - 1.0) > SOFT_TARGET_TOLERANCE)
    if broken.any():
        first = int(np.flatnonzero(broken)[0])
        raise InputError(
            f"{where}: the soft targets of {int(broken.sum())} sample(s) are not probabilities (>= 0, summing to 1), "
            f"e.g. {dataset.samples[first]} (row sum {sums[first]:.4g}); fix their votes or use data.labels=plurality"
        )


def build_run_data(cfg: DataConfig, *, seed: int, log: Callable[[str], None] = print) -> RunData:
    """Training and validation sets with the recipe's transforms. The validation set always
    yields hard labels (its ``targets``), whatever the label mode; soft training targets are checked.

    Raises:
        InputError: a reader's error, a validation split that is the test split or the training
            split itself (under any of their names), validation classes other than training's,
            too few samples, or soft targets that are not distributions.
    """
    val_split = _validation_split(cfg, log=log)
    full = _load(cfg, cfg.train_split, seed=seed)
    _log_counts(full, log)
    if cfg.teachers:
        distill_into(full, cfg, log=log)
    indices = fold_of(cfg, full, log=log)
    val_indices = None
    if val_split is not None:
        val = _load(cfg, val_split, seed=seed)
        _log_counts(val, log)
        source = f"the dataset's {val_split!r} split"
    else:  # carved from the training samples (of the fold, with data.train_fold)
        train_idx, val_idx = stratified_split(full.targets[indices], fraction=cfg.val_fraction, seed=seed)
        indices, val_indices = np.sort(indices[np.asarray(train_idx)]), np.sort(indices[np.asarray(val_idx)])
        val = full.subset(val_indices)
        part = f"fold {cfg.train_fold} of " if cfg.train_fold else ""
        source = f"a seeded stratified {cfg.val_fraction:.0%} of {part}{full.split!r}"
    if tuple(val.class_names) != tuple(full.class_names):
        raise InputError(
            f"validation classes {val.class_names} differ from training classes {full.class_names}; give both "
            f"the same classes with num_classes={len(full.class_names)} (or the other count)"
        )
    if cfg.train_subset is not None and cfg.train_subset < len(indices):
        indices = np.sort(indices[stratified_subset(full.targets[indices], size=cfg.train_subset, seed=seed + 1)])
    if len(indices) < 2 or len(val) < 1:
        raise InputError(f"too few samples: {len(indices)} to train on and {len(val)} to validate on")
    train = full.subset(indices).with_transform(
        train_transform(image_size=cfg.image_size, augment=cfg.augmentation, grayscale=cfg.grayscale)
    )
    val = val.with_transform(eval_transform(image_size=cfg.image_size, grayscale=cfg.grayscale))
    val.target_mode = "hard"  # metrics score hard labels (``targets``), also when training on distributions
    if train.target_mode == "soft":
        check_soft_targets(full)
    return RunData(full_train=full, train_indices=indices, train=train, val=val, val_source=source,
                   val_indices=val_indices)


def distill_into(full: FERDataset, cfg: DataConfig, *, log: Callable[[str], None]) -> None:
    """Replace the training targets of ``full`` by ``data.teacher_weight`` of the teachers'
    ensemble plus the rest of its own (:mod:`fer_nla.train.distill`); its hard labels stay."""
    from fer_nla.train.distill import ensemble_targets, mix_targets

    teacher = ensemble_targets(cfg.teachers, full.load_image, len(full), class_names=full.class_names, log=log)
    given = full.soft_targets if full.target_mode == "soft" and full.soft_targets is not None else full.targets
    full.soft_targets = mix_targets(teacher, given, weight=cfg.teacher_weight)
    full.target_mode = "soft"
    agree = float((teacher.argmax(axis=1) == full.targets).mean())
    log(f"data: training on {cfg.teacher_weight:g} x the ensemble of {len(cfg.teachers)} teacher(s) + "
        f"{1 - cfg.teacher_weight:g} x the given labels; the ensemble agrees with {agree:.1%} of them")


def fold_of(cfg: DataConfig, full: FERDataset, *, log: Callable[[str], None]) -> np.ndarray:
    """Indices of the training samples in ``data.train_fold`` (all of them without one), by
    sample id relative to the data root (:func:`fer_nla.data.split.fold_indices`)."""
    if cfg.train_fold is None:
        return np.arange(len(full))
    root = os.path.abspath(os.path.expanduser(cfg.root)) if cfg.root else None
    ids = [os.path.relpath(str(s), root) if root and os.path.isabs(str(s)) else str(s) for s in full.samples]
    indices = fold_indices(ids, cfg.train_fold, seed=cfg.fold_seed)
    log(f"data: training fold {cfg.train_fold} of {full.split!r} (by sample id, data.fold_seed={cfg.fold_seed}): "
        f"{len(indices)} of {len(full)} samples")
    return indices


def _validation_split(cfg: DataConfig, *, log: Callable[[str], None]) -> str | None:
    """The canonical split to select the best epoch on, or ``None`` to carve one from train.

    ``auto`` takes ``valid`` when the source declares it (and it is not the training split);
    a named split may be neither the test split nor the training split, under any alias."""
    train = canonical_split(cfg.train_split)
    if train == "test":
        raise InputError(
            "data.train_split names the test split: every test figure of the run would be measured on its "
            "training data; train on data.train_split=train"
        )
    choice = cfg.val_split.strip().lower()
    if choice == "carve":
        return None
    if choice == "auto":
        declared = dataset_splits(cfg.dataset, root=cfg.root, **cfg.options)
        if "valid" in declared and train != "valid":  # declared: a broken valid split is an error, not a carve
            return "valid"
        if "valid" not in declared:
            log(f"{cfg.dataset} declares no 'valid' split (it has {', '.join(declared)}); carving one from {train}")
        else:
            log("the training split is 'valid' itself: carving a validation part from it")
        return None
    split = canonical_split(choice)
    if split == "test":
        raise InputError(
            f"data.val_split={cfg.val_split!r} is the test split: the best epoch would be chosen on test data; "
            "use data.val_split=auto or carve"
        )
    if split == train:
        raise InputError(
            f"data.val_split={cfg.val_split!r} is the training split: the best epoch would be chosen on the "
            "data trained on; use data.val_split=auto or carve"
        )
    return split


def _log_counts(dataset: FERDataset, log: Callable[[str], None]) -> None:
    """One line naming what the reader dropped, skipped, clamped or kept despite a check."""
    counts = counted_facts(dataset.info)
    if counts:
        listed = ", ".join(f"{key.replace('_', ' ')} {n}" for key, n in counts.items())
        log(f"data: {dataset.name} {dataset.split!r}: {listed}")
