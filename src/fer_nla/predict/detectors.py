"""Face detectors: a small interface, a registry, and the two built in: ``retinaface`` (the
default, a CNN shipped in the package: :mod:`fer_nla.predict.cnn_detectors`) and ``haar``
(OpenCV's Haar cascade).

A detector is any object with ``detect(image_rgb)`` taking an ``HxWx3`` uint8 RGB array and
returning boxes: each a :class:`Box` (no score), a :class:`ScoredBox` / ``(box, score)`` pair or
an ``(x, y, w, h, score)`` row.
:func:`run_detector` wraps any detector: it downsizes very large images before detection, maps
the boxes back to the original pixel coordinates, clips them to the image, drops empty ones and
ones below the minimum face size (counting both), and suppresses overlapping duplicates
(non-maximum suppression at :data:`NMS_IOU`). Register another detector (a DNN, RetinaFace, ...)
from another package under the ``fer_nla.detectors`` entry-point group, or pass a detector
object, and select it by name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, Union, runtime_checkable

import cv2
import numpy as np

from fer_nla.errors import InputError
from fer_nla.inference.faces import Box, ScoredBox

DEFAULT_MAX_SIDE = 1600  # longest side an image is detected at; larger ones are downsized first
# Two boxes overlapping by more than this intersection over union are one face boxed twice; the
# lower-scored one is dropped. 0.4 is RetinaFace's NMS threshold: faces side by side in a group
# photo overlap far less, two boxes of one face (a detector's scales, a frame's duplicates) more.
NMS_IOU = 0.4
# Shortest face side, in pixels, that is classified. Below 16 px an eye or the mouth spans 2-3
# pixels and the crop is upscaled more than 3x to the smallest model input (48 px, FER2013 /
# FERPlus): the expression is no longer in the pixels and any label would be noise.
DEFAULT_MIN_FACE_SIZE = 16
# An image this small (longer side, px) in which the detector finds nothing is tried again enlarged to
# CROP_FRAME_SIDE px and framed by a grey border: face crops (FER2013's 48-px faces, aligned crops)
# show a face with no context around it, which detectors trained on photos miss (RetinaFace finds
# 34% of 200 FERPlus valid faces as they are, 99% framed so).
CROP_RETRY_SIDE = 512
CROP_HINT_SIDE = 256  # an image this small still without a face gets predict's note naming --faces-cropped
CROP_FRAME_SIDE = 192
CROP_FRAME_BORDER = 0.25


class Detections(NamedTuple):
    """What :func:`run_detector` keeps, in reading order, and how many boxes it dropped, by reason:
    ``empty`` (no pixel inside the image), ``small`` (shortest side below the minimum face size),
    ``duplicate`` (suppressed as overlapping a higher-scored box)."""

    faces: list[ScoredBox]
    dropped: dict[str, int]


DetectedBox = Union[Box, ScoredBox, tuple[Sequence[float], float], Sequence[float]]  # what detect() may return


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in an ``HxWx3`` uint8 RGB array; boxes in that array's pixel coordinates, each a
    :class:`Box` ``(x, y, w, h)`` or a :class:`ScoredBox` / ``((x, y, w, h), score)`` pair."""

    def detect(self, image_rgb: np.ndarray) -> Sequence[DetectedBox]: ...


@dataclass
class HaarCascadeDetector:
    """OpenCV's frontal-face Haar cascade (the file ships inside the opencv-python 4.x wheels).

    ``min_size`` is the smallest face side in pixels (48 px faces and up by default);
    ``scale_factor`` and ``min_neighbors`` trade recall against false positives as in
    ``cv2.CascadeClassifier.detectMultiScale``. ``cascade`` names a file in
    ``cv2.data.haarcascades`` or is a path to a cascade XML. ``equalize`` (histogram
    equalisation before detection) is off: on photos dominated by background it shifts the
    faces' contrast and loses faces the plain grey image keeps. Each box's score is its level
    weight from ``detectMultiScale3(..., outputRejectLevels=True)`` (the last stage's sum; higher
    is surer), which finds the same boxes as ``detectMultiScale``.
    """

    cascade: str = "haarcascade_frontalface_default.xml"
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: int = 48
    equalize: bool = False

    def __post_init__(self) -> None:
        path = Path(self.cascade)
        if not path.is_file():
            base = getattr(getattr(cv2, "data", None), "haarcascades", None)
            if base is None:
                raise InputError(
                    "this OpenCV build ships no Haar cascade files (cv2.data.haarcascades is missing; the "
                    "opencv-python 5.x wheels dropped them): pip install 'opencv-python-headless>=4.8,<5', "
                    "or pass cascade=<path to haarcascade_frontalface_default.xml>"
                )
            path = Path(base) / self.cascade
        classifier = cv2.CascadeClassifier(str(path))
        if classifier.empty():
            raise InputError(f"cannot load the Haar cascade {path}; pass cascade=<path to a cascade XML file>")
        self._classifier = classifier

    def detect(self, image_rgb: np.ndarray) -> list[ScoredBox]:
        gray = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2GRAY)
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        found, _, weights = self._classifier.detectMultiScale3(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size), outputRejectLevels=True,
        )
        boxes = [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in np.asarray(found).reshape(-1, 4)]
        scored = [ScoredBox(box, float(weight)) for box, weight in zip(boxes, np.asarray(weights).ravel())]
        return [scored[i] for i in _reading_order_indices(boxes)]


