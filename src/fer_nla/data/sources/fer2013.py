"""FER2013: ``fer2013.csv`` with columns ``emotion``, ``pixels`` (48x48 gray values) and ``Usage``.

Codes 0..6 are anger, disgust, fear, happiness, sadness, surprise, neutral (mapped to the
canonical order). ``Usage`` Training / PublicTest / PrivateTest are the splits train /
valid / test; a file without a ``Usage`` column is one set, read as split ``train``. Only
each row's byte offset is kept; pixels are checked at indexing and decoded when asked for.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.data.dataset import FERDataset
from fer_nla.data.images import CsvPixelImages
from fer_nla.data.sources.common import ReadRequest, one_set_split, require_file
from fer_nla.data.sources.listing import (
    check_split_overlap,
    drop_duplicates,
    excel_separator,
    header_delimiter,
    header_text,
    integer_value,
    listing_info,
)
from fer_nla.data.sources.reader import ClassCounts, ListingReader
from fer_nla.errors import InputError
from fer_nla.labels import FER2013_CODES, SEVEN_CLASSES, code_table

USAGE_SPLITS = {"training": "train", "publictest": "valid", "privatetest": "test"}
IMAGE_SIZE = 48
# A pixel token that is not an integer in 0..255 (leading zeros allowed).
_BAD_PIXEL = re.compile(rb"(?<!\S)(?!0*(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?!\S))\S+")


def pixel_problem(field: bytes, *, size: int = IMAGE_SIZE) -> str | None:
    """What is wrong with one row's space-separated gray pixels, or ``None`` when it holds
    exactly ``size * size`` integers in 0..255 (the FER2013 format)."""
    bad = _BAD_PIXEL.search(field)
    if bad is not None:
        position = len(field[: bad.start()].split()) + 1
        return f"pixel {position} is {bad.group().decode(errors='replace')!r}, not an integer in 0..255"
    count = len(field.split())
    if count != size * size:
        return f"pixels must hold {size * size} values ({size}x{size}), not {count}"
    return None


class FER2013(ListingReader):
    """FER2013's pixel CSV, split by its ``Usage`` column."""

    name = "fer2013"
    title = "FER2013"
    expect = "fer2013.csv or the folder holding it"
    classes = ClassCounts(allowed=(7,), default=7, dataset="FER2013 (7 classes)")

    def root_path(self, root: str | Path | None) -> Path:
        """The pixel CSV: ``root`` itself, or ``fer2013.csv`` in the folder ``root``.

        Raises:
            InputError: no root, none at that path, or a folder without ``fer2013.csv``.
        """
        return _csv_path(super().root_path(root))

    def build(
        self, request: ReadRequest, *, conflicts: str = "error", allow_split_overlap: bool = False
    ) -> FERDataset:
        """One FER2013 split in the canonical 7-class order.

        Every row's pixels are checked when the index is built (``size*size`` integers in 0..255),
        so no image can fail to decode later; ``skip_bad_images`` drops and counts such rows
        instead of failing. FER2013 rows have no image names, so an image is its pixels: an
        identical row repeated is dropped and counted, the same pixels with two labels are an
        error (``conflicts="drop"`` drops them) and the same pixels in two ``Usage`` splits are
        an error (``allow_split_overlap=True`` keeps them); see :mod:`.listing`. FER2013 as
        published holds such copies, so its own file may need those options.

        Raises:
            InputError: a malformed header or row (file and line, the value and the fix),
                conflicting labels, split overlap, or an empty split.
        """
        csv_path, split = request.root, request.split
        rows = _read_rows(csv_path, split, skip_bad_images=request.skip_bad_images)
        keep, counts = drop_duplicates(
            rows.keys, [SEVEN_CLASSES[t] for t in rows.targets.tolist()], rows.lines.tolist(), where=csv_path,
            conflicts=conflicts,
            describe="pixel row",
        )
        overlap = check_split_overlap(
            split, rows.keys_by_split, where=csv_path, allow=allow_split_overlap, describe="pixel row"
        )
        if not keep.size:
            raise InputError(f"{csv_path}: no samples in split {split!r}; check split=... or the Usage column")
        lines = rows.lines[keep]
        info: dict[str, Any] = {"labels": request.labels, **listing_info(counts, overlap)}
        if request.skip_bad_images:
            info["bad_images_dropped"] = rows.bad
        return FERDataset(
            samples=[f"{csv_path}:{n}" for n in lines],
            targets=rows.targets[keep],
            class_names=SEVEN_CLASSES,
            source=CsvPixelImages(str(csv_path), rows.offsets[keep], lines=lines, column=rows.pixel_column),
            name="fer2013",
            split=split,
            info=info,
        )

    def splits(self, *, root: str | Path | None, **_: Any) -> tuple[str, ...]:
        """The splits the file's ``Usage`` column names (train/valid/test order; a file without
        PublicTest rows declares no ``valid``), else ``train`` (one set).

        Raises:
            InputError: no root, none at that path, or a malformed header or row.
        """
        csv_path = self.root_path(root)
        header = pixel_csv_header(csv_path)
        if "usage" not in header:
            return ("train",)
        column = header.index("usage")
        found = {_usage(fields, column, csv_path, line_no) for line_no, _, fields in pixel_csv_rows(csv_path)}
        return tuple(name for name in dict.fromkeys(USAGE_SPLITS.values()) if name in found)


@dataclass
class PixelRows:
    """The rows of one split of a pixel CSV: byte offsets, line numbers, targets, image keys
    (a digest of the pixels), and every split's keys with their lines (for the overlap check)."""

    offsets: np.ndarray
    lines: np.ndarray
    targets: np.ndarray
    keys: list[str]
    keys_by_split: dict[str, dict[str, int]]
    pixel_column: int
    bad: int = 0


