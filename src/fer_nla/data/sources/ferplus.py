"""FERPlus, read as users have it: the folder layout, or the two published CSV files.

Folder layout (what FERPlus's ``generate_training_data.py`` writes): ``<root>/FER2013Train``,
``FER2013Valid`` and ``FER2013Test`` each hold PNGs and a ``label.csv`` without header:
image name, face box ``"(x, y, w, h)"``, ten vote counts (the eight emotions, unknown, NF).
Published layout: ``<root>/fer2013.csv`` (the FER2013 challenge file, pixels) and
``<root>/fer2013new.csv`` (FERPlus's votes, one row per FER2013 row, in the same order);
see :mod:`fer_nla.data.sources.ferplus_csv`. Both give the same samples, labels and counts.
Label modes (see :mod:`fer_nla.data.votes`):

- ``majority``: FERPlus's own rule; images without a majority emotion are dropped.
- ``plurality``: the unique top emotion after outlier removal; ties and unknown/NF dropped.
- ``distribution``: the plurality images, with ``soft_targets`` from their emotion votes
  (``target_mode == "soft"``); the hard target is the plurality label (the argmax of the
  distribution), and validation and metrics score it. Like FERPlus's cross-entropy scheme
  (CEL), not its label drawing (PLD), but with a simpler vote rule than the authors' code
  (see :func:`fer_nla.data.votes.vote_probabilities`).
- ``single-vote``: the majority images, each labelled by one annotator's vote drawn with
  ``seed`` among its emotion votes (real human label noise); ``clean_targets`` holds the
  majority label. With ``keep_unresolved=True`` images without a majority are kept too,
  with clean target ``-1``.

With ``num_classes=7`` images whose label is contempt are dropped and contempt votes ignored.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources import ferplus_csv
from fer_nla.data.sources.common import LABEL_MODES, ReadRequest, file_dataset, require_file
from fer_nla.data.sources.listing import (
    DELIMITERS,
    INT32,
    check_split_overlap,
    csv_start,
    delimiter_name,
    drop_duplicates,
    integer_value,
    listed_integer,
    listed_path,
    listing_info,
)
from fer_nla.data.sources.reader import ClassCounts, ListingReader
from fer_nla.data.sources.vote_listing import VoteListing, vote_counts
from fer_nla.data.votes import (
    NUM_VOTE_COLUMNS,
    majority_labels,
    plurality_labels,
    single_vote_labels,
    vote_probabilities,
)
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS, class_names

SPLIT_FOLDERS = {"train": "FER2013Train", "valid": "FER2013Valid", "test": "FER2013Test"}
VOTE_NAMES = tuple(name.lower() for name in (*EMOTIONS, "unknown", "NF"))  # label.csv's vote columns, in order
EXPECT = "the FERPlus folder holding FER2013Train/ and FER2013Valid/ (or fer2013.csv and fer2013new.csv)"


class FERPlus(ListingReader):
    """FERPlus in its folder layout or as published (two CSVs), under any of its four label modes."""

    name = "ferplus"
    title = "FERPlus"
    expect = EXPECT
    label_modes = LABEL_MODES
    classes = ClassCounts(allowed=(7, 8), default=8, dataset="FERPlus")

    def root_path(self, root: str | Path | None) -> Path:
        """The folder holding FERPlus (``root`` itself, or the folder of a CSV passed as ``root``).

        Raises:
            InputError: no root, or none at that path.
        """
        return ferplus_csv.folder_of(super().root_path(root))

    def build(
        self,
        request: ReadRequest,
        *,
        keep_unresolved: bool = False,
        crop: str = "auto",
        conflicts: str = "error",
        allow_split_overlap: bool = False,
    ) -> FERDataset:
        """One FERPlus split under the chosen label mode, in the canonical order (default 8 classes).

        ``root`` holds either the folder layout (``FER2013Train/label.csv`` ...) or FERPlus as
        published: ``fer2013.csv`` (the challenge's pixels) beside ``fer2013new.csv`` (the votes).
        Rows without an image name (FERPlus's mark for not-a-face) are dropped and counted
        (``info["dropped_no_image_name"]``); duplicate rows, conflicting votes and names listed in
        two splits follow :mod:`fer_nla.data.sources.listing` (``conflicts``, ``allow_split_overlap``).

        Raises:
            InputError: no FERPlus layout under ``root``, a malformed row (file and line), votes
                conflicting for one image, an image in two splits, or an empty split.
        """
        labels, split, skip_bad_images = request.labels, request.split, request.skip_bad_images
        classes = class_names(request.num_classes)
        published = ferplus_csv.is_published_layout(request.root)
        listing, checks = _checked_listing(request, published, conflicts=conflicts, allow=allow_split_overlap)
        rows, targets, clean, soft = labels_for_mode(
            listing.votes, labels=labels, num_classes=len(classes), seed=request.seed, keep_unresolved=keep_unresolved
        )
        info = {
            "labels": labels, "rows": listing.rows, "dropped_no_image_name": listing.no_name,
            **checks, "dropped_no_label": int(len(listing.names) - rows.size), "seed": request.seed,
        }
        if published and skip_bad_images:
            info["bad_images_dropped"] = listing.no_pixels
        clean_rows = None if clean is None else clean[rows]
        soft_rows = None if soft is None else soft[rows]
        if published:
            dataset = ferplus_csv.pixel_dataset(
                listing, rows, targets=targets[rows], classes=classes, split=split, clean_targets=clean_rows,
                soft_targets=soft_rows, info=info,
            )
        else:
            folder = listing.label_file.parent
            dataset = file_dataset(
                request, name=self.name, paths=[str(folder / listing.names[i]) for i in rows],
                targets=targets[rows], class_names=classes, listed_in=listing.label_file,
                boxes=listing.boxes[rows], crop=crop, clean_targets=clean_rows, soft_targets=soft_rows, info=info,
                fix_missing=f"restore them in {folder}, or remove their rows from label.csv",
            )
        if labels == "distribution":
            dataset.target_mode = "soft"
        return dataset

    def splits(self, *, root: str | Path | None, **_: Any) -> tuple[str, ...]:
        """The splits present under ``root``: split folders with a ``label.csv``, or the ``Usage``
        values of ``fer2013new.csv``.

        Raises:
            InputError: no root, or none at that path.
        """
        base = self.root_path(root)
        if ferplus_csv.is_published_layout(base):
            return ferplus_csv.splits(base)
        return tuple(name for name, folder in SPLIT_FOLDERS.items() if (base / folder / "label.csv").is_file())


def _checked_listing(
    request: ReadRequest, published: bool, *, conflicts: str, allow: bool
) -> tuple[VoteListing, dict[str, Any]]:
    """The rows of the request's split (published or folder layout) with exact duplicates
    dropped, and the counts of :func:`listing_info`.

    Raises:
        InputError: a malformed row, votes conflicting for one image (unless ``conflicts="drop"``),
            or an image in two splits (unless ``allow``).
    """
    if published:
        listing = ferplus_csv.read_listing(request.root, request.split, skip_bad_images=request.skip_bad_images)
    else:
        listing = read_folder_listing(request.root, request.split)
    keep, counts = drop_duplicates(
        listing.names, [shown_votes(v) for v in listing.votes.tolist()], listing.lines.tolist(),
        where=listing.label_file, conflicts=conflicts,
    )
    overlap = check_split_overlap(request.split, listing.names_by_split, where=listing.files_by_split, allow=allow)
    return listing.subset(keep), listing_info(counts, overlap)


def shown_votes(votes: list[int]) -> str:
    """One row's votes as a reader of the file sees them: ``votes happiness 8, surprise 2``."""
    named = [f"{name} {count}" for name, count in zip((*EMOTIONS, "unknown", "NF"), votes) if count]
    return "votes " + (", ".join(named) or "none")


def labels_for_mode(
    votes: np.ndarray, *, labels: str, num_classes: int, seed: int, keep_unresolved: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Rows kept by a label mode, and the targets ``(N,)``, clean targets and soft targets
    ``(N, C)`` of all rows (see the module docstring for the modes)."""
    c = num_classes
    majority = majority_labels(votes)
    majority = np.where(majority < c, majority, -1)
    clean: np.ndarray | None = None
    soft: np.ndarray | None = None
    if labels == "majority":
        keep, targets = majority >= 0, majority
    elif labels in ("plurality", "distribution"):
        targets = plurality_labels(votes)
        keep = (targets >= 0) & (targets < c)
        if labels == "distribution":
            soft = vote_probabilities(votes, num_classes=c)
    else:  # single-vote
        targets = single_vote_labels(votes, num_classes=c, seed=seed)
        keep = majority >= 0
        if keep_unresolved:
            excluded = majority_labels(votes) >= c  # a majority outside the chosen classes
            keep = (targets >= 0) & ~excluded
        clean = majority
    return np.flatnonzero(keep), targets, clean, soft


def read_folder_listing(base: Path, split: str) -> VoteListing:
    """The rows of ``<base>/<split folder>/label.csv``, with the names of the other splits'
    label files (for the overlap check)."""
    label_file = require_file(
        base / SPLIT_FOLDERS[split] / "label.csv", dataset="FERPlus",
        fix=f"root=... should hold {SPLIT_FOLDERS[split]}/label.csv (the FERPlus layout), or "
        "fer2013.csv with fer2013new.csv",
    )
    listing = read_label_file(label_file)
    listing.names_by_split = {split: listing.first_lines()}
    listing.files_by_split = {split: str(label_file)}
    for other, folder in SPLIT_FOLDERS.items():
        other_file = base / folder / "label.csv"
        if other != split and other_file.is_file():
            listing.names_by_split[other] = read_label_file(other_file).first_lines()
            listing.files_by_split[other] = str(other_file)
    return listing


def read_label_file(label_file: Path) -> VoteListing:
    """The rows of one ``label.csv``: names, face boxes ``(N, 4)``, votes ``(N, 10)`` and line
    numbers; rows with an empty name are counted, not kept. A first line naming the columns
    (``Image name,Box,neutral,...,NF``: a header FERPlus's file does not have) is skipped.

    Raises:
        InputError: a row without 12 fields, a box or vote that is not an integer or out of
            range (see :func:`listed_integer`), another first line that looks like a header,
            or a file without rows (file and line named).
    """
    names: list[str] = []
    boxes: list[tuple[int, ...]] = []
    votes: list[list[int]] = []
    lines: list[int] = []
    no_name = rows = 0
    start = csv_start(label_file, fields=2 + NUM_VOTE_COLUMNS)  # Excel's "sep=;" line; ';' or tab exports
    reader = csv.reader(start.lines, delimiter=start.delimiter)
    for row in reader:
        line_no = reader.line_num + start.offset
        if not row or not any(field.strip() for field in row):
            continue
        if rows == 0 and _is_header(row, label_file, line_no):
            continue
        if len(row) != 2 + NUM_VOTE_COLUMNS:
            raise InputError(
                f"{label_file}:{line_no}: expected 12 fields (image name, \"(x, y, w, h)\", 10 vote "
                f"counts), got {len(row)}: {_clip(start.delimiter.join(row))}; fix or remove the line"
                + _delimiter_hint(row, start.delimiter)
            )
        rows += 1
        box, counts = _box(row[1], label_file, line_no), vote_counts(row[2:], label_file, line_no)
        if not row[0].strip():
            no_name += 1
            continue
        names.append(listed_path(row[0]))  # ./fer0.png is fer0.png, sub\fer0.png (Windows) sub/fer0.png
        boxes.append(box)
        votes.append(counts)
        lines.append(line_no)
    if not rows:
        raise InputError(f"{label_file}: no rows; give FERPlus's label.csv with its rows")
    return VoteListing(
        names=names, boxes=np.asarray(boxes, dtype=np.int32).reshape(-1, 4),
        votes=np.asarray(votes, dtype=np.int64).reshape(-1, NUM_VOTE_COLUMNS),
        lines=np.asarray(lines, dtype=np.int64), label_file=label_file, rows=rows, no_name=no_name,
    )


def _delimiter_hint(row: list[str], delimiter: str) -> str:
    """A sentence naming the separator when a row splits into 12 fields at another one."""
    line = delimiter.join(row)
    for other in DELIMITERS:
        if other != delimiter and len(next(csv.reader([line], delimiter=other), [])) == 2 + NUM_VOTE_COLUMNS:
            return (f" (its fields are separated by {delimiter_name(other)}, unlike the lines above: save the whole "
                    "file with one separator, as FERPlus publishes it with commas)")
    return ""


def _is_header(row: list[str], label_file: Path, line_no: int) -> bool:
    """Whether the first row is a header naming FERPlus's columns (skip it); another first row
    with no number among its vote fields is an error saying it looks like a header."""
    fields = [field.strip().lower() for field in row]
    if len(fields) == 2 + NUM_VOTE_COLUMNS and tuple(fields[2:]) == VOTE_NAMES:
        return True
    if len(fields) == 2 + NUM_VOTE_COLUMNS and all(integer_value(field) is None for field in fields[2:]):
        raise InputError(
            f"{label_file}:{line_no}: {_clip(','.join(row))} looks like a header line, but FERPlus's label.csv has "
            "none (each line is image name, \"(x, y, w, h)\", 10 vote counts); remove the line"
        )
    return False


def _box(text: str, where: Path, line_no: int) -> tuple[int, ...]:
    """The face box ``"(x, y, w, h)"`` of a row (integers of int32)."""
    fields = text.strip().strip("()").split(",")
    if any(integer_value(field) is None for field in fields):
        raise InputError(f"{where}:{line_no}: the face box {text!r} is not four integers; fix the line")
    if len(fields) != 4:
        raise InputError(f"{where}:{line_no}: expected a box \"(x, y, w, h)\", got {text!r}; fix the line")
    return tuple(
        listed_integer(field, low=INT32[0], high=INT32[1], where=f"{where}:{line_no}", what="face box value",
                       fix="a box is pixels (x, y, width, height) in the image; fix the line")
        for field in fields
    )


def _clip(text: str, limit: int = 80) -> str:
    """``text`` quoted, cut at a word or field boundary with "..." when longer than ``limit``."""
    if len(text) <= limit:
        return repr(text)
    cut = text[:limit]
    boundary = max(cut.rfind(" "), cut.rfind(","))
    return repr(cut[:boundary] if boundary > 0 else cut) + " ..."
