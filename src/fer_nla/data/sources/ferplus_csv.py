"""FERPlus as published: ``fer2013new.csv`` (the votes) read beside ``fer2013.csv`` (the pixels).

Microsoft's FERPlus release is one CSV, ``fer2013new.csv``, with a header
``Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF``
and one row per row of the FER2013 challenge's ``fer2013.csv``, in the same order; FERPlus's
own script writes row ``i``'s pixels to ``Image name`` in the folder of its ``Usage``
(Training -> FER2013Train, PublicTest -> FER2013Valid, PrivateTest -> FER2013Test) and
skips rows whose name is empty (not a face). This module reads the pair directly, with the
same rows, names and votes, so every label mode gives the folder layout's counts; pixels are
checked when the index is built and decoded from ``fer2013.csv`` on access.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.data.dataset import FERDataset
from fer_nla.data.images import CsvPixelImages
from fer_nla.data.sources.fer2013 import USAGE_SPLITS, pixel_csv_header, pixel_csv_rows, pixel_problem
from fer_nla.data.sources.listing import csv_start, listed_path
from fer_nla.data.sources.vote_listing import VoteListing, vote_counts
from fer_nla.data.votes import NUM_VOTE_COLUMNS
from fer_nla.errors import InputError

VOTES_FILE = "fer2013new.csv"
PIXELS_FILE = "fer2013.csv"
SPLIT_FOLDER_NAMES = ("FER2013Train", "FER2013Valid", "FER2013Test")


def folder_of(root: Path) -> Path:
    """The folder of the published pair when ``root`` names one of its two files, else ``root``."""
    return root.parent if root.is_file() and root.name in (VOTES_FILE, PIXELS_FILE) else root


def is_published_layout(base: Path) -> bool:
    """Whether ``base`` holds ``fer2013new.csv`` and no split folder with a ``label.csv``
    (the folder layout wins where both are present)."""
    if not base.is_dir() or any((base / name / "label.csv").is_file() for name in SPLIT_FOLDER_NAMES):
        return False
    return (base / VOTES_FILE).is_file()


def splits(base: Path) -> tuple[str, ...]:
    """The splits named in the ``Usage`` column of ``fer2013new.csv``, in train/valid/test order."""
    found = {split for split, *_ in _vote_rows(base / VOTES_FILE)}
    return tuple(name for name in ("train", "valid", "test") if name in found)


def read_listing(base: Path, split: str, *, skip_bad_images: bool = False) -> VoteListing:
    """The named rows of ``split`` with their votes and their pixel rows in ``fer2013.csv``.

    Raises:
        InputError: a missing ``fer2013.csv``, a malformed row in either file (file and line),
            files whose rows do not pair up (row count or ``Usage`` differs), or a bad pixel row
            (unless ``skip_bad_images``: then it is dropped and counted in ``no_pixels``).
    """
    votes_file, pixels_file = base / VOTES_FILE, base / PIXELS_FILE
    if not pixels_file.is_file():
        raise InputError(
            f"{pixels_file}: not found; FERPlus's {VOTES_FILE} holds only votes: put the FER2013 challenge's "
            f"{PIXELS_FILE} beside it (or pass root=... pointing at the FER2013Train/FER2013Valid folders)"
        )
    rows = _vote_rows(votes_file)
    wanted = {i for i, (row_split, name, _, _) in enumerate(rows) if row_split == split and name}
    pixel_rows = _pixel_rows(pixels_file, len(rows), votes_file, wanted)
    listing = VoteListing(
        names=[], boxes=np.zeros((0, 4), np.int32), votes=np.zeros((0, NUM_VOTE_COLUMNS), np.int64),
        lines=np.zeros(0, np.int64), label_file=votes_file, pixel_file=pixels_file, pixel_column=pixel_rows.column,
    )
    names_by_split: dict[str, dict[str, int]] = {}
    picked: list[int] = []
    for i, (row_split, name, _, line_no) in enumerate(rows):
        _check_usage(pixel_rows.splits[i], row_split, pixels_file, pixel_rows.lines[i], votes_file, line_no)
        if row_split == split:
            listing.rows += 1
        if not name:
            listing.no_name += int(row_split == split)
            continue
        names_by_split.setdefault(row_split, {}).setdefault(name, line_no)
        if row_split == split:
            picked.append(i)
    picked = _with_good_pixels(picked, pixel_rows, pixels_file, skip_bad_images, listing)
    listing.names = [rows[i][1] for i in picked]
    listing.votes = np.asarray([rows[i][2] for i in picked], dtype=np.int64).reshape(-1, NUM_VOTE_COLUMNS)
    listing.lines = np.asarray([rows[i][3] for i in picked], dtype=np.int64)
    listing.boxes = np.tile(np.array([0, 0, 48, 48], dtype=np.int32), (len(picked), 1))
    listing.offsets = np.asarray([pixel_rows.offsets[i] for i in picked], dtype=np.int64)
    listing.pixel_lines = np.asarray([pixel_rows.lines[i] for i in picked], dtype=np.int64)
    listing.names_by_split = names_by_split
    listing.files_by_split = {name: str(votes_file) for name in names_by_split}
    if listing.rows == 0:
        raise InputError(f"{votes_file}: no rows of split {split!r}; check split=... or the Usage column")
    return listing


def pixel_dataset(
    listing: VoteListing,
    rows: np.ndarray,
    *,
    targets: np.ndarray,
    classes: Sequence[str],
    split: str,
    clean_targets: np.ndarray | None,
    soft_targets: np.ndarray | None,
    info: dict[str, Any],
) -> FERDataset:
    """The listing's ``rows`` as a dataset decoding ``fer2013.csv`` rows on access; sample ids
    are ``fer2013.csv:LINE``."""
    if not rows.size:
        raise InputError(f"{listing.label_file}: no samples in split {split!r} with the chosen labels and classes")
    assert listing.offsets is not None and listing.pixel_lines is not None and listing.pixel_file is not None
    lines = listing.pixel_lines[rows]
    return FERDataset(
        samples=[f"{listing.pixel_file}:{n}" for n in lines.tolist()],
        targets=targets,
        class_names=classes,
        source=CsvPixelImages(str(listing.pixel_file), listing.offsets[rows], lines=lines, column=listing.pixel_column),
        clean_targets=clean_targets,
        soft_targets=soft_targets,
        name="ferplus",
        split=split,
        info={**info, "layout": "fer2013.csv + fer2013new.csv"},
    )


def _vote_rows(votes_file: Path) -> list[tuple[str, str, list[int], int]]:
    """``(split, image name, 10 votes, line)`` of every row of ``fer2013new.csv``."""
    start = csv_start(votes_file)  # Excel's "sep=;" first line is skipped; comma, semicolon or tab
    reader = csv.reader(start.lines, delimiter=start.delimiter)
    header = [name.strip().lower() for name in next(reader, [])]
    if header[:2] != ["usage", "image name"] or len(header) != 2 + NUM_VOTE_COLUMNS:
        raise InputError(
            f"{votes_file}:{start.offset + 1}: header {header} is not FERPlus's (Usage, Image name, then 10 vote columns "
            "neutral ... NF); give FERPlus's fer2013new.csv as published"
        )
    rows: list[tuple[str, str, list[int], int]] = []
    for row in reader:
        line_no = reader.line_num + start.offset
        if not row or not any(field.strip() for field in row):
            continue
        if len(row) != len(header):
            raise InputError(f"{votes_file}:{line_no}: expected {len(header)} fields, got {len(row)}; fix the line")
        usage = row[0].strip().lower()
        if usage not in USAGE_SPLITS:
            raise InputError(f"{votes_file}:{line_no}: Usage {row[0]!r} is not Training, PublicTest or PrivateTest")
        name = listed_path(row[1])  # ./fer0.png is fer0.png, sub\fer0.png (Windows) sub/fer0.png; "" stays ""
        rows.append((USAGE_SPLITS[usage], name, vote_counts(row[2:], votes_file, line_no), line_no))
    return rows


class _PixelRows:
    """Per data row of ``fer2013.csv``: byte offset, line, split (None without Usage), pixel field."""

    def __init__(self, column: int) -> None:
        self.column = column
        self.offsets: list[int] = []
        self.lines: list[int] = []
        self.splits: list[str | None] = []
        self.problems: dict[int, str] = {}  # data row -> what is wrong with its pixels


def _pixel_rows(pixels_file: Path, expected: int, votes_file: Path, wanted: set[int]) -> _PixelRows:
    """Every data row's place in ``fer2013.csv``; the pixels of the ``wanted`` rows are checked."""
    header = pixel_csv_header(pixels_file)
    if "pixels" not in header:
        raise InputError(f"{pixels_file}:1: header {header} lacks 'pixels'; give FER2013's fer2013.csv")
    found = _PixelRows(header.index("pixels"))
    usage_col = header.index("usage") if "usage" in header else None
    for line_no, start, fields in pixel_csv_rows(pixels_file):
        usage = None if usage_col is None else fields[usage_col].strip().strip(b'"').decode(errors="replace").lower()
        found.offsets.append(start)
        found.lines.append(line_no)
        found.splits.append(None if usage is None else USAGE_SPLITS.get(usage, usage))
        if len(found.lines) - 1 in wanted:
            problem = pixel_problem(fields[found.column].strip().strip(b'"'))
            if problem is not None:
                found.problems[len(found.lines) - 1] = problem
    if len(found.offsets) != expected:
        raise InputError(
            f"{pixels_file} has {len(found.offsets)} data rows but {votes_file} has {expected}: FERPlus's rows pair "
            "with FER2013's one to one; give both files as published, unmodified"
        )
    return found


def _check_usage(pixel_split: str | None, vote_split: str, pixels_file: Path, pixel_line: int,
                 votes_file: Path, vote_line: int) -> None:
    if pixel_split is not None and pixel_split != vote_split:
        raise InputError(
            f"{votes_file}:{vote_line} says {vote_split!r} but {pixels_file}:{pixel_line} says {pixel_split!r}: "
            "the two files do not pair row by row; give the unmodified fer2013.csv and fer2013new.csv"
        )


def _with_good_pixels(
    picked: list[int], pixel_rows: _PixelRows, pixels_file: Path, skip_bad_images: bool, listing: VoteListing
) -> list[int]:
    good: list[int] = []
    for i in picked:
        problem = pixel_rows.problems.get(i)
        if problem is None:
            good.append(i)
        elif skip_bad_images:
            listing.no_pixels += 1
        else:
            raise InputError(
                f"{pixels_file}:{pixel_rows.lines[i]}: {problem}; fix the row, or pass "
                "skip_bad_images=True to drop such rows"
            )
    return good
