"""Manifest CSV: one row per sample, ``path,label[,clean_label,is_noisy][,split]``.

Labels are canonical class names (``happiness``; aliases such as ``happy`` are accepted)
or canonical indices (0 = neutral ... 7 = contempt, see :data:`fer_nla.labels.EMOTIONS`);
the writer uses names. An empty ``clean_label`` means unknown. Relative paths are read
relative to the manifest's folder. Without a ``split`` column the manifest is one set, read
as split ``train`` (asking it for ``valid`` or ``test`` is an error). There are 8 classes if any label is contempt, else 7,
unless ``num_classes`` says otherwise.

A manifest written by ``fer-nla data corrupt`` is a standard CSV (its first line is the
header, so pandas and ``csv.DictReader`` read it as it is) with its provenance beside it in a
sidecar ``<name>.source.json``: the ``build_dataset`` arguments of the dataset it came from.
Its ``path`` column then holds that dataset's sample ids (image paths, or ids such as
``synthetic:train:17`` and ``fer2013.csv:42`` for samples that are not files), and the reader
rebuilds that dataset's index to decode the images exactly as it does (crops included).
Delete the sidecar to read the paths as plain image files. Manifests of earlier versions,
whose first line is ``# fer-nla source: {json}``, are still read.

A path listed twice in one split with the same labels is dropped and counted; with other
labels it is an error naming both lines (``conflicts="drop"`` drops it); a path in two
splits is an error unless ``allow_split_overlap=True`` (see :mod:`.listing`).
"""

from __future__ import annotations

import csv
import json
import os
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.atomic import atomic_write, write_text_atomic
from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources.common import ReadRequest, canonical_split, file_dataset, one_set_split
from fer_nla.data.sources.listing import (
    check_split_overlap,
    csv_start,
    delimiter_name,
    drop_duplicates,
    integer_value,
    listed_path,
    listing_info,
)
from fer_nla.data.sources.reader import ListingReader
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS, class_names, index_of

SOURCE_PREFIX = "# fer-nla source:"  # the provenance line of manifests before the sidecar
SIDECAR_SUFFIX = ".source.json"
COLUMNS = ("path", "label", "clean_label", "is_noisy", "split")
SOURCE_COLUMN = "source"  # the dataset a row's id belongs to (manifests with a provenance)


def sidecar_path(manifest: str | Path) -> Path:
    """Where the provenance of ``manifest`` lives: ``noisy.csv`` -> ``noisy.source.json``."""
    manifest = Path(manifest)
    return manifest.with_name(manifest.stem + SIDECAR_SUFFIX)


def write_manifest(path: str | Path, dataset: FERDataset | Sequence[FERDataset], *,
                   source: dict[str, Any] | None = None) -> Path:
    """Write ``dataset``'s samples and labels atomically as a standard CSV (a sequence of
    datasets: their rows one after another, each with its own ``split``); ``source`` (the
    ``build_dataset`` arguments that made ``dataset``'s index) goes to :func:`sidecar_path`
    when given, and each row then names its dataset in a ``source`` column, so a copy of the
    CSV without its sidecar is an error, never images read another way (a stale sidecar of an
    earlier manifest at ``path`` is removed when ``source`` is not given). The sidecar is written
    once the CSV is complete, before it replaces ``path``: a failed write leaves no orphan sidecar.

    Raises:
        InputError: a sample whose file name is not valid UTF-8 (a Latin-1 ``café.png``), which
            a UTF-8 CSV cannot list, naming the file and the fix (rename it).
    """
    path = Path(path)
    parts = [dataset] if isinstance(dataset, FERDataset) else list(dataset)
    for part in parts:
        _require_utf8_names(part.samples)
    sidecar = sidecar_path(path)
    with atomic_write(path, text=True, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS if source is None else (*COLUMNS, SOURCE_COLUMN))
        for part in parts:
            _write_rows(writer, part, source)
        handle.flush()
        if source is not None:  # the sidecar lands first: a failed CSV write leaves the old pair
            write_text_atomic(sidecar, json.dumps(source, sort_keys=True, indent=1) + "\n")
    if source is None:
        sidecar.unlink(missing_ok=True)
    return path


