"""Image folders with one subfolder per class: ``<root>/<split>/<class>/...`` or ``<root>/<class>/...``.

Class folders are named by emotion (``happy``, ``Happiness``, ``angry``... are accepted; see
:func:`fer_nla.labels.index_of`). Split folders are ``train`` (or ``training``), ``valid`` (or
``val``, ``validation``) and ``test`` (or ``testing``), in any letter case (``Train/``,
``Validation/``); two folders naming one split (``val/`` and ``Validation/``) are an error. A
root without split folders is one set, read as split ``train`` (asking it for ``valid`` or
``test`` is an error: carve a validation part with ``fer_nla.data.split.stratified_split``).
A class folder is read recursively (``happy/session1/a.jpg`` is a happy image), in sorted path
order. System files and folders (``._x.jpg``, ``.DS_Store``, ``Thumbs.db``, ``__MACOSX/``,
dot-folders; :func:`fer_nla.image_files.is_system_file` on every path part) are skipped and
counted (``info["skipped_system_files"]``, a skipped folder once), as are files without an image
extension (``info["skipped_not_images"]``) and images lying beside the class folders rather than
in one (``info["skipped_outside_class_folders"]``). Each file is its own image: a folder cannot
list one twice. A link whose target is gone is a missing image (an error naming it).
The class count is 8 when a contempt folder exists, else 7, unless ``num_classes`` says.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fer_nla.data.dataset import FERDataset
from fer_nla.data.images import is_system_file
from fer_nla.data.sources.common import ReadRequest, file_dataset, one_set_split, require_num_classes
from fer_nla.data.sources.reader import Reader
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS, class_names, index_of

# .jfif and .jpe are JPEG; .avif needs Pillow >= 11.2 built with libavif (Pillow 13 here reads it).
IMAGE_EXTENSIONS = (
    ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".webp", ".avif", ".tif", ".tiff", ".gif", ".pgm", ".ppm",
)
SPLIT_FOLDERS = {"train": ("train", "training"), "valid": ("valid", "val", "validation"), "test": ("test", "testing")}
_SPLIT_OF_NAME = {name: split for split, names in SPLIT_FOLDERS.items() for name in names}
EXPECT = "a folder of class folders (or of train/valid/test folders)"


class Folder(Reader):
    """Class folders, optionally under split folders."""

    name = "folder"
    title = "an image folder"
    expect = EXPECT

    def build(self, request: ReadRequest) -> FERDataset:
        """The images under the split's class folders (recursively), labelled by class folder name.

        Returns a :class:`FERDataset` of file paths (sorted per class, classes in emotion order),
        int64 targets, and ``info`` counts ``skipped_system_files``, ``skipped_not_images``,
        ``skipped_outside_class_folders`` and ``dropped_not_in_classes`` (contempt images of a
        7-class read).

        Raises:
            InputError: a root that is not a folder, a split it lacks, two folders naming one split
                or one emotion, a folder name that is no emotion, no class folders, missing images
                (dangling links) and, at access, undecodable images.
        """
        base = request.root
        if not base.is_dir():
            raise InputError(f"{base}: not a folder; pass root=... pointing at a folder of class folders")
        folder = _split_folder(base, request.split)
        found, counts = _class_folders(folder)
        has_contempt = EMOTIONS.index("contempt") in found
        classes = class_names(
            require_num_classes(
                request.num_classes, dataset=self.title, allowed=(7, 8), default=8 if has_contempt else 7
            )
        )
        paths: list[str] = []
        targets: list[int] = []
        dropped = 0
        for index, class_folder in sorted(found.items()):
            files = _images_under(class_folder, counts)
            if index >= len(classes):
                dropped += len(files)
                continue
            paths.extend(files)
            targets.extend([index] * len(files))
        return file_dataset(
            request, name=self.name, paths=paths, targets=targets, class_names=classes, listed_in=folder,
            info={"dropped_not_in_classes": dropped, **counts, "folder": str(folder)},
            fix_missing="restore the files (for a link, the file it points to), or delete them from the folder",
        )

    def splits(self, *, root: str | Path | None, **_: Any) -> tuple[str, ...]:
        """The split folders present under ``root`` (train/valid/test order, any letter case), or
        ``train`` for a root of class folders only (one set).

        Raises:
            InputError: no root, none at that path, or two folders naming one split.
        """
        present = _split_folders(self.root_path(root))
        return tuple(split for split in SPLIT_FOLDERS if split in present) or ("train",)


def _split_folders(base: Path) -> dict[str, Path]:
    """``split -> folder`` of the split folders directly under ``base``, names matched
    case-insensitively (``Train``, ``VAL``, ``Testing``); an error when two name one split."""
    found: dict[str, Path] = {}
    if not base.is_dir():
        return found
    for entry in sorted(base.iterdir()):
        split = _SPLIT_OF_NAME.get(entry.name.lower())
        if split is None or not entry.is_dir():
            continue
        if split in found:
            raise InputError(
                f"{found[split]} and {entry} both name split {split!r}; merge them into one folder, "
                "or rename or move the other out of the dataset folder"
            )
        found[split] = entry
    return found


def _split_folder(base: Path, split: str) -> Path:
    """The folder of ``split``, or ``base`` itself when it has no split folders at all."""
    present = _split_folders(base)
    if not present:
        one_set_split(split, where=base, fix="add train/, valid/ and test/ folders of class folders")
        return base
    if split in present:
        return present[split]
    raise InputError(
        f"{base}: has split folders ({', '.join(p.name for p in present.values())}) but none for {split!r}; "
        f"add {base / SPLIT_FOLDERS[split][0]} or ask for another split"
    )


def _class_folders(folder: Path) -> tuple[dict[int, Path], dict[str, int]]:
    """``emotion index -> class folder`` of the folders in ``folder``, and the counts of what
    lies beside them: system files and folders, and images outside any class folder."""
    found: dict[int, Path] = {}
    counts = {"skipped_system_files": 0, "skipped_not_images": 0, "skipped_outside_class_folders": 0}
    for entry in sorted(folder.iterdir()):
        if is_system_file(entry.name):  # __MACOSX, .git, .DS_Store: never classes
            counts["skipped_system_files"] += 1
        elif not entry.is_dir():  # train/stray.jpg: in no class folder, so it has no label
            counts["skipped_outside_class_folders"] += int(entry.name.lower().endswith(IMAGE_EXTENSIONS))
        else:
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
    return found, counts


def _images_under(class_folder: Path, counts: dict[str, int]) -> list[str]:
    """The image files anywhere under ``class_folder`` (links followed, each real folder read
    once), sorted by path; system entries and non-images are added to ``counts``."""
    files: list[str] = []
    pending = [str(class_folder)]  # a stack; entries are read in name order: deterministic
    seen: set[str] = set()
    while pending:
        current = pending.pop()
        real = os.path.realpath(current)
        if real in seen:  # a link back to a folder already read: its images are listed once
            continue
        seen.add(real)
        with os.scandir(current) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        for entry in entries:
            if is_system_file(entry.name):  # ._x.jpg, .DS_Store, Thumbs.db, .thumbnails/
                counts["skipped_system_files"] += 1
            elif entry.is_dir():
                pending.append(entry.path)
            elif entry.name.lower().endswith(IMAGE_EXTENSIONS):
                files.append(entry.path)  # a dangling link too: found missing when indexed
            else:
                counts["skipped_not_images"] += 1
    return sorted(files)
