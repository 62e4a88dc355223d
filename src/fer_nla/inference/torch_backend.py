"""The PyTorch inference backend: a fer-nla checkpoint's model on a device (needs the ``train``
extra; prediction runs without it on :mod:`fer_nla.inference.onnx_backend`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from fer_nla.inference.preprocess import Preprocess
from fer_nla.inference.scoring import Scoring

if TYPE_CHECKING:
    from fer_nla.checkpoint import CheckpointMeta


class TorchBackend:
    """Logits of a model in eval mode for preprocessed ``N x 3 x S x S`` float32 batches."""

    def __init__(self, model: nn.Module, *, class_names: list[str], preprocess: Preprocess,
                 device: torch.device | str = "cpu", meta: CheckpointMeta | None = None) -> None:
        self.device = torch.device(device)
        self.meta = meta  # the checkpoint's metadata (its training config), where it came from one
        self.scoring = Scoring() if meta is None else meta.scoring_record()
        self.model = model.to(self.device).eval()
        self.class_names = list(class_names)
        self.preprocess = preprocess

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str = "auto") -> TorchBackend:
        """The model of a fer-nla checkpoint (``best.pt``/``last.pt``) on ``device``
        (``auto``: CUDA, else MPS, else CPU). Raises :class:`InputError` for a device this
        machine lacks and for a file that is not a fer-nla checkpoint (an ONNX model: "use
        backend='onnx'"; see :func:`fer_nla.checkpoint.load_checkpoint` for the other kinds)."""
        from fer_nla.checkpoint import load_model
        from fer_nla.runtime import resolve_device

        target = resolve_device(device)
        model, info = load_model(path, map_location=target, onnx_hint="use backend='onnx' (onnxruntime) to run it")
        return cls(model, class_names=list(info.class_names), preprocess=Preprocess.from_dict(info.preprocess, source=str(path)),
                   device=target, meta=info)

    @torch.inference_mode()
    def logits(self, batch: np.ndarray) -> np.ndarray:
        inputs = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)
        return self.model(inputs).float().cpu().numpy()