def _write_rows(writer: Any, dataset: FERDataset, source: dict[str, Any] | None) -> None:
    """One row per sample: path, label, clean label, is-noisy, split[, source]."""
    names = dataset.class_names
    clean = dataset.clean_targets
    tail = () if source is None else (str(source.get("dataset", "")),)
    for i, sample in enumerate(dataset.samples):
        label = names[dataset.targets[i]]
        known = clean is not None and clean[i] >= 0
        clean_name = names[clean[i]] if known else ""  # type: ignore[index]
        noisy = str(int(dataset.targets[i] != clean[i])) if known else ""  # type: ignore[index]
        writer.writerow((sample, label, clean_name, noisy, dataset.split, *tail))


def _require_utf8_names(samples: Any) -> None:
    """Every sample id can be written as UTF-8 (a name of other bytes, surrogate escapes, cannot)."""
    for sample in samples:
        try:
            str(sample).encode("utf-8")
        except UnicodeEncodeError:
            raise InputError(
                f"{_shown_name(str(sample))}: the file name is not valid UTF-8 text ("
                "e.g. Latin-1 from an old system or archive), so a manifest (a UTF-8 CSV) cannot list it; "
                "rename the file to a UTF-8 name (e.g. `convmv -f latin1 -t utf8 --notest FILE`) and build again"
            ) from None


def _shown_name(name: str) -> str:
    """A file name of undecodable bytes as its bytes read (``caf\\xe9.png``)."""
    try:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a surrogate that is no escaped byte
        return ascii(name)


class Manifest(ListingReader):
    """A manifest CSV of image paths, or of sample ids of the dataset its provenance names, which
    ``build_source`` builds (the registry passes :func:`fer_nla.data.build_dataset`: this module
    never imports the registry, which imports it); without it such a manifest cannot be read."""

    name = "manifest"
    title = "a manifest"
    expect = "a manifest CSV (path,label,...)"

    def __init__(self, build_source: Callable[..., FERDataset] | None = None) -> None:
        self.build_source = build_source

    def root_path(self, root: str | Path | None) -> Path:
        """The manifest file.

        Raises:
            InputError: no root, none at that path, or a folder.
        """
        manifest = super().root_path(root)
        if not manifest.is_file():
            raise InputError(f"{manifest}: not a file; pass root=... pointing at the manifest CSV")
        return manifest

    def build(
        self, request: ReadRequest, *, conflicts: str = "error", allow_split_overlap: bool = False
    ) -> FERDataset:
        """The manifest's rows of the split (all rows if it has no split column).

        Raises:
            InputError: a malformed header or row (file and line), a label outside the classes,
                conflicting labels for one path, a path in two splits, or an empty split.
        """
        manifest, split = request.root, request.split
        source, all_rows, has_split = _read(manifest)
        if not has_split:
            one_set_split(split, where=manifest, fix="add a split column (train, valid, test)")
        keys_by_split: dict[str, dict[str, int]] = {}
        for row in all_rows:
            keys_by_split.setdefault(row.split, {}).setdefault(_key(manifest, row.path, source), row.line)
        overlap = check_split_overlap(split, keys_by_split, where=manifest, allow=allow_split_overlap)
        rows = _rows_of_split(manifest, all_rows, split)
        keep, counts = drop_duplicates(
            [_key(manifest, r.path, source) for r in rows], [_shown_label(r) for r in rows],
            [r.line for r in rows], where=manifest, conflicts=conflicts,
        )
        rows = [rows[i] for i in keep]
        if not rows:
            raise InputError(f"{manifest}: every row of split {split!r} was dropped as a conflicting label")
        classes = _classes(manifest, rows, request.num_classes or (source or {}).get("num_classes"))
        targets = np.array([r.label for r in rows], dtype=np.int64)
        clean = np.array([r.clean for r in rows], dtype=np.int64)
        clean_targets = clean if (clean >= 0).any() else None
        info = {"labels": request.labels, "manifest": str(manifest), **listing_info(counts, overlap)}
        if source is None:
            return file_dataset(
                request, name=self.name, paths=[_key(manifest, r.path, None) for r in rows], targets=targets,
                class_names=classes, listed_in=manifest, clean_targets=clean_targets, info=info,
                fix_missing="restore them, or remove their rows from the manifest",
            )
        if self.build_source is None:
            raise InputError(
                f"{manifest}: a manifest with provenance is read through fer_nla.data.build_dataset('manifest', ...)"
            )
        base = _source_dataset(manifest, source, self.build_source, skip_bad_images=request.skip_bad_images)
        return _from_source(manifest, source, base, rows, targets, clean_targets, classes, split, info)

    def splits(self, *, root: str | Path | None, **_: Any) -> tuple[str, ...]:
        """The values of the manifest's ``split`` column (train/valid/test order), or ``train``
        for a manifest without one.

        Raises:
            InputError: no root, none at that path, a folder, or a malformed header or row.
        """
        found = {row.split for row in _read(self.root_path(root))[1]}  # "train" for all rows without a split column
        return tuple(name for name in ("train", "valid", "test") if name in found)


