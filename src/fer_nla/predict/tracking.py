"""Faces followed across video frames: one ``track_id`` per person while they stay in view.

The rule (stated, not learned; numpy only, so prediction keeps its small install):

1. **Predict.** Each live track moves on at its own velocity: its last box shifted by its
   centre's velocity (pixels per second, smoothed over its matches) times the time since it was
   last seen. Two faces that cross keep heading their own way, so the faces that meet in the
   middle are told apart by where each was going, not by which box is nearer.
2. **Match.** Every (track, face) pair gets its IoU between the predicted box and the detected
   box; pairs at ``min_iou`` or more are matched greedily, highest IoU first, each track and face
   at most once. A face left unmatched may still join a track unmatched so far whose predicted
   centre lies within ``max_shift`` box sides of its own (a fast face sampled sparsely, with
   ``--every``, overlaps its last box no more), nearest first.
3. **Start and end.** A face left unmatched starts a new track (ids count up from 0 in order
   of appearance); a track not matched for more than ``max_age`` seconds ends and its id is
   never reused (a video whose container states no frame rate is timed at 25 fps).

This is the association step of SORT (Bewley et al. 2016, "Simple Online and Realtime
Tracking") with a constant-velocity motion model in place of its Kalman filter and greedy
matching in place of the Hungarian algorithm: faces in a frame are few, and greedy highest-IoU
matching gives the same pairs whenever no face overlaps two predicted boxes better than its own.
Equal scores go to the track seen most recently (a face hidden behind another one, predicted onto
the same spot, yields the visible face to the track that was following it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fer_nla.inference.faces import Box

DEFAULT_MIN_IOU = 0.3
DEFAULT_MAX_SHIFT = 0.75  # box sides: how far a sparsely sampled face may move and still be matched by its centre
DEFAULT_MAX_AGE = 1.0  # seconds a track survives unseen (a blink of occlusion, a missed detection)
VELOCITY_SMOOTHING = 0.5  # weight of the newest velocity in the smoothed one


@dataclass
class Track:
    """One followed face: its id, last seen box and time, and its centre's velocity (px/s)."""

    track_id: int
    box: np.ndarray  # float [4]: x, y, w, h
    time: float
    velocity: np.ndarray  # float [2]: px per second
    hits: int = 1

    def predicted(self, time: float) -> np.ndarray:
        """The box expected at ``time``: the last box moved on at the track's velocity."""
        box = self.box.copy()
        box[:2] += self.velocity * (time - self.time)
        return box


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every pair: ``a`` float ``[M, 4]``, ``b`` ``[N, 4]`` boxes as
    ``x, y, w, h`` in pixels; returns float ``[M, N]`` in ``[0, 1]`` (0 for empty boxes)."""
    a, b = np.asarray(a, dtype=np.float64).reshape(-1, 4), np.asarray(b, dtype=np.float64).reshape(-1, 4)
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 0] + a[:, None, 2], b[None, :, 0] + b[None, :, 2])
    bottom = np.minimum(a[:, None, 1] + a[:, None, 3], b[None, :, 1] + b[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


class FaceTracker:
    """Assigns a ``track_id`` to each face of successive frames of one video (see the module
    docstring for the rule). Feed frames in time order with :meth:`update`; one tracker per video.

    Keyword-only options: ``min_iou`` (``[0, 1]``), ``max_shift`` (box sides, ``>= 0``),
    ``max_age`` (seconds, ``> 0``). Raises ``ValueError`` for options out of range, and from
    :meth:`update` for a frame earlier than the last one.

    >>> tracker = FaceTracker()
    >>> tracker.update([Box(10, 10, 40, 40)], time=0.0)
    [0]
    >>> tracker.update([Box(200, 10, 40, 40), Box(14, 10, 40, 40)], time=0.04)
    [1, 0]
    """

    def __init__(self, *, min_iou: float = DEFAULT_MIN_IOU, max_shift: float = DEFAULT_MAX_SHIFT,
                 max_age: float = DEFAULT_MAX_AGE) -> None:
        if not 0.0 <= min_iou <= 1.0:
            raise ValueError(f"min_iou must lie in [0, 1], got {min_iou}")
        if not max_shift >= 0.0:
            raise ValueError(f"max_shift must be 0 or more box sides, got {max_shift}")
        if not max_age > 0.0:
            raise ValueError(f"max_age must be more than 0 seconds, got {max_age}")
        self.min_iou, self.max_shift, self.max_age = min_iou, max_shift, max_age
        self.tracks: list[Track] = []
        self.next_id = 0
        self.last_time: float | None = None

    def update(self, boxes: Sequence[Box | Sequence[float]], *, time: float) -> list[int]:
        """The track id of each of ``boxes`` (the faces of the frame at ``time`` seconds), in their order."""
        if self.last_time is not None and time < self.last_time:
            raise ValueError(f"frames must come in time order: {time} after {self.last_time}")
        self.last_time = time
        self.tracks = [t for t in self.tracks if time - t.time <= self.max_age]
        found = np.asarray([[float(v) for v in box] for box in boxes], dtype=np.float64).reshape(-1, 4)
        pairs = self._match(found, time)
        ids = [-1] * len(found)
        for track_index, face in pairs:
            ids[face] = self._follow(self.tracks[track_index], found[face], time)
        for face in (i for i, v in enumerate(ids) if v < 0):
            self.tracks.append(Track(self.next_id, found[face], time, np.zeros(2)))
            ids[face] = self.next_id
            self.next_id += 1
        return ids

    def _match(self, found: np.ndarray, time: float) -> list[tuple[int, int]]:
        """Greedy (track index, face index) pairs: by IoU first, then by centre distance."""
        if not self.tracks or not len(found):
            return []
        predicted = np.stack([t.predicted(time) for t in self.tracks])
        overlap = iou(predicted, found)
        unseen = np.array([time - t.time for t in self.tracks])  # ties go to the track seen last
        pairs = _greedy(overlap, minimum=self.min_iou, largest_first=True, unseen=unseen)
        taken_tracks, taken_faces = {t for t, _ in pairs}, {f for _, f in pairs}
        side = np.sqrt(found[None, :, 2] * found[None, :, 3])
        distance = np.linalg.norm(_centre(predicted)[:, None] - _centre(found)[None], axis=2) / np.maximum(side, 1.0)
        distance[list(taken_tracks), :] = np.inf
        distance[:, list(taken_faces)] = np.inf
        return pairs + _greedy(distance, minimum=self.max_shift, largest_first=False, unseen=unseen)

    def _follow(self, track: Track, box: np.ndarray, time: float) -> int:
        elapsed = time - track.time
        if elapsed > 0:
            step = (_centre(box) - _centre(track.box)) / elapsed
            track.velocity = step if track.hits == 1 else (
                VELOCITY_SMOOTHING * step + (1 - VELOCITY_SMOOTHING) * track.velocity)
        track.box, track.time, track.hits = box, time, track.hits + 1
        return track.track_id


def _centre(boxes: np.ndarray) -> np.ndarray:
    """Centres (float ``[..., 2]``) of ``x, y, w, h`` boxes (float ``[..., 4]``)."""
    return boxes[..., :2] + boxes[..., 2:] / 2


def _greedy(score: np.ndarray, *, minimum: float, largest_first: bool, unseen: np.ndarray) -> list[tuple[int, int]]:
    """Row/column pairs of ``score`` (float ``[M, N]``) taken best first, each row and column
    once: the largest at ``minimum`` or more (``largest_first``), else the smallest at most it;
    equal scores go to the row (track) with the least ``unseen`` time (float ``[M]``, seconds)."""
    rows, cols = np.nonzero(score >= minimum) if largest_first else np.nonzero(score <= minimum)
    order = np.lexsort((unseen[rows], -score[rows, cols] if largest_first else score[rows, cols]))
    pairs: list[tuple[int, int]] = []
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_rows and c not in used_cols:
            pairs.append((r, c))
            used_rows.add(r)
            used_cols.add(c)
    return pairs
