"""Image folders with one subfolder per class: ``<root>/<split>/<class>/*`` or ``<root>/<class>/*``.

Class folders are named by emotion (``happy``, ``Happiness``, ``angry``... are accepted; see
:func:`fer_nla.labels.index_of`). Split folders are ``train``, ``valid`` (or ``val``,
``validation``) and ``test``; a root without split folders is one set, read as split
``train`` (asking it for ``valid`` or ``test`` is an error: carve a validation part with
``fer_nla.data.split.stratified_split``).
System files (``._x.jpg``, ``.DS_Store``, ``Thumbs.db``, ``__MACOSX/``, dot-folders) are skipped
and counted (``info["skipped_system_files"]``), as are files without an image extension
(``info["skipped_not_images"]``). Each file is its own image: a folder cannot list one twice.
The class count is 8 when a contempt folder exists, else 7, unless ``num_classes`` says.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.data.dataset import FERDataset
from fer_nla.data.images import is_system_file
from fer_nla.data.sources.common import (
    canonical_split,
    file_dataset,
    one_set_split,
    require_label_mode,
    require_num_classes,
    require_root,
)
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS, class_names, index_of

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".pgm", ".ppm")
SPLIT_FOLDERS = {"train": ("train", "training"), "valid": ("valid", "val", "validation"), "test": ("test",)}


def build(
    *,
    root: str | Path | None,
    split: str = "train",
    labels: str = "majority",
    num_classes: int | None = None,
    seed: int = 0,
    skip_bad_images: bool = False,
) -> FERDataset:
    """The images under the split's class folders, labelled by folder name."""
    del seed
    require_label_mode(labels, dataset="an image folder")
    split = canonical_split(split)
    base = require_root(root, dataset="folder", expect="a folder of class folders (or of train/valid/test folders)")
    if not base.is_dir():
        raise InputError(f"{base}: not a folder; pass root=... pointing at a folder of class folders")
    folder = _split_folder(base, split)
    found: dict[int, Path] = {}
    subfolders = sorted(p for p in folder.iterdir() if p.is_dir())
    skipped_system = sum(1 for p in subfolders if is_system_file(p.name))  # __MACOSX, .git: never classes
    for entry in (p for p in subfolders if not is_system_file(p.name)):
        try:
            index = index_of(entry.name)
        except ValueError:
            raise InputError(
                f"{entry}: folder name is not an emotion; rename it to one of {', '.join(EMOTIONS)} "
                "or move it out of the dataset folder"
            ) from None
        if index in found:
            raise InputError(f"{entry} and {found[index]} name the same emotion; merge them")
        found[index] = entry
    if not found:
        raise InputError(f"{folder}: no class folders; put the images in one subfolder per emotion")
    has_contempt = EMOTIONS.index("contempt") in found
    classes = class_names(
        require_num_classes(num_classes, dataset="an image folder", allowed=(7, 8), default=8 if has_contempt else 7)
    )
    paths: list[str] = []
    targets: list[int] = []
    dropped = not_images = 0
    for index, class_folder in sorted(found.items()):
        names = os.listdir(class_folder)
        skipped_system += sum(1 for name in names if is_system_file(name))  # ._x.jpg, .DS_Store, Thumbs.db
        files = sorted(
            os.path.join(class_folder, name)
            for name in names
            if not is_system_file(name) and name.lower().endswith(IMAGE_EXTENSIONS)
        )
        not_images += sum(
            1 for name in names if not is_system_file(name) and not name.lower().endswith(IMAGE_EXTENSIONS)
        )
        if index >= len(classes):
            dropped += len(files)
            continue
        paths.extend(files)
        targets.extend([index] * len(files))
    return file_dataset(
        name="folder",
        split=split,
        paths=paths,
        targets=np.asarray(targets, dtype=np.int64),
        class_names=classes,
        listed_in=folder,
        skip_bad_images=skip_bad_images,
        info={"labels": labels, "dropped_not_in_classes": dropped, "skipped_system_files": skipped_system,
              "skipped_not_images": not_images, "folder": str(folder)},
    )


def splits(*, root: str | Path | None, **_: Any) -> tuple[str, ...]:
    """The split folders present under ``root`` (train/valid/test order), or ``train`` for a
    root of class folders only (one set)."""
    base = require_root(root, dataset="folder", expect="a folder of class folders (or of train/valid/test folders)")
    present = tuple(split for split, names in SPLIT_FOLDERS.items() if any((base / n).is_dir() for n in names))
    return present or ("train",)


def _split_folder(base: Path, split: str) -> Path:
    """The folder of ``split``, or ``base`` itself when it has no split folders at all."""
    all_names = [name for names in SPLIT_FOLDERS.values() for name in names]
    if not any((base / name).is_dir() for name in all_names):
        one_set_split(split, where=base, fix="add train/, valid/ and test/ folders of class folders")
        return base
    for name in SPLIT_FOLDERS[split]:
        if (base / name).is_dir():
            return base / name
    raise InputError(
        f"{base}: has split folders but none for {split!r}; add {base / SPLIT_FOLDERS[split][0]} "
        "or ask for another split=..."
    )
