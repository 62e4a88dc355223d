"""The training and validation sets of a run, as the config describes them.

The validation split chooses the best epoch; it is never the test split. ``val_split=auto``
uses the dataset's own ``valid`` split when the source declares one (its split folders, a
``Usage`` or ``split`` column: :func:`fer_nla.data.dataset_splits`), and then a ``valid``
split that cannot be read is an error; a source without one gets a seeded, stratified
``val_fraction`` carved out of train (``carve`` always carves).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fer_nla.config import DataConfig
from fer_nla.data import build_dataset, dataset_splits
from fer_nla.data.dataset import FERDataset
from fer_nla.data.split import stratified_split, stratified_subset
from fer_nla.data.transforms import RECIPE_MEAN, RECIPE_STD, eval_transform, train_transform
from fer_nla.errors import InputError
from fer_nla.losses.base import SOFT_TARGET_TOLERANCE

TEST_SPLITS = ("test",)


@dataclass
class RunData:
    """The full training split (indices and signals refer to it), the part trained on, and
    the validation set; ``val_source`` says where validation came from."""

    full_train: FERDataset
    train_indices: np.ndarray
    train: FERDataset
    val: FERDataset
    val_source: str

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.full_train.class_names


def preprocess_spec(cfg: DataConfig) -> dict[str, object]:
    """What inference needs to prepare an image as training did (saved in checkpoints)."""
    return {"image_size": cfg.image_size, "mean": list(RECIPE_MEAN), "std": list(RECIPE_STD)}


def _load(cfg: DataConfig, split: str, *, seed: int) -> FERDataset:
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
    yields hard labels (its ``targets``), whatever the label mode; soft training targets are checked."""
    if cfg.val_split.strip().lower() in TEST_SPLITS:
        raise InputError("data.val_split must not be the test split: the best epoch would be chosen on test data. "
                         "Use data.val_split=auto or carve")
    full = _load(cfg, cfg.train_split, seed=seed)
    indices = np.arange(len(full))
    val: FERDataset | None = None
    source = ""
    if cfg.val_split not in ("auto", "carve"):
        val, source = _load(cfg, cfg.val_split, seed=seed), f"split {cfg.val_split!r}"
    elif cfg.val_split == "auto":
        declared = dataset_splits(cfg.dataset, root=cfg.root, **cfg.options)
        if "valid" in declared:  # declared: a broken valid split is an error, never a silent carve
            val, source = _load(cfg, "valid", seed=seed), "the dataset's 'valid' split"
        else:
            log(f"{cfg.dataset} declares no 'valid' split (it has {', '.join(declared)}); carving one from train")
    if val is None:
        train_idx, val_idx = stratified_split(full.targets, fraction=cfg.val_fraction, seed=seed)
        indices, val = np.sort(np.asarray(train_idx)), full.subset(np.sort(np.asarray(val_idx)))
        source = f"a seeded stratified {cfg.val_fraction:.0%} of {cfg.train_split!r}"
    if tuple(val.class_names) != tuple(full.class_names):
        raise InputError(f"validation classes {val.class_names} differ from training classes {full.class_names}")
    if cfg.train_subset is not None and cfg.train_subset < len(indices):
        indices = np.sort(indices[stratified_subset(full.targets[indices], size=cfg.train_subset, seed=seed + 1)])
    if len(indices) < 2 or len(val) < 1:
        raise InputError(f"too few samples: {len(indices)} to train on and {len(val)} to validate on")
    train = full.subset(indices).with_transform(
        train_transform(image_size=cfg.image_size, flip=cfg.flip, erasing=cfg.erasing, gaussian_noise=cfg.gaussian_noise)
    )
    val = val.with_transform(eval_transform(image_size=cfg.image_size))
    val.target_mode = "hard"  # metrics score hard labels (``targets``), also when training on distributions
    if train.target_mode == "soft":
        check_soft_targets(full)
    return RunData(full_train=full, train_indices=indices, train=train, val=val, val_source=source)
