"""Checks every label listing gets: text encoding, duplicate rows, conflicting labels, split overlap.

A *listing* is what a label file says: each row names an image (its *key*: a file name, a
path, a path and face box, or for FER2013's unnamed rows the pixels themselves) and gives it
a label. Users' label files repeat rows, give one image two labels, list the same image in
train and test, and are saved with a byte-order mark by Excel and Notepad. The rules, the same
in every reader:

- text: UTF-8 with or without a byte-order mark, and UTF-16 with or without one (Excel's
  "Unicode text"), with LF, CRLF or bare-CR line ends, are read; other bytes are an
  :class:`InputError` naming the file and line.
  FER2013's pixel CSV (``fer2013.csv``, indexed by byte offset) is read as UTF-8 only: in
  UTF-16 it is an error saying so.
- exact duplicates (the same key with the same label) are dropped, keeping the first
  row, and counted (``info["dropped_duplicates"]``).
- conflicting labels (the same key with different labels) are an error naming both lines,
  unless ``conflicts="drop"``: then every row of such an image is dropped and counted
  (``info["dropped_conflicting_labels"]``).
- a key present in two splits is an error (test images leaking into training), unless
  ``allow_split_overlap=True``: then the overlap is kept and counted
  (``info["split_overlap"]``).

Fields, the same in every reader:

- paths: a listed relative path written on Windows (``imgs\\sub\\a.jpg``) is read with ``\\`` as
  the separator (:func:`listed_path`).
- numbers: a label, code, box or vote count written as an integer-valued number (``3``,
  ``3.0`` as Excel exports it, `` +3 ``) is that integer (:func:`integer_value`); anything
  else, or a value outside its range (boxes must fit int32, vote counts at most
  :data:`MAX_VOTES`), is an error naming file, line and value (:func:`listed_integer`).
- delimiters: a CSV read by header (AffectNet's plain CSV, a manifest) may be comma-,
  semicolon- or tab-separated, as its header line shows (:func:`header_delimiter`).
"""

from __future__ import annotations

import codecs
import csv
import itertools
import os
import re
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.errors import InputError

