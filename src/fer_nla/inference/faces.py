"""Faces as the inference path knows them: a box, its detector score, its square crop, and the
prediction made for it (:class:`FacePrediction`, the record ``predict``, ``serve`` and the
Python API return for every face).

Nothing here imports PyTorch or OpenCV.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

# Added on each side, as a fraction of the box side. 0: RetinaFace's and Haar's boxes already frame a
# face as FER2013/FERPlus crops do (box side 1.03 and 0.97 of the 48-px frame,
# benchmarks/results/detectors.md); on 800 FERPlus valid faces in photos the built-in model scores
# 88.75% with margin 0 (as the bare crops), 84.50% with 0.1, 76.88% with 0.2
# (benchmarks/results/crop_margin.md). Raise it for a model trained on looser crops.
DEFAULT_MARGIN = 0.0


class Box(NamedTuple):
    """A face box in pixels of the image it was found in: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int


class ScoredBox(NamedTuple):
    """A box with its detector's confidence (``None`` where the detector gives none). Scores are
    the detector's own scale (Haar: the last cascade stage's weight), comparable within one detector."""

    box: Box
    score: float | None = None


@dataclass
class FacePrediction:
    """One face: its box in the image's pixels, the top class and every class's probability;
    in videos also its ``frame`` index, ``time`` in seconds and ``track_id`` (the same person
    keeps one id from frame to frame: :class:`fer_nla.predict.tracking.FaceTracker`)."""

    box: Box
    label: str
    probs: dict[str, float]
    frame: int | None = None
    time: float | None = None
    score: float | None = None  # the detector's confidence; None for cropped inputs
    track_id: int | None = None  # videos: the face's track; None for photos

    @classmethod
    def from_probs(cls, box: Box | ScoredBox, probs: np.ndarray, *, class_names: Sequence[str], frame: int | None = None,
                   time: float | None = None, score: float | None = None,
                   track_id: int | None = None) -> FacePrediction:
        """The prediction for ``box`` (a ``ScoredBox`` brings its detector score) from its class
        probabilities ``probs`` (``[C]``, in ``class_names`` order); the label is their argmax."""
        if isinstance(box, ScoredBox):
            box, score = box.box, box.score if score is None else score
        return cls(box=Box(*(int(v) for v in box)), label=class_names[int(np.argmax(probs))],
                   probs={name: float(p) for name, p in zip(class_names, probs)}, frame=frame,
                   time=time, score=None if score is None else float(score), track_id=track_id)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"box": list(self.box), "score": self.score, "label": self.label, "probs": dict(self.probs)}
        if self.frame is not None:
            out["frame"] = self.frame
            out["time"] = self.time
            out["track_id"] = self.track_id
        return out


def expand_box(box: Box, *, margin: float = DEFAULT_MARGIN) -> Box:
    """The square box centred on ``box`` whose side is its longer side plus ``margin`` of it on
    each side (it may reach outside the image; :func:`crop_face` pads such parts)."""
    side = max(box.w, box.h) * (1.0 + 2.0 * margin)
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    size = max(1, round(side))
    return Box(round(cx - size / 2.0), round(cy - size / 2.0), size, size)


def crop_face(image_rgb: np.ndarray, box: Box, *, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The square crop around ``box`` with ``margin``; parts outside the image repeat its edge
    pixels, so a face at the border keeps its proportions."""
    height, width = image_rgb.shape[:2]
    x, y, w, h = expand_box(box, margin=margin)
    left, top, right, bottom = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if right <= left or bottom <= top:
        raise ValueError(f"box {tuple(box)} lies outside the {width}x{height} image")
    crop = image_rgb[top:bottom, left:right]
    pad = ((top - y, y + h - bottom), (left - x, x + w - right), (0, 0))
    if any(p for pair in pad for p in pair):
        crop = np.pad(crop, pad, mode="edge")
    return crop
