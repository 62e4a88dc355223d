"""What every reader shares: the request it reads, split and label-mode names, root checks, and the
final build step."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.data.boxes import fit_boxes
from fer_nla.data.dataset import FERDataset
from fer_nla.data.images import (
    MAX_LISTED,
    FileImages,
    require_files,
    sample_size_problem,
    undecodable,
)
from fer_nla.errors import InputError

SPLITS: tuple[str, ...] = ("train", "valid", "test")
LABEL_MODES: tuple[str, ...] = ("majority", "plurality", "distribution", "single-vote")
# Not a mode of fer-nla: FERPlus's own "probability" scheme draws one label per image and epoch.
RENAMED_MODES: dict[str, str] = {"probability": "distribution"}
_SPLIT_ALIASES = {"training": "train", "val": "valid", "validation": "valid", "eval": "test", "testing": "test"}


@dataclass(frozen=True)
class ReadRequest:
    """The arguments every reader takes (:func:`fer_nla.data.build_dataset`'s common ones).

    As given by the caller (``root`` a ``str``, ``Path`` or ``None``; ``split`` any spelling
    :func:`canonical_split` accepts), and once :meth:`fer_nla.data.sources.reader.Reader.request`
    has checked it: ``root`` the absolute :class:`~pathlib.Path` the reader reads (``None`` for a
    dataset that reads no files), ``split`` one of :data:`SPLITS`, ``labels`` a mode the dataset
    has, and ``num_classes`` the class count (``int``), or still ``None`` where the data decides
    it. ``seed`` (``int``) is for readers that draw labels; ``skip_bad_images`` (``bool``) drops
    undecodable images instead of failing.
    """

    root: str | Path | None = None
    split: str = "train"
    labels: str = "majority"
    num_classes: int | None = None
    seed: int = 0
    skip_bad_images: bool = False


def canonical_split(split: str) -> str:
    """``train``, ``valid`` or ``test`` (``val``/``validation``/``training`` accepted)."""
    key = str(split).strip().lower()
    key = _SPLIT_ALIASES.get(key, key)
    if key not in SPLITS:
        raise InputError(f"split {split!r} is not a split; use one of {', '.join(SPLITS)}")
    return key


def require_label_mode(labels: str, *, dataset: str, allowed: Sequence[str] = ("majority",)) -> str:
    """Check that ``labels`` is a mode this dataset has (only FERPlus has per-annotator votes)."""
    if labels in RENAMED_MODES:
        raise InputError(
            f"labels={labels!r} is now labels={RENAMED_MODES[labels]!r}: it trains with cross-entropy against each "
            "image's vote distribution, which is FERPlus's 'crossentropy' scheme (CEL in Barsoum et al. 2016), "
            "not FERPlus's 'probability' scheme (one label drawn from the distribution per image and epoch, "
            "which fer-nla does not provide)"
        )
    if labels not in LABEL_MODES:
        raise InputError(f"labels={labels!r} is not a label mode; use one of {', '.join(LABEL_MODES)}")
    if labels not in allowed:
        raise InputError(
            f"labels={labels!r} needs per-annotator votes, which {dataset} does not have; "
            f"use one of {', '.join(allowed)} (FERPlus has all four modes)"
        )
    return labels


def require_num_classes(num_classes: int | None, *, dataset: str, allowed: Sequence[int], default: int) -> int:
    """The class count asked for, checked against what the dataset can provide."""
    if num_classes is None:
        return default
    if int(num_classes) not in allowed:
        raise InputError(
            f"{dataset} cannot give num_classes={num_classes}; use one of {', '.join(map(str, allowed))}"
        )
    return int(num_classes)


def require_root(root: str | Path | None, *, dataset: str, expect: str) -> Path:
    """The dataset root as a path that exists, or an :class:`InputError` saying what to pass."""
    if root is None or str(root) == "":
        raise InputError(f"dataset {dataset} needs a root: pass root=... pointing at {expect}")
    path = Path(os.path.abspath(Path(root).expanduser()))  # absolute: sample ids stay valid anywhere
    if not path.exists():
        raise InputError(f"{path}: no such file or folder; pass root=... pointing at {expect}")
    return path


def one_set_split(split: str, *, where: str | Path, fix: str) -> None:
    """A dataset without split information is one set, read as ``train``; asking it for
    ``valid`` or ``test`` is an error, so a validation split is never the training data."""
    if split != "train":
        raise InputError(
            f"{where}: has no split information, so it is one set, read as split 'train' (not {split!r}); "
            f"ask for 'train' (training carves its validation part from it), or {fix}"
        )


def require_file(path: Path, *, dataset: str, fix: str) -> Path:
    """``path`` if it is a file, else an :class:`InputError` naming it and the fix."""
    if not path.is_file():
        raise InputError(f"{path}: {dataset} label file not found; {fix}")
    return path


def file_dataset(
    request: ReadRequest,
    *,
    name: str,
    paths: list[str],
    targets: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    listed_in: str | Path,
    boxes: np.ndarray | None = None,
    crop: str = "auto",
    clean_targets: np.ndarray | None = None,
    soft_targets: np.ndarray | None = None,
    info: Mapping[str, Any] | None = None,
    fix_missing: str = "restore the files, or remove their lines from the label file",
) -> FERDataset:
    """The samples of the request's split checked (not empty, every image file present, and with
    ``request.skip_bad_images`` the undecodable dropped and counted) as a :class:`FERDataset`
    named ``name`` decoding files on access, its ``info`` the label mode, then ``info``.

    Raises:
        InputError: no samples, a missing image file (``fix_missing`` says what to do), every
            image undecodable, or every face box outside its image.
    """
    split = request.split
    targets = np.asarray(targets, dtype=np.int64)
    info = {"labels": request.labels, **(info or {})}
    if not paths:
        raise InputError(
            f"{listed_in}: no samples in split {split!r} with the chosen labels and classes; "
            "check the split, the label mode and the class count asked for, or the label file"
        )
    require_files(paths, listed_in=listed_in, fix=fix_missing)
    if request.skip_bad_images:
        paths, targets, boxes, clean_targets, soft_targets = _drop_bad(
            undecodable(paths), (paths, targets, boxes, clean_targets, soft_targets), info,
            empty=f"{listed_in}: every image of split {split!r} is undecodable")
    if boxes is not None:
        boxes, keep, counts = fit_boxes(paths, boxes, crop=crop, listed_in=str(listed_in))
        info.update(counts)
        if not keep.all():
            paths, targets, boxes, clean_targets, soft_targets = _take(
                np.flatnonzero(keep), paths, targets, boxes, clean_targets, soft_targets
            )
            if not paths:
                raise InputError(f"{listed_in}: every face box of split {split!r} lies outside its image")
        if request.skip_bad_images and crop != "never":  # a box cropping to no face (under 16 px, a strip)
            small = np.array([sample_size_problem((int(w), int(h))) is not None for w, h in boxes[:, 2:4]], dtype=bool)
            paths, targets, boxes, clean_targets, soft_targets = _drop_bad(
                small, (paths, targets, boxes, clean_targets, soft_targets), info,
                empty=f"{listed_in}: every face box of split {split!r} crops to no face")
    return FERDataset(
        samples=paths,
        targets=targets,
        class_names=class_names,
        source=FileImages(paths, boxes=boxes, crop=crop),
        clean_targets=clean_targets,
        soft_targets=soft_targets,
        name=name,
        split=split,
        info=info,
    )


def _drop_bad(bad: np.ndarray, columns: tuple[Any, ...], info: dict[str, Any], *, empty: str) -> tuple[Any, ...]:
    """``columns`` (paths first, then the other per-sample columns) without the samples ``bad``
    marks (bool ``[N]``), counted in ``info["bad_images_dropped"]`` and listed (the first
    :data:`MAX_LISTED`) in ``info["bad_images"]``. Raises :class:`InputError` saying ``empty``
    when no sample is left."""
    info["bad_images_dropped"] = info.get("bad_images_dropped", 0) + int(bad.sum())
    if not bad.any():
        return columns
    info.setdefault("bad_images", []).extend(columns[0][i] for i in np.flatnonzero(bad)[:MAX_LISTED])
    columns = _take(np.flatnonzero(~bad), *columns)
    if not columns[0]:
        raise InputError(empty)
    return columns


def _take(rows: np.ndarray, *columns: Any) -> tuple[Any, ...]:
    """Each per-sample column (a list, an array, or ``None``) reduced to ``rows``."""
    return tuple(
        None if column is None else [column[i] for i in rows] if isinstance(column, list) else column[rows]
        for column in columns
    )
