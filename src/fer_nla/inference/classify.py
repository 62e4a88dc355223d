"""The one place that turns face crops into class probabilities and face records.

``fer-nla predict`` (photos, folders, videos), :class:`~fer_nla.predict.Predictor`, ``fer-nla
serve`` and ``fer-nla eval`` all score faces here, with either backend (:mod:`.backends`): the
crops go through :func:`~fer_nla.inference.preprocess.preprocess_faces`, the backend gives logits,
:func:`~fer_nla.inference.scoring.adjusted_probabilities` gives probabilities at an operating
point (the model's temperature, its logit offset and a class prior; plain softmax without one), and
:func:`face_predictions` pairs them with their boxes. So a face gets the same probabilities
whichever command or backend scores it (a test checks eval, Predictor with both backends and
serve against each other on real faces).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

import numpy as np
from PIL import Image

from fer_nla.inference.faces import Box, FacePrediction, ScoredBox
from fer_nla.inference.preprocess import Preprocess, preprocess_faces
from fer_nla.inference.scoring import OperatingPoint, Scoring, adjusted_probabilities


class Backend(Protocol):
    """Runs a classifier: ``logits(batch)`` for a preprocessed ``float32 [N, 3, S, S]`` batch
    (:func:`~fer_nla.inference.preprocess.preprocess_faces` with ``preprocess``) returns
    ``float32 [N, C]``, ``C = len(class_names)``. The fer-nla backends also have ``scoring``, the
    model's recorded class prior and temperature; a backend of your own may leave it out
    (:func:`backend_scoring`: then no prior is recorded and the temperature is 1)."""

    class_names: list[str]
    preprocess: Preprocess

    def logits(self, batch: np.ndarray) -> np.ndarray: ...


def backend_scoring(backend: Backend) -> Scoring:
    """The backend's ``scoring`` (:class:`~fer_nla.inference.scoring.Scoring`), or ``Scoring()``
    for a backend that has none (an optional attribute of the :class:`Backend` protocol)."""
    scoring = getattr(backend, "scoring", None)
    return scoring if isinstance(scoring, Scoring) else Scoring()


def batch_probabilities(backend: Backend, batch: np.ndarray, point: OperatingPoint | None = None) -> np.ndarray:
    """``float32 [N, C]`` probabilities of a preprocessed ``float32 [N, 3, S, S]`` batch at
    ``point`` (``None``: the plain softmax of the logits)."""
    logits = np.asarray(backend.logits(batch), dtype=np.float32)
    return adjusted_probabilities(logits, point or OperatingPoint.plain(logits.shape[1]))


def crop_probabilities(backend: Backend, crops: Sequence[Image.Image | np.ndarray], *, batch_size: int = 32,
                       bit_depth: int | None = None, point: OperatingPoint | None = None) -> np.ndarray:
    """``float32 [N, C]`` class probabilities of face crops (PIL images or arrays of the dtypes
    :func:`~fer_nla.inference.preprocess.to_rgb_array` accepts; ``bit_depth`` for uint16 ones),
    preprocessed and run in batches of ``batch_size``, at ``point`` (``None``: plain softmax).
    Raises :class:`~fer_nla.errors.InputError` for a crop that is not an image, naming its position."""
    out = np.zeros((len(crops), len(backend.class_names)), dtype=np.float32)
    for start in range(0, len(crops), batch_size):
        chunk = crops[start:start + batch_size]
        batch = preprocess_faces(chunk, preprocess=backend.preprocess, bit_depth=bit_depth)
        out[start:start + len(chunk)] = batch_probabilities(backend, batch, point)
    return out


def loader_logits(backend: Backend, batches: Iterable[tuple[object, object]]) -> tuple[np.ndarray, np.ndarray]:
    """``(logits float32 [N, C], targets int64 [N])`` of ``(images, targets)`` batches whose images
    are already preprocessed (a dataset whose transform is the backend's :class:`Preprocess`,
    batched by a DataLoader into tensors or given as arrays): how ``fer-nla eval`` scores a split
    (at every operating point from one pass)."""
    logits, targets = [], []
    for images, labels in batches:
        logits.append(np.asarray(backend.logits(np.asarray(images, dtype=np.float32)), dtype=np.float32))
        targets.append(np.asarray(labels, dtype=np.int64).reshape(-1))
    if not logits:
        return np.zeros((0, len(backend.class_names)), np.float32), np.zeros(0, np.int64)
    return np.concatenate(logits), np.concatenate(targets)


def face_predictions(faces: Sequence[Box | ScoredBox], probs: np.ndarray, *, class_names: Sequence[str],
                     frame: int | None = None, time: float | None = None,
                     track_ids: Sequence[int] | None = None) -> list[FacePrediction]:
    """One :class:`FacePrediction` per face, from its row of ``probs`` (``[len(faces), C]``);
    ``frame``/``time`` (seconds) and ``track_ids`` (one per face) for a video frame's faces."""
    if len(faces) != len(probs) or (track_ids is not None and len(track_ids) != len(faces)):
        raise ValueError(f"{len(faces)} faces but {len(probs)} rows of probabilities"
                         + ("" if track_ids is None else f" and {len(track_ids)} track ids"))
    tracks = [None] * len(faces) if track_ids is None else list(track_ids)
    return [FacePrediction.from_probs(face, row, class_names=class_names, frame=frame, time=time, track_id=track)
            for face, row, track in zip(faces, probs, tracks)]
