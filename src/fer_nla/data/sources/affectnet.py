"""AffectNet: the official ``training.csv`` / ``validation.csv``, or a plain CSV of path and expression.

Official rows: ``subDirectory_filePath, face_x, face_y, face_width, face_height,
facial_landmarks, expression, valence, arousal`` (the header row may be absent, as in some
copies of ``validation.csv``). Expression codes 0..7 are neutral, happiness, sadness,
surprise, fear, disgust, anger, contempt; codes 8..10 (none, uncertain, no-face) are
dropped and counted. Images are cropped to the face box on load unless already cropped
(``crop="auto"``). AffectNet's test set is not public and papers report on the official
validation set, so ``test`` reads ``validation.csv``; there is no ``valid`` split (asking
for it is an error), so model selection uses a part carved from train, never the test data.

A plain CSV has a header with a path column (``path``, ``image``, ``file`` or
``subDirectory_filePath``) and a label column (``expression``, ``label`` or ``emotion``)
holding AffectNet codes or emotion names; pass it as ``root``.
"""

from __future__ import annotations

import csv
import os
from array import array
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources.common import (
    canonical_split,
    file_dataset,
    require_file,
    require_label_mode,
    require_num_classes,
    require_root,
)
from fer_nla.errors import InputError
from fer_nla.labels import AFFECTNET_CODES, class_names, code_table, index_of

SPLIT_FILES = {"train": "training.csv", "test": "validation.csv"}
IMAGE_FOLDERS = ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images")
PATH_COLUMNS = ("path", "image", "file", "subdirectory_filepath")
LABEL_COLUMNS = ("expression", "label", "emotion")
NON_EMOTION_CODES = (8, 9, 10)


def build(
    *,
    root: str | Path | None,
    split: str = "train",
    labels: str = "majority",
    num_classes: int | None = None,
    seed: int = 0,
    skip_bad_images: bool = False,
    images_dir: str | Path | None = None,
    crop: str = "auto",
) -> FERDataset:
    """One AffectNet split in the canonical 7- or 8-class order (default 8)."""
    del seed
    require_label_mode(labels, dataset="AffectNet")
    classes = class_names(require_num_classes(num_classes, dataset="AffectNet", allowed=(7, 8), default=8))
    split = canonical_split(split)
    if split == "valid":
        raise InputError(
            "AffectNet has no validation split of its own: its official validation.csv is the test set "
            "(--split test); carve a validation split from train (fer_nla.data.split.stratified_split)"
        )
    base = require_root(root, dataset="affectnet", expect="the AffectNet folder (with training.csv) or a CSV file")
    csv_path = _label_file(base, split)
    image_root = _image_root(base if base.is_dir() else csv_path.parent, images_dir)
    table = code_table(AFFECTNET_CODES, classes)
    paths, targets, boxes, dropped = _read(csv_path, image_root, table, classes)
    return file_dataset(
        name="affectnet",
        split=split,
        paths=paths,
        targets=targets,
        class_names=classes,
        listed_in=csv_path,
        skip_bad_images=skip_bad_images,
        boxes=boxes,
        crop=crop,
        info={"labels": labels, "dropped_not_in_classes": dropped, "csv": str(csv_path)},
        fix_missing=f"restore them under {image_root} (or pass images_dir=...), or remove their rows",
    )


def _label_file(base: Path, split: str) -> Path:
    if base.is_file():
        return base
    name = SPLIT_FILES[split]
    for candidate in (base / name, base / "Manually_Annotated_file_lists" / name):
        if candidate.is_file():
            return candidate
    return require_file(base / name, dataset="AffectNet", fix=f"--root should be the folder holding {name}")


def _image_root(folder: Path, images_dir: str | Path | None) -> Path:
    if images_dir is not None:
        path = Path(images_dir).expanduser()
        if not path.is_dir():
            raise InputError(f"{path}: images_dir is not a folder; pass the folder holding the images")
        return path
    for name in IMAGE_FOLDERS:
        if (folder / name).is_dir():
            return folder / name
    return folder


def _read(
    csv_path: Path, image_root: Path, table: np.ndarray, classes: tuple[str, ...]
) -> tuple[list[str], np.ndarray, np.ndarray | None, int]:
    """Paths, canonical targets, face boxes (official format) and the count of dropped rows."""
    paths: list[str] = []
    targets = array("q")
    boxes = array("i")
    dropped = 0
    prefix = str(image_root) + "/"
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None:
            raise InputError(f"{csv_path}: the file is empty; give the AffectNet CSV with its rows")
        header = [field.strip().lower() for field in first]
        official = "subdirectory_filepath" in header and "face_x" in header
        if not official and len(first) >= 9 and first[1].strip().lstrip("-").isdigit():
            official, header = True, []  # official layout without its header row
        if official:
            rows = reader if header else _chain(first, reader)
            path_col, label_col = 0, 6
        else:
            path_col = _column(header, PATH_COLUMNS, csv_path, "path")
            label_col = _column(header, LABEL_COLUMNS, csv_path, "expression")
            rows = reader
        start = 2 if header else 1
        for line_no, row in enumerate(rows, start=start):
            if not row:
                continue
            if len(row) <= max(path_col, label_col) or (official and len(row) < 7):
                raise InputError(
                    f"{csv_path}:{line_no}: expected {'9 columns' if official else 'a path and a label'}, "
                    f"got {len(row)} field(s); fix or remove the line"
                )
            index = _target(row[label_col], table, classes, csv_path, line_no)
            if index < 0:
                dropped += 1
                continue
            name = row[path_col].strip()
            paths.append(name if os.path.isabs(name) else prefix + name)
            targets.append(index)
            if official:
                try:
                    boxes.extend((int(row[1]), int(row[2]), int(row[3]), int(row[4])))
                except ValueError:
                    raise InputError(
                        f"{csv_path}:{line_no}: face box {row[1:5]} is not four integers; fix the line"
                    ) from None
    box_array = np.frombuffer(boxes, dtype=np.int32).reshape(-1, 4).copy() if official else None
    return paths, np.frombuffer(targets, dtype=np.int64).copy(), box_array, dropped


def _chain(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


def _column(header: list[str], names: tuple[str, ...], csv_path: Path, what: str) -> int:
    for name in names:
        if name in header:
            return header.index(name)
    raise InputError(
        f"{csv_path}:1: no {what} column in the header {header}; name it one of {', '.join(names)}"
    )


def _target(value: str, table: np.ndarray, classes: tuple[str, ...], csv_path: Path, line_no: int) -> int:
    """Canonical index of one label (-1 to drop it: codes 8..10, or contempt in 7 classes)."""
    text = value.strip()
    if text.lstrip("-").isdigit():
        code = int(text)
        if code in NON_EMOTION_CODES:
            return -1
        if not 0 <= code < len(table):
            raise InputError(
                f"{csv_path}:{line_no}: expression {code} is out of range 0..10 (0..7 emotions, "
                "8..10 none/uncertain/no-face); fix the label"
            )
        return int(table[code])
    try:
        return index_of(text, classes)
    except ValueError:
        if text.lower() == "contempt":
            return -1
        raise InputError(
            f"{csv_path}:{line_no}: label {text!r} is neither an AffectNet code nor one of "
            f"{', '.join(classes)}; fix the label"
        ) from None
