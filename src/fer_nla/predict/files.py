"""Predictions for files and folders, one record per file, failures reported and skipped.

Faces from consecutive files (and video frames) are classified together in batches of the
predictor's ``batch_size``; a file that cannot be read, decoded or opened gets a record with
``error`` set and the run goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from fer_nla.errors import InputError
from fer_nla.predict.annotate import AnnotatedVideo, annotated_image_path, annotated_video_path, draw_faces, save_image
from fer_nla.predict.detectors import Box
from fer_nla.predict.inputs import InputFile, collect_inputs, iter_frames, open_video, read_image
from fer_nla.predict.predictor import Predictor
from fer_nla.predict.records import NO_FACE_NOTE, FacePrediction, FileRecord

MAX_HELD_PIXELS = 40_000_000  # images kept for annotation before the queue is classified early
FILE_ERRORS = (InputError, OSError, ValueError, cv2.error)


@dataclass
class _Item:
    """Faces of one image or frame waiting to be classified, and where its drawing goes."""

    record: FileRecord
    boxes: list[Box]
    crops: list[np.ndarray]
    frame: int | None = None
    image: np.ndarray | None = None  # kept only when annotating
    sink: Callable[[np.ndarray], object] | None = None


@dataclass
class _FaceQueue:
    """Collects faces across files and classifies them once ``batch_size`` are waiting."""

    predictor: Predictor
    items: list[_Item] = field(default_factory=list)

    def add(self, item: _Item) -> None:
        self.items.append(item)
        faces = sum(len(i.crops) for i in self.items)
        held = sum(i.image.size // 3 for i in self.items if i.image is not None)
        if faces >= self.predictor.batch_size or held > MAX_HELD_PIXELS:
            self.flush()

    def discard(self, record: FileRecord) -> None:
        self.items = [i for i in self.items if i.record is not record]

    def flush(self) -> None:
        items, self.items = self.items, []
        probs = self.predictor.probabilities([crop for item in items for crop in item.crops])
        names, offset = self.predictor.class_names, 0
        for item in items:
            faces = [FacePrediction.from_probs(box, probs[offset + i], class_names=names, frame=item.frame)
                     for i, box in enumerate(item.boxes)]
            offset += len(item.boxes)
            item.record.faces.extend(faces)
            if item.sink is not None and item.image is not None:
                item.sink(draw_faces(item.image, faces))


def predict_files(
    predictor: Predictor,
    paths: Sequence[str | Path],
    *,
    every: int = 1,
    faces_cropped: bool = False,
    annotate_dir: str | Path | None = None,
    no_face_is_error: bool = False,
    on_record: Callable[[FileRecord], object] | None = None,
) -> list[FileRecord]:
    """One record per file under ``paths`` (folders recursively, videos every ``every``-th
    frame), plus one per path that is missing or an empty folder (``error`` set).

    A file with no face gets ``faces=[]`` and ``note="no face found"``; it counts as a failure
    (``error`` set too) only with ``no_face_is_error``. ``annotate_dir`` receives copies of
    images and videos with boxes and labels drawn, mirroring the inputs' relative paths.
    ``on_record`` is called with each record once its file is done (for progress output).
    """
    if every < 1:
        raise InputError(f"every must be 1 or more (predict every k-th video frame), got {every}")
    files, problems = collect_inputs(paths)
    records = [FileRecord(str(problem.path), error=problem.error) for problem in problems]
    for record in records:
        if on_record is not None:
            on_record(record)
    out_dir = Path(annotate_dir) if annotate_dir is not None else None
    queue = _FaceQueue(predictor)
    finished: list[FileRecord] = []
    for item in files:
        record = FileRecord(str(item.path))
        records.append(record)
        try:
            if item.is_video:
                _queue_video(queue, item, record, every=every, faces_cropped=faces_cropped, out_dir=out_dir)
            else:
                _queue_image(queue, item, record, faces_cropped=faces_cropped, out_dir=out_dir)
        except FILE_ERRORS as err:
            queue.discard(record)
            record.faces.clear()
            record.error = str(err) or type(err).__name__
        finished.append(record)
        if not queue.items:
            _finish(finished, no_face_is_error=no_face_is_error, on_record=on_record)
    queue.flush()
    _finish(finished, no_face_is_error=no_face_is_error, on_record=on_record)
    return records


def _finish(records: list[FileRecord], *, no_face_is_error: bool, on_record: Callable[[FileRecord], object] | None) -> None:
    for record in records:
        if record.error is None and not record.faces:
            record.note = record.note or NO_FACE_NOTE
            if no_face_is_error:
                record.error = NO_FACE_NOTE
        if on_record is not None:
            on_record(record)
    records.clear()


def _queue_image(queue: _FaceQueue, item: InputFile, record: FileRecord, *, faces_cropped: bool, out_dir: Path | None) -> None:
    image = read_image(item.path)
    boxes, crops = queue.predictor.faces_and_crops(image, faces_cropped=faces_cropped)
    sink = None
    if out_dir is not None:
        target = annotated_image_path(out_dir, item.output_name)
        sink = lambda drawn: save_image(drawn, target)  # noqa: E731 - bound to this file's target
    queue.add(_Item(record, boxes, crops, image=image if sink else None, sink=sink))


def _queue_video(queue: _FaceQueue, item: InputFile, record: FileRecord, *, every: int, faces_cropped: bool,
                 out_dir: Path | None) -> None:
    capture, info = open_video(item.path)
    writer = None
    frames = 0
    try:
        if out_dir is not None:
            writer = AnnotatedVideo(annotated_video_path(out_dir, item.output_name), fps=info.fps / every,
                                    width=info.width, height=info.height)
        for index, frame in iter_frames(capture, every=every):
            boxes, crops = queue.predictor.faces_and_crops(frame, faces_cropped=faces_cropped)
            queue.add(_Item(record, boxes, crops, frame=index, image=frame if writer else None,
                            sink=writer.write if writer else None))
            frames += 1
        queue.flush()  # this video's frames are drawn before its writer closes
    finally:
        capture.release()
        if writer is not None:
            writer.close()
    if frames == 0:
        raise InputError(f"{item.path}: no frame of the video could be decoded")
    if not record.faces:
        record.note = f"{NO_FACE_NOTE} in {frames} frame{'s' if frames != 1 else ''} read"
