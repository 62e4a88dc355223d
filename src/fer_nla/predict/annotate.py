"""Boxes and labels drawn on images and video frames, and writing them to files.

Labels are placed by :func:`place_labels` so that no two overlap: above the face's box, else
below it, else inside its top edge, else moved down (then up from the image's top) past the
labels already placed, always inside the image. A photo without a face gets the caption
``"no face found"`` in its top-left corner; video frames without a face get no caption (a
caption blinking on and off over a clip hides more than it tells; the records list every
sampled frame and its face count). Annotated copies go where :func:`plan_annotated_paths`
says: never onto an input file and never two inputs onto one copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
from PIL import Image

from fer_nla.errors import InputError
from fer_nla.inference.faces import Box, FacePrediction
from fer_nla.predict.inputs import InputFile, is_stream

BOX_COLOR = (0, 200, 255)  # RGB
TEXT_COLOR = (0, 0, 0)
FONT = cv2.FONT_HERSHEY_SIMPLEX
# Suffixes an annotated image keeps; anything else is written as PNG.
IMAGE_WRITE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_CODEC = "mp4v"


class Rect(NamedTuple):
    """A rectangle in pixels: left, top, width, height (covers ``x..x+w-1``, ``y..y+h-1``)."""

    x: int
    y: int
    w: int
    h: int


def rects_overlap(a: Rect, b: Rect) -> bool:
    """Whether two rectangles share a pixel (touching edges do not)."""
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def place_labels(boxes: Sequence[Box], sizes: Sequence[tuple[int, int]], *, image_size: tuple[int, int]) -> list[Rect]:
    """Where each face's label goes: a ``(width, height)`` label per box in ``sizes``, in an image
    of ``image_size = (width, height)`` pixels; one :class:`Rect` per box, in order.

    Greedy, in the order given: the label starts at the box's left edge (moved left where it
    would leave the image) and takes the first of above the box, below it, inside its top edge
    that lies inside the image and overlaps no label placed before (preferring, among those, one
    that covers no other face's box); failing those it moves down from above the box, then down
    from the image's top, past each label in its way. Only when the image has no free place left
    (or the label is larger than the image) does it overlap another, at its first choice clamped
    into the image."""
    width, height = image_size
    placed: list[Rect] = []
    for i, (box, (w, h)) in enumerate(zip(boxes, sizes)):
        x = min(max(box.x, 0), max(width - w, 0))
        first = min(max(box.y - h, 0), max(height - h, 0))
        candidates = [Rect(x, top, w, h) for top in (box.y - h, box.y + box.h, box.y) if 0 <= top <= height - h]
        candidates = [r for r in candidates if not any(rects_overlap(r, p) for p in placed)]
        faces = [Rect(*b) for j, b in enumerate(boxes) if j != i]
        free = next((r for r in candidates if not any(rects_overlap(r, f) for f in faces)), None)
        free = free or next(iter(candidates), None)
        if free is None:
            free = _slide_down(Rect(x, first, w, h), placed, height) or _slide_down(Rect(x, 0, w, h), placed, height)
        placed.append(free or Rect(x, first, w, h))
    return placed


def _slide_down(rect: Rect, placed: Sequence[Rect], height: int) -> Rect | None:
    """``rect`` moved down past every placed rectangle in its way; ``None`` past the image's bottom."""
    while rect.y + rect.h <= height:
        in_way = [p for p in placed if rects_overlap(rect, p)]
        if not in_way:
            return rect
        rect = rect._replace(y=max(p.y + p.h for p in in_way))
    return None


def draw_faces(image_rgb: np.ndarray, faces: Sequence[FacePrediction], *, caption: str | None = None) -> np.ndarray:
    """A copy of ``image_rgb`` (``HxWx3`` uint8 RGB) with each face's box and ``label probability``
    (``#track label probability`` for a tracked video face) drawn on it, the labels placed by :func:`place_labels` so none covers another; line and text
    sizes grow with the image. ``caption`` (e.g. ``"no face found"``), when given, is written in
    the top-left corner."""
    out = np.ascontiguousarray(image_rgb.copy())
    height, width = out.shape[:2]
    thickness = max(1, round(max(height, width) / 400))
    font_scale = max(0.4, max(height, width) / 1200)
    texts = [("" if face.track_id is None else f"#{face.track_id} ") + f"{face.label} {face.probs[face.label]:.2f}"
             for face in faces]
    sizes, baselines = [], []
    for text in texts:
        (tw, th), base = cv2.getTextSize(text, FONT, font_scale, thickness)
        sizes.append((tw + 2, th + base + 2))
        baselines.append(base)
    for face in faces:
        x, y, w, h = face.box
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), BOX_COLOR, thickness)
    rects = place_labels([f.box for f in faces], sizes, image_size=(width, height))
    for text, rect, base in zip(texts, rects, baselines):
        _label(out, text, rect, base, font_scale=font_scale, thickness=thickness)
    if caption is not None:
        (tw, th), base = cv2.getTextSize(caption, FONT, font_scale, thickness)
        _label(out, caption, Rect(0, 0, tw + 2, th + base + 2), base, font_scale=font_scale, thickness=thickness)
    return out


