"""Manifest CSV: one row per sample, ``path,label[,clean_label,is_noisy][,split]``.

Labels are canonical class names (``happiness``; aliases such as ``happy`` are accepted)
or canonical indices (0 = neutral ... 7 = contempt, see :data:`fer_nla.labels.EMOTIONS`);
the writer uses names. An empty ``clean_label`` means unknown. Relative paths are read
relative to the manifest's folder. Without a ``split`` column the manifest is one set, read
as split ``train`` (asking it for ``valid`` or ``test`` is an error). There are 8 classes if any label is contempt, else 7,
unless ``num_classes`` says otherwise.

A manifest written by ``fer-nla data corrupt`` starts with a line ``# fer-nla source: {json}``
holding the ``build_dataset`` arguments of the dataset it came from; its ``path`` column
then holds that dataset's sample ids (image paths, or ids such as ``synthetic:train:17``
and ``fer2013.csv:42`` for samples that are not files), and the reader rebuilds that
dataset's index to decode the images exactly as it does (crops included). Remove the line
to read the paths as plain image files.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources.common import (
    canonical_split,
    file_dataset,
    one_set_split,
    require_label_mode,
    require_root,
)
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS, class_names, index_of

SOURCE_PREFIX = "# fer-nla source:"
COLUMNS = ("path", "label", "clean_label", "is_noisy", "split")


def write_manifest(path: str | Path, dataset: FERDataset, *, source: dict[str, Any] | None = None) -> Path:
    """Write ``dataset``'s samples and labels atomically; ``source`` (the ``build_dataset``
    arguments that made ``dataset``'s index) is recorded on the first line when given."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = dataset.class_names
    clean = dataset.clean_targets
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            if source is not None:
                handle.write(f"{SOURCE_PREFIX} {json.dumps(source, sort_keys=True)}\n")
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for i, sample in enumerate(dataset.samples):
                label = names[dataset.targets[i]]
                known = clean is not None and clean[i] >= 0
                clean_name = names[clean[i]] if known else ""  # type: ignore[index]
                noisy = str(int(dataset.targets[i] != clean[i])) if known else ""  # type: ignore[index]
                writer.writerow((sample, label, clean_name, noisy, dataset.split))
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def build(
    *,
    root: str | Path | None,
    split: str = "train",
    labels: str = "majority",
    num_classes: int | None = None,
    seed: int = 0,
    skip_bad_images: bool = False,
) -> FERDataset:
    """The manifest's rows of ``split`` (all rows if it has no split column)."""
    del seed
    require_label_mode(labels, dataset="a manifest")
    split = canonical_split(split)
    manifest = require_root(root, dataset="manifest", expect="a manifest CSV (path,label,...)")
    if not manifest.is_file():
        raise InputError(f"{manifest}: not a file; pass --root pointing at the manifest CSV")
    source, rows = _read(manifest, split)
    if source is not None:
        num_classes = num_classes or source.get("num_classes")
    if num_classes is None:
        uses_contempt = any(label == 7 or clean == 7 for _, label, clean, _ in rows)
        num_classes = 8 if uses_contempt else 7
    classes = class_names(int(num_classes))
    for line_no, label, clean, _ in rows:
        if max(label, clean) >= len(classes):
            raise InputError(
                f"{manifest}:{line_no}: label {EMOTIONS[max(label, clean)]} is outside the {len(classes)} "
                f"classes ({', '.join(classes)}); fix the label or ask for num_classes=8"
            )
    targets = np.array([r[1] for r in rows], dtype=np.int64)
    clean = np.array([r[2] for r in rows], dtype=np.int64)
    clean_targets = clean if (clean >= 0).any() else None
    info = {"labels": labels, "manifest": str(manifest)}
    if source is None:
        folder = manifest.parent
        paths = [p if os.path.isabs(p) else str(folder / p) for _, _, _, p in rows]
        return file_dataset(
            name="manifest", split=split, paths=paths, targets=targets, class_names=classes,
            listed_in=manifest, skip_bad_images=skip_bad_images, clean_targets=clean_targets, info=info,
            fix_missing="restore them, or remove their rows from the manifest",
        )
    return _from_source(manifest, source, rows, targets, clean_targets, classes, split, skip_bad_images, info)


