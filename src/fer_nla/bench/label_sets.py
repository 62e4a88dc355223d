"""Label settings of the user's own: a CSV of noisy labels for the grid's pool of FERPlus images.

A grid (``fer-nla bench regime`` / ``bench robustness``) runs every method on the built-in
settings (single votes, symmetric noise, imbalance); ``bench.label_sets`` adds settings from
files, so cells can be re-run on noisy label sets the grid never drew::

    bench:
      label_sets: {my_noise: /path/to/my_labels.csv}
      settings: [my_noise, symmetric_30]

The file: a header row with ``image`` (or ``path``) and ``label`` columns (others are ignored),
one row per image. ``image`` names a FERPlus training image by its file name (``fer0000001.png``),
its path under the FERPlus root (``FER2013Train/fer0000001.png``) or its full path, as the
manifests a grid writes (``OUT/settings/<setting>-seed<k>.csv``) do: edit one's labels and give it
back as a label set; ``label`` is a class name
(``anger``, or an alias such as ``angry``) or a class index in the pool's order (neutral,
happiness, surprise, sadness, anger, disgust, fear, contempt). The setting trains on the pool
images the file lists, with its labels, and scores them against the majority labels as every
setting does (the noise rate of each cell is in its row). A file may cover more than the pool
(all of FERPlus train, while the regime's pool is its half F with a majority label): rows naming
an image outside the pool are not used, and pool images the file does not list are left out of
the setting; both are counted in the log, with an example. A label that is no class, a repeated
image or a file none of whose images is in the pool is an error naming the file, the line and the fix.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from fer_nla.errors import InputError
from fer_nla.labels import index_of

UNLISTED = -1  # the label of a pool image the file does not list


def _class_index(value: str, class_names: Sequence[str], *, where: str) -> int:
    text = value.strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if 0 <= index < len(class_names):
            return index
        raise InputError(f"{where}: class index {index} is outside 0..{len(class_names) - 1} "
                         f"({', '.join(class_names)}); write a class name or an index in that range")
    try:
        return index_of(text, tuple(class_names))
    except ValueError:
        raise InputError(f"{where}: {value!r} is not one of the classes {', '.join(class_names)}; write one of them "
                         "(or its index)") from None


def read_label_set(path: str | Path, *, sample_ids: Sequence[str], class_names: Sequence[str], root: str | None,
                   log: Callable[[str], None] = print) -> np.ndarray:
    """``int64 [N]``: the file's label for each pool image (``sample_ids``: the pool's image
    paths), :data:`UNLISTED` where the file has none. Raises :class:`InputError` for a missing
    file, a missing column, a label that is no class, an image listed twice (each naming the file
    and line), or a file with no image of the pool."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"label set {path} does not exist; bench.label_sets maps a setting name to a CSV with "
                         "image,label columns")
    by_key: dict[str, int] = {}
    for i, sample in enumerate(sample_ids):
        by_key[str(sample).replace(os.sep, "/")] = i
        relative = os.path.relpath(str(sample), root) if root and os.path.isabs(str(sample)) else str(sample)
        by_key[relative.replace(os.sep, "/")] = i
        by_key.setdefault(os.path.basename(str(sample)), i)
    labels = np.full(len(sample_ids), UNLISTED, dtype=np.int64)
    seen: dict[int, int] = {}
    outside: list[str] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = {(name or "").strip().lower(): name for name in reader.fieldnames or []}
        if "image" not in columns and "path" in columns:  # a grid's manifest
            columns["image"] = columns["path"]
        missing = {"image", "label"} - set(columns)
        if missing:
            raise InputError(f"{path}:1: the header lacks {', '.join(sorted(missing))}; the first row must name the "
                             "columns image,label")
        for line, row in enumerate(reader, start=2):
            where = f"{path}:{line}"
            image = (row.get(columns["image"]) or "").strip().replace("\\", "/")
            if image not in by_key:
                outside.append(f"{image!r} (line {line})")
                continue
            index = by_key[image]
            if index in seen:
                raise InputError(f"{where}: image {image!r} is listed again (first on line {seen[index]}); keep one row")
            seen[index] = line
            labels[index] = _class_index(row.get(columns["label"]) or "", class_names, where=where)
    if not seen:
        example = f" (e.g. {outside[0]})" if outside else ""
        raise InputError(f"{path}: no row names an image of the grid's pool (FERPlus train images with a majority "
                         f"label{', in half F' if len(sample_ids) < 20000 else ''}){example}; name them by file name "
                         "(fer0000001.png) or by their path under the FERPlus root")
    log(f"label set {path}: {len(seen)} of the pool's {len(sample_ids)} images listed"
        + (f"; the {len(sample_ids) - len(seen)} others are left out of this setting" if len(seen) < len(sample_ids) else "")
        + (f"; {len(outside)} row(s) name images outside the pool, not used (e.g. {outside[0]})" if outside else ""))
    return labels
