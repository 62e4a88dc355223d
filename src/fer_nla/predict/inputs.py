"""What to predict on: files and folders (recursive) expanded to images and videos, decoding.

Folders are walked recursively in sorted order; system files and folders (``.DS_Store``,
AppleDouble ``._x.jpg``, ``__MACOSX``, ``Thumbs.db``: :func:`fer_nla.image_files.is_system_file`,
the predicate the dataset folder reader uses) are skipped. Every other file becomes an input:
videos by their suffix, anything else is read as an image (by content, so a PNG named ``.jpg``
works) with :func:`fer_nla.image_files.decode_image`, the decoder the dataset readers use; a file
that is neither becomes a failed record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fer_nla.errors import InputError
from fer_nla.image_files import decode_image, is_system_file

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
PREDICT_FIX = (
    "it is not an image or video file fer-nla can read, or it is truncated or damaged; "
    "re-save it as PNG or JPEG, or leave it out"
)


@dataclass(frozen=True)
class InputFile:
    """One file to predict on, and the relative path its annotated copy gets."""

    path: Path
    is_video: bool
    output_name: Path


@dataclass(frozen=True)
class InputProblem:
    """A command-line path that yields nothing to predict (missing, or an empty folder)."""

    path: Path
    error: str


def collect_inputs(paths: Sequence[str | Path]) -> tuple[list[InputFile], list[InputProblem]]:
    """The files under ``paths`` (folders walked recursively, system files and folders skipped),
    and the paths that gave none. A file named on the command line is kept whatever its name."""
    files: list[InputFile] = []
    problems: list[InputProblem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p for p in path.rglob("*")
                if p.is_file() and not any(is_system_file(part) for part in p.relative_to(path).parts)
            )
            if not found:
                problems.append(InputProblem(path, f"folder {path} holds no files to predict on"))
            files.extend(InputFile(p, _is_video(p), Path(path.name or "input") / p.relative_to(path)) for p in found)
        elif path.is_file():
            files.append(InputFile(path, _is_video(path), Path(path.name)))
        else:
            problems.append(InputProblem(path, f"{path} does not exist; check the path"))
    return files, problems


def _is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """The ``HxWx3`` uint8 RGB pixels of an image file, decoded as the dataset readers decode it
    (:func:`fer_nla.image_files.decode_image`: EXIF orientation, first frame, 16-bit and float
    scaled, transparency on white).

    Raises :class:`InputError` naming the file for files that are not images, cannot be
    decoded, or exceed Pillow's decompression-bomb limit."""
    return np.asarray(decode_image(path, fix=PREDICT_FIX))


@dataclass
class VideoInfo:
    """Frame rate and size of an opened video (``fps`` falls back to 25 when unknown)."""

    fps: float
    width: int
    height: int
    frame_count: int


def open_video(path: str | Path) -> tuple[cv2.VideoCapture, VideoInfo]:
    """An opened ``cv2.VideoCapture`` and its properties; :class:`InputError` when OpenCV cannot open it."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        capture.release()
        raise InputError(f"{path} cannot be opened as a video (unsupported codec or damaged file)")
    fps = capture.get(cv2.CAP_PROP_FPS)
    info = VideoInfo(
        fps=float(fps) if fps and fps > 0 else 25.0,
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        frame_count=int(capture.get(cv2.CAP_PROP_FRAME_COUNT)),
    )
    return capture, info


def iter_frames(capture: cv2.VideoCapture, *, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame index, HxWx3 RGB frame)`` for frames 0, every, 2*every, ... until the video ends;
    the frames in between are skipped without conversion."""
    if every < 1:
        raise InputError(f"--every must be 1 or more (every k-th frame), got {every}")
    index = 0
    while True:
        if index % every == 0:
            ok, frame = capture.read()
            if not ok:
                return
            yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        elif not capture.grab():
            return
        index += 1
