"""The model a server runs: loading it once per worker process, and what names it in answers."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_nla.builtin import BUILTIN_PREFIX, choose_model
from fer_nla.inference.scoring import parse_prior
from fer_nla.predict.predictor import Predictor
from fer_nla.serve.settings import ServeSettings

HASH_CHARS = 16  # hex digits of the weight file's SHA-256 shown as the model's version


def load_predictor(settings: ServeSettings) -> Predictor:
    """The :class:`Predictor` of ``settings`` (``model``/``checkpoint``, ``backend``, ``device``,
    ``detector``), chosen as ``fer-nla predict`` chooses (:func:`fer_nla.builtin.choose_model`).
    Raises :class:`~fer_nla.errors.InputError` for an unknown model, an unreadable file or a
    device this machine lacks."""
    chosen = choose_model(settings.checkpoint, model=settings.model)
    ref = f"{BUILTIN_PREFIX}{chosen.builtin}" if chosen.builtin is not None else chosen.path
    return Predictor.load(ref, backend=settings.backend, device=settings.device, detector=settings.detector,
                          prior=parse_prior(settings.prior), calibrated=settings.calibrated)


@dataclass(frozen=True)
class ModelIdentity:
    """What names the served model in answers: ``name`` (the built-in name, or the file's name),
    ``source`` (``built-in`` or ``file``), ``version`` (``sha256:`` and the first
    :data:`HASH_CHARS` hex digits of the weight file: two servers answering with the same
    version run the same weights), ``classes`` (the output order), ``backend`` and the
    model's ``input`` (side in px, gray or RGB)."""

    name: str
    source: str
    version: str
    classes: tuple[str, ...]
    backend: str
    input: str

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON object (``classes`` as a list)."""
        return {"name": self.name, "source": self.source, "version": self.version, "classes": list(self.classes),
                "backend": self.backend, "input": self.input}


def identify_model(settings: ServeSettings, predictor: Predictor) -> ModelIdentity:
    """The :class:`ModelIdentity` of the model ``settings`` select, as loaded in ``predictor``."""
    chosen = choose_model(settings.checkpoint, model=settings.model)
    preprocess = predictor.backend.preprocess
    return ModelIdentity(
        name=chosen.builtin if chosen.builtin is not None else Path(chosen.path).name,
        source="built-in" if chosen.builtin is not None else "file",
        version=f"sha256:{file_sha256(chosen.path)[:HASH_CHARS]}",
        classes=tuple(predictor.class_names),
        backend=type(predictor.backend).__name__,
        input=f"{preprocess.image_size}x{preprocess.image_size} {'gray' if preprocess.grayscale else 'RGB'}",
    )


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of the file at ``path`` as hex, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
