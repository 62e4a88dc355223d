"""Temporal smoothing of a tracked face's probabilities (``fer-nla predict --smooth SECONDS``).

An exponential moving average per track with time constant ``seconds``: the frame at time ``t``
after the track's previous frame at ``t0`` gives::

    a = 1 - exp(-(t - t0) / seconds)
    smoothed_t = (1 - a) * smoothed_t0 + a * p_t

so a frame counts by how much time it covers, whatever ``--every`` samples. A track's first
frame is kept as it is. The label is the smoothed probabilities' top class. Off by default: it
trades a lag of about ``seconds`` for labels that no longer flicker between frames.
"""

from __future__ import annotations

import math

import numpy as np


class TrackSmoother:
    """Exponential moving averages of class probabilities, one per track id (one smoother per
    video; frames in time order). Raises ``ValueError`` for ``seconds`` that is not positive."""

    def __init__(self, seconds: float) -> None:
        if not (isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds > 0):
            raise ValueError(f"the smoothing time must be a positive number of seconds, got {seconds!r}")
        self.seconds = float(seconds)
        self.state: dict[int, tuple[float, np.ndarray]] = {}

    def smooth(self, track_id: int, time: float, probs: np.ndarray) -> np.ndarray:
        """The smoothed probabilities (float ``[C]``, summing to 1) of track ``track_id`` at
        ``time`` seconds, given this frame's ``probs`` (``[C]``)."""
        probs = np.asarray(probs, dtype=np.float64)
        if track_id in self.state:
            last_time, last = self.state[track_id]
            weight = 1.0 - math.exp(-max(time - last_time, 0.0) / self.seconds)
            probs = (1.0 - weight) * last + weight * probs
        self.state[track_id] = (time, probs)
        return probs
