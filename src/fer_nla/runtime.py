"""Where computation runs: the one check of a device name that every command uses.

:func:`resolve_device` (PyTorch) and :func:`onnx_providers` (onnxruntime) accept ``auto``,
``cpu``, ``cuda``, ``cuda:N`` and ``mps``; :func:`check_onnx_providers` refuses an onnxruntime
session that fell back to the CPU where CUDA was asked for. A device this machine lacks is an
:class:`~fer_nla.errors.InputError` naming the device as given, what is available here and the
fix. Messages name the option by its Python keyword (``device='mps'``); the command line
rewrites that into the running command's own spelling (``--device mps``, ``train.device=mps``,
see :func:`fer_nla.cli.spell_options`).
"""

from __future__ import annotations

from typing import Any

from fer_nla.errors import InputError

DEVICE_TYPES: tuple[str, ...] = ("cpu", "cuda", "mps")
_FIX = "use device='auto' (the best device here) or device='cpu'"
_FORMS = "device='auto', device='cpu', device='cuda', device='cuda:1' or device='mps'"


def available_devices() -> list[str]:
    """The PyTorch devices of this machine, best first: ``cuda:N (name)``, ``mps``, ``cpu``."""
    import torch

    found = []
    if torch.cuda.is_available():
        found += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    if _mps_available():
        found.append("mps")
    return [*found, "cpu"]


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return mps is not None and bool(mps.is_available())


def _lacking(name: str, what: str, available: list[str]) -> InputError:
    return InputError(
        f"device={name!r}: this machine has no {what} (available here: {', '.join(available)}); {_FIX}"
    )


def _parse(name: str) -> tuple[str, int | None]:
    """``(type, index)`` of a device name, or an :class:`InputError` listing the accepted forms."""
    kind, sep, index = str(name).strip().lower().partition(":")
    if kind not in DEVICE_TYPES or (sep and not index.isdigit()) or (sep and kind != "cuda"):
        raise InputError(f"device={name!r} is not a device fer-nla runs on; use {_FORMS}")
    return kind, int(index) if sep else None


def resolve_device(name: str = "auto", *, local_rank: int = 0) -> Any:
    """The ``torch.device`` that ``name`` stands for on this machine.

    ``auto``: CUDA (GPU ``local_rank`` modulo the GPU count, for one process per GPU), else
    Apple MPS, else CPU. ``cuda`` without an index takes the same GPU. Raises
    :class:`InputError` for a name that is not a device, and for CUDA, a CUDA index or MPS
    that this machine lacks (the message lists :func:`available_devices`).
    """
    import torch

    if str(name).strip().lower() == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank % torch.cuda.device_count())
        return torch.device("mps" if _mps_available() else "cpu")
    kind, index = _parse(name)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise _lacking(name, "CUDA GPU", available_devices())
        count = torch.cuda.device_count()
        if index is not None and index >= count:
            raise _lacking(name, f"CUDA GPU number {index}", available_devices())
        return torch.device("cuda", local_rank % count if index is None else index)
    if kind == "mps" and not _mps_available():
        raise _lacking(name, "Apple MPS (Metal) GPU", available_devices())
    return torch.device(kind)


def onnx_providers(name: str = "auto") -> list[Any]:
    """onnxruntime execution providers for the device ``name``, as ``InferenceSession`` takes
    them: ``auto`` is CUDA where this onnxruntime has it, falling back to CPU; ``cpu`` is CPU;
    ``cuda``/``cuda:N`` is the CUDA provider alone (``cuda:N`` with ``device_id`` N), with no
    CPU fallback named, so :func:`check_onnx_providers` refuses a session that did not get it.
    Raises :class:`InputError` for a name that is not a device, for ``mps`` (onnxruntime has no
    MPS provider) and for ``cuda`` where this onnxruntime is a CPU-only build."""
    import onnxruntime as ort

    cuda = "CUDAExecutionProvider" in list(ort.get_available_providers())
    if str(name).strip().lower() == "auto":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
    kind, index = _parse(name)
    if kind == "mps":
        here = "cuda, cpu" if cuda else "cpu"
        raise InputError(
            f"device={name!r}: onnxruntime has no Apple MPS provider (available here: {here}); {_FIX}, "
            "or run a .pt checkpoint (the PyTorch backend) on MPS"
        )
    if kind == "cuda" and not cuda:
        raise InputError(
            f"device={name!r}: this onnxruntime has no CUDA GPU support (available here: cpu); {_FIX}, "
            "or install onnxruntime-gpu where there is an NVIDIA GPU, or run the model with PyTorch on the GPU: "
            "backend='torch' (the train extra)"
        )
    if kind == "cuda":
        return ["CUDAExecutionProvider"] if index is None else [("CUDAExecutionProvider", {"device_id": index})]
    return ["CPUExecutionProvider"]


def check_onnx_providers(requested: list[Any], used: list[str]) -> None:
    """Refuse an onnxruntime session that silently fell back to the CPU when CUDA was required.

    ``requested``: the providers the session was asked for (CUDA required when they name
    ``CUDAExecutionProvider`` and no ``CPUExecutionProvider``, as :func:`onnx_providers` gives
    for ``cuda``); ``used``: ``session.get_providers()``. onnxruntime-gpu lists the CUDA
    provider on machines without a GPU and then runs on the CPU with only a log warning; this
    raises the :class:`InputError` :func:`resolve_device` gives for a missing GPU instead."""
    names = [p[0] if isinstance(p, (tuple, list)) else p for p in requested]
    if "CUDAExecutionProvider" not in names or "CPUExecutionProvider" in names or "CUDAExecutionProvider" in used:
        return
    options = next((p[1] for p in requested if isinstance(p, (tuple, list)) and p[0] == "CUDAExecutionProvider"), {})
    index = options.get("device_id") if isinstance(options, dict) else None
    if index is None:
        raise _lacking("cuda", "CUDA GPU", ["cpu"])
    raise _lacking(f"cuda:{index}", f"CUDA GPU number {index}", ["cpu"])


# -- precision, kernels and seeds (PyTorch is imported inside: this module stays torch-free) ---
def autocast_dtype(precision: str, device: Any) -> Any:
    """The autocast ``torch.dtype`` for ``precision`` (auto | fp32 | bf16 | fp16) on the
    ``torch.device`` ``device`` (``None``: full float32).

    ``auto`` is bf16 on CUDA GPUs that support it, else fp16 on CUDA, and float32 on CPU and
    MPS (where half-precision convolutions are slower or less complete). Raises
    :class:`InputError` for fp16 on a CPU."""
    import torch

    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if dtype is torch.float16 and device.type == "cpu":
        raise InputError("train.precision=fp16 is not supported on CPU; use bf16 or fp32")
    return dtype


def use_channels_last(setting: str, device: Any) -> bool:
    """``auto``: on for CUDA and CPU (measured +20% ResNet-18 training on 2 CPU cores), off on MPS."""
    if setting == "auto":
        return device.type in ("cuda", "cpu")
    return setting == "on"


def set_determinism(*, deterministic: bool, device: Any) -> None:
    """Deterministic kernels (slower) or cuDNN autotuning (faster, run-to-run jitter)."""
    import os

    import torch

    if deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = device.type == "cuda"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices)."""
    import random

    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of one epoch on one rank: resuming at an epoch boundary replays it exactly."""
    return (seed * 1_000_003 + epoch * 1009 + rank) % 2**63
