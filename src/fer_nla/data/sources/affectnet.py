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
import itertools
import os
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources.common import ReadRequest, file_dataset, one_set_split, require_file
from fer_nla.data.sources.listing import (
    INT32,
    check_split_overlap,
    csv_start,
    drop_duplicates,
    integer_value,
    listed_integer,
    listed_path,
    listing_info,
)
from fer_nla.data.sources.reader import ClassCounts, ListingReader
from fer_nla.errors import InputError
from fer_nla.labels import AFFECTNET_CODES, class_names, code_table, index_of

SPLIT_FILES = {"train": "training.csv", "test": "validation.csv"}
IMAGE_FOLDERS = ("Manually_Annotated_Images", "Manually_Annotated/Manually_Annotated_Images")
PATH_COLUMNS = ("path", "image", "file", "subdirectory_filepath")
LABEL_COLUMNS = ("expression", "label", "emotion")
NON_EMOTION_CODES = (8, 9, 10)


class AffectNet(ListingReader):
    """AffectNet's CSVs: ``train`` (``training.csv``) and ``test`` (``validation.csv``), or one plain CSV."""

    name = "affectnet"
    title = "AffectNet"
    expect = "the AffectNet folder (with training.csv) or a CSV file"
    classes = ClassCounts(allowed=(7, 8), default=8, dataset="AffectNet")
    no_valid = "AffectNet has no 'valid' split of its own: its official validation.csv is the 'test' split"

    def build(
        self,
        request: ReadRequest,
        *,
        images_dir: str | Path | None = None,
        crop: str = "auto",
        conflicts: str = "error",
        allow_split_overlap: bool = False,
    ) -> FERDataset:
        """One AffectNet split in the canonical 7- or 8-class order (default 8).

        An image is its path and face box: a row repeated is dropped and counted, one image with
        two labels is an error naming both lines (``conflicts="drop"`` drops it), and an image of
        ``training.csv`` also in ``validation.csv`` is an error (``allow_split_overlap=True`` keeps
        it); see :mod:`.listing`. Boxes reaching outside their photo are clamped, boxes wholly
        outside drop their sample (:mod:`fer_nla.data.boxes`); all counted in ``info``.

        Raises:
            InputError: a malformed row (file and line), conflicting labels, split overlap, a
                one-file CSV asked for ``test``, or an empty split.
        """
        classes, split, base = class_names(request.num_classes), request.split, request.root
        if base.is_file():
            one_set_split(split, where=base, fix="pass root=... as the folder holding training.csv and validation.csv")
        csv_path = _label_file(base, split)
        image_root = _image_root(base if base.is_dir() else csv_path.parent, images_dir)
        table = code_table(AFFECTNET_CODES, classes)
        rows = _read(csv_path, image_root, table, classes)
        keep, counts = drop_duplicates(
            rows.keys, [classes[t] for t in rows.targets.tolist()], rows.lines, where=csv_path, conflicts=conflicts
        )
        overlap = _overlap(base, split, rows, csv_path, image_root, table, classes, allow=allow_split_overlap)
        paths, targets, boxes = [rows.paths[i] for i in keep], rows.targets[keep], rows.boxes
        return file_dataset(
            request, name=self.name, paths=paths, targets=targets, class_names=classes, listed_in=csv_path,
            boxes=None if boxes is None else boxes[keep], crop=crop,
            info={"dropped_not_in_classes": rows.dropped, **listing_info(counts, overlap), "csv": str(csv_path)},
            fix_missing=f"restore them under {image_root} (or pass images_dir=...), or remove their rows",
        )

    def splits(self, *, root: str | Path | None, **_: Any) -> tuple[str, ...]:
        """``train`` and ``test`` (``validation.csv``) for the official folder, of which those whose
        file is present; a single CSV is one set, ``train``.

        Raises:
            InputError: no root, or none at that path.
        """
        base = self.root_path(root)
        if base.is_file():
            return ("train",)
        found = []
        for split, name in SPLIT_FILES.items():
            if (base / name).is_file() or (base / "Manually_Annotated_file_lists" / name).is_file():
                found.append(split)
        return tuple(found)


def _label_file(base: Path, split: str) -> Path:
    if base.is_file():
        return base
    name = SPLIT_FILES[split]
    for candidate in (base / name, base / "Manually_Annotated_file_lists" / name):
        if candidate.is_file():
            return candidate
    return require_file(base / name, dataset="AffectNet", fix=f"root=... should be the folder holding {name}")


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


@dataclass
class AffectNetRows:
    """The rows of one CSV: image paths, canonical targets, boxes ``(N, 4)`` (official format
    only), keys ``(path, box)``, line numbers, and how many rows had no class of the model."""

    paths: list[str]
    targets: np.ndarray
    boxes: np.ndarray | None
    keys: list[tuple[str, tuple[int, ...]]]
    lines: list[int]
    dropped: int


