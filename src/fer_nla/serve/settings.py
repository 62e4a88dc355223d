"""What ``fer-nla serve`` runs and its limits: :class:`ServeSettings`, and its environment form.

uvicorn starts each worker process (``--workers N``) by importing
:func:`fer_nla.serve.app.app_from_env`; the settings reach the workers as environment variables
``FER_NLA_SERVE_<FIELD>`` (``FER_NLA_SERVE_MAX_UPLOAD_BYTES=20000000``), which the command sets
from its flags (:meth:`ServeSettings.to_env`) and each worker reads back
(:meth:`ServeSettings.from_env`). An unset variable keeps the field's default.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fer_nla.errors import InputError
from fer_nla.inference.scoring import parse_prior
from fer_nla.values import ConversionError, convert, describe

ENV_PREFIX = "FER_NLA_SERVE_"
MB = 1_000_000
DEFAULT_MAX_UPLOAD_BYTES = 20 * MB
DEFAULT_MAX_PIXELS = 50_000_000  # 50 megapixels: an 8660x5773 photo; Pillow warns from 89 MP
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_UPLOAD_TIMEOUT_S = 30.0
DEFAULT_MAX_UPLOADS = 32  # uploads read at once: memory is bounded by this many times max_upload_bytes
DEFAULT_QUEUE = 16
DEFAULT_THREADS = 1
DEFAULT_RETRY_AFTER_S = 1
BACKENDS = ("auto", "torch", "onnx")
DETECTORS = ("retinaface", "haar")


@dataclass(frozen=True)
class ServeSettings:
    """How one worker process serves.

    - ``model``: a built-in model name, or ``checkpoint``: a fer-nla checkpoint or ``.onnx`` file
      (at most one of them; neither: the built-in default model), run on ``backend``
      (auto/torch/onnx) and ``device`` (auto/cpu/cuda/...), faces found by ``detector``;
    - ``max_upload_bytes``: the largest request body accepted (bytes; larger: 413);
    - ``max_pixels``: the largest image accepted, width x height (larger: 413), checked from the
      image's header before it is decoded;
    - ``upload_timeout_s``: seconds a request's upload may take to arrive (past it: 408);
      ``max_uploads``: uploads read at once (one more: 503). An upload is read before the request
      takes an inference place, so slow or stalled clients never hold the model's places;
    - ``timeout_s``: seconds from a request's upload having arrived to its answer (waiting for a
      thread and inference; past it: 504);
    - ``threads``: inference threads of this worker (each runs one request at a time on the one
      shared model); ``queue``: uploaded requests that may wait for a thread; one arriving when
      ``threads + queue`` are taken is answered 503 with ``Retry-After: retry_after_s``;
    - ``prior`` (``default``, ``train``, ``uniform`` or comma-separated class proportions) and ``calibrated``:
      the operating point of the probabilities (:mod:`fer_nla.inference.scoring`).

    Raises :class:`InputError` naming the field and the fix for values out of range.
    """

    model: str | None = None
    checkpoint: str | None = None
    backend: str = "auto"
    device: str = "auto"
    detector: str = "retinaface"
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    max_pixels: int = DEFAULT_MAX_PIXELS
    timeout_s: float = DEFAULT_TIMEOUT_S
    upload_timeout_s: float = DEFAULT_UPLOAD_TIMEOUT_S
    max_uploads: int = DEFAULT_MAX_UPLOADS
    threads: int = DEFAULT_THREADS
    queue: int = DEFAULT_QUEUE
    retry_after_s: int = DEFAULT_RETRY_AFTER_S
    prior: str = "default"
    calibrated: bool = True

    def __post_init__(self) -> None:
        if self.model is not None and self.checkpoint is not None:
            raise InputError(f"give either a checkpoint ({self.checkpoint}) or a built-in model ({self.model}), not both")
        parse_prior(self.prior)  # a misspelt prior fails here, before a worker starts
        if self.backend not in BACKENDS:
            raise InputError(f"backend={self.backend!r} is not one of: {', '.join(BACKENDS)}")
        if self.detector not in DETECTORS:
            raise InputError(f"detector={self.detector!r} is not one of: {', '.join(DETECTORS)}")
        for name, low in (("max_upload_bytes", 1), ("max_pixels", 1), ("threads", 1), ("queue", 0),
                          ("retry_after_s", 0), ("max_uploads", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"{name}={value!r}: expected a whole number, {low} or more")
        for name in ("timeout_s", "upload_timeout_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise InputError(f"{name}={value!r}: expected a number of seconds above 0")

    @property
    def capacity(self) -> int:
        """Requests admitted at once: running (``threads``) plus waiting (``queue``)."""
        return self.threads + self.queue

    def check_model(self) -> None:
        """Raises :class:`InputError` for an unknown built-in ``model`` name (listing the built-in
        models) or a ``checkpoint`` that names no file, before a server starts loading it."""
        from fer_nla.builtin import choose_model

        chosen = choose_model(self.checkpoint, model=self.model)
        if chosen.builtin is None and not Path(chosen.path).is_file():
            what = "a folder" if Path(chosen.path).is_dir() else "missing"
            raise InputError(f"checkpoint={self.checkpoint!r} is {what}; name a fer-nla checkpoint (best.pt) "
                             "or an exported .onnx file")

    def to_env(self) -> dict[str, str]:
        """The ``FER_NLA_SERVE_*`` variables that give these settings to a worker process
        (fields left at ``None`` are written as empty strings)."""
        return {f"{ENV_PREFIX}{field.name.upper()}": "" if getattr(self, field.name) is None
                else str(getattr(self, field.name)) for field in dataclasses.fields(self)}

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ServeSettings:
        """The settings in ``environ``'s ``FER_NLA_SERVE_*`` variables (unset: the default).
        Raises :class:`InputError` naming the variable for a value of the wrong kind."""
        values: dict[str, Any] = {}
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            key = f"{ENV_PREFIX}{field.name.upper()}"
            if key not in environ:
                continue
            text = environ[key].strip()
            try:  # an empty variable is a field left at None (to_env's spelling), never the word "none"
                values[field.name] = convert(text, hints[field.name], name=key, none_words=("",))
            except ConversionError:
                raise InputError(f"{key}={text!r} is not a valid {describe(hints[field.name])}; "
                                 "unset it or give one") from None
        return cls(**values)
