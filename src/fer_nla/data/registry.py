"""Datasets chosen by name: ``build_dataset(name, ...)`` and ``available_datasets()``."""

from __future__ import annotations

import csv
import inspect
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.data import synthetic
from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources import affectnet, fer2013, ferplus, folder, manifest, rafdb
from fer_nla.errors import InputError
from fer_nla.values import ConversionError, convert

_BUILDERS: dict[str, Callable[..., FERDataset]] = {
    "rafdb": rafdb.build,
    "affectnet": affectnet.build,
    "ferplus": ferplus.build,
    "fer2013": fer2013.build,
    "folder": folder.build,
    "manifest": manifest.build,
    "synthetic": synthetic.build,
}
_SPLITS: dict[str, Callable[..., tuple[str, ...]]] = {
    "rafdb": rafdb.splits,
    "affectnet": affectnet.splits,
    "ferplus": ferplus.splits,
    "fer2013": fer2013.splits,
    "folder": folder.splits,
    "manifest": manifest.splits,
    "synthetic": synthetic.splits,
}
_COMMON = ("root", "split", "labels", "num_classes", "seed", "skip_bad_images")
# Arguments the registry itself passes, never user options: a manifest rebuilds its source through build_dataset.
_INTERNAL = ("build_source",)


def available_datasets() -> list[str]:
    """Names accepted by :func:`build_dataset`."""
    return list(_BUILDERS)


def dataset_options(name: str) -> dict[str, Any]:
    """The extra options of dataset ``name`` and their defaults (beyond the common ones)."""
    parameters = inspect.signature(_builder(name)).parameters
    return {key: p.default for key, p in parameters.items() if key not in _COMMON and key not in _INTERNAL}


def build_dataset(
    name: str,
    *,
    root: str | Path | None = None,
    split: str = "train",
    labels: str = "majority",
    num_classes: int | None = None,
    seed: int = 0,
    skip_bad_images: bool = False,
    **options: Any,
) -> FERDataset:
    """Index one split of dataset ``name`` (see :func:`available_datasets`) in the canonical
    label space. ``options`` are the dataset's own (:func:`dataset_options`), e.g.
    ``num_samples`` and ``image_size`` for ``synthetic``, ``images_dir`` for ``affectnet``."""
    builder = _builder(name)
    options = typed_options(name, options)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
        raise InputError(f"seed={seed!r} must be an integer in 0..4294967295")
    if name == "manifest":
        options["build_source"] = build_dataset
    try:
        return builder(
            root=root, split=split, labels=labels, num_classes=num_classes, seed=seed,
            skip_bad_images=skip_bad_images, **options,
        )
    except csv.Error as err:  # the csv module's own limits, e.g. a field over 128 KB (a stray quote)
        raise InputError(
            f"{root}: a label file of dataset {name} is not readable CSV ({err}); look for an unmatched quote "
            "or a line that lost its line break, and fix it"
        ) from None


def typed_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Dataset ``name``'s own ``options`` (text from ``-o KEY=VALUE``, or YAML values) as the
    types its reader declares (:func:`fer_nla.values.convert`): ``"2000"`` -> 2000 for an
    ``int``, ``"yes"`` -> True for a ``bool``, ``"null"`` -> None for an optional one.

    Raises:
        InputError: an option the reader does not have (listing those it has), or a value of the
            wrong kind, as ``dataset NAME: option KEY=VALUE must be ...`` (the command line
            rewrites ``KEY=VALUE`` in its own spelling).
    """
    builder = _builder(name)
    accepted = dataset_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(accepted) or "none"
        raise InputError(f"dataset {name} has no option {', '.join(unknown)}; its options are: {listed}")
    hints = typing.get_type_hints(builder)
    typed = {}
    for key, value in options.items():
        try:
            typed[key] = convert(value, hints.get(key, Any), name=key)
        except ConversionError as err:
            raise InputError(f"dataset {name}: option {key}={value!r} must be {err.expected}") from None
    return typed


def dataset_splits(name: str, *, root: str | Path | None = None, **options: Any) -> tuple[str, ...]:
    """The splits dataset ``name`` declares at ``root``, in train/valid/test order: what its
    files say (split folders, a ``Usage`` or ``split`` column), never guessed from a failed read.

    Raises:
        InputError: unknown dataset, or a root that does not exist.
    """
    _builder(name)
    return _SPLITS[name](root=root, **options)


def _builder(name: str) -> Callable[..., FERDataset]:
    try:
        return _BUILDERS[name]
    except KeyError:
        raise InputError(f"unknown dataset {name!r}; use one of {', '.join(_BUILDERS)}") from None
