"""Datasets chosen by name: ``build_dataset(name, ...)`` and ``available_datasets()``."""

from __future__ import annotations

import csv
import inspect
from collections.abc import Callable
from pathlib import Path

import numpy as np
from typing import Any

from fer_nla.data import synthetic
from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources import affectnet, fer2013, ferplus, folder, manifest, rafdb
from fer_nla.errors import InputError

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
    accepted = dataset_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(accepted) or "none"
        raise InputError(f"dataset {name} has no option {', '.join(unknown)}; its options are: {listed}")
    options = {key: typed_option(name, key, value, accepted[key]) for key, value in options.items()}
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


def typed_option(dataset: str, key: str, value: Any, default: Any) -> Any:
    """``value`` as the type of the option's default: a bool option takes a bool (YAML's
    true/false/yes/no/on/off, already parsed) or those words, an int option an integer (``"3"``,
    ``3.0``), a float option a number; options whose default is a string or None pass unchanged.

    Raises:
        InputError: naming the option, the value and what it must be (e.g. ``maybe`` for a bool).
    """
    if isinstance(default, bool):
        words = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
        if isinstance(value, bool):
            return value
        if isinstance(value, (str, int)) and str(value).strip().lower() in words:
            return words[str(value).strip().lower()]
        raise InputError(f"dataset {dataset}: option {key}={value!r} must be true or false")
    if isinstance(default, int):
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(value, bool) or not number.is_integer():
            raise InputError(f"dataset {dataset}: option {key}={value!r} must be a whole number")
        return int(number)
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise InputError(f"dataset {dataset}: option {key}={value!r} must be a number") from None
    return value


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
