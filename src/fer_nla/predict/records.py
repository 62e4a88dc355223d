"""Prediction records (one per input file) and their JSON and CSV forms.

A record is ``{"file", "faces", "error", "note"}``; each face is ``{"box": [x, y, w, h],
"label", "probs": {class name: probability}}`` plus ``"frame"`` (the frame index) for videos.
``error`` is ``None`` or what went wrong (the file was not predicted); ``note`` is ``None`` or
a remark that is not a failure (``"no face found"``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from fer_nla.predict.detectors import Box

NO_FACE_NOTE = "no face found"
CSV_FIELDS: tuple[str, ...] = ("file", "frame", "face", "x", "y", "w", "h", "label")
CSV_TAIL: tuple[str, ...] = ("error", "note")


@dataclass
class FacePrediction:
    """One face: its box in the image's pixels, the top class and every class's probability."""

    box: Box
    label: str
    probs: dict[str, float]
    frame: int | None = None

    @classmethod
    def from_probs(cls, box: Box, probs: np.ndarray, *, class_names: Sequence[str], frame: int | None = None) -> FacePrediction:
        return cls(box=Box(*(int(v) for v in box)), label=class_names[int(np.argmax(probs))],
                   probs={name: float(p) for name, p in zip(class_names, probs)}, frame=frame)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"box": list(self.box), "label": self.label, "probs": dict(self.probs)}
        if self.frame is not None:
            out["frame"] = self.frame
        return out


@dataclass
class FileRecord:
    """The predictions for one input file, or why there are none."""

    file: str
    faces: list[FacePrediction] = field(default_factory=list)
    error: str | None = None
    note: str | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "faces": [f.to_dict() for f in self.faces], "error": self.error, "note": self.note}


def records_to_json(records: Sequence[FileRecord], *, indent: int | None = None) -> str:
    """One JSON list with a record per file."""
    return json.dumps([r.to_dict() for r in records], indent=indent)


def write_csv(records: Sequence[FileRecord], target: str | Path | TextIO, *, class_names: Sequence[str]) -> None:
    """One row per face (``file, frame, face`` (its number in the frame)``, x, y, w, h, label``, a probability column per
    class, ``error, note``); a file without faces gets one row with the face columns empty."""
    header = [*CSV_FIELDS, *(f"p_{name}" for name in class_names), *CSV_TAIL]

    def write(handle: TextIO) -> None:
        writer = csv.writer(handle)
        writer.writerow(header)
        for record in records:
            if not record.faces:
                writer.writerow([record.file, *[""] * (len(CSV_FIELDS) - 1 + len(class_names)),
                                 record.error or "", record.note or ""])
            per_frame: dict[int | None, int] = {}
            for face in record.faces:
                index = per_frame[face.frame] = per_frame.get(face.frame, -1) + 1  # face number within its frame
                frame = "" if face.frame is None else face.frame
                writer.writerow([record.file, frame, index, *face.box, face.label,
                                 *(f"{face.probs[name]:.6f}" for name in class_names),
                                 record.error or "", record.note or ""])

    if isinstance(target, (str, Path)):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", newline="", encoding="utf-8") as handle:
            write(handle)
    else:
        write(target)
