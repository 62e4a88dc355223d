"""Export a classifier to ONNX with a dynamic batch size and fer-nla metadata."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from fer_nla.predict.onnx_backend import METADATA_FORMAT
from fer_nla.predict.preprocess import Preprocess

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
DEFAULT_OPSET = 18


def export_onnx(
    model: nn.Module,
    path: str | Path,
    *,
    class_names: list[str],
    preprocess: Preprocess,
    model_spec: dict[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Write ``model`` (in eval mode, on the CPU) to ``path``: input ``input`` of shape
    ``batch x 3 x S x S`` (batch dynamic), output ``logits``; ``metadata_props`` hold
    ``format``, ``class_names``, ``image_size``, ``mean``, ``std`` and ``model`` as JSON text."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.to("cpu").eval()
    size = preprocess.image_size
    example = torch.zeros(2, 3, size, size)
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        model, (example,), dynamo=True, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: batch},), opset_version=opset, external_data=False, verbose=False,
    )
    proto = program.model_proto
    meta = {
        "format": METADATA_FORMAT,
        "class_names": json.dumps(list(class_names)),
        "image_size": json.dumps(size),
        "mean": json.dumps(list(preprocess.mean)),
        "std": json.dumps(list(preprocess.std)),
        "model": json.dumps(dict(model_spec or {})),
    }
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def export_checkpoint(checkpoint: str | Path, onnx_path: str | Path, *, opset: int = DEFAULT_OPSET) -> Path:
    """Export the model of a fer-nla checkpoint, with its class names and preprocessing."""
    from fer_nla.checkpoint import load_model

    model, info = load_model(checkpoint, map_location="cpu")
    return export_onnx(model, onnx_path, class_names=list(info["class_names"]),
                       preprocess=Preprocess.from_dict(info["preprocess"]), model_spec=dict(info["model"]), opset=opset)
