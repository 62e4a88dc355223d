"""Prediction records (one per input file) and their JSON and CSV forms.

A record is ``{"file", "faces", "error", "note"}``; each face is ``{"box": [x, y, w, h],
"score", "label", "probs": {class name: probability}}``, ``score`` being the face detector's
confidence (``null`` for ``faces_cropped`` inputs and detectors without scores). ``error`` is
``None`` or what went wrong (the file was not predicted; under ``--strict`` also a video read
only in part, whose faces from the frames read are kept); ``note`` is ``None`` or a remark that
is not a failure (``"no face found"``, ``"read 3 of 10 frames; ..."``).

A video's record also has ``"frames"``: every sampled frame that was read, in order, as
``{"frame": index, "time": seconds, "faces": number of faces in it}`` (``"faces": 0`` for a
frame without a face; ``[]`` when no frame could be read), and each of its faces carries
``"frame"``, ``"time"`` and ``"track_id"`` too (the same person keeps one id across frames:
:mod:`fer_nla.predict.tracking`). ``time`` is frame index / frame rate in seconds, rounded to the
millisecond (``null`` when the container states no frame rate). Image records have no
``"frames"``.

The CSV has one row per face and, for videos, one row per sampled frame without a face (its
face columns empty); an image without faces, and a file that failed, get one row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


from fer_nla.inference.faces import FacePrediction

NO_FACE_NOTE = "no face found"
CSV_FIELDS: tuple[str, ...] = ("file", "frame", "time", "face", "track", "x", "y", "w", "h", "score", "label")
CSV_TAIL: tuple[str, ...] = ("error", "note")


@dataclass(frozen=True)
class SampledFrame:
    """A video frame that was read and searched for faces: its index and time in seconds
    (``None`` when the video states no frame rate)."""

    frame: int
    time: float | None


@dataclass
class FileRecord:
    """The predictions for one input file, or why there are none.

    ``frames`` is ``None`` for images; for videos, every sampled frame that was read, in order
    (a frame without a face is in ``frames`` and has no entry in ``faces``). ``error`` is set
    when the file failed; ``note`` holds remarks that are not failures (see the module docstring
    for the JSON form)."""

    file: str
    faces: list[FacePrediction] = field(default_factory=list)
    error: str | None = None
    note: str | None = None
    frames: list[SampledFrame] | None = None

    @property
    def failed(self) -> bool:
        return self.error is not None

    def to_dict(self) -> dict[str, Any]:
        out = {"file": self.file, "faces": [f.to_dict() for f in self.faces], "error": self.error, "note": self.note}
        if self.frames is not None:
            counts = self.faces_per_frame()
            out["frames"] = [{"frame": f.frame, "time": f.time, "faces": counts.get(f.frame, 0)} for f in self.frames]
        return out

    def faces_per_frame(self) -> dict[int | None, int]:
        """How many faces each frame index holds (``None``: the image's own faces)."""
        counts: dict[int | None, int] = {}
        for face in self.faces:
            counts[face.frame] = counts.get(face.frame, 0) + 1
        return counts


def records_to_json(records: Sequence[FileRecord], *, indent: int | None = None) -> str:
    """One JSON list with a record per file."""
    return json.dumps([r.to_dict() for r in records], indent=indent)


def write_csv(records: Sequence[FileRecord], target: str | Path | TextIO, *, class_names: Sequence[str]) -> None:
    """One row per face (``file, frame, time`` (seconds)``, face`` (its number in the frame)``,
    track`` (videos: the person's track id, the same from frame to frame)``, x, y, w, h,
    score`` (the detector's, empty where there is none)``, label``, a probability column per class,
    ``error, note``); each sampled video frame without a face gets a row with its ``frame`` and
    ``time`` and the face columns empty, and an image without faces (or a file that failed) one
    row with only ``file, error, note``."""
    header = table_columns(class_names)

    def write(handle: TextIO) -> None:
        writer = csv.writer(handle)
        writer.writerow(header)
        for record in records:
            writer.writerows(_csv_rows(record, class_names))

    if isinstance(target, (str, Path)):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        with open(target, "w", newline="", encoding="utf-8") as handle:
            write(handle)
    else:
        write(target)


def table_rows(record: FileRecord, class_names: Sequence[str]) -> list[list[object]]:
    """The rows of one record as :func:`write_csv` and :meth:`Predictions.to_pandas` lay them
    out (columns: :func:`table_columns`), with typed values and ``None`` where a CSV cell is
    empty: its faces frame by frame, a row per sampled frame without one, one row for an image
    without faces or a failed file."""
    tail = [record.error, record.note]
    blank = [None] * (len(CSV_FIELDS) - 3 + len(class_names))  # everything after file, frame, time
    by_frame: dict[int | None, list[FacePrediction]] = {}
    for face in record.faces:
        by_frame.setdefault(face.frame, []).append(face)
    order: list[tuple[int | None, float | None]] = [(f.frame, f.time) for f in record.frames or []]
    listed = {frame for frame, _ in order}
    order += [(frame, faces[0].time) for frame, faces in by_frame.items() if frame not in listed]
    if not order:
        return [[record.file, None, None, *blank, *tail]]
    rows: list[list[object]] = []
    for frame, time in order:
        faces = by_frame.get(frame, [])
        if not faces:
            rows.append([record.file, frame, time, *blank, *tail])
        for index, face in enumerate(faces):  # index: the face's number within its frame
            rows.append([record.file, frame, time, index, face.track_id, *face.box, face.score, face.label,
                         *(face.probs[name] for name in class_names), *tail])
    return rows


def table_columns(class_names: Sequence[str]) -> list[str]:
    """The column names of :func:`table_rows`: :data:`CSV_FIELDS`, ``p_<class>`` per class, ``error, note``."""
    return [*CSV_FIELDS, *(f"p_{name}" for name in class_names), *CSV_TAIL]


def _csv_rows(record: FileRecord, class_names: Sequence[str]) -> list[list[object]]:
    """:func:`table_rows` as CSV cells: empty for ``None``, time to the millisecond, the score to
    6 significant digits, probabilities to 6 decimals."""
    formats = {2: "{:.3f}", len(CSV_FIELDS) - 2: "{:.6g}"}
    formats.update({len(CSV_FIELDS) + k: "{:.6f}" for k in range(len(class_names))})
    return [["" if value is None else formats[i].format(value) if i in formats else value
             for i, value in enumerate(row)] for row in table_rows(record, class_names)]


class Predictions(list):
    """The records :func:`fer_nla.predict.predict_files` returns: a ``list`` of
    :class:`FileRecord` that also converts to a table. ``interrupted``: Ctrl-C ended the run
    (the records hold what was done by then)."""

    interrupted: bool = False

    def to_pandas(self, *, class_names: Sequence[str] | None = None) -> Any:
        """A ``pandas.DataFrame`` with the CSV's rows and columns (:func:`write_csv`): ``file,
        frame, time`` (seconds)``, face, track, x, y, w, h, score, label``, ``p_<class>`` per
        class, ``error, note``; numbers as numbers (nullable ``Int64`` for frame, face, track
        and the box, float for time, score and probabilities), missing cells as ``<NA>``/NaN.
        ``class_names`` defaults to the classes of the first face. Needs pandas (the ``pandas``
        extra); raises :class:`~fer_nla.errors.InputError` naming the install command without it."""
        from fer_nla.extras import require

        require("pandas", purpose="Predictions.to_pandas()")
        import pandas as pd

        if class_names is None:
            class_names = next((list(face.probs) for record in self for face in record.faces), [])
        columns = table_columns(class_names)
        frame = pd.DataFrame([row for record in self for row in table_rows(record, class_names)], columns=columns)
        for name in ("frame", "face", "track", "x", "y", "w", "h"):
            frame[name] = frame[name].astype("Int64")
        for name in ("time", "score", *(f"p_{c}" for c in class_names)):
            frame[name] = frame[name].astype("float64")
        return frame
