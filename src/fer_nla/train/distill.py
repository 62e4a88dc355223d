"""Training targets distilled from a teacher ensemble (``data.teachers``).

Knowledge distillation (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network";
for an ensemble of teachers, Sec. 2 there and Allen-Zhu & Li 2023, "Towards Understanding
Ensemble, Knowledge Distillation and Self-Distillation") trains one network on the class
probabilities of others. Here the teachers' probabilities are computed once, before training,
on every training image and its mirror, through the one inference path
(:func:`fer_nla.inference.classify.crop_probabilities`) at each teacher's training prior with its
recorded temperature; the ensemble is their normalised geometric mean,
``q = softmax(mean_m log p_m)``. The target a sample trains on is

    ``y = w * q + (1 - w) * y_given``

(``w``: ``data.teacher_weight``; ``y_given``: the sample's label distribution, or its one-hot
label). So any loss that takes label distributions trains on it, and the run's hard labels
(``targets``: signals, audit, metrics) stay the given ones. Offline targets are the cheap form:
a teacher forward per image once instead of per augmented view each epoch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fer_nla.errors import InputError

CHUNK = 512  # images decoded and scored at a time


def teacher_probabilities(teacher: str, images: Callable[[int], object], count: int, *, class_names: Sequence[str],
                          device: str = "auto", flip: bool = True) -> np.ndarray:
    """``float32 [count, C]`` probabilities of one teacher (a checkpoint path or ``builtin:NAME``)
    for ``images(i)`` (PIL images, ``i < count``), at its training prior with its temperature; with
    ``flip`` the mean of the log-probabilities of each image and its mirror (renormalised).
    Columns follow ``class_names`` (matched by name). Raises :class:`InputError` for a teacher
    that is missing, not a model, or lacks one of the classes."""
    from PIL import ImageOps

    from fer_nla.inference.backends import load_backend
    from fer_nla.inference.classify import backend_scoring, crop_probabilities
    from fer_nla.inference.scoring import operating_point

    backend = load_backend(teacher, backend="torch", device=device)
    missing = [name for name in class_names if name not in backend.class_names]
    if missing:
        raise InputError(f"data.teachers: {teacher} has the classes {', '.join(backend.class_names)} but not "
                         f"{', '.join(missing)}; give teachers trained on this run's classes")
    columns = [backend.class_names.index(name) for name in class_names]
    point = operating_point(backend_scoring(backend), num_classes=len(backend.class_names), prior="train")
    out = np.zeros((count, len(class_names)), dtype=np.float64)
    for start in range(0, count, CHUNK):
        crops = [images(i) for i in range(start, min(count, start + CHUNK))]
        views = [crops, [ImageOps.mirror(c) for c in crops]] if flip else [crops]
        logs = [np.log(np.maximum(crop_probabilities(backend, v, batch_size=256, point=point), 1e-12)) for v in views]
        out[start:start + len(crops)] = np.mean(logs, axis=0)[:, columns]
    return _softmax(out)


def ensemble_targets(teachers: Sequence[str], images: Callable[[int], object], count: int, *,
                     class_names: Sequence[str], device: str = "auto", flip: bool = True,
                     log: Callable[[str], None] = print) -> np.ndarray:
    """``float32 [count, C]``: the normalised geometric mean of the teachers' probabilities
    (:func:`teacher_probabilities`). Raises :class:`InputError` for an empty list."""
    if not teachers:
        raise InputError("data.teachers is empty: name one or more checkpoints or builtin:NAME models")
    total = np.zeros((count, len(class_names)), dtype=np.float64)
    for k, teacher in enumerate(teachers, 1):
        log(f"data: teacher {k}/{len(teachers)} {teacher}: scoring {count} training images"
            f"{' and their mirrors' if flip else ''}")
        total += np.log(np.maximum(teacher_probabilities(teacher, images, count, class_names=class_names,
                                                         device=device, flip=flip), 1e-12))
    return _softmax(total / len(teachers))


def mix_targets(teacher: np.ndarray, given: np.ndarray, *, weight: float) -> np.ndarray:
    """``float32 [N, C]``: ``weight * teacher + (1 - weight) * given``; ``given`` is ``[N, C]``
    label distributions or ``int [N]`` labels (one-hot). Raises :class:`InputError` for a weight
    outside [0, 1] and ``ValueError`` for mismatched shapes."""
    if not 0.0 <= weight <= 1.0:
        raise InputError(f"data.teacher_weight={weight} must lie in [0, 1] (1: the teachers' targets only)")
    given = np.asarray(given)
    if given.ndim == 1:
        given = np.eye(teacher.shape[1], dtype=np.float32)[given]
    if given.shape != teacher.shape:
        raise ValueError(f"teacher targets {teacher.shape} and given targets {given.shape} differ")
    mixed = weight * teacher.astype(np.float64) + (1.0 - weight) * given.astype(np.float64)
    return (mixed / mixed.sum(axis=1, keepdims=True)).astype(np.float32)


def _softmax(log_probs: np.ndarray) -> np.ndarray:
    """``float32 [N, C]`` row-wise softmax, as inference computes it (float64, stable)."""
    from fer_nla.inference.scoring import OperatingPoint, adjusted_probabilities

    return adjusted_probabilities(log_probs, OperatingPoint.plain(log_probs.shape[1]))
