"""RAF-DB basic: ``EmoLabel/list_patition_label.txt`` and ``Image/aligned/<name>_aligned.jpg``.

Lines look like ``train_00001.jpg 5``; labels 1..7 are surprise, fear, disgust, happiness,
sadness, anger, neutral (mapped to the canonical order); the split is the name's prefix.
RAF-DB has no validation split: carve one from train with ``fer_nla.data.split.stratified_split``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources.common import (
    canonical_split,
    file_dataset,
    require_file,
    require_label_mode,
    require_num_classes,
    require_root,
)
from fer_nla.errors import InputError
from fer_nla.labels import RAFDB_CODES, SEVEN_CLASSES, code_table

LABEL_FILE = Path("EmoLabel") / "list_patition_label.txt"


def build(
    *,
    root: str | Path | None,
    split: str = "train",
    labels: str = "majority",
    num_classes: int | None = None,
    seed: int = 0,
    skip_bad_images: bool = False,
    aligned: bool = True,
) -> FERDataset:
    """The RAF-DB basic ``train`` or ``test`` split in the canonical 7-class order."""
    del seed  # nothing random in this reader
    require_label_mode(labels, dataset="RAF-DB")
    require_num_classes(num_classes, dataset="RAF-DB basic (7 classes)", allowed=(7,), default=7)
    split = canonical_split(split)
    if split == "valid":
        raise InputError(
            "RAF-DB has only train and test splits; use --split train or test, and carve a "
            "validation split from train (fer_nla.data.split.stratified_split)"
        )
    base = require_root(root, dataset="rafdb", expect="the RAF-DB basic folder (holding EmoLabel/ and Image/)")
    label_file = require_file(
        base / LABEL_FILE, dataset="RAF-DB", fix=f"--root should be the folder that holds {LABEL_FILE}"
    )
    image_dir = base / "Image" / ("aligned" if aligned else "original")
    table = code_table(RAFDB_CODES, SEVEN_CLASSES)
    paths: list[str] = []
    targets: list[int] = []
    with open(label_file, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
                raise InputError(
                    f"{label_file}:{line_no}: expected '<image name> <label 1..7>', got {line.strip()!r}; "
                    "fix or remove the line"
                )
            name, code = parts[0], int(parts[1])
            if not 1 <= code <= 7:
                raise InputError(
                    f"{label_file}:{line_no}: label {code} is out of range 1..7 (surprise, fear, disgust, "
                    "happiness, sadness, anger, neutral); fix the label"
                )
            prefix = name.split("_", 1)[0]
            if prefix not in ("train", "test"):
                raise InputError(
                    f"{label_file}:{line_no}: image name {name!r} should start with 'train_' or 'test_'; "
                    "fix the name"
                )
            if prefix != split:
                continue
            stem = name.rsplit(".", 1)[0]
            file_name = f"{stem}_aligned.jpg" if aligned else name
            paths.append(str(image_dir / file_name))
            targets.append(int(table[code]))
    return file_dataset(
        name="rafdb",
        split=split,
        paths=paths,
        targets=np.asarray(targets, dtype=np.int64),
        class_names=SEVEN_CLASSES,
        listed_in=label_file,
        skip_bad_images=skip_bad_images,
        info={"labels": labels},
        fix_missing=f"restore them under {image_dir}, or remove their lines from the label file",
    )