CONFLICT_POLICIES = ("error", "drop")
MAX_SHOWN = 10  # pairs of lines shown in one message; the rest are counted
INT32 = (-(2**31), 2**31 - 1)  # face boxes are stored as int32 pixels
MAX_VOTES = 10**6  # a bound on one image's vote count for one column (FERPlus has about 10 annotators)
DELIMITERS = (",", ";", "\t")
_INTEGER = re.compile(r"\s*([+-]?)0*(\d+?)(?:\.0*)?\s*")  # 3, +3, 03, 3.0, 3. (not 3.5, 3e0, "")
_MAX_DIGITS = 30  # longer numbers stand in as +-10**30 (beyond every bound; Python parses at most 4300 digits)
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def text_encoding(path: str | Path) -> str:
    """The encoding to read a label file with: ``utf-8-sig`` or ``utf-16`` when the file starts
    with that byte-order mark (the mark itself is never part of the text), ``utf-16-le`` or
    ``utf-16-be`` for UTF-16 saved without one (told by the zero bytes of ASCII text), else
    ``utf-8``."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    if len(head) >= 4 and head[1] == head[3] == 0 and head[0] and head[2]:
        return "utf-16-le"
    if len(head) >= 4 and head[0] == head[2] == 0 and head[1] and head[3]:
        return "utf-16-be"
    return "utf-8"


def text_lines(path: str | Path) -> Iterator[str]:
    """The lines of a text label file (line endings kept, so :mod:`csv` can read them), with any
    byte-order mark removed; the encoding is :func:`text_encoding`'s.

    Raises:
        InputError: naming the file and the line when the bytes are not text in that encoding
            (e.g. a Latin-1 file), with the fix (save it as UTF-8).
    """
    encoding = text_encoding(path)
    if encoding.startswith("utf-16") or _old_mac_line_ends(path):  # not split on b"\n": decode it whole
        with open(path, "rb") as handle:
            data = handle.read()
        try:
            yield from data.decode("utf-8-sig" if encoding == "utf-8" else encoding).splitlines(keepends=True)
        except UnicodeDecodeError as err:
            raise InputError(
                f"{path}: not {encoding.replace('-sig', '')} text ({err.reason}); save the file as UTF-8"
            ) from None
        return
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            try:
                yield raw.decode(encoding if line_no == 1 else "utf-8")
            except UnicodeDecodeError as err:
                raise InputError(
                    f"{path}:{line_no}: not UTF-8 text (byte {raw[err.start]:#04x} at column {err.start + 1}); "
                    "save the file as UTF-8 (in Excel: 'CSV UTF-8')"
                ) from None


def _old_mac_line_ends(path: str | Path) -> bool:
    """Whether lines end in a bare CR (classic Mac OS, some Excel exports): no LF, but a CR."""
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    return b"\r" in head and b"\n" not in head


def header_text(raw: bytes) -> str:
    """A first line read as bytes, decoded as UTF-8 without its byte-order mark (files indexed by
    byte offset, such as fer2013.csv, are read as UTF-8 only; callers prefix ``path:1:``)."""
    if b"\r" in raw.rstrip(b"\r\n"):
        raise InputError(
            "its lines end in a bare CR (old Mac line ends), but it is indexed by byte offset and read by "
            "line; save the file with LF or CRLF line ends"
        )
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(
            "the file is UTF-16 text, but it is indexed by byte offset and read as UTF-8; "
            "save the file as UTF-8 (in Excel: 'CSV UTF-8')"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason}); save the file as UTF-8") from None


def listed_path(text: str, *, home: bool = False) -> str:
    """A path as a label file lists it, in this system's spelling: stripped, ``\\`` read as the
    separator on POSIX (a relative path written on Windows: ``imgs\\sub\\a b.jpg`` is
    ``imgs/sub/a b.jpg``), ``~`` expanded when ``home`` (a manifest's paths), normalised
    (``./a.jpg`` is ``a.jpg``). A POSIX file name holding a real backslash cannot be listed;
    rename it."""
    path = text.strip()
    if os.sep == "/" and "\\" in path:
        path = path.replace("\\", "/")
    if home:
        path = os.path.expanduser(path)
    return os.path.normpath(path) if path else path


def integer_value(text: str) -> int | None:
    """The integer an integer-valued number field writes (``"3"``, ``"3.0"``, ``" +3 "``,
    ``"-1"``), or ``None`` for anything else (``"3.5"``, ``"happy"``, ``""``). Numbers of more than
    30 digits are returned as ``+-10**30``, beyond every range a reader checks."""
    match = _INTEGER.fullmatch(text)
    if match is None:
        return None
    sign, digits = match.groups()
    value = 10**_MAX_DIGITS if len(digits) > _MAX_DIGITS else int(digits)
    return -value if sign == "-" else value


def listed_integer(text: str, *, low: int, high: int, where: str, what: str, fix: str) -> int:
    """:func:`integer_value` of a field, checked to lie in ``low..high``.

    Args:
        where: ``file:line`` of the field, for messages.
        what: what the field is (``"vote count"``), for messages.
        fix: what to do about a bad value, ending the message.

    Raises:
        InputError: the field is not an integer-valued number, or lies outside ``low..high``,
            naming ``where``, the value and the fix.
    """
    value = integer_value(text)
    shown = _short(text.strip(), 60)
    if value is None:
        raise InputError(f"{where}: {what} {shown} is not an integer; {fix}")
    if not low <= value <= high:
        raise InputError(f"{where}: {what} {shown} is out of range {low}..{high}; {fix}")
    return value


def header_delimiter(header: str) -> str:
    """The delimiter of a CSV whose first line is ``header``: a comma where the header has one
    (a semicolon inside a field is then data), else a semicolon or tab (Excel's exports in
    locales with a decimal comma, and "tab-delimited text"), whichever it holds, else a comma."""
    if "," in header:
        return ","
    found = [(header.count(d), d) for d in DELIMITERS[1:] if d in header]
    return max(found)[1] if found else ","


def delimiter_name(delimiter: str) -> str:
    """How messages name a delimiter: ``commas``, ``semicolons``, ``tabs`` (others: quoted)."""
    return {",": "commas", ";": "semicolons", "\t": "tabs"}.get(delimiter, repr(delimiter))


_EXCEL_SEP = re.compile(r"\s*\"?sep=(.)\"?[,;\t]*\s*", re.IGNORECASE)  # Excel's hint line: sep=; or sep=,


def excel_separator(line: str) -> str | None:
    """The delimiter an Excel ``sep=X`` first line names (``"sep=;"`` -> ``";"``), else ``None``.
    Excel writes it to say how the rest is separated; it is not a header."""
    found = _EXCEL_SEP.fullmatch(line)
    return found.group(1) if found else None


@dataclass(frozen=True)
class CsvStart:
    """How to read a CSV's rows: ``delimiter``, ``lines`` (the rest of the file from its first
    row, the header if any) and ``offset`` (lines consumed before ``lines``: add it to
    :mod:`csv`'s ``line_num`` to name a line of the file)."""

    delimiter: str
    lines: Iterator[str]
    offset: int


def csv_start(path: str | Path, *, fields: int | None = None, lines: Iterator[str] | None = None,
              offset: int = 0) -> CsvStart:
    """Where a CSV's rows begin and how they are separated: an Excel ``sep=X`` first line is
    skipped and its ``X`` used; otherwise, with ``fields`` (a file whose rows have that many
    fields, e.g. FERPlus's ``label.csv``: 12), the delimiter of :data:`DELIMITERS` that splits the
    first non-blank line into ``fields`` fields; else :func:`header_delimiter`. Leading blank
    lines are skipped (counted in ``offset``). ``lines``: the
    file's remaining lines when the caller has read ``offset`` of them already (default: all of
    :func:`text_lines`)."""
    lines = text_lines(path) if lines is None else lines
    first = next(lines, None)
    while first is not None and not first.strip():  # leading blank lines: counted, not read
        offset += 1
        first = next(lines, None)
    if first is None:
        return CsvStart(",", iter(()), offset)
    named = excel_separator(first)
    if named is not None:  # its rows start after it (and after any blank lines below it)
        rest = csv_start(path, lines=lines, offset=offset + 1)
        return CsvStart(named, rest.lines, rest.offset)
    rest = itertools.chain([first], lines)
    if fields is not None:
        for delimiter in DELIMITERS:
            if len(next(csv.reader([first], delimiter=delimiter), [])) == fields:
                return CsvStart(delimiter, rest, offset)
    return CsvStart(header_delimiter(first), rest, offset)


def require_conflict_policy(conflicts: str) -> str:
    """``conflicts`` if it is one of :data:`CONFLICT_POLICIES`, else an :class:`InputError`."""
    if conflicts not in CONFLICT_POLICIES:
        raise InputError(f"conflicts={conflicts!r} is not a policy; use one of {', '.join(CONFLICT_POLICIES)}")
    return conflicts


def drop_duplicates(
    keys: Sequence[Hashable],
    labels: Sequence[Hashable],
    lines: Sequence[int],
    *,
    where: str | Path,
    conflicts: str = "error",
    describe: str = "image",
) -> tuple[np.ndarray, dict[str, int]]:
    """The rows to keep of one split's listing, and what was dropped.

    Args:
        keys: ``N`` hashable image identities, one per row.
        labels: ``N`` hashable labels (anything compared for equality: a class, a vote tuple).
        lines: ``N`` line numbers of the rows in ``where``, for messages.
        where: the label file, named in messages.
        conflicts: ``"error"`` (default) or ``"drop"`` (see the module docstring).
        describe: what a key is, for messages (``"image"``, ``"pixel row"``).

    Returns:
        ``keep``: sorted int64 indices of the kept rows (the first row of each exact
        duplicate); ``counts``: ``{"dropped_duplicates": n, "dropped_conflicting_labels": m}``.

    Raises:
        InputError: an image listed with two different labels and ``conflicts="error"``,
            naming both lines, the labels and the fix.
    """
    require_conflict_policy(conflicts)
    first: dict[Hashable, int] = {}
    conflicting: dict[Hashable, tuple[int, int]] = {}
    for i, key in enumerate(keys):
        j = first.setdefault(key, i)
        if j != i and labels[i] != labels[j]:
            conflicting.setdefault(key, (j, i))
    if conflicting and conflicts == "error":
        shown = "\n  ".join(
            f"lines {lines[j]} and {lines[i]}: {_short(key)} labelled {_short(labels[j])} and {_short(labels[i])}"
            for key, (j, i) in list(conflicting.items())[:MAX_SHOWN]
        )
        more = f"\n  ... and {len(conflicting) - MAX_SHOWN} more" if len(conflicting) > MAX_SHOWN else ""
        raise InputError(
            f"{where}: {len(conflicting)} {describe}(s) listed more than once with different labels:\n  {shown}{more}\n"
            "Fix: keep one line per image with its right label, or pass conflicts='drop' "
            "to drop every image whose labels conflict"
        )
    in_conflict = np.array([key in conflicting for key in keys], dtype=bool)
    is_first = np.array([first[key] == i for i, key in enumerate(keys)], dtype=bool)
    keep = is_first & ~in_conflict
    counts = {
        "dropped_duplicates": int((~is_first & ~in_conflict).sum()),
        "dropped_conflicting_labels": int(in_conflict.sum()),
    }
    return np.flatnonzero(keep), counts


def check_split_overlap(
    split: str,
    keys_by_split: Mapping[str, Mapping[Hashable, int]],
    *,
    where: str | Path | Mapping[str, str | Path],
    allow: bool = False,
    describe: str = "image",
) -> int:
    """How many keys of ``split`` are also listed in another split; an error unless ``allow``.

    Args:
        split: the split being read.
        keys_by_split: per split, each key and the line that lists it.
        where: the label file (or per split, its file), named in messages.
        allow: keep overlapping images (counted) instead of failing.

    Raises:
        InputError: images of ``split`` listed in another split and ``allow`` is false, naming
            up to ten of them with both places and the fix.
    """
    mine = keys_by_split.get(split, {})
    found: list[tuple[Hashable, str, int]] = []
    for other, keys in keys_by_split.items():
        if other == split:
            continue
        small, large = (mine, keys) if len(mine) <= len(keys) else (keys, mine)
        found.extend((key, other, keys[key]) for key in small if key in large)
    overlapping = len({key for key, _, _ in found})  # an image in three splits is one image
    if found and not allow:
        def place(name: str, line: int) -> str:
            file = where.get(name, "") if isinstance(where, Mapping) else where
            return f"{file}:{line}" if file else f"line {line}"

        shown = "\n  ".join(
            f"{_short(key)}: {place(split, mine[key])} ({split}) and {place(other, line)} ({other})"
            for key, other, line in found[:MAX_SHOWN]
        )
        more = f"\n  ... and {len(found) - MAX_SHOWN} more" if len(found) > MAX_SHOWN else ""
        raise InputError(
            f"{overlapping} {describe}(s) of split {split!r} are also listed in another split (test or validation "
            f"data leaking into training):\n  {shown}{more}\n"
            "Fix: remove them from one split, or pass allow_split_overlap=True to keep them"
        )
    return overlapping


def listing_info(counts: Mapping[str, int], overlap: int) -> dict[str, Any]:
    """The ``info`` entries of a reader's listing checks (zero counts included, so stats show them)."""
    return {**counts, "split_overlap": overlap}


def _short(value: Any, limit: int = 300) -> str:
    """``repr`` of a key or label for messages: whole (a path must stay findable), or, past
    ``limit`` characters, its start and end around "..."."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit // 3]} ... {text[-(2 * limit) // 3:]}"