@dataclass(frozen=True)
class ManifestRow:
    """One row: its line, canonical label, clean label (``-1``: unknown), path or id, split."""

    line: int
    label: int
    clean: int
    path: str
    split: str


def _key(manifest: Path, path: str, source: dict[str, Any] | None) -> str:
    """The identity of a row's image: its absolute path (relative paths read from the
    manifest's folder, ``\\`` as their separator, ``~`` expanded; see :func:`listed_path`), or
    the sample id of a manifest with a source (kept exactly as written)."""
    if source is not None:
        return path
    path = listed_path(path, home=True)
    return path if os.path.isabs(path) else os.path.normpath(str(manifest.parent / path))


def _shown_label(row: ManifestRow) -> str:
    """A row's labels as the user reads them (``happiness``, or ``happiness (clean: neutral)``)."""
    clean = f" (clean: {EMOTIONS[row.clean]})" if row.clean >= 0 else ""
    return EMOTIONS[row.label] + clean


def _classes(manifest: Path, rows: list[ManifestRow], num_classes: int | None) -> tuple[str, ...]:
    if num_classes is None:
        num_classes = 8 if any(r.label == 7 or r.clean == 7 for r in rows) else 7
    classes = class_names(int(num_classes))
    for row in rows:
        if max(row.label, row.clean) >= len(classes):
            raise InputError(
                f"{manifest}:{row.line}: label {EMOTIONS[max(row.label, row.clean)]} is outside the {len(classes)} "
                f"classes ({', '.join(classes)}); fix the label or ask for num_classes=8"
            )
    return classes


def _rows_of_split(manifest: Path, rows: list[ManifestRow], split: str) -> list[ManifestRow]:
    found = sorted({r.split for r in rows})
    mine = [r for r in rows if r.split == split]
    if not mine:
        present = f"; it has rows of {', '.join(found)}" if found else ""
        raise InputError(f"{manifest}: no samples for split {split!r}{present}; ask for another split")
    return mine


def read_source(manifest: Path) -> dict[str, Any] | None:
    """The provenance of ``manifest``: its sidecar, else an old-style first line, else ``None``."""
    sidecar = sidecar_path(manifest)
    if sidecar.is_file():
        try:
            return dict(json.loads(sidecar.read_text(encoding="utf-8-sig")))
        except (json.JSONDecodeError, TypeError, ValueError) as err:
            raise InputError(f"{sidecar}: not valid JSON ({err}); fix it, or delete it to read plain paths") from None
    return None


def _read(manifest: Path) -> tuple[dict[str, Any] | None, list[ManifestRow], bool]:
    """The provenance (if any), every row of the manifest (all splits), and whether it has a
    split column."""
    source = read_source(manifest)
    start = csv_start(manifest)  # Excel's "sep=;" first line is skipped; comma, semicolon or tab
    lines, offset = start.lines, start.offset
    first = next(lines, "")
    offset += 1
    if first.startswith(SOURCE_PREFIX):
        try:
            source = json.loads(first[len(SOURCE_PREFIX):])
        except json.JSONDecodeError as err:
            raise InputError(f"{manifest}:{offset}: the source line is not valid JSON ({err}); fix or remove it") from None
        start = csv_start(manifest, lines=lines, offset=offset)
        lines, offset = start.lines, start.offset
        first = next(lines, "")
        offset += 1
    delimiter = start.delimiter
    header = [name.strip().lower() for name in next(csv.reader([first], delimiter=delimiter), [])]
    if "path" not in header or "label" not in header:
        shown = textwrap.shorten(first.strip(), 60, placeholder=" ...")
        found = f"the columns {header}" if len(header) > 1 else f"one column {shown!r}"
        raise InputError(
            f"{manifest}:{offset}: the header line has {found}, separated by {delimiter_name(delimiter)}; it "
            "needs columns 'path' and 'label' (optional: clean_label, is_noisy, split): name them on the first "
            "line, separated by commas, semicolons or tabs"
        )
    col = {name: header.index(name) for name in COLUMNS if name in header}
    if source is None and SOURCE_COLUMN in header:
        _require_sidecar(manifest)
    reader = csv.reader(lines, delimiter=delimiter)
    rows: list[ManifestRow] = []
    for row in reader:
        line_no = reader.line_num + offset
        if not row or not any(field.strip() for field in row):
            continue
        if len(row) != len(header):
            raise InputError(
                f"{manifest}:{line_no}: expected {len(header)} fields ({','.join(header)}), got "
                f"{len(row)}; fix or remove the line"
            )
        rows.append(_row(manifest, line_no, row, col))
    if not rows:
        raise InputError(f"{manifest}: no rows below the header; add rows path,label")
    return source, rows, "split" in col


