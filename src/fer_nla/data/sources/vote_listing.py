"""One split of FERPlus's votes as read from a label file, before any label rule is applied."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fer_nla.data.sources.listing import MAX_VOTES, listed_integer
from fer_nla.data.votes import NUM_VOTE_COLUMNS
from fer_nla.errors import InputError


@dataclass
class VoteListing:
    """The named rows of one split: ``names`` (N), ``boxes`` ``(N, 4)`` int32 ``(x, y, w, h)``,
    ``votes`` ``(N, 10)`` int64, ``lines`` (N) in ``label_file``; ``rows`` counts every row
    read and ``no_name`` those without an image name (not kept). ``offsets`` (N) are byte
    offsets of each image's pixel row where the pixels live in a CSV (published layout).
    ``names_by_split`` maps each split present to its names and their first lines, and
    ``files_by_split`` names each split's label file (for the split-overlap check)."""

    names: list[str]
    boxes: np.ndarray
    votes: np.ndarray
    lines: np.ndarray
    label_file: Path
    rows: int = 0
    no_name: int = 0
    no_pixels: int = 0
    offsets: np.ndarray | None = None
    pixel_lines: np.ndarray | None = None
    pixel_file: Path | None = None
    pixel_column: int = 1
    names_by_split: dict[str, dict[str, int]] = field(default_factory=dict)
    files_by_split: dict[str, str] = field(default_factory=dict)

    def first_lines(self) -> dict[str, int]:
        """Each name and the first line listing it."""
        found: dict[str, int] = {}
        for name, line in zip(self.names, self.lines.tolist()):
            found.setdefault(name, line)
        return found

    def subset(self, rows: np.ndarray) -> VoteListing:
        """The listing reduced to ``rows`` (split facts and counts kept)."""
        rows = np.asarray(rows, dtype=np.int64)
        pick = (lambda a: None if a is None else a[rows])  # noqa: E731 - local shorthand
        return VoteListing(
            names=[self.names[i] for i in rows], boxes=self.boxes[rows], votes=self.votes[rows],
            lines=self.lines[rows], label_file=self.label_file, rows=self.rows, no_name=self.no_name, no_pixels=self.no_pixels,
            offsets=pick(self.offsets), pixel_lines=pick(self.pixel_lines), pixel_file=self.pixel_file,
            pixel_column=self.pixel_column, names_by_split=self.names_by_split, files_by_split=self.files_by_split,
        )


def vote_counts(fields: list[str], where: Path, line_no: int) -> list[int]:
    """Ten vote counts (integers in ``0..MAX_VOTES``; ``3.0`` from a spreadsheet is 3) from
    their text fields.

    Raises:
        InputError: not ten fields, or a count that is not an integer or lies outside
            ``0..MAX_VOTES``, naming the file, line and value.
    """
    if len(fields) != NUM_VOTE_COLUMNS:
        raise InputError(f"{where}:{line_no}: expected {NUM_VOTE_COLUMNS} vote counts >= 0; fix the line")
    return [
        listed_integer(
            field, low=0, high=MAX_VOTES, where=f"{where}:{line_no}", what="vote count",
            fix=f"a count is how many annotators chose that column (0..{MAX_VOTES}); fix the line",
        )
        for field in fields
    ]
