"""Face detectors: a small interface, OpenCV's Haar cascade as the offline baseline, a registry.

A detector is any object with ``detect(image_rgb) -> list[Box]`` taking an ``HxWx3`` uint8 RGB
array. :func:`detect_faces` wraps any detector: it downsizes very large images before detection
and maps the boxes back to the original pixel coordinates. Register another detector (a DNN,
RetinaFace, ...) from another package under the ``fer_nla.detectors`` entry-point group, or
pass a detector object, and select it by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, runtime_checkable

import cv2
import numpy as np

from fer_nla.errors import InputError

DEFAULT_MAX_SIDE = 1600  # longest side an image is detected at; larger ones are downsized first


class Box(NamedTuple):
    """A face box in pixels of the image it was found in: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in an ``HxWx3`` uint8 RGB array; boxes in that array's pixel coordinates."""

    def detect(self, image_rgb: np.ndarray) -> list[Box]: ...


@dataclass
class HaarCascadeDetector:
    """OpenCV's frontal-face Haar cascade (the file ships inside the opencv-python 4.x wheels).

    ``min_size`` is the smallest face side in pixels (48 px faces and up by default);
    ``scale_factor`` and ``min_neighbors`` trade recall against false positives as in
    ``cv2.CascadeClassifier.detectMultiScale``. ``cascade`` names a file in
    ``cv2.data.haarcascades`` or is a path to a cascade XML. ``equalize`` (histogram
    equalisation before detection) is off: on photos dominated by background it shifts the
    faces' contrast and loses faces the plain grey image keeps.
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

    def detect(self, image_rgb: np.ndarray) -> list[Box]:
        gray = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2GRAY)
        if self.equalize:
            gray = cv2.equalizeHist(gray)
        found = self._classifier.detectMultiScale(
            gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(self.min_size, self.min_size),
        )
        return reading_order([Box(int(x), int(y), int(w), int(h)) for x, y, w, h in np.asarray(found).reshape(-1, 4)])


def reading_order(boxes: list[Box]) -> list[Box]:
    """Boxes in rows from top to bottom, left to right within a row; a box starts a new row when
    its centre lies more than half its height below the centre of the row's first box."""
    rows: list[list[Box]] = []
    for box in sorted(boxes, key=lambda b: b.y + b.h / 2):
        first = rows[-1][0] if rows else None
        if first is not None and (box.y + box.h / 2) - (first.y + first.h / 2) <= box.h / 2:
            rows[-1].append(box)
        else:
            rows.append([box])
    return [box for row in rows for box in sorted(row, key=lambda b: b.x)]


DetectorFactory = Callable[..., FaceDetector]
BUILTIN_DETECTORS: Mapping[str, DetectorFactory] = MappingProxyType({"haar": HaarCascadeDetector})
ENTRY_POINT_GROUP = "fer_nla.detectors"  # other packages add detectors by name here


def _factories() -> dict[str, DetectorFactory]:
    found: dict[str, DetectorFactory] = {ep.name: ep.load for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return {**found, **BUILTIN_DETECTORS}


def available_detectors() -> list[str]:
    """Names :func:`build_detector` accepts: the built-in ones and those other installed
    packages declare under the ``fer_nla.detectors`` entry-point group."""
    return sorted(_factories())


def build_detector(name: str | FaceDetector = "haar", **options: Any) -> FaceDetector:
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


def detect_faces(detector: FaceDetector, image_rgb: np.ndarray, *, max_side: int = DEFAULT_MAX_SIDE) -> list[Box]:
    """Faces in ``image_rgb`` in its own pixel coordinates; images whose longest side exceeds
    ``max_side`` are downsized (area interpolation) for detection and the boxes scaled back."""
    height, width = image_rgb.shape[:2]
    scale = max(height, width) / max_side
    if scale <= 1:
        return [_clip(box, width, height) for box in detector.detect(image_rgb)]
    small = cv2.resize(image_rgb, (max(1, round(width / scale)), max(1, round(height / scale))), interpolation=cv2.INTER_AREA)
    boxes = []
    for box in detector.detect(small):
        boxes.append(_clip(Box(round(box.x * scale), round(box.y * scale), round(box.w * scale), round(box.h * scale)), width, height))
    return boxes


def _clip(box: Box, width: int, height: int) -> Box:
    x, y = max(0, box.x), max(0, box.y)
    return Box(x, y, max(1, min(box.x + box.w, width) - x), max(1, min(box.y + box.h, height) - y))
