"""fer-nla checkpoints: atomic save, ``weights_only`` load of sniffed files, compatibility checks.

A checkpoint is a dict of tensors and plain Python types only, so it loads with
``torch.load(..., weights_only=True)`` (no code runs from the file)::

    {"format": "fer-nla", "format_version": 1,
     "model": {"arch", "num_classes", "stem"}, "class_names": [...],
     "preprocess": {"image_size", "mean", "std"}, "state_dict": {...},
     "config": {...}, "epoch": int, "metrics": {...},
     "resume": {optimizer, scheduler, scaler and RNG states}}   # last.pt; training only
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fer_nla.errors import InputError
from fer_nla.file_kinds import read_torch_file
from fer_nla.models import build_model

FORMAT = "fer-nla"
FORMAT_VERSION = 1
MODEL_KEYS = ("arch", "num_classes", "stem")
REQUIRED_KEYS = ("model", "class_names", "preprocess", "state_dict")
TRAINING_ONLY_KEYS = ("state_dict", "resume")  # left out of what load_model returns


def save_checkpoint(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` to ``path`` atomically: a temporary file in the same folder, flushed
    to disk, then ``os.replace``; a crash leaves either the old file or the new one."""
    path = Path(path)
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **payload}
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ValueError(f"checkpoint payload lacks {', '.join(missing)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(data, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu",
                    onnx_hint: str | None = None) -> dict[str, Any]:
    """The payload of a fer-nla checkpoint, loaded with ``weights_only=True`` through
    :func:`fer_nla.file_kinds.read_torch_file` (the file's kind is sniffed first).

    Raises :class:`InputError` for a missing file or a folder (naming its best.pt when it is a
    run folder), a foreign file (one message per kind: ONNX, with ``onnx_hint`` as the advice;
    Keras/HDF5, TorchScript, a pickled model, safetensors, empty, random bytes...), and a
    PyTorch file that is not a fer-nla checkpoint (for example a bare backbone weight file).
    """
    path = Path(path)
    fix = "pass the best.pt or last.pt that `fer-nla train` wrote"
    if path.is_dir() and (path / "best.pt").is_file():
        fix = f"pass {path / 'best.pt'} (this looks like a run folder)"
    payload = read_torch_file(path, target="a fer-nla checkpoint", fix=fix, onnx_hint=onnx_hint,
                              map_location=map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        hint = " It looks like a bare weight file: use it as model.backbone_weights for training." if isinstance(payload, dict) else ""
        raise InputError(f"{path} is not a fer-nla checkpoint (no 'format': 'fer-nla' entry).{hint}")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(
            f"{path} has checkpoint format version {version!r}; this fer-nla reads versions up to "
            f"{FORMAT_VERSION}: upgrade fer-nla"
        )
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    missing += [f"model.{k}" for k in MODEL_KEYS if k not in payload.get("model", {})]
    if missing:
        raise InputError(f"{path} is an incomplete fer-nla checkpoint: it lacks {', '.join(missing)}")
    return payload


def check_compatible(
    payload: Mapping[str, Any],
    *,
    path: str | Path,
    arch: str | None = None,
    num_classes: int | None = None,
    stem: str | None = None,
    class_names: list[str] | tuple[str, ...] | None = None,
) -> None:
    """Raise :class:`InputError` naming every way the checkpoint differs from what is expected."""
    spec = payload["model"]
    problems = []
    for key, want in (("arch", arch), ("num_classes", num_classes), ("stem", stem)):
        if want is not None and spec[key] != want:
            problems.append(f"model.{key} is {spec[key]!r} in the checkpoint but {want!r} is expected")
    if class_names is not None and list(payload["class_names"]) != list(class_names):
        problems.append(f"class names {list(payload['class_names'])} differ from the data's {list(class_names)}")
    if problems:
        raise InputError(
            f"{path} does not fit: " + "; ".join(problems)
            + ". Use a checkpoint trained for this setting, or change the setting to match it"
        )


def load_state_into(model: nn.Module, payload: Mapping[str, Any], *, path: str | Path) -> None:
    """Load the checkpoint's weights into ``model`` strictly; a mismatch is an :class:`InputError`."""
    state = payload["state_dict"]
    target = model.state_dict()
    wrong = [k for k, v in state.items() if k in target and tuple(v.shape) != tuple(target[k].shape)]
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    if wrong or missing or unexpected:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
            for label, keys in (("other shape", wrong), ("missing", missing), ("unexpected", unexpected))
            if keys
        )
        raise InputError(f"the weights in {path} do not fit the model {dict(payload['model'])} ({detail})")
    model.load_state_dict(state)


def load_model(
    path: str | Path,
    *,
    map_location: str | torch.device = "cpu",
    arch: str | None = None,
    num_classes: int | None = None,
    onnx_hint: str | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """The checkpoint's model in eval mode, and the payload without its weights and resume
    states (``model``, ``class_names``, ``preprocess``, ``config``, ``epoch``, ``metrics``).

    ``arch``/``num_classes``, when given, must match the checkpoint (else :class:`InputError`);
    ``onnx_hint`` is the advice when ``path`` is an ONNX model (see :func:`load_checkpoint`).
    """
    payload = load_checkpoint(path, map_location=map_location, onnx_hint=onnx_hint)
    check_compatible(payload, path=path, arch=arch, num_classes=num_classes)
    spec = payload["model"]
    model = build_model(spec["arch"], num_classes=int(spec["num_classes"]), stem=spec["stem"])
    load_state_into(model, payload, path=path)
    model.to(map_location).eval()
    info = {k: v for k, v in payload.items() if k not in TRAINING_ONLY_KEYS}
    return model, info
