"""RAF-DB basic: ``EmoLabel/list_patition_label.txt`` and ``Image/aligned/<name>_aligned.jpg``.

Lines look like ``train_00001.jpg 5``; labels 1..7 are surprise, fear, disgust, happiness,
sadness, anger, neutral (mapped to the canonical order); the split is the name's prefix.
RAF-DB has no validation split: carve one from train with ``fer_nla.data.split.stratified_split``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources.common import ReadRequest, file_dataset, require_file
from fer_nla.data.sources.listing import (
    drop_duplicates,
    integer_value,
    listed_path,
    listing_info,
    text_lines,
)
from fer_nla.data.sources.reader import ClassCounts, ListingReader
from fer_nla.errors import InputError
from fer_nla.labels import RAFDB_CODES, SEVEN_CLASSES, code_table

LABEL_FILE = Path("EmoLabel") / "list_patition_label.txt"


class RafDB(ListingReader):
    """RAF-DB basic: one list file naming each image's split and label."""

    name = "rafdb"
    title = "RAF-DB"
    expect = "the RAF-DB basic folder (holding EmoLabel/ and Image/)"
    classes = ClassCounts(allowed=(7,), default=7, dataset="RAF-DB basic (7 classes)")
    no_valid = "RAF-DB has only the splits 'train' and 'test', no 'valid'"

    def build(
        self, request: ReadRequest, *, aligned: bool = True, conflicts: str = "error", allow_split_overlap: bool = False
    ) -> FERDataset:
        """The RAF-DB basic ``train`` or ``test`` split in the canonical 7-class order.

        A name listed twice with the same label is dropped and counted; with two labels it is an
        error naming both lines (``conflicts="drop"`` drops it); see :mod:`.listing`. The split is
        the name's prefix, so no name can be in both splits (``allow_split_overlap`` is accepted for
        uniformity with the other readers).

        Raises:
            InputError: a malformed line (file and line), conflicting labels, or an empty split.
        """
        label_file = require_file(
            request.root / LABEL_FILE, dataset="RAF-DB", fix=f"root=... should be the folder that holds {LABEL_FILE}"
        )
        image_dir = request.root / "Image" / ("aligned" if aligned else "original")
        table = code_table(RAFDB_CODES, SEVEN_CLASSES)
        names, codes, lines = read_list(label_file, request.split)
        shown = [f"{code} ({RAFDB_CODES[code]})" for code in codes]
        keep, counts = drop_duplicates(names, shown, lines, where=label_file, conflicts=conflicts)
        del allow_split_overlap  # the prefix decides the split: an image cannot be listed in two
        paths = [
            str(image_dir / (f"{names[i].rsplit('.', 1)[0]}_aligned.jpg" if aligned else names[i])) for i in keep
        ]
        return file_dataset(
            request, name=self.name, paths=paths, targets=[int(table[codes[i]]) for i in keep],
            class_names=SEVEN_CLASSES, listed_in=label_file, info=listing_info(counts, 0),
            fix_missing=f"restore them under {image_dir}, or remove their lines from the label file",
        )

    def splits(self, *, root: str | Path | None, **_: Any) -> tuple[str, ...]:
        """RAF-DB basic declares ``train`` and ``test`` (no validation split); ``root`` is not read."""
        del root
        return ("train", "test")


def read_list(label_file: Path, split: str) -> tuple[list[str], list[int], list[int]]:
    """Names, RAF-DB codes (1..7) and line numbers of the lines of ``split`` in the list file.

    Raises:
        InputError: a line that is not ``<name> <code>``, a code outside 1..7, or a name that
            does not start with ``train_`` or ``test_`` (file and line named).
    """
    names: list[str] = []
    codes: list[int] = []
    lines: list[int] = []
    for line_no, line in enumerate(text_lines(label_file), start=1):
        parts = line.split()
        if not parts:
            continue
        code = integer_value(parts[1]) if len(parts) == 2 else None  # 5, or 5.0 from a spreadsheet
        if code is None:
            raise InputError(
                f"{label_file}:{line_no}: expected '<image name> <label 1..7>', got {line.strip()!r}; "
                "fix or remove the line"
            )
        name = listed_path(parts[0])  # ./train_1.jpg is train_1.jpg
        if not 1 <= code <= 7:
            raise InputError(
                f"{label_file}:{line_no}: label {parts[1]!r} is out of range 1..7 (surprise, fear, disgust, "
                "happiness, sadness, anger, neutral); fix the label"
            )
        prefix = name.split("_", 1)[0]
        if prefix not in ("train", "test"):
            raise InputError(
                f"{label_file}:{line_no}: image name {name!r} should start with 'train_' or 'test_'; fix the name"
            )
        if prefix == split:
            names.append(name)
            codes.append(code)
            lines.append(line_no)
    return names, codes, lines

