"""The onnxruntime inference backend: an exported model and the metadata stored in it.

Nothing here imports torch: an ONNX file from ``fer-nla export`` runs with onnxruntime alone,
its class names and preprocessing read from the model's ``metadata_props``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.errors import InputError
from fer_nla.predict.preprocess import Preprocess

METADATA_FORMAT = "fer-nla"
# metadata_props keys written by fer_nla.predict.onnx_export (values are JSON text).
METADATA_KEYS = ("format", "class_names", "image_size", "mean", "std", "model")


def read_metadata(props: dict[str, str], *, path: str | Path) -> dict[str, Any]:
    """The decoded fer-nla entries of an ONNX model's ``metadata_props``."""
    if props.get("format") != METADATA_FORMAT:
        raise InputError(
            f"{path} is an ONNX model without fer-nla metadata (class names, preprocessing); "
            "export it with `fer-nla export --checkpoint best.pt --onnx model.onnx`"
        )
    try:
        return {key: json.loads(props[key]) for key in METADATA_KEYS if key != "format"}
    except (KeyError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: the fer-nla metadata is incomplete or damaged ({err}); export the model again") from None


class OnnxBackend:
    """Logits from an onnxruntime session for preprocessed ``N x 3 x S x S`` float32 batches."""

    def __init__(self, path: str | Path, *, providers: list[str] | None = None, threads: int | None = None) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise InputError(f"ONNX model {path} does not exist; create it with `fer-nla export --checkpoint CKPT --onnx {path}`")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options,
                                                providers=providers or ["CPUExecutionProvider"])
        except Exception as err:  # noqa: BLE001 - onnxruntime raises its own exception types
            raise InputError(f"{path} cannot be loaded by onnxruntime ({str(err).splitlines()[0]}); is it an ONNX file?") from None
        meta = read_metadata(dict(self.session.get_modelmeta().custom_metadata_map), path=path)
        self.path = path
        self.class_names: list[str] = list(meta["class_names"])
        self.preprocess = Preprocess.from_dict(meta)
        self.model_spec: dict[str, Any] = dict(meta["model"])
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, batch: np.ndarray) -> np.ndarray:
        inputs = np.ascontiguousarray(batch, dtype=np.float32)
        return np.asarray(self.session.run(None, {self.input_name: inputs})[0], dtype=np.float32)