def _label(out: np.ndarray, text: str, rect: Rect, base: int, *, font_scale: float, thickness: int) -> None:
    x, y, w, h = rect
    cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), BOX_COLOR, cv2.FILLED)
    cv2.putText(out, text, (x + 1, y + h - base - 1), FONT, font_scale, TEXT_COLOR, thickness, cv2.LINE_AA)


def check_annotate_dir(directory: str | Path, paths: Sequence[str | Path]) -> Path:
    """``directory`` as a ``Path`` once it is known to be a fine place for annotated copies of
    ``paths`` (the command-line inputs): not a file, and neither an input nor a folder holding
    one (its copies would be read as inputs by the next run, and could replace the inputs). A
    folder *inside* an input folder is fine: the caller leaves it out when walking the inputs.

    Raises :class:`InputError` naming both paths and the fix."""
    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise InputError(f"annotate_dir={str(target)!r} is a file, not a folder; name a folder for the annotated copies")
    resolved = target.resolve()
    for raw in paths:
        if not isinstance(raw, (str, Path)) or is_stream(raw):  # a camera's or stream's InputFile, a URL
            continue
        path = Path(raw)
        if path.exists() and (path.resolve() == resolved or resolved in path.resolve().parents):
            where = "is the input" if path.resolve() == resolved else "holds the input"
            raise InputError(
                f"annotate_dir={str(target)!r} {where} {path}: its annotated copies would be read as inputs "
                f"by the next run and could replace the inputs; name a folder outside the inputs for it (or one "
                f"inside an input folder, which is then never read as input)"
            )
    return target


def plan_annotated_paths(files: Sequence[InputFile], directory: Path) -> list[Path]:
    """Where each input's annotated copy goes under ``directory``, in the order of ``files``:
    its ``output_name`` (images keep a writable suffix, others get ``.png`` appended; videos
    become ``.mp4``), with ``-2``, ``-3``, ... added to the stem where two different inputs (say
    ``clip.avi`` and ``clip.mov``) would share a path, compared without case as macOS and Windows
    file systems do, or where the path is an input file itself. The same input listed twice
    gets the same path."""
    inputs = {f.path.resolve() for f in files}
    taken = {str(p).casefold() for p in inputs}
    by_input: dict[Path, Path] = {}
    targets: list[Path] = []
    for item in files:
        source = item.path.resolve()
        if source not in by_input:
            wanted = annotated_video_path(directory, item.output_name) if item.is_video else \
                annotated_image_path(directory, item.output_name)
            target, number = wanted, 1
            while str(target.resolve()).casefold() in taken:
                number += 1
                target = wanted.with_name(f"{wanted.stem}-{number}{wanted.suffix}")
            taken.add(str(target.resolve()).casefold())
            by_input[source] = target
        targets.append(by_input[source])
    return targets


def annotated_image_path(directory: Path, name: Path) -> Path:
    """Where the annotated copy of input ``name`` goes under ``directory``."""
    target = directory / name
    return target if target.suffix.lower() in IMAGE_WRITE_SUFFIXES else target.with_name(target.name + ".png")


def save_image(image_rgb: np.ndarray, path: Path) -> Path:
    """Writes ``image_rgb`` (``HxWx3`` uint8 RGB) to ``path`` (format by suffix), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_rgb).save(path)
    return path


def save_animation(frames_rgb: Sequence[np.ndarray], path: Path) -> Path:
    """Writes ``frames_rgb`` (``HxWx3`` uint8 RGB each) as an animation at ``path`` (GIF, WebP or
    PNG by suffix; other suffixes get the first frame), creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(frame) for frame in frames_rgb]
    if path.suffix.lower() in (".gif", ".webp", ".png", ".apng"):
        images[0].save(path, save_all=True, append_images=images[1:], loop=0)
    else:
        images[0].save(path)
    return path


class AnnotatedVideo:
    """Writes annotated RGB frames to an MP4 (``mp4v``) file at ``fps`` frames per second."""

    def __init__(self, path: Path, *, fps: float, width: int, height: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.size = (width, height)
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*VIDEO_CODEC), fps, self.size)
        if not self._writer.isOpened():
            raise OSError(f"OpenCV cannot write the video {path} with codec {VIDEO_CODEC}")

    def write(self, frame_rgb: np.ndarray) -> None:
        if (frame_rgb.shape[1], frame_rgb.shape[0]) != self.size:
            frame_rgb = cv2.resize(frame_rgb, self.size)
        self._writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()


def annotated_video_path(directory: Path, name: Path) -> Path:
    """Where the annotated copy of video ``name`` goes (always ``.mp4``)."""
    return (directory / name).with_suffix(".mp4")