def reading_order(boxes: Sequence[Box]) -> list[Box]:
    """Boxes in rows from top to bottom, left to right within a row; a box starts a new row when
    its centre lies more than half its height below the centre of the row's first box."""
    return [boxes[i] for i in _reading_order_indices(boxes)]


def _reading_order_indices(boxes: Sequence[Box]) -> list[int]:
    rows: list[list[int]] = []
    for i in sorted(range(len(boxes)), key=lambda i: boxes[i].y + boxes[i].h / 2):
        box, first = boxes[i], boxes[rows[-1][0]] if rows else None
        if first is not None and (box.y + box.h / 2) - (first.y + first.h / 2) <= box.h / 2:
            rows[-1].append(i)
        else:
            rows.append([i])
    return [i for row in rows for i in sorted(row, key=lambda i: boxes[i].x)]


def _retinaface(**options: Any) -> FaceDetector:
    """:class:`~fer_nla.predict.cnn_detectors.RetinaFaceDetector`, imported when first asked for."""
    from fer_nla.predict.cnn_detectors import RetinaFaceDetector

    return RetinaFaceDetector(**options)


DetectorFactory = Callable[..., FaceDetector]
BUILTIN_DETECTORS: Mapping[str, DetectorFactory] = MappingProxyType({"haar": HaarCascadeDetector,
                                                                     "retinaface": _retinaface})
# The detector Predictor and `fer-nla predict` use unless told otherwise: on the real photos of
# tests/data/photos (frontal, turned, sunglasses, a group of 14 faces of 30-128 px, no-face
# photos) RetinaFace found 19 of 19 faces and Haar 14 of 19, neither with a false box, and
# RetinaFace took less time per 640x480 photo (benchmarks/results/detectors.md).
DEFAULT_DETECTOR = "retinaface"
ENTRY_POINT_GROUP = "fer_nla.detectors"  # other packages add detectors by name here


def _factories() -> dict[str, DetectorFactory]:
    found: dict[str, DetectorFactory] = {ep.name: ep.load for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **BUILTIN_DETECTORS}


def available_detectors() -> list[str]:
    """Names :func:`build_detector` accepts: the built-in ones and those other installed
    packages declare under the ``fer_nla.detectors`` entry-point group."""
    return sorted(_factories())


def build_detector(name: str | FaceDetector = DEFAULT_DETECTOR, **options: Any) -> FaceDetector:
    """The detector registered as ``name``, built with ``options``; a detector object is
    returned as it is (any object with a ``detect`` method plugs in)."""
    if not isinstance(name, str):
        if not isinstance(name, FaceDetector):
            raise TypeError(f"a face detector needs a detect(image_rgb) method; got {type(name).__name__}")
        return name
    factories = _factories()
    if name not in factories:
        raise InputError(f"unknown face detector {name!r}; choose one of: {', '.join(sorted(factories))}")
    factory = factories[name]
    if name not in BUILTIN_DETECTORS:
        factory = factory()  # an entry point loads to the factory itself
    return factory(**options)


def detect_faces(detector: FaceDetector, image_rgb: np.ndarray, *, max_side: int = DEFAULT_MAX_SIDE,
                 min_face_size: int = DEFAULT_MIN_FACE_SIZE, nms_iou: float = NMS_IOU) -> list[Box]:
    """The face boxes :func:`run_detector` keeps (its scores and drop counts left out)."""
    found = run_detector(detector, image_rgb, max_side=max_side, min_face_size=min_face_size, nms_iou=nms_iou)
    return [face.box for face in found.faces]