def _read(csv_path: Path, image_root: Path, table: np.ndarray, classes: tuple[str, ...]) -> AffectNetRows:
    """Read one AffectNet CSV (official, with or without header, or plain) into its rows."""
    paths: list[str] = []
    targets = array("q")
    boxes = array("i")
    lines: list[int] = []
    dropped = 0
    prefix = str(image_root) + "/"
    start = csv_start(csv_path)  # Excel's "sep=;" first line is skipped; comma, semicolon or tab
    text = start.lines
    first_line = next(text, None)
    if first_line is None:
        raise InputError(f"{csv_path}: the file is empty; give the AffectNet CSV with its rows")
    reader = csv.reader(itertools.chain([first_line], text), delimiter=start.delimiter)
    first = next(reader)
    header = [field.strip().lower() for field in first]
    official = "subdirectory_filepath" in header and "face_x" in header
    if not official and len(first) >= 9 and integer_value(first[1]) is not None:
        official, header = True, []  # official layout without its header row
    if official:
        rows = reader if header else _chain(first, reader)
        path_col, label_col = 0, 6
    else:
        path_col = _column(header, PATH_COLUMNS, csv_path, "path", line=start.offset + 1)
        label_col = _column(header, LABEL_COLUMNS, csv_path, "expression", line=start.offset + 1)
        rows = reader
    for row in rows:
        line_no = reader.line_num + start.offset
        if not row or not any(field.strip() for field in row):
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
        name = listed_path(row[path_col], home=True)  # imgs\a.jpg (Windows) is imgs/a.jpg, ./a.jpg is a.jpg
        if not name:
            raise InputError(f"{csv_path}:{line_no}: the image path is empty; fill it in or remove the line")
        paths.append(name if os.path.isabs(name) else os.path.normpath(prefix + name))
        targets.append(index)
        lines.append(line_no)
        if official:
            boxes.extend(_box(row, csv_path, line_no))
    box_array = np.frombuffer(boxes, dtype=np.int32).reshape(-1, 4).copy() if official else None
    keys = [(p, () if box_array is None else tuple(box_array[i].tolist())) for i, p in enumerate(paths)]
    return AffectNetRows(paths, np.frombuffer(targets, dtype=np.int64).copy(), box_array, keys, lines, dropped)


def _box(row: list[str], csv_path: Path, line_no: int) -> tuple[int, int, int, int]:
    """The face box ``(x, y, w, h)`` of an official row (integers of int32, ``12.0`` read as 12)."""
    if any(integer_value(field) is None for field in row[1:5]):
        raise InputError(f"{csv_path}:{line_no}: face box {row[1:5]} is not four integers; fix the line")
    x, y, w, h = (
        listed_integer(field, low=INT32[0], high=INT32[1], where=f"{csv_path}:{line_no}", what="face box value",
                       fix="a box is pixels (x, y, width, height) in the photo; fix the line")
        for field in row[1:5]
    )
    return x, y, w, h


def _overlap(
    base: Path, split: str, rows: AffectNetRows, csv_path: Path, image_root: Path, table: np.ndarray,
    classes: tuple[str, ...], *, allow: bool,
) -> int:
    """Images of this split's CSV also listed in the other split's CSV (see :func:`check_split_overlap`)."""
    if base.is_file():
        return 0
    other = "test" if split == "train" else "train"
    try:
        other_path = _label_file(base, other)
    except InputError:
        return 0  # the other split's file is absent: nothing can overlap
    other_rows = _read(other_path, image_root, table, classes)
    by_split = {
        split: {p: line for p, line in zip(rows.paths, rows.lines)},
        other: {p: line for p, line in zip(other_rows.paths, other_rows.lines)},
    }
    return check_split_overlap(split, by_split, where={split: str(csv_path), other: str(other_path)}, allow=allow)


def _chain(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


def _column(header: list[str], names: tuple[str, ...], csv_path: Path, what: str, *, line: int) -> int:
    for name in names:
        if name in header:
            return header.index(name)
    raise InputError(
        f"{csv_path}:{line}: no {what} column in the header {header}; name it one of {', '.join(names)}"
    )


def _target(value: str, table: np.ndarray, classes: tuple[str, ...], csv_path: Path, line_no: int) -> int:
    """Canonical index of one label (-1 to drop it: codes 8..10, or contempt in 7 classes)."""
    text = value.strip()
    code = integer_value(text)  # 3, or 3.0 from a spreadsheet
    if code is not None:
        if code in NON_EMOTION_CODES:
            return -1
        if not 0 <= code < len(table):
            raise InputError(
                f"{csv_path}:{line_no}: expression {text} is out of range 0..10 (0..7 emotions, "
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

