"""Face tracks for live clients of ``fer-nla serve``: the page's camera mode sends its frames as
photos to ``POST /v1/predict?stream=ID&t=SECONDS``, and each stream gets its own
:class:`~fer_nla.predict.tracking.FaceTracker` here, so a face keeps its ``track_id`` from frame to
frame exactly as ``fer-nla predict`` tracks a video (one rule, one implementation).

Streams are bounded: at most :data:`MAX_STREAMS` at once (the one unused longest is dropped for
a new one) and a stream unused for :data:`STREAM_IDLE_S` seconds is forgotten. A frame whose
time ``t`` is more than :data:`RESTART_GAP_S` earlier than the stream's last one (the client
restarted its camera) starts the stream afresh; a frame a little earlier (two inference threads
finishing one stream's frames out of order) is tracked at the last time. Thread-safe:
predictions run on the inference threads. The tracks live in one server process: with
``--workers N`` a stream's frames may reach different processes, so live tracking needs one worker.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field

from fer_nla.inference.faces import Box, FacePrediction
from fer_nla.predict.tracking import FaceTracker

MAX_STREAMS = 64
STREAM_IDLE_S = 60.0
RESTART_GAP_S = 1.0
STREAM_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


@dataclass
class _Stream:
    tracker: FaceTracker = field(default_factory=FaceTracker)
    frames: int = 0
    started: float = field(default_factory=time.monotonic)
    used: float = field(default_factory=time.monotonic)


class LiveTracks:
    """The face trackers of the live streams one server process serves."""

    def __init__(self, *, max_streams: int = MAX_STREAMS, idle_s: float = STREAM_IDLE_S) -> None:
        self.max_streams, self.idle_s = max_streams, idle_s
        self._streams: OrderedDict[str, _Stream] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._streams)

    def follow(self, stream: str, faces: Sequence[FacePrediction], *, t: float | None) -> None:
        """Sets each face's ``track_id``, ``frame`` (the stream's frame count from 0) and ``time``
        (``t`` seconds as the client sent it; the server's clock since the stream began without
        it), in place."""
        with self._lock:
            now = time.monotonic()
            for key in [k for k, s in self._streams.items() if now - s.used > self.idle_s]:
                del self._streams[key]
            state = self._streams.get(stream)
            clock = t if t is not None else now - (state.started if state else now)
            last = state.tracker.last_time if state is not None else None
            if state is None or (last is not None and clock < last - RESTART_GAP_S):
                state = _Stream()
                self._streams[stream] = state
                clock = t if t is not None else 0.0
            elif last is not None:
                clock = max(clock, last)  # a frame that finished after a later one of its stream
            self._streams.move_to_end(stream)
            while len(self._streams) > self.max_streams:
                self._streams.popitem(last=False)
            ids = state.tracker.update([Box(*face.box) for face in faces], time=clock)
            frame, state.frames, state.used = state.frames, state.frames + 1, now
        for face, track in zip(faces, ids):
            face.track_id, face.frame, face.time = track, frame, round(clock, 3)


def check_stream_id(stream: str) -> str | None:
    """Why ``stream`` cannot name a stream (1 to 64 letters, digits, ``-`` or ``_``), or ``None``."""
    bad = sorted(set(stream) - STREAM_ID_CHARS)
    if not 1 <= len(stream) <= 64 or bad:
        what = f"{len(stream)} characters" if not bad else "the character(s) " + " ".join(repr(c) for c in bad[:5])
        return (f"stream: a stream id is 1 to 64 letters, digits, '-' or '_' (the page makes one per camera "
                f"session); this one has {what}")
    return None