def _csv_path(base: Path) -> Path:
    if base.is_file():
        return base
    return require_file(base / "fer2013.csv", dataset="FER2013", fix="root=... should be fer2013.csv or its folder")


def _header(raw: bytes, csv_path: Path) -> list[str]:
    try:
        text = header_text(raw)
    except InputError as err:
        raise InputError(f"{csv_path}:1: {err}") from None
    if excel_separator(text) is not None:
        raise InputError(
            f"{csv_path}:1: {text.strip()!r} is Excel's separator line, not the header (emotion,pixels,Usage); "
            "save the file as comma-separated CSV without it (in Excel: 'CSV UTF-8 (Comma delimited)'), or delete "
            "that first line"
        )
    delimiter = header_delimiter(text)
    if delimiter != ",":
        raise InputError(
            f"{csv_path}:1: the columns are separated by {'tabs' if delimiter == chr(9) else repr(delimiter)}, but "
            "fer2013.csv is read comma-separated (emotion,pixels,Usage); save it as comma-separated CSV "
            "(in Excel: 'CSV UTF-8 (Comma delimited)')"
        )
    return [name.strip().strip('"').lower() for name in text.split(",")]


def _read_rows(csv_path: Path, split: str, *, skip_bad_images: bool) -> PixelRows:
    """Index the rows of ``split``, checking each row's fields, label and pixels."""
    table = code_table(FER2013_CODES, SEVEN_CLASSES)
    offsets, targets, lines, keys = array("q"), array("q"), array("q"), []
    keys_by_split: dict[str, dict[str, int]] = {name: {} for name in USAGE_SPLITS.values()}
    bad = 0
    header = pixel_csv_header(csv_path)
    if "emotion" not in header or "pixels" not in header:
        raise InputError(f"{csv_path}:1: header {header} lacks 'emotion' and 'pixels'; add the header line")
    emotion_col, pixel_col = header.index("emotion"), header.index("pixels")
    usage_col = header.index("usage") if "usage" in header else None
    if usage_col is None:
        one_set_split(split, where=csv_path, fix="add a Usage column (Training, PublicTest, PrivateTest)")
    for line_no, start, fields in pixel_csv_rows(csv_path):
        row_split = _usage(fields, usage_col, csv_path, line_no)
        pixels = fields[pixel_col].strip().strip(b'"')
        problem = pixel_problem(pixels)
        if problem is not None:
            if skip_bad_images:
                bad += int(row_split == split)
                continue
            raise InputError(
                f"{csv_path}:{line_no}: {problem}; fix the row, or pass "
                "skip_bad_images=True to drop such rows"
            )
        key = "pixels#" + hashlib.blake2b(b" ".join(pixels.split()), digest_size=8).hexdigest()
        keys_by_split[row_split].setdefault(key, line_no)
        if row_split != split:
            continue
        offsets.append(start)
        targets.append(int(table[_emotion(fields[emotion_col], csv_path, line_no)]))
        lines.append(line_no)
        keys.append(key)
    return PixelRows(
        offsets=np.frombuffer(offsets, dtype=np.int64).copy(), lines=np.frombuffer(lines, dtype=np.int64).copy(),
        targets=np.frombuffer(targets, dtype=np.int64).copy(), keys=keys, keys_by_split=keys_by_split,
        pixel_column=pixel_col, bad=bad,
    )


def pixel_csv_header(csv_path: Path) -> list[str]:
    """The lower-cased column names on the first line of a pixel CSV (``fer2013.csv``)."""
    with open(csv_path, "rb") as handle:
        return _header(handle.readline(), csv_path)


def pixel_csv_rows(csv_path: Path) -> Iterator[tuple[int, int, list[bytes]]]:
    """``(line, byte offset, fields)`` of every non-empty data row of a pixel CSV, read as bytes
    (rows are found again by offset); a row whose field count differs from the header's is an
    :class:`InputError` naming the line."""
    with open(csv_path, "rb") as handle:
        header = _header(handle.readline(), csv_path)
        offset = handle.tell()
        for line_no, raw in enumerate(handle, start=2):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            fields = raw.split(b",")
            if len(fields) != len(header):
                raise InputError(
                    f"{csv_path}:{line_no}: expected {len(header)} fields ({', '.join(header)}), got "
                    f"{len(fields)}; fix or remove the line"
                )
            yield line_no, start, fields


def _usage(fields: list[bytes], usage_col: int | None, csv_path: Path, line_no: int) -> str:
    if usage_col is None:
        return "train"
    usage = fields[usage_col].strip().strip(b'"').decode(errors="replace").lower()
    if usage not in USAGE_SPLITS:
        raise InputError(
            f"{csv_path}:{line_no}: Usage {usage!r} is not Training, PublicTest or PrivateTest; fix it"
        )
    return USAGE_SPLITS[usage]


def _emotion(field: bytes, csv_path: Path, line_no: int) -> int:
    """A row's emotion code 0..6 (``3.0`` from a spreadsheet is 3)."""
    text = field.strip().strip(b'"').decode(errors="replace")
    code = integer_value(text)
    if code is None or not 0 <= code <= 6:
        problem = "is not an integer" if code is None else "is out of range 0..6"
        raise InputError(
            f"{csv_path}:{line_no}: emotion {text!r} {problem} (codes 0..6: anger, disgust, fear, happiness, "
            "sadness, surprise, neutral); fix the label"
        )
    return code