def run_detector(detector: FaceDetector, image_rgb: np.ndarray, *, max_side: int = DEFAULT_MAX_SIDE,
                 min_face_size: int = DEFAULT_MIN_FACE_SIZE, nms_iou: float = NMS_IOU) -> Detections:
    """Faces in the ``HxWx3`` uint8 RGB ``image_rgb``, in its own pixel coordinates and reading order.

    Images whose longest side exceeds ``max_side`` are downsized (area interpolation) for
    detection and the boxes scaled back. An image of at most :data:`CROP_RETRY_SIDE` px in which
    nothing is found is tried again as a face crop: enlarged and framed in grey
    (:func:`_detect_framed`), the boxes mapped back. Each box is rounded to whole pixels and clipped to the
    image; boxes with no pixel inside it, or whose clipped shortest side is below
    ``min_face_size`` pixels, are dropped; of boxes overlapping by an IoU above ``nms_iou`` the
    higher-scored is kept (:func:`non_max_suppression`). The drops are counted in
    ``Detections.dropped``. Raises :class:`TypeError` for a detector returning something that is
    not a box or a ``(box, score)`` pair."""
    height, width = image_rgb.shape[:2]
    scale, shift = max(height, width) / max_side, 0.0
    if scale <= 1:
        raw, scale = detector.detect(image_rgb), 1.0
    else:
        small_size = (max(1, round(width / scale)), max(1, round(height / scale)))
        raw = detector.detect(cv2.resize(image_rgb, small_size, interpolation=cv2.INTER_AREA))
    if not len(raw) and max(height, width) <= CROP_RETRY_SIDE:  # a face crop: the face fills it, no context
        raw, scale, shift = _detect_framed(detector, image_rgb)
    dropped = {"empty": 0, "small": 0, "duplicate": 0}
    kept: list[ScoredBox] = []
    for item in raw:
        found = _scored(item, detector)
        box = _clip(Box(found.box.x - shift, found.box.y - shift, found.box.w, found.box.h), scale, width, height)
        if box is None:
            dropped["empty"] += 1
        elif min(box.w, box.h) < min_face_size:
            dropped["small"] += 1
        else:
            kept.append(ScoredBox(box, found.score))
    survivors = [kept[i] for i in non_max_suppression(kept, iou=nms_iou)]
    dropped["duplicate"] = len(kept) - len(survivors)
    order = _reading_order_indices([face.box for face in survivors])
    return Detections([survivors[i] for i in order], dropped)


def _detect_framed(detector: FaceDetector, image_rgb: np.ndarray) -> tuple[Sequence[DetectedBox], float, float]:
    """The detector's boxes on ``image_rgb`` enlarged (cubic) to at least :data:`CROP_FRAME_SIDE`
    px and framed by a grey border of :data:`CROP_FRAME_BORDER` of its side, as a face crop (a
    48-px FER2013 face, an aligned crop) needs to be found: ``(boxes, scale, shift)``, where a box
    maps back to the image as ``(x - shift, y - shift, w, h) * scale``."""
    height, width = image_rgb.shape[:2]
    factor = max(1.0, CROP_FRAME_SIDE / max(height, width))
    enlarged = cv2.resize(image_rgb, (round(width * factor), round(height * factor)), interpolation=cv2.INTER_CUBIC) \
        if factor > 1 else image_rgb
    border = round(CROP_FRAME_BORDER * max(enlarged.shape[:2]))
    framed = cv2.copyMakeBorder(np.ascontiguousarray(enlarged), border, border, border, border, cv2.BORDER_CONSTANT,
                                value=(128, 128, 128))
    return detector.detect(framed), 1.0 / factor, float(border)


def non_max_suppression(faces: Sequence[ScoredBox], *, iou: float = NMS_IOU) -> list[int]:
    """Indices (ascending) of the boxes greedy non-maximum suppression keeps: boxes are taken by
    score, highest first (unscored ones after every scored one, larger before smaller, then in
    the given order), and each is dropped when its IoU with a box already kept exceeds ``iou``
    (``iou=1`` keeps every box)."""
    def rank(i: int) -> tuple[int, float, int, int]:
        face = faces[i]
        scored = face.score is not None and not math.isnan(face.score)
        score = float(face.score) if scored else 0.0  # type: ignore[arg-type]
        return (0 if scored else 1, -score, -face.box.w * face.box.h, i)

    kept: list[int] = []
    for i in sorted(range(len(faces)), key=rank):
        if all(box_iou(faces[i].box, faces[j].box) <= iou for j in kept):
            kept.append(i)
    return sorted(kept)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes (0 for boxes without area)."""
    ix = max(0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    union = a.w * a.h + b.w * b.h - ix * iy
    return ix * iy / union if union > 0 else 0.0


def _scored(item: Any, detector: object) -> ScoredBox:
    """A detector's box as a :class:`ScoredBox` of floats: from a ``Box`` / ``(x, y, w, h)``, a
    ``ScoredBox`` / ``(box, score)`` pair, or an ``(x, y, w, h, score)`` row."""
    try:
        if len(item) == 2:
            box, score = item
        elif len(item) == 5:
            box, score = item[:4], item[4]
        else:
            box, score = item, None
        values = Box(*(float(v) for v in box))  # type: ignore[arg-type]
        return ScoredBox(values, None if score is None else float(score))
    except (TypeError, ValueError):
        raise TypeError(
            f"{type(detector).__name__}.detect returned {item!r}; a detector returns boxes (x, y, w, h), "
            "(box, score) pairs or (x, y, w, h, score) rows"
        ) from None


def _clip(box: Box, scale: float, width: int, height: int) -> Box | None:
    """``box`` scaled by ``scale``, rounded to pixels and clipped to the image; None when no pixel
    of it lies inside (or a coordinate is not finite)."""
    values = [v * scale for v in box]
    if not all(math.isfinite(v) for v in values):
        return None
    x, y, w, h = values
    left, top = max(0, round(x)), max(0, round(y))
    right, bottom = min(width, round(x + w)), min(height, round(y + h))
    if right <= left or bottom <= top:
        return None
    return Box(left, top, right - left, bottom - top)
