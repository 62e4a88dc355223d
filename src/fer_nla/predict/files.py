"""Predictions for files and folders, one record per file, failures reported and skipped.

Faces from consecutive files (and video frames) are classified together in batches of the
predictor's ``batch_size``; a file that cannot be read, decoded or opened gets a record with
``error`` set and the run goes on. A video that gives fewer frames than its container states
(truncated or damaged) keeps the predictions of the frames read and gets a note ("read 3 of 10
frames; ..."); with ``strict`` that note is its ``error`` too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic

import cv2
import numpy as np

from fer_nla.errors import InputError
from fer_nla.image_files import frame_count, iter_image_frames
from fer_nla.inference.classify import face_predictions
from fer_nla.inference.faces import ScoredBox
from fer_nla.predict.annotate import (
    AnnotatedVideo,
    check_annotate_dir,
    draw_faces,
    plan_annotated_paths,
    save_animation,
    save_image,
)
from fer_nla.predict.detectors import CROP_HINT_SIDE
from fer_nla.predict.inputs import (
    FALLBACK_FPS,
    FollowedFrames,
    InputFile,
    VideoFrames,
    VideoInfo,
    collect_inputs,
    iter_frames,
    open_video,
    read_image,
)
from fer_nla.predict.predictor import Predictor
from fer_nla.predict.records import NO_FACE_NOTE, FileRecord, Predictions, SampledFrame
from fer_nla.predict.smoothing import TrackSmoother
from fer_nla.predict.tracking import FaceTracker

MAX_DRAWN_FRAMES = 300  # frames of an animated image's annotated copy (held in memory until written)
MAX_HELD_PIXELS = 40_000_000  # images kept for annotation before the queue is classified early
FILE_ERRORS = (InputError, OSError, ValueError, cv2.error)


@dataclass
class _Item:
    """Faces of one image or frame waiting to be classified, and where its drawing goes."""

    record: FileRecord
    boxes: list[ScoredBox]
    crops: list[np.ndarray]
    frame: SampledFrame | None = None  # None: a photo
    tracks: list[int] | None = None  # a video frame's faces: their track ids
    smoother: TrackSmoother | None = None  # --smooth: the video's per-track moving average
    image: np.ndarray | None = None  # kept only when annotating
    sink: Callable[[np.ndarray], object] | None = None


@dataclass
class _FaceQueue:
    """Collects faces across files and classifies them once ``batch_size`` are waiting."""

    predictor: Predictor
    smooth: float | None = None  # seconds: each video gets a TrackSmoother
    items: list[_Item] = field(default_factory=list)

    def video_state(self) -> tuple[FaceTracker, TrackSmoother | None]:
        """A new video's tracker, and its smoother under ``smooth``."""
        return FaceTracker(), None if self.smooth is None else TrackSmoother(self.smooth)

    def add(self, item: _Item) -> None:
        self.items.append(item)
        faces = sum(len(i.crops) for i in self.items)
        held = sum(i.image.size // 3 for i in self.items if i.image is not None)
        if faces >= self.predictor.batch_size or held > MAX_HELD_PIXELS:
            self.flush()

    def discard(self, record: FileRecord) -> None:
        self.items = [i for i in self.items if i.record is not record]

    def flush(self) -> None:
        """Classifies the waiting faces and adds them to their records, then draws the frames
        (a sink that raises, a window closed with q, loses drawings, never predictions)."""
        items = self.items
        probs, offset = self.predictor.probabilities([crop for item in items for crop in item.crops]), 0
        self.items = []
        drawn = []
        for item in items:
            frame, time = (item.frame.frame, item.frame.time) if item.frame is not None else (None, None)
            rows = probs[offset:offset + len(item.boxes)]
            if item.smoother is not None and item.tracks:
                clock = _clock(item.frame)  # type: ignore[arg-type] - tracked items are frames
                rows = np.stack([item.smoother.smooth(t, clock, row) for t, row in zip(item.tracks, rows)])
            faces = face_predictions(item.boxes, rows, class_names=self.predictor.class_names, frame=frame, time=time,
                                     track_ids=item.tracks)
            offset += len(item.boxes)
            item.record.faces.extend(faces)
            drawn.append(faces)
        for item, faces in zip(items, drawn):
            if item.sink is not None and item.image is not None:
                caption = NO_FACE_NOTE if not faces and item.frame is None else None  # photos only
                item.sink(draw_faces(item.image, faces, caption=caption))


def predict_files(
    predictor: Predictor,
    paths: Sequence[str | Path | InputFile],
    *,
    every: int = 1,
    faces_cropped: bool = False,
    annotate_dir: str | Path | None = None,
    no_face_is_error: bool = False,
    strict: bool = False,
    exclude: Sequence[str | Path] = (),
    on_record: Callable[[FileRecord], object] | None = None,
    smooth: float | None = None,
    fps: float | None = None,
    duration: float | None = None,
    show: Callable[[np.ndarray], object] | None = None,
    follow: float | None = None,
) -> Predictions:
    """One record per file under ``paths`` (folders recursively, videos every ``every``-th
    frame), plus one per path that is missing or an empty folder (``error`` set), as a
    :class:`~fer_nla.predict.records.Predictions` list (``.to_pandas()`` gives the CSV's table).

    A file with no face gets ``faces=[]`` and ``note="no face found"``; it counts as a failure
    (``error`` set too) only with ``no_face_is_error``. A video read only in part gets a note
    (``"read 3 of 10 frames; ..."``); with ``strict`` it counts as a failure (``error`` set to
    that note, the faces of the frames read kept). ``strict`` does not make a missing face an
    error: that is ``no_face_is_error``'s.

    ``annotate_dir`` receives copies of images and videos with boxes and labels drawn,
    mirroring the inputs' paths relative to their common parent folder (see
    :func:`fer_nla.predict.inputs.collect_inputs` and
    :func:`fer_nla.predict.annotate.plan_annotated_paths`); it is never read as input, and it
    may not be an input or hold one (:class:`InputError`). ``exclude`` names further files and
    folders never read as inputs (the run's own outputs, e.g. its CSV file). ``on_record`` is
    called with each record once its file is done (for progress output). ``smooth`` (seconds)
    replaces each tracked video face's probabilities with their moving average over its track
    (:class:`fer_nla.predict.smoothing.TrackSmoother`); ``None`` (default) keeps them per frame.

    Stream URLs (``rtsp://``, ``http://`` MJPEG, ...) in ``paths`` are read live, as is a camera
    given as :func:`fer_nla.predict.inputs.live_input` (``live_input(0)``); their times are
    seconds on the clock since they opened. ``fps`` samples about that many frames per second
    (instead of ``every``), ``duration`` stops each video after that many seconds (of its own
    time; a live source's clock). Ctrl-C ends the run cleanly: the video being read keeps the
    frames classified so far (its note says so), the files not reached get no record, and the
    result's ``interrupted`` is True. ``show`` receives each video frame drawn (a window).
    ``follow`` (seconds) reads video files as recordings still being written
    (:class:`~fer_nla.predict.inputs.FollowedFrames`): at a file's end, wait for more frames until
    none came for that long.
    """
    if every < 1:
        raise InputError(f"every must be 1 or more (predict every k-th video frame), got {every}")
    for name, value in (("fps", fps), ("duration", duration), ("follow", follow)):
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise InputError(f"{name} must be a positive number (or None), got {value!r}")
    if fps is not None and every != 1:
        raise InputError("give every (every k-th frame) or fps (frames per second), not both")
    sampling = _Sampling(every, fps, duration, follow)
    if smooth is not None and not (isinstance(smooth, (int, float)) and math.isfinite(smooth) and smooth > 0):
        raise InputError(f"smooth must be a positive number of seconds (or None: no smoothing), got {smooth!r}")
    out_dir = check_annotate_dir(annotate_dir, paths) if annotate_dir is not None else None
    files, problems = collect_inputs(paths, exclude=[*exclude, *([out_dir] if out_dir is not None else [])])
    targets = plan_annotated_paths(files, out_dir) if out_dir is not None else [None] * len(files)
    records = Predictions(FileRecord(str(problem.path), error=problem.error) for problem in problems)
    for record in records:
        if on_record is not None:
            on_record(record)
    queue = _FaceQueue(predictor, smooth=smooth)
    finished: list[FileRecord] = []
    for item, target in zip(files, targets):
        frames = 1 if item.is_video else frame_count(item.path)  # an animated GIF/WebP/APNG: a short video
        record = FileRecord(item.label, frames=[] if item.is_video or frames > 1 else None)
        records.append(record)
        try:
            if item.is_video:
                partial, records.interrupted = _queue_video(queue, item, record, sampling=sampling, target=target,
                                                           faces_cropped=faces_cropped, show=show)
                if partial is not None and strict:
                    record.error = partial
            elif frames > 1:
                _queue_animation(queue, item, record, frames=frames, every=every, faces_cropped=faces_cropped,
                                 target=target)
            else:
                _queue_image(queue, item, record, faces_cropped=faces_cropped, target=target)
        except FILE_ERRORS as err:
            queue.discard(record)
            record.faces.clear()
            record.frames = [] if record.frames is not None else None
            record.error = str(err) or type(err).__name__
        except KeyboardInterrupt:  # between a video's frames it is caught there; here: an image, an animation
            records.interrupted = True
            record.note = "ended by Ctrl-C"
        finished.append(record)
        if not queue.items:
            _finish(finished, no_face_is_error=no_face_is_error, on_record=on_record)
        if records.interrupted:
            break
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


def _queue_image(queue: _FaceQueue, item: InputFile, record: FileRecord, *, faces_cropped: bool,
                 target: Path | None) -> None:
    image = read_image(item.path)
    boxes, crops = queue.predictor.faces_and_crops(image, faces_cropped=faces_cropped)
    height, width = image.shape[:2]
    if not boxes and max(height, width) <= CROP_HINT_SIDE:  # detected as a crop too, and still nothing
        record.note = (f"{NO_FACE_NOTE}; if this {width}x{height} image is a face crop, pass --faces-cropped to "
                       "classify it whole")
    sink = None
    if target is not None:
        sink = lambda drawn: save_image(drawn, target)  # noqa: E731 - bound to this file's target
    queue.add(_Item(record, boxes, crops, image=image if sink else None, sink=sink))


def _queue_animation(queue: _FaceQueue, item: InputFile, record: FileRecord, *, frames: int, every: int,
                     faces_cropped: bool, target: Path | None) -> None:
    """Queues every ``every``-th frame of an animated image as a video's frames (each listed in
    ``record.frames``, its time from the stated frame durations) and notes that it was read so;
    the annotated copy is the same kind of animation, of its first :data:`MAX_DRAWN_FRAMES`
    sampled frames (they are held in memory until it is written)."""
    drawn: list[np.ndarray] = []
    state = queue.video_state()
    for index, time, frame in iter_image_frames(item.path, every=every):
        drawing = target is not None and len(record.frames or []) < MAX_DRAWN_FRAMES
        _queue_frame(queue, record, SampledFrame(index, None if time is None else round(time, 3)), np.asarray(frame),
                     faces_cropped=faces_cropped, sink=drawn.append if drawing else None, state=state)
    queue.flush()
    if target is not None and drawn:
        save_animation(drawn, target)
    read = len(record.frames or [])
    note = f"an animated image of {frames} frames, read as a video ({_frames(read)} classified)"
    if target is not None and read > MAX_DRAWN_FRAMES:
        note += f"; the annotated copy shows the first {MAX_DRAWN_FRAMES}"
    record.note = note if record.faces else f"{NO_FACE_NOTE} in {_frames(read)} read; {note}"


def _queue_frame(queue: _FaceQueue, record: FileRecord, sampled: SampledFrame, frame: np.ndarray, *,
                 faces_cropped: bool, sink: Callable[[np.ndarray], object] | None,
                 state: tuple[FaceTracker, TrackSmoother | None]) -> None:
    """Lists one sampled frame of a video or animation in ``record.frames`` and queues its faces,
    each with its id from the video's tracker (``state``: :meth:`_FaceQueue.video_state`; a
    video without stated frame rate is timed at :data:`FALLBACK_FPS`); ``sink`` receives the
    frame drawn (``None``: not drawn, not held)."""
    boxes, crops = queue.predictor.faces_and_crops(frame, faces_cropped=faces_cropped)
    record.frames.append(sampled)  # type: ignore[union-attr] - listed once searched (a Ctrl-C in detection: not)
    tracker, smoother = state
    tracks = tracker.update([face.box for face in boxes], time=_clock(sampled))
    queue.add(_Item(record, boxes, crops, frame=sampled, tracks=tracks, smoother=smoother,
                    image=frame if sink else None, sink=sink))


def _clock(sampled: SampledFrame) -> float:
    """A sampled frame's time in seconds for tracking, smoothing and --duration: its stated time,
    else its index at :data:`FALLBACK_FPS` (a video that states no frame rate)."""
    return sampled.time if sampled.time is not None else sampled.frame / FALLBACK_FPS


def _frames(count: int) -> str:
    return f"{count} frame{'s' if count != 1 else ''}"


@dataclass(frozen=True)
class _Sampling:
    """Which video frames are read: every ``every``-th, or about ``fps`` per second (by their
    times), for at most ``duration`` seconds (``None``: to the end, or Ctrl-C for a live source)."""

    every: int = 1
    fps: float | None = None
    duration: float | None = None
    follow: float | None = None  # seconds without a new frame before a growing file counts as finished

    def step(self, info: VideoInfo) -> int:
        """The frame step for a file: ``every``, or the stated frame rate over ``fps``."""
        return self.every if self.fps is None else max(1, round(info.fps / self.fps))


def _queue_video(queue: _FaceQueue, item: InputFile, record: FileRecord, *, sampling: _Sampling,
                 faces_cropped: bool, target: Path | None, show: Callable[[np.ndarray], object] | None = None,
                 ) -> tuple[str | None, bool]:
    """Queues the sampled frames of a video, stream or camera (each one listed in
    ``record.frames``) and sets its notes; returns the partial-read note (``"read 3 of 10 frames;
    ..."``) or ``None``, and whether Ctrl-C ended it. A live source is timed by the clock from
    its opening, sampled by time under ``fps`` (at most that many frames per second), and
    classified frame by frame (no batching across frames: its records and ``show`` keep up)."""
    capture, info = open_video(item.source if item.live else item.path)
    step = sampling.step(info)
    writer, interrupted, started, cut = None, False, monotonic(), False
    try:
        if target is not None:
            rate = (sampling.fps or info.fps) if item.live else info.fps / step  # the copy plays in real time
            writer = AnnotatedVideo(target, fps=rate, width=info.width, height=info.height)
        sinks = [s for s in (writer.write if writer else None, show) if s is not None]
        if sampling.follow is not None and not item.live:
            capture.release()
            frames: VideoFrames = FollowedFrames(item.path, every=step, idle_s=sampling.follow)
        else:
            frames = iter_frames(capture, every=1 if item.live else step)
        state, due = queue.video_state(), 0.0
        try:
            for index, frame in frames:
                sampled = SampledFrame(index, round(monotonic() - started, 3) if item.live else info.time_of(index))
                clock = _clock(sampled)
                if sampling.duration is not None and clock > sampling.duration:
                    cut = True  # stopped by --duration: the rest is not missing
                    break
                if item.live and (clock < due if sampling.fps else index % step):
                    continue
                due = clock + 1.0 / sampling.fps if sampling.fps else due  # never two frames closer than that
                _queue_frame(queue, record, sampled, frame, faces_cropped=faces_cropped,
                             sink=(lambda drawn: [sink(drawn) for sink in sinks]) if sinks else None, state=state)
                if item.live:
                    queue.flush()
        except KeyboardInterrupt:
            interrupted = True
        queue.flush()  # this video's frames are drawn before its writer closes
    finally:
        capture.release()
        if writer is not None:
            writer.close()
    seconds = monotonic() - started
    return _video_notes(item, record, frames, info, interrupted=interrupted, cut=cut, seconds=seconds), interrupted


def _video_notes(item: InputFile, record: FileRecord, frames: VideoFrames, info: VideoInfo, *, interrupted: bool,
                 cut: bool, seconds: float) -> str | None:
    """Sets a video's note (no face; read in part; ended by Ctrl-C) and returns the partial-read
    note (never after ``interrupted`` or a ``cut`` by --duration); :class:`InputError` when no
    frame could be read."""
    if frames.sampled == 0 and not interrupted:
        if item.live:
            raise InputError(f"{item.label}: no frame came from it; check that it is sending video")
        stated = f" (its container states {info.frame_count} frames)" if info.frame_count else ""
        raise InputError(f"{item.path}: no frame of the video could be decoded{stated}; it is truncated, "
                         "damaged or in a codec this OpenCV build cannot decode")
    growing = isinstance(frames, FollowedFrames)  # its container's count was stated before it grew
    partial = None if interrupted or cut or item.live or growing else frames.shortfall(info.frame_count)
    read = len(record.frames or [])
    notes = [] if record.faces else [f"{NO_FACE_NOTE} in {_frames(read)} read"]
    if interrupted:
        notes.append(f"ended by Ctrl-C after {seconds:.1f} s ({_frames(read)} classified)")
    record.note = "; ".join([*notes, *([partial] if partial else [])]) or None
    return partial
