"""Facts about one dataset split: sample count, class counts, imbalance and noise rate."""

from __future__ import annotations

from typing import Any

import numpy as np

from fer_nla.data.dataset import FERDataset


def imbalance_ratio(counts: np.ndarray) -> float | None:
    """Largest over smallest non-empty class count (None when no class has a sample)."""
    present = np.asarray(counts)[np.asarray(counts) > 0]
    return float(present.max() / present.min()) if present.size else None


COUNTED_PREFIXES = ("dropped_", "skipped_", "bad_images_dropped", "boxes_clamped", "split_overlap")


def counted_facts(info: dict[str, Any]) -> dict[str, int]:
    """The non-zero counts a reader recorded in ``info`` (dropped, skipped, clamped samples and
    kept split overlap), in the reader's order."""
    return {
        key: int(value) for key, value in info.items()
        if key.startswith(COUNTED_PREFIXES) and isinstance(value, (int, np.integer)) and value
    }


def dataset_stats(dataset: FERDataset) -> dict[str, Any]:
    """A JSON-ready summary: ``num_samples``, ``class_names``, ``class_counts`` (name ->
    count), ``imbalance_ratio`` (over non-empty classes), ``empty_classes``, ``noise_rate``
    (None when clean labels are unknown) and what the reader recorded while building."""
    counts = dataset.class_counts()
    clean_known = 0 if dataset.clean_targets is None else int((dataset.clean_targets >= 0).sum())
    stats: dict[str, Any] = {
        "dataset": dataset.name,
        "split": dataset.split,
        "num_samples": len(dataset),
        "num_classes": dataset.num_classes,
        "class_names": list(dataset.class_names),
        "class_counts": {name: int(n) for name, n in zip(dataset.class_names, counts)},
        "imbalance_ratio": imbalance_ratio(counts),
        "empty_classes": [name for name, n in zip(dataset.class_names, counts) if n == 0],
        "noise_rate": dataset.noise_rate(),
        "clean_labels_known": clean_known,
        "target_mode": dataset.target_mode,
    }
    if dataset.clean_targets is not None and clean_known:
        known = dataset.clean_targets >= 0
        clean_counts = np.bincount(dataset.clean_targets[known], minlength=dataset.num_classes)
        stats["clean_class_counts"] = {name: int(n) for name, n in zip(dataset.class_names, clean_counts)}
    stats["info"] = dict(dataset.info)
    return stats
