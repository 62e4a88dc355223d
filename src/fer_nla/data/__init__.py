"""Datasets: readers for every FER label format, the synthetic demo set, corruption, transforms.

``build_dataset(name, root=..., split=..., labels=...)`` returns a :class:`FERDataset` in
the canonical label space of :mod:`fer_nla.labels`; ``available_datasets()`` lists names.
"""

from fer_nla.data.dataset import FERDataset
from fer_nla.data.registry import available_datasets, build_dataset, dataset_options, dataset_splits

__all__ = ["FERDataset", "available_datasets", "build_dataset", "dataset_options", "dataset_splits"]
