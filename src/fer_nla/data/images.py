"""Image sources (decode sample ``i`` on demand) and the checks made when an index is built.

Sources are small picklable objects holding paths or file offsets, never pixels, so
DataLoader workers can share them and a 300k-row index costs only its paths. Missing
files are found once, when the index is built (one message listing them), and undecodable
files are either named at access or, with ``skip_bad_images``, dropped and counted up front.
Files are decoded by :func:`fer_nla.image_files.decode_image` (re-exported here), the one decoder
``fer-nla predict`` uses too: EXIF orientation, modes, bit depth and transparency handled alike.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fer_nla.errors import InputError
from fer_nla.image_files import decode_image, is_system_file, to_rgb8

__all__ = [
    "CROP_MODES", "MAX_LISTED", "MAX_SAMPLE_ASPECT", "MIN_SAMPLE_SIDE", "CsvPixelImages", "FileImages", "crop_to_box",
    "decode_image", "find_missing", "is_system_file", "require_files", "sample_size_problem", "to_rgb8", "undecodable",
]

MAX_LISTED = 20  # paths shown in one error message; the rest are counted
CROP_MODES = ("auto", "always", "never")
# A training sample must be able to hold a face: its shorter side at least the 16 px below which
# `fer-nla predict` classifies no face (fer_nla.predict.detectors.DEFAULT_MIN_FACE_SIZE), and no
# more than 4 times as long as it is wide or the reverse (a 3000x1 strip is no face crop).
MIN_SAMPLE_SIDE = 16
MAX_SAMPLE_ASPECT = 4.0
SAMPLE_FIX = "replace the image or remove its line, or pass skip_bad_images=True to drop such images (counted)"


def sample_size_problem(size: tuple[int, int]) -> str | None:
    """Why an image of ``size`` (width, height in px) cannot be a face to train on, or ``None``."""
    width, height = size
    if min(width, height) < MIN_SAMPLE_SIDE:
        return f"a {width}x{height} image is under {MIN_SAMPLE_SIDE} px on a side, too small to hold a face"
    if max(width, height) > MAX_SAMPLE_ASPECT * min(width, height):
        return (f"a {width}x{height} image is more than {MAX_SAMPLE_ASPECT:g} times as long as it is wide, "
                "not a face crop")
    return None


def crop_to_box(image: Image.Image, box: Sequence[int], *, mode: str = "auto") -> Image.Image:
    """Crop to the face box ``(x, y, w, h)``.

    ``auto`` crops only when the box lies inside the image and is smaller than it (images
    already cropped to the face, whose box refers to the original photo, are left alone);
    ``always`` crops (clamped to the image); ``never`` returns the image unchanged.
    """
    if mode == "never":
        return image
    x, y, w, h = (int(v) for v in box)
    width, height = image.size
    inside = x >= 0 and y >= 0 and w > 0 and h > 0 and x + w <= width and y + h <= height
    if mode == "auto" and (not inside or (w, h) == (width, height)):
        return image
    left, top = max(0, x), max(0, y)
    right, bottom = min(width, x + max(w, 1)), min(height, y + max(h, 1))
    if right <= left or bottom <= top:
        return image
    return image.crop((left, top, right, bottom))


class FileImages:
    """Images stored as files, optionally cropped to a per-sample face box ``(x, y, w, h)``."""

    def __init__(self, paths: Sequence[str], *, boxes: np.ndarray | None = None, crop: str = "auto") -> None:
        if crop not in CROP_MODES:
            raise InputError(f"crop={crop!r} is not a crop mode; use one of {', '.join(CROP_MODES)}")
        self.paths = paths
        self.boxes = None if boxes is None else np.asarray(boxes, dtype=np.int32)
        self.crop = crop

    def __call__(self, index: int) -> Image.Image:
        image = decode_image(self.paths[index])
        if self.boxes is not None:
            image = crop_to_box(image, self.boxes[index], mode=self.crop)
        problem = sample_size_problem(image.size)
        if problem is not None:
            cropped = " (cropped to its face box)" if self.boxes is not None and self.crop != "never" else ""
            raise InputError(f"{self.paths[index]}{cropped}: {problem}; {SAMPLE_FIX}")
        return image


class CsvPixelImages:
    """Images stored as space-separated gray pixels in one CSV column (FER2013), read per row.

    Only each row's byte offset is held; the row is read and parsed when the image is asked for.
    """

    def __init__(self, path: str, offsets: np.ndarray, *, lines: np.ndarray, column: int, size: int = 48) -> None:
        self.path = path
        self.offsets = np.asarray(offsets, dtype=np.int64)  # byte offset of each sample's row
        self.lines = np.asarray(lines, dtype=np.int64)  # its line number, for messages
        self.column = column
        self.size = size

    def __call__(self, index: int) -> Image.Image:
        with open(self.path, "rb") as handle:
            handle.seek(int(self.offsets[index]))
            line = handle.readline().decode("utf-8")
        row = next(csv.reader([line]))
        values = np.array(row[self.column].split(), dtype=np.int64)
        if values.size != self.size * self.size or values.min() < 0 or values.max() > 255:
            raise InputError(
                f"{self.path}:{int(self.lines[index])}: pixels must be {self.size * self.size} values in 0..255; "
                "fix the row, or remove it"
            )
        return Image.fromarray(values.astype(np.uint8).reshape(self.size, self.size), mode="L").convert("RGB")


def find_missing(paths: Sequence[str]) -> list[str]:
    """Paths among ``paths`` that are not files (links followed), found with one directory listing per
    folder: absent names, folders, and links whose target is gone (``DirEntry.is_file`` follows
    links, so a dangling link is missing here rather than failing mid-epoch)."""
    by_folder: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        folder, name = os.path.split(path)
        by_folder[folder].append(name)
    missing: list[str] = []
    for folder, names in by_folder.items():
        try:
            with os.scandir(folder or ".") as entries:
                present = {entry.name for entry in entries if entry.is_file()}
        except (FileNotFoundError, NotADirectoryError):
            present = set()
        missing.extend(os.path.join(folder, name) for name in names if name not in present)
    return missing


def require_files(paths: Sequence[str], *, listed_in: str | Path, fix: str) -> None:
    """Raise one :class:`InputError` listing every missing image (capped, with a count)."""
    missing = find_missing(paths)
    if not missing:
        return
    shown = "\n  ".join(missing[:MAX_LISTED])
    more = f"\n  ... and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
    raise InputError(
        f"{len(missing)} of {len(paths)} image files listed in {listed_in} are missing:\n  {shown}{more}\n"
        f"Fix: {fix}"
    )


def undecodable(paths: Sequence[str]) -> np.ndarray:
    """Boolean mask of the paths :func:`decode_image` rejects or whose image cannot be a face
    (:func:`sample_size_problem`), in one pass over the files, so the images kept by
    ``skip_bad_images`` are those that load at access (a face box's crop is checked at access)."""
    bad = np.zeros(len(paths), dtype=bool)
    for i, path in enumerate(paths):
        try:
            bad[i] = sample_size_problem(decode_image(path).size) is not None
        except InputError:
            bad[i] = True
    return bad
