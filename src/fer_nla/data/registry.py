"""Datasets chosen by name: ``build_dataset(name, ...)`` and ``available_datasets()``."""

from __future__ import annotations

import csv
import inspect
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.data import synthetic
from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources import affectnet, fer2013, ferplus, folder, manifest, rafdb
from fer_nla.data.sources.common import ReadRequest
from fer_nla.data.sources.reader import Reader
from fer_nla.errors import InputError
from fer_nla.values import ConversionError, convert

_READERS: dict[str, Reader] = {
    "rafdb": rafdb.RafDB(),
    "affectnet": affectnet.AffectNet(),
    "ferplus": ferplus.FERPlus(),
    "fer2013": fer2013.FER2013(),
    "folder": folder.Folder(),
    # a manifest with a provenance rebuilds its source dataset through build_dataset
    "manifest": manifest.Manifest(build_source=lambda name, **arguments: build_dataset(name, **arguments)),
    "synthetic": synthetic.Synthetic(),
}


def available_datasets() -> list[str]:
    """Names accepted by :func:`build_dataset`."""
    return list(_READERS)


def dataset_options(name: str) -> dict[str, Any]:
    """The own options of dataset ``name`` (beyond the common ones of :class:`ReadRequest`) and
    their defaults: the keyword arguments of its reader's ``build``.

    Raises:
        InputError: unknown dataset.
    """
    parameters = inspect.signature(_reader(name).build).parameters
    return {key: p.default for key, p in parameters.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


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
    reader = _reader(name)
    options = typed_options(name, options)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) < 2**32:
        raise InputError(f"seed={seed!r} must be an integer in 0..4294967295")
    request = reader.request(ReadRequest(root, split, labels, num_classes, seed, skip_bad_images), options)
    try:
        return reader.build(request, **options)
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
    accepted = dataset_options(name)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        listed = ", ".join(accepted) or "none"
        raise InputError(f"dataset {name} has no option {', '.join(unknown)}; its options are: {listed}")
    hints = typing.get_type_hints(_reader(name).build)
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
    return _reader(name).splits(root=root, **options)


def _reader(name: str) -> Reader:
    try:
        return _READERS[name]
    except KeyError:
        raise InputError(f"unknown dataset {name!r}; use one of {', '.join(_READERS)}") from None
