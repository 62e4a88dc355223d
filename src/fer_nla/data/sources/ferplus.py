"""FERPlus in its standard folder layout, read as it is.

``<root>/FER2013Train``, ``FER2013Valid`` and ``FER2013Test`` each hold PNGs and a
``label.csv`` without header: image name, face box ``"(x, y, w, h)"``, ten vote counts
(the eight emotions, unknown, NF). Label modes (see :mod:`fer_nla.data.votes`):

- ``majority``: FERPlus's own rule; images without a majority emotion are dropped.
- ``plurality``: the unique top emotion after outlier removal; ties and unknown/NF dropped.
- ``probability``: the plurality images, with ``soft_targets`` from their emotion votes
  (``target_mode == "soft"``); the hard target is the plurality label.
- ``single-vote``: the majority images, each labelled by one annotator's vote drawn with
  ``seed`` among its emotion votes (real human label noise); ``clean_targets`` holds the
  majority label. With ``keep_unresolved=True`` images without a majority are kept too,
  with clean target ``-1``.

With ``num_classes=7`` images whose label is contempt are dropped and contempt votes ignored.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources.common import (
    LABEL_MODES,
    canonical_split,
    file_dataset,
    require_file,
    require_label_mode,
    require_num_classes,
    require_root,
)
from fer_nla.data.votes import (
    NUM_VOTE_COLUMNS,
    majority_labels,
    plurality_labels,
    single_vote_labels,
    vote_probabilities,
)
from fer_nla.errors import InputError
from fer_nla.labels import class_names

SPLIT_FOLDERS = {"train": "FER2013Train", "valid": "FER2013Valid", "test": "FER2013Test"}


def build(
    *,
    root: str | Path | None,
    split: str = "train",
    labels: str = "majority",
    num_classes: int | None = None,
    seed: int = 0,
    skip_bad_images: bool = False,
    keep_unresolved: bool = False,
    crop: str = "auto",
) -> FERDataset:
    """One FERPlus split under the chosen label mode, in the canonical order (default 8 classes)."""
    require_label_mode(labels, dataset="FERPlus", allowed=LABEL_MODES)
    classes = class_names(require_num_classes(num_classes, dataset="FERPlus", allowed=(7, 8), default=8))
    c = len(classes)
    split = canonical_split(split)
    base = require_root(root, dataset="ferplus", expect="the FERPlus folder holding FER2013Train/ and FER2013Valid/")
    folder = base / SPLIT_FOLDERS[split]
    label_file = require_file(
        folder / "label.csv", dataset="FERPlus",
        fix=f"--root should hold {SPLIT_FOLDERS[split]}/label.csv (the FERPlus layout)",
    )
    names, boxes, votes = read_label_file(label_file)

    majority = majority_labels(votes)
    majority = np.where(majority < c, majority, -1)
    clean: np.ndarray | None = None
    soft: np.ndarray | None = None
    if labels == "majority":
        keep, targets = majority >= 0, majority
    elif labels in ("plurality", "probability"):
        targets = plurality_labels(votes)
        keep = (targets >= 0) & (targets < c)
        if labels == "probability":
            soft = vote_probabilities(votes, num_classes=c)
    else:  # single-vote
        targets = single_vote_labels(votes, num_classes=c, seed=seed)
        keep = majority >= 0
        if keep_unresolved:
            excluded = majority_labels(votes) >= c  # a majority outside the chosen classes
            keep = (targets >= 0) & ~excluded
        clean = majority
    rows = np.flatnonzero(keep)
    dataset = file_dataset(
        name="ferplus",
        split=split,
        paths=[str(folder / names[i]) for i in rows],
        targets=targets[rows],
        class_names=classes,
        listed_in=label_file,
        skip_bad_images=skip_bad_images,
        boxes=boxes[rows],
        crop=crop,
        clean_targets=None if clean is None else clean[rows],
        soft_targets=None if soft is None else soft[rows],
        info={"labels": labels, "rows": len(names), "dropped_no_label": int(len(names) - rows.size), "seed": seed},
        fix_missing=f"restore them in {folder}, or remove their rows from label.csv",
    )
    if labels == "probability":
        dataset.target_mode = "soft"
    return dataset


def read_label_file(label_file: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Image names, face boxes ``(N, 4)`` and vote counts ``(N, 10)`` of one ``label.csv``."""
    names: list[str] = []
    boxes: list[tuple[int, ...]] = []
    votes: list[list[int]] = []
    with open(label_file, newline="", encoding="utf-8") as handle:
        for line_no, row in enumerate(csv.reader(handle), start=1):
            if not row:
                continue
            if len(row) != 2 + NUM_VOTE_COLUMNS or not row[0].strip():
                raise InputError(
                    f"{label_file}:{line_no}: expected 12 fields (image name, \"(x, y, w, h)\", 10 vote "
                    f"counts), got {len(row)}: {','.join(row)[:80]!r}; fix or remove the line"
                )
            try:
                box = tuple(int(v) for v in row[1].strip().strip("()").split(","))
                counts = [int(v) for v in row[2:]]
            except ValueError:
                raise InputError(
                    f"{label_file}:{line_no}: the face box or a vote count is not an integer; fix the line"
                ) from None
            if len(box) != 4 or min(counts) < 0:
                raise InputError(
                    f"{label_file}:{line_no}: expected a box \"(x, y, w, h)\" and vote counts >= 0; fix the line"
                )
            names.append(row[0].strip())
            boxes.append(box)
            votes.append(counts)
    if not names:
        raise InputError(f"{label_file}: no rows; give FERPlus's label.csv with its rows")
    return names, np.asarray(boxes, dtype=np.int32), np.asarray(votes, dtype=np.int64)
