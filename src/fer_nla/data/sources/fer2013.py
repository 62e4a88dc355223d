"""FER2013: ``fer2013.csv`` with columns ``emotion``, ``pixels`` (48x48 gray values) and ``Usage``.

Codes 0..6 are anger, disgust, fear, happiness, sadness, surprise, neutral (mapped to the
canonical order). ``Usage`` Training / PublicTest / PrivateTest are the splits train /
valid / test; a file without a ``Usage`` column is one set, read as split ``train``. Only each row's byte offset is kept; pixels are parsed when an image is asked for.
"""

from __future__ import annotations

from array import array
from pathlib import Path

import numpy as np

from fer_nla.data.dataset import FERDataset
from fer_nla.data.images import CsvPixelImages
from fer_nla.data.sources.common import (
    canonical_split,
    one_set_split,
    require_file,
    require_label_mode,
    require_num_classes,
    require_root,
)
from fer_nla.errors import InputError
from fer_nla.labels import FER2013_CODES, SEVEN_CLASSES, code_table

USAGE_SPLITS = {"training": "train", "publictest": "valid", "privatetest": "test"}
IMAGE_SIZE = 48


def build(
    *,
    root: str | Path | None,
    split: str = "train",
    labels: str = "majority",
    num_classes: int | None = None,
    seed: int = 0,
    skip_bad_images: bool = False,
) -> FERDataset:
    """One FER2013 split in the canonical 7-class order. Every row's pixel count is checked
    when the index is built, so no image can fail to decode later (``skip_bad_images``
    drops such rows instead of failing)."""
    del seed
    require_label_mode(labels, dataset="FER2013")
    require_num_classes(num_classes, dataset="FER2013 (7 classes)", allowed=(7,), default=7)
    split = canonical_split(split)
    base = require_root(root, dataset="fer2013", expect="fer2013.csv or the folder holding it")
    csv_path = base if base.is_file() else require_file(
        base / "fer2013.csv", dataset="FER2013", fix="--root should be fer2013.csv or its folder"
    )
    table = code_table(FER2013_CODES, SEVEN_CLASSES)
    offsets, targets, lines, bad = array("q"), array("q"), array("q"), 0
    with open(csv_path, "rb") as handle:
        header = [name.strip().lower() for name in handle.readline().decode("utf-8").split(",")]
        if "emotion" not in header or "pixels" not in header:
            raise InputError(f"{csv_path}:1: header {header} lacks 'emotion' and 'pixels'; add the header line")
        emotion_col, pixel_col = header.index("emotion"), header.index("pixels")
        usage_col = header.index("usage") if "usage" in header else None
        if usage_col is None:
            one_set_split(split, where=csv_path, fix="add a Usage column (Training, PublicTest, PrivateTest)")
        offset = handle.tell()
        for line_no, raw in enumerate(handle, start=2):
            start, offset = offset, offset + len(raw)
            fields = raw.split(b",")
            if not raw.strip():
                continue
            if len(fields) != len(header):
                raise InputError(
                    f"{csv_path}:{line_no}: expected {len(header)} fields ({', '.join(header)}), got "
                    f"{len(fields)}; fix or remove the line"
                )
            if usage_col is not None:
                usage = fields[usage_col].strip().decode().lower()
                if usage not in USAGE_SPLITS:
                    raise InputError(
                        f"{csv_path}:{line_no}: Usage {usage!r} is not Training, PublicTest or PrivateTest; fix it"
                    )
                if USAGE_SPLITS[usage] != split:
                    continue
            code_text = fields[emotion_col].strip()
            if not code_text.isdigit() or not 0 <= int(code_text) <= 6:
                raise InputError(
                    f"{csv_path}:{line_no}: emotion {code_text.decode()!r} is out of range 0..6 (anger, "
                    "disgust, fear, happiness, sadness, surprise, neutral); fix the label"
                )
            if len(fields[pixel_col].split()) != IMAGE_SIZE * IMAGE_SIZE:
                if skip_bad_images:
                    bad += 1
                    continue
                raise InputError(
                    f"{csv_path}:{line_no}: pixels must hold {IMAGE_SIZE * IMAGE_SIZE} values; fix the row, "
                    "or pass --skip-bad-images (skip_bad_images=True) to drop such rows"
                )
            offsets.append(start)
            targets.append(int(table[int(code_text)]))
            lines.append(line_no)
    if not offsets:
        raise InputError(f"{csv_path}: no samples in split {split!r}; check --split or the Usage column")
    return FERDataset(
        samples=[f"{csv_path}:{n}" for n in lines],
        targets=np.frombuffer(targets, dtype=np.int64).copy(),
        class_names=SEVEN_CLASSES,
        source=CsvPixelImages(
            str(csv_path), np.frombuffer(offsets, dtype=np.int64).copy(),
            lines=np.frombuffer(lines, dtype=np.int64).copy(), column=pixel_col,
        ),
        name="fer2013",
        split=split,
        info={"labels": labels, "bad_images_dropped": bad} if skip_bad_images else {"labels": labels},
    )
