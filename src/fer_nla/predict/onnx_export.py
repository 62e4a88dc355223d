"""Export a classifier to ONNX with a dynamic batch size and fer-nla metadata."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from fer_nla.atomic import write_bytes_atomic
from fer_nla.errors import InputError
from fer_nla.inference.onnx_backend import METADATA_FORMAT
from fer_nla.inference.preprocess import Preprocess
from fer_nla.inference.scoring import Scoring

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 18
MIN_OPSET = 18  # the lowest opset torch.onnx.export(dynamo=True) writes


def supported_opsets() -> range:
    """The ONNX opsets ``export`` writes: from :data:`MIN_OPSET` (PyTorch's exporter writes
    lower requests as opset 18 anyway) to the newest the installed onnx package knows."""
    return range(MIN_OPSET, onnx.defs.onnx_opset_version() + 1)


def check_opset(opset: Any) -> int:
    """``opset`` as an int, or an :class:`InputError` naming the supported range."""
    opsets = supported_opsets()
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in opsets:
        raise InputError(f"opset={opset!r} is not an ONNX opset fer-nla exports to; use opset={DEFAULT_OPSET} (the "
                         f"default) or another opset from {opsets.start} to {opsets.stop - 1}")
    return opset


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    class_names: list[str],
    preprocess: Preprocess,
    model_spec: dict[str, Any] | None = None,
    scoring: Scoring | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write ``model`` (in eval mode, on the CPU) to ``path`` atomically, as
    :func:`export_onnx_bytes` serializes it (errors as there)."""
    data = export_onnx_bytes(model, class_names=class_names, preprocess=preprocess, model_spec=model_spec,
                             scoring=scoring, opset=opset)
    return write_bytes_atomic(Path(path), data)


def export_onnx_bytes(
    model: nn.Module,
    *,
    class_names: list[str],
    preprocess: Preprocess,
    model_spec: dict[str, Any] | None = None,
    scoring: Scoring | None = None,
    opset: int = DEFAULT_OPSET,
) -> bytes:
    """The serialized ONNX model of ``model`` (put in eval mode, on the CPU): input ``input`` of
    shape ``batch x 3 x S x S`` float32 (batch dynamic), output ``logits``; ``metadata_props``
    hold ``format``, ``class_names``, ``image_size``, ``mean``, ``std``, ``grayscale``,
    ``model``, and the ``scoring`` entries (``class_prior``, ``temperature``, ``logit_offset``,
    ``default_prior``; default: none, 1, none, train) as JSON text.

    Raises :class:`InputError` for an opset outside :func:`supported_opsets` and for a model
    the exporter cannot convert (one line; the exporter's own log and warnings are kept back)."""
    opset = check_opset(opset)
    model = model.to("cpu").eval()
    size = preprocess.image_size
    try:
        proto = _export_proto(model, size=size, opset=opset)
    except Exception as err:  # noqa: BLE001 - the exporter raises many types; the user gets one line
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        raise InputError(f"exporting the model {dict(model_spec or {})} to ONNX opset {opset} failed ({first}); "
                         f"try opset={DEFAULT_OPSET}, or report the model architecture") from None
    meta = {
        "format": METADATA_FORMAT,
        "class_names": json.dumps(list(class_names)),
        "image_size": json.dumps(size),
        "mean": json.dumps(list(preprocess.mean)),
        "std": json.dumps(list(preprocess.std)),
        "grayscale": json.dumps(bool(preprocess.grayscale)),
        **{key: json.dumps(value) for key, value in (scoring or Scoring()).to_dict().items()},
        "model": json.dumps(dict(model_spec or {})),
    }
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _export_proto(model: nn.Module, *, size: int, opset: int) -> onnx.ModelProto:
    """The exporter's ``ModelProto`` for ``model``; its log lines and warnings go nowhere."""
    example = torch.zeros(2, 3, size, size)
    batch = torch.export.Dim("batch", min=1)
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},), opset_version=opset, external_data=False, verbose=False,
        )
    return program.model_proto


def default_onnx_path(checkpoint: Path, *, builtin: str | None = None) -> Path:
    """Where ``fer-nla export`` writes without ``--onnx``: beside the checkpoint with the suffix
    ``.onnx`` (``runs/x/best.pt`` -> ``runs/x/best.onnx``), or ``NAME.onnx`` in the working folder
    for the built-in model ``builtin`` (the installed package's folder is not the user's)."""
    return Path(f"{builtin}.onnx") if builtin else Path(checkpoint).with_suffix(".onnx")


def export_checkpoint(checkpoint: str | Path, onnx_path: str | Path, *, opset: int = DEFAULT_OPSET) -> Path:
    """Export the model of a fer-nla checkpoint, with its class names and preprocessing.
    Raises :class:`InputError` for a bad opset (checked first), a file that is not a fer-nla
    checkpoint (an ONNX model: already exported) and an export that fails."""
    return write_bytes_atomic(Path(onnx_path), checkpoint_onnx_bytes(checkpoint, opset=opset))


def checkpoint_onnx_bytes(checkpoint: str | Path, *, opset: int = DEFAULT_OPSET) -> bytes:
    """The serialized ONNX model of a fer-nla checkpoint (:func:`export_onnx_bytes`) with its
    class names and preprocessing; errors as :func:`export_checkpoint`."""
    from fer_nla.checkpoint import load_model

    check_opset(opset)
    model, info = load_model(checkpoint, map_location="cpu",
                             onnx_hint="it is already exported; run it with `fer-nla predict --backend onnx`")
    return export_onnx_bytes(model, class_names=list(info.class_names),
                             preprocess=Preprocess.from_dict(info.preprocess, source=str(checkpoint)),
                             scoring=info.scoring_record(),
                             model_spec=info.model_spec, opset=opset)


def verify_export(checkpoint: str | Path, onnx_path: str | Path, *, batch: int = 3, seed: int = 0) -> float:
    """Largest probability difference between the checkpoint (PyTorch) and the ONNX model
    (onnxruntime) on a seeded random batch of face-sized images, through the one inference path
    (:func:`fer_nla.inference.classify.crop_probabilities`)."""
    import numpy as np

    from fer_nla.inference.backends import load_backend
    from fer_nla.inference.classify import crop_probabilities

    reference = load_backend(checkpoint, backend="torch", device="cpu")
    exported = load_backend(onnx_path, backend="onnx", device="cpu")
    size = reference.preprocess.image_size
    rng = np.random.default_rng(seed)
    crops = [rng.integers(0, 256, size=(size + 7 * i, size + 5 * i, 3), dtype=np.uint8) for i in range(batch)]
    probs = [crop_probabilities(backend, crops) for backend in (reference, exported)]
    return float(np.abs(probs[0] - probs[1]).max())