def _read(manifest: Path, split: str) -> tuple[dict[str, Any] | None, list[tuple[int, int, int, str]]]:
    """The source line (if any) and ``(line, label, clean label or -1, path)`` of the split's rows."""
    source: dict[str, Any] | None = None
    rows: list[tuple[int, int, int, str]] = []
    splits_seen: set[str] = set()
    with open(manifest, newline="", encoding="utf-8") as handle:
        first = handle.readline()
        offset = 1
        if first.startswith(SOURCE_PREFIX):
            try:
                source = json.loads(first[len(SOURCE_PREFIX):])
            except json.JSONDecodeError as err:
                raise InputError(f"{manifest}:1: the source line is not valid JSON ({err}); fix or remove it") from None
            first, offset = handle.readline(), 2
        header = [name.strip().lower() for name in next(csv.reader([first]), [])]
        if "path" not in header or "label" not in header:
            raise InputError(
                f"{manifest}:{offset}: header {header} needs columns 'path' and 'label' "
                "(optional: clean_label, is_noisy, split); add the header line"
            )
        col = {name: header.index(name) for name in COLUMNS if name in header}
        for line_no, row in enumerate(csv.reader(handle), start=offset + 1):
            if not row or not any(field.strip() for field in row):
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{manifest}:{line_no}: expected {len(header)} fields ({','.join(header)}), got "
                    f"{len(row)}; fix or remove the line"
                )
            if "split" not in col:
                one_set_split(split, where=manifest, fix="add a split column (train, valid, test)")
            else:
                try:
                    row_split = canonical_split(row[col["split"]])
                except InputError:
                    raise InputError(
                        f"{manifest}:{line_no}: split {row[col['split']]!r} is not train, valid or test; fix it"
                    ) from None
                splits_seen.add(row_split)
                if row_split != split:
                    continue
            label = _label(row[col["label"]], manifest, line_no)
            clean_text = row[col["clean_label"]].strip() if "clean_label" in col else ""
            clean = _label(clean_text, manifest, line_no) if clean_text else -1
            rows.append((line_no, label, clean, row[col["path"]].strip()))
    if not rows:
        present = f"; it has rows of {', '.join(sorted(splits_seen))}" if splits_seen else ""
        raise InputError(f"{manifest}: no samples for split {split!r}{present}; ask for another --split")
    return source, rows


def _label(text: str, manifest: Path, line_no: int) -> int:
    value = text.strip()
    if value.isdigit():
        index = int(value)
        if index >= len(EMOTIONS):
            raise InputError(
                f"{manifest}:{line_no}: label {index} is out of range 0..7 (canonical order "
                f"{', '.join(EMOTIONS)}); fix the label"
            )
        return index
    try:
        return index_of(value)
    except ValueError:
        raise InputError(
            f"{manifest}:{line_no}: label {value!r} is not an emotion; use one of {', '.join(EMOTIONS)} "
            "or its index"
        ) from None


def _from_source(
    manifest: Path,
    source: dict[str, Any],
    rows: list[tuple[int, int, int, str]],
    targets: np.ndarray,
    clean_targets: np.ndarray | None,
    classes: tuple[str, ...],
    split: str,
    skip_bad_images: bool,
    info: dict[str, Any],
) -> FERDataset:
    """The manifest's rows as a subset of the dataset named on its source line."""
    from fer_nla.data.registry import build_dataset  # the registry imports this module

    arguments = dict(source)
    name = arguments.pop("dataset", None)
    options = arguments.pop("options", {}) or {}
    try:
        base = build_dataset(name, skip_bad_images=skip_bad_images, **arguments, **options)
    except InputError as err:
        raise InputError(f"{manifest}:1: cannot rebuild the source dataset: {err}") from None
    lookup = {sample: i for i, sample in enumerate(base.samples)}
    unknown = [(line_no, path) for line_no, _, _, path in rows if path not in lookup]
    if unknown:
        shown = "\n  ".join(f"line {n}: {p}" for n, p in unknown[:20])
        raise InputError(
            f"{manifest}: {len(unknown)} sample ids are not in the source dataset ({name}):\n  {shown}\n"
            "Fix: rebuild the manifest, or remove the source line to read the paths as plain image files"
        )
    if tuple(base.class_names) != tuple(classes):
        raise InputError(f"{manifest}:1: the source has classes {base.class_names}, the manifest {classes}; fix num_classes")
    dataset = base.subset([lookup[path] for _, _, _, path in rows])
    dataset.targets = targets
    dataset.clean_targets = clean_targets
    dataset.target_mode = "hard"
    dataset.name, dataset.split = "manifest", split
    dataset.info = {**info, "source": source}
    return dataset
