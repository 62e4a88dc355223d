"""Which backend runs a model: the one dispatch from a model reference to a :class:`Backend`.

A model is a fer-nla checkpoint (``best.pt``: PyTorch), an exported ONNX model (``fer-nla
export``: onnxruntime) or a built-in model (``builtin:NAME``), shipped in the package both as a
checkpoint and as the ONNX export of that checkpoint. ``backend="auto"`` runs ONNX files and
built-in models on onnxruntime (no PyTorch needed) and checkpoints on PyTorch.
``predict``, ``serve``, ``eval`` and :class:`~fer_nla.predict.Predictor` all load models here.
"""

from __future__ import annotations

from pathlib import Path
from fer_nla.builtin import DEFAULT_MODEL, builtin_onnx_path, builtin_path, get_builtin, is_builtin_ref
from fer_nla.errors import InputError
from fer_nla.inference.classify import Backend

BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx")


def load_backend(model: str | Path, *, backend: str = "auto", device: str = "auto",
                 threads: int | None = None) -> Backend:
    """The backend running ``model`` (a checkpoint or ``.onnx`` path, or ``builtin:NAME``).

    ``backend``: ``auto`` (onnxruntime for ONNX files, found by their content, and for built-in
    models; PyTorch for checkpoints), ``torch`` or ``onnx``. ``device`` applies to either
    (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps`` for PyTorch; onnxruntime's providers from
    :func:`fer_nla.runtime.onnx_providers`). ``threads``: onnxruntime's intra-op threads
    (``None``: its default). Raises :class:`InputError` for an unknown backend, a device this
    machine lacks, a file of another kind, and PyTorch asked for where it is not installed
    (naming the extra to install)."""
    if backend not in BACKENDS:
        raise InputError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if is_builtin_ref(str(model)):
        return builtin_backend(str(model), backend="onnx" if backend == "auto" else backend, device=device,
                               threads=threads)
    path = Path(model)
    if backend == "onnx" or (backend == "auto" and is_onnx_model(path)):
        return onnx_backend(path, device=device, threads=threads)
    return torch_backend(path, device=device)


def builtin_backend(name: str = DEFAULT_MODEL, *, backend: str = "onnx", device: str = "auto",
                    threads: int | None = None) -> Backend:
    """The backend of the built-in model ``name`` (``builtin:NAME`` accepted), read from the
    installed package (nothing is downloaded): ``onnx`` runs its shipped ONNX file (equal to the
    checkpoint within 1e-5, tested), ``torch`` its checkpoint. Raises :class:`InputError` for an
    unknown name (listing the built-in models), another backend, or a device this machine lacks."""
    if backend not in ("torch", "onnx"):
        raise InputError(f"unknown backend {backend!r} for a built-in model; choose one of: torch, onnx")
    model = get_builtin(name)
    if backend == "torch":
        return torch_backend(builtin_path(model.name), device=device)
    return onnx_backend(builtin_onnx_path(model.name), device=device, threads=threads,
                        name=f"built-in model {model.name}")


def onnx_backend(path: Path, *, device: str = "auto", threads: int | None = None, name: str | None = None) -> Backend:
    """An onnxruntime backend of the ONNX file ``path`` on ``device`` (checked first)."""
    from fer_nla.inference.onnx_backend import OnnxBackend
    from fer_nla.runtime import onnx_providers

    return OnnxBackend(path, providers=onnx_providers(device), threads=threads, name=name)


def torch_backend(path: Path, *, device: str = "auto") -> Backend:
    """A PyTorch backend of the checkpoint ``path`` on ``device``. Raises :class:`InputError`
    for a missing or foreign file (:func:`fer_nla.file_kinds.check_torch_file`, checked first)
    and, without PyTorch installed, naming the extra to install."""
    from fer_nla.extras import require
    from fer_nla.file_kinds import CHECKPOINT_TARGET, check_torch_file, checkpoint_fix

    # a missing or foreign file is said as such first, not as a missing PyTorch
    check_torch_file(path, target=CHECKPOINT_TARGET, fix=checkpoint_fix(path),
                     onnx_hint="use backend='onnx' (onnxruntime) to run it")
    require("torch", purpose=f"running the checkpoint {path} with PyTorch (backend 'torch')")
    from fer_nla.inference.torch_backend import TorchBackend

    return TorchBackend.from_checkpoint(path, device=device)


def is_onnx_model(path: str | Path) -> bool:
    """``path`` names an ONNX model: by its content where it exists, else by its suffix."""
    path = Path(path)
    if path.is_file():
        from fer_nla.file_kinds import sniff_file

        return sniff_file(path).kind == "onnx"
    return path.suffix.lower() == ".onnx"