def _require_sidecar(manifest: Path) -> None:
    """A manifest whose rows name a source dataset cannot be read without its provenance."""
    raise InputError(
        f"{manifest}: its rows are sample ids of another dataset (the '{SOURCE_COLUMN}' column), but its "
        f"provenance {sidecar_path(manifest)} is missing; put the .source.json written with it beside it, "
        f"or delete the '{SOURCE_COLUMN}' column to read the paths as plain image files"
    )


def _row(manifest: Path, line_no: int, row: list[str], col: dict[str, int]) -> ManifestRow:
    row_split = "train"
    if "split" in col:
        try:
            row_split = canonical_split(row[col["split"]])
        except InputError:
            raise InputError(
                f"{manifest}:{line_no}: split {row[col['split']]!r} is not train, valid or test; fix it"
            ) from None
    path = row[col["path"]].strip()
    if not path:
        raise InputError(f"{manifest}:{line_no}: the path is empty; fill it in or remove the line")
    clean_text = row[col["clean_label"]].strip() if "clean_label" in col else ""
    clean = _label(clean_text, manifest, line_no) if clean_text else -1
    return ManifestRow(line_no, _label(row[col["label"]], manifest, line_no), clean, path, row_split)


def _label(text: str, manifest: Path, line_no: int) -> int:
    value = text.strip()
    index = integer_value(value)  # 3, or 3.0 from a spreadsheet
    if index is not None:
        if not 0 <= index < len(EMOTIONS):
            raise InputError(
                f"{manifest}:{line_no}: label {value} is out of range 0..7 (canonical order "
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


def _source_dataset(manifest: Path, source: dict[str, Any], build_source: Callable[..., FERDataset], *,
                    skip_bad_images: bool) -> FERDataset:
    """The whole split of the dataset named in the manifest's provenance."""
    arguments = dict(source)
    name = arguments.pop("dataset", None)
    options = arguments.pop("options", {}) or {}
    try:
        return build_source(name, skip_bad_images=skip_bad_images, **arguments, **options)
    except InputError as err:
        raise InputError(f"{_source_place(manifest)}: cannot rebuild the source dataset: {err}") from None


def _from_source(
    manifest: Path,
    source: dict[str, Any],
    base: FERDataset,
    rows: list[ManifestRow],
    targets: np.ndarray,
    clean_targets: np.ndarray | None,
    classes: tuple[str, ...],
    split: str,
    info: dict[str, Any],
) -> FERDataset:
    """The manifest's rows as a subset of ``base``, the dataset named in its provenance."""
    name = source.get("dataset")
    lookup = {sample: i for i, sample in enumerate(base.samples)}
    unknown = [(row.line, row.path) for row in rows if row.path not in lookup]
    if unknown:
        shown = "\n  ".join(f"line {n}: {p}" for n, p in unknown[:20])
        raise InputError(
            f"{manifest}: {len(unknown)} sample ids are not in the source dataset ({name}):\n  {shown}\n"
            f"Fix: rebuild the manifest, or delete {sidecar_path(manifest).name} (or an old manifest's "
            "'# fer-nla source:' line) to read the paths as plain image files"
        )
    if tuple(base.class_names) != tuple(classes):
        raise InputError(
            f"{_source_place(manifest)}: the source has classes {base.class_names}, the manifest {classes}; "
            "fix num_classes"
        )
    dataset = base.subset([lookup[row.path] for row in rows])
    dataset.targets = targets
    dataset.clean_targets = clean_targets
    dataset.target_mode = "hard"
    dataset.name, dataset.split = "manifest", split
    dataset.info = {**info, "source": source}
    return dataset


def _source_place(manifest: Path) -> str:
    """Where a manifest's provenance was read: the sidecar, or line 1 of an old manifest."""
    sidecar = sidecar_path(manifest)
    return str(sidecar) if sidecar.is_file() else f"{manifest}:1"
