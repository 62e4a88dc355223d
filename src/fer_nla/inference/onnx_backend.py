"""The onnxruntime inference backend: an exported model and the metadata stored in it.

Nothing here imports torch: an ONNX file from ``fer-nla export`` runs with onnxruntime alone,
its class names and preprocessing read from the model's ``metadata_props``. The built-in models
ship as such files too (:func:`fer_nla.builtin.builtin_onnx_path`).
"""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.errors import InputError
from fer_nla.inference.preprocess import Preprocess
from fer_nla.inference.scoring import Scoring

METADATA_FORMAT = "fer-nla"
# metadata_props keys written by fer_nla.predict.onnx_export (values are JSON text); the optional
# ones are absent in files exported before they existed (grayscale: False; class_prior: none,
# temperature: 1; logit_offset: none; default_prior: train).
METADATA_KEYS = ("format", "class_names", "image_size", "mean", "std", "model")
OPTIONAL_METADATA_KEYS = ("grayscale", "class_prior", "temperature", "logit_offset", "default_prior")
ORT_LOG_ERROR = 3  # onnxruntime log severity: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal


def read_metadata(props: dict[str, str], *, path: str | Path) -> dict[str, Any]:
    """The decoded fer-nla entries of an ONNX model's ``metadata_props``: every key of
    :data:`METADATA_KEYS` but ``format``, and those of :data:`OPTIONAL_METADATA_KEYS` present.
    Raises :class:`InputError` naming ``path`` for a model without them or with damaged ones."""
    if props.get("format") != METADATA_FORMAT:
        raise InputError(
            f"{path} is an ONNX model without fer-nla metadata (class names, preprocessing); "
            "export it with `fer-nla export --checkpoint best.pt --onnx model.onnx`"
        )
    try:
        keys = [key for key in METADATA_KEYS if key != "format"] + [k for k in OPTIONAL_METADATA_KEYS if k in props]
        return {key: json.loads(props[key]) for key in keys}
    except (KeyError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: the fer-nla metadata is incomplete or damaged ({err}); export the model again") from None


def _check_kind(path: Path) -> None:
    """Refuse a file that is not an ONNX model, by kind, before onnxruntime reads it."""
    from fer_nla.file_kinds import TORCH_KINDS, describe_foreign_file, sniff_file

    kind = sniff_file(path)
    if kind.kind in TORCH_KINDS:
        raise InputError(
            f"{path} is a PyTorch file, not an ONNX model: use backend='torch' to run a fer-nla checkpoint, or "
            f"export it first with `fer-nla export --checkpoint {path} --onnx model.onnx`"
        )
    if kind.kind != "onnx":
        raise InputError(describe_foreign_file(path, target="an ONNX model", kind=kind,
                                               fix="pass the .onnx file that `fer-nla export` wrote"))


def _quiet_session(model: str, *, name: str, providers: list[Any], threads: int | None) -> Any:
    """An onnxruntime ``InferenceSession`` of the model file ``model``
    with onnxruntime's log below errors silenced (its provider fallback warnings), its Python
    warnings and printed fallback notes swallowed; errors name the model as ``name``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = ORT_LOG_ERROR
    if threads:
        options.intra_op_num_threads = threads
    ort.set_default_logger_severity(ORT_LOG_ERROR)  # provider creation logs through the default logger
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return ort.InferenceSession(model, sess_options=options, providers=providers)
    except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
        raise InputError(f"{name} cannot be loaded by onnxruntime ({str(err).splitlines()[0]}); "
                         "export the model again with this fer-nla") from None


class OnnxBackend:
    """Logits from an onnxruntime session for preprocessed ``N x 3 x S x S`` float32 batches.

    ``providers`` as :func:`fer_nla.runtime.onnx_providers` gives them (default: CPU). The file's
    kind is sniffed first (a PyTorch checkpoint: "use backend='torch'"; other kinds as
    :func:`fer_nla.file_kinds.describe_foreign_file` says); onnxruntime's own log and warning
    text is kept from the user; a session that fell back to the CPU where CUDA was required
    is refused (:func:`fer_nla.runtime.check_onnx_providers`). ``name`` stands for the model in
    error messages (default: its path). Raises :class:`InputError`."""

    def __init__(self, path: str | Path, *, providers: list[Any] | None = None, threads: int | None = None,
                 name: str | None = None) -> None:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"ONNX model {path} does not exist; create it with `fer-nla export --checkpoint CKPT --onnx {path}`")
        _check_kind(path)
        self._start(str(path), name=name or str(path), providers=providers, threads=threads)
        self.path: Path | None = path

    def _start(self, model: str, *, name: str, providers: list[Any] | None, threads: int | None) -> None:
        """Open the session and read the metadata (see :class:`OnnxBackend`)."""
        from fer_nla.runtime import check_onnx_providers

        providers = list(providers or ["CPUExecutionProvider"])
        self.session = _quiet_session(model, name=name, providers=providers, threads=threads)
        check_onnx_providers(providers, list(self.session.get_providers()))
        meta = read_metadata(dict(self.session.get_modelmeta().custom_metadata_map), path=name)
        self.class_names: list[str] = list(meta["class_names"])
        self.preprocess = Preprocess.from_dict(meta, source=name)
        self.scoring = Scoring.from_dict(meta, source=name)
        self.model_spec: dict[str, Any] = dict(meta["model"])
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, batch: np.ndarray) -> np.ndarray:
        inputs = np.ascontiguousarray(batch, dtype=np.float32)
        return np.asarray(self.session.run(None, {self.input_name: inputs})[0], dtype=np.float32)
