"""What kind of file a user gave as a model: the one gate before any ``torch.load``.

Files from other tools are recognised by their first bytes (their magic numbers) before
anything is unpickled, and each kind gets one message naming the file, what it is and the
fix. :func:`read_torch_file` is the only place fer-nla calls ``torch.load``: always with
``weights_only=True`` (no code from a file ever runs), with PyTorch's own warnings and error
text kept from the user. Nothing here imports torch at import time, so the onnxruntime
backend can sniff files too.

Kinds (:func:`sniff_file`): ``empty``; ``torch`` (``torch.save`` zip: a ``data.pkl``
entry); ``torch-legacy`` (the pre-1.6 pickle format with PyTorch's magic number);
``torchscript`` (zip with ``code/`` or ``constants.pkl``); ``keras`` (a ``.keras`` zip);
``npz``; ``zip`` (any other zip); ``damaged-zip``; ``pickle`` (a plain Python pickle);
``hdf5`` (``\\x89HDF\\r\\n\\x1a\\n``, Keras ``.h5``); ``safetensors`` (8-byte little-endian
header length, then ``{``); ``numpy`` (``.npy``); ``onnx`` (a protobuf ``ModelProto`` that
whose top-level fields are ModelProto's); ``onnx-truncated`` (one that starts as an ONNX model
but ends inside a field: a cut download or copy); ``text``; ``unknown`` (random or unknown bytes).
"""

from __future__ import annotations

import codecs
import os
import re
import textwrap
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from fer_nla.errors import InputError

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
HDF5_OFFSETS = (0, 512, 1024, 2048)  # HDF5 allows a user block of 512 * 2**k bytes before it
ZIP_MAGIC = b"PK\x03\x04"
NUMPY_MAGIC = b"\x93NUMPY"
# PyTorch's legacy (pre-1.6) files begin with a protocol-2 pickle of this magic number.
TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\nl\xfc\x9cF\xf9 j\xa8P\x19"
TORCH_KINDS = ("torch", "torch-legacy")
HEAD_BYTES = 4096
SAVE_STATE_DICT = "torch.save(model.state_dict(), 'weights.pt')"
CONVERT = f"fer-nla reads PyTorch state dicts only: convert the model to PyTorch in your own code and save its state_dict ({SAVE_STATE_DICT})"
# kind -> (what the file is, the advice; "": the caller's fix); {detail}: zip entries or the first text.
KIND_TEXT: dict[str, tuple[str, str]] = {
    "empty": ("empty (0 bytes)", "it was not written or copied completely; write or copy it again"),
    "hdf5": ("a Keras/HDF5 file (TensorFlow or Keras weights)", CONVERT),
    "keras": ("a Keras model archive (.keras)", CONVERT),
    "torchscript": ("a TorchScript model (torch.jit.save)",
                    "fer-nla never loads code from files: load it with torch.jit.load in your own code and save its "
                    f"state_dict ({SAVE_STATE_DICT})"),
    "pickle": ("a plain Python pickle",
               f"fer-nla never unpickles code: load it in your own code and save its state_dict ({SAVE_STATE_DICT})"),
    "safetensors": ("a safetensors file",
                    "fer-nla reads PyTorch files: convert it with safetensors.torch.load_file(path) and "
                    "torch.save(state_dict, 'weights.pt')"),
    "numpy": ("a NumPy array file (.npy)", CONVERT),
    "npz": ("a NumPy archive (.npz)", CONVERT),
    "zip": ("a zip archive that is not a PyTorch file (it holds {detail})", ""),
    "damaged-zip": ("a damaged or truncated zip archive", "it was not written or copied completely; write or copy it again"),
    "onnx-truncated": ("an ONNX model cut short ({detail})",
                       ("it was not written, downloaded or copied completely; export or copy it again "
                        "(fer-nla export --checkpoint best.pt --onnx model.onnx)")),
    "text": ("a text file (it starts with {detail})", ""),
}
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


@dataclass(frozen=True)
class FileKind:
    """The sniffed kind of a file (one of the kinds in the module docstring) and a short detail
    for messages (zip entries, the first text, the first bytes in hex)."""

    kind: str
    detail: str = ""


def sniff_file(path: str | Path) -> FileKind:
    """The kind of the file at ``path``, from its first bytes (a zip's entry names; an ONNX
    file's protobuf fields are walked when its suffix is ``.onnx`` or it starts like one).
    Raises ``OSError`` when the file cannot be read."""
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    if not head:
        return FileKind("empty")
    if any(head[offset:offset + len(HDF5_MAGIC)] == HDF5_MAGIC for offset in HDF5_OFFSETS):
        return FileKind("hdf5")
    if head.startswith(ZIP_MAGIC):
        return _sniff_zip(path)
    if head.startswith(TORCH_LEGACY_MAGIC):
        return FileKind("torch-legacy")
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return FileKind("pickle")
    if head.startswith(NUMPY_MAGIC):
        return FileKind("numpy")
    if _is_safetensors(head, size=path.stat().st_size):
        return FileKind("safetensors")
    if path.suffix.lower() == ".onnx" or head[0] == 0x08:
        onnx_kind = _onnx_kind(path)
        if onnx_kind is not None:
            return onnx_kind
    text = _text_start(head)
    if text is not None:
        return FileKind("text", text)
    return FileKind("unknown", " ".join(f"{b:02x}" for b in head[:8]))


def _sniff_zip(path: Path) -> FileKind:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        return FileKind("damaged-zip", str(err).rstrip("."))
    leaves = {name.rstrip("/").rsplit("/", 1)[-1] for name in names}
    if any("/code/" in f"/{name}" for name in names) or "constants.pkl" in leaves:
        return FileKind("torchscript")
    if "data.pkl" in leaves:
        return FileKind("torch")
    if {"config.json", "model.weights.h5"} <= leaves:
        return FileKind("keras")
    if names and all(name.endswith(".npy") for name in names):
        return FileKind("npz")
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return FileKind("zip", shown or "nothing")


def _is_safetensors(head: bytes, *, size: int) -> bool:
    if len(head) < 9 or head[8:9] != b"{":
        return False
    length = int.from_bytes(head[:8], "little")
    return 2 <= length <= size - 8


# ONNX ModelProto's top-level fields (onnx.proto3): number -> protobuf wire type (0 varint, 2 bytes).
_ONNX_FIELDS: dict[int, int] = {1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2}


def _onnx_kind(path: Path) -> FileKind | None:
    """``onnx`` when ``path`` is an ONNX ``ModelProto``: its top-level protobuf fields, walked to
    the end of the file without reading the payloads, are all ModelProto's with their wire types,
    the IR version is positive, and it has a graph or an opset (no onnx package needed).
    ``onnx-truncated`` when it starts that way (a positive IR version, then ModelProto fields)
    but the file ends inside a field; ``None`` otherwise."""
    seen: set[int] = set()
    ir_version = 0
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        while handle.tell() < size:
            tag = _varint(handle)
            if tag is None or _ONNX_FIELDS.get(tag >> 3) != tag & 7:
                return _cut(ir_version, size) if tag is None else None
            value = _varint(handle)
            if value is None:
                return _cut(ir_version, size)
            if tag & 7 == 2:
                if handle.tell() + value > size:
                    return _cut(ir_version, size, needed=handle.tell() + value)
                handle.seek(value, os.SEEK_CUR)
            elif tag >> 3 == 1:
                ir_version = value
            seen.add(tag >> 3)
    return FileKind("onnx") if ir_version > 0 and bool(seen & {7, 8}) else None


def _cut(ir_version: int, size: int, *, needed: int | None = None) -> FileKind | None:
    """``onnx-truncated`` for a walk that began as an ONNX model (IR version read) and ran out."""
    if ir_version <= 0:
        return None
    return FileKind("onnx-truncated", f"{size:,} of at least {needed:,} bytes" if needed else f"{size:,} bytes")


def _varint(handle: BinaryIO) -> int | None:
    """A protobuf base-128 varint read from ``handle``; ``None`` at the end of the file or past 10 bytes."""
    value = 0
    for shift in range(0, 70, 7):
        byte = handle.read(1)
        if not byte:
            return None
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
    return None


def _text_start(head: bytes) -> str | None:
    """The first words of ``head`` quoted, when it is UTF-8 text without control characters."""
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return None
    if not text.strip() or any(not ch.isprintable() and ch not in "\t\n\r\f\v" for ch in text):
        return None
    words = " ".join(text.split())
    return repr(words[:40] + ("..." if len(words) > 40 else ""))


def describe_foreign_file(path: str | Path, *, target: str, fix: str, onnx_hint: str | None = None,
                          kind: FileKind | None = None) -> str | None:
    """The one-line message for a file that is not a PyTorch file (``None`` for ``torch`` and
    ``torch-legacy`` files): ``"<path> is <what it is>, not <target>: <advice>"``.

    ``target`` names what was expected (``"a fer-nla checkpoint"``); ``fix`` is the context's
    fix for random, text and unknown files; ``onnx_hint`` is the advice for an ONNX model
    (default: run it with the onnx backend). Raises ``OSError`` when the file cannot be read."""
    kind = kind or sniff_file(path)
    if kind.kind in TORCH_KINDS:
        return None
    if kind.kind == "onnx":
        hint = onnx_hint or "run it with `fer-nla predict --backend onnx` or score it with `fer-nla eval`"
        return f"{path} is an ONNX model, not {target}: {hint}"
    if kind.kind == "unknown":
        return (f"{path} is not a checkpoint (random or unknown bytes: it starts {kind.detail}, which matches no "
                f"model format fer-nla knows); {fix}")
    what, advice = KIND_TEXT[kind.kind]
    if kind.kind == "onnx-truncated":  # the right kind of file, cut short: "not <target>" would mislead
        return f"{path} is {what.format(detail=kind.detail)}: {advice}"
    return f"{path} is {what.format(detail=kind.detail)}, not {target}: {advice or fix}"


def check_torch_file(path: str | Path, *, target: str, fix: str, onnx_hint: str | None = None) -> None:
    """Refuse, without PyTorch, what :func:`read_torch_file` would not load: a folder, a missing
    file and a foreign file (:func:`describe_foreign_file`), each an :class:`InputError` naming
    ``path``, ``target`` and ``fix``."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path} is a folder, not {target}; {fix}")
    if not path.is_file():
        raise InputError(f"{path} does not exist; {fix}")
    message = describe_foreign_file(path, target=target, fix=fix, onnx_hint=onnx_hint)
    if message is not None:
        raise InputError(message)


CHECKPOINT_TARGET = "a fer-nla checkpoint"  # how messages name what a checkpoint path should hold


def checkpoint_fix(path: str | Path) -> str:
    """What to pass instead of ``path`` where a fer-nla checkpoint is expected (a run folder:
    its best.pt)."""
    path = Path(path)
    if path.is_dir() and (path / "best.pt").is_file():
        return f"pass {path / 'best.pt'} (this looks like a run folder)"
    return "pass the best.pt or last.pt that `fer-nla train` wrote"


def read_torch_file(path: str | Path, *, target: str, fix: str, onnx_hint: str | None = None,
                    map_location: Any = "cpu") -> Any:
    """The object in a PyTorch file, loaded with ``torch.load(..., weights_only=True)``.

    Foreign files are refused by kind before anything is unpickled
    (:func:`describe_foreign_file`); a PyTorch file that pickles code (``torch.save(model)``)
    is "a pickled model" with the fix to save its ``state_dict``; other load failures are a
    damaged file. PyTorch's warnings and its error text (which advises turning
    ``weights_only`` off) never reach the user. Raises :class:`InputError` for all of these
    and for a missing file or a folder."""
    path = Path(path)
    check_torch_file(path, target=target, fix=fix, onnx_hint=onnx_hint)
    import torch

    names: list[str] = []  # the globals weights_only refused, read once when the first load fails
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return torch.load(path, map_location=map_location, weights_only=True)
            except Exception:  # a checkpoint holding NumPy values: allow-list them, then retry
                names = _unsafe_globals(path)
                numpy_globals = _numpy_globals(names)
                if not numpy_globals:
                    raise
                with torch.serialization.safe_globals(numpy_globals):
                    return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure is the file's; torch's text advises unsafe loading
        raise InputError(_load_failure(path, err, target=target, names=names)) from None


# NumPy's own data (arrays, scalars, dtypes) pickles through these, and unpickles no code.
_NUMPY_SAFE = re.compile(r"numpy\.(ndarray|dtype|dtypes\.\w+DType|_?core\.multiarray\.(_reconstruct|scalar))")


def _numpy_globals(names: list[str]) -> list[Any]:
    """The NumPy globals among ``names`` (a file's globals beyond ``weights_only``'s defaults,
    :func:`_unsafe_globals`), resolved; ``[]`` when there are none or any other one (a class, a
    function: then the file is not loaded)."""
    import importlib

    if not names or not all(_NUMPY_SAFE.fullmatch(name) for name in names):
        return []
    resolved = []
    for name in names:  # NumPy's own modules only (the pattern above): importing them runs no user code
        module, _, attr = name.rpartition(".")
        try:
            resolved.append(getattr(importlib.import_module(module), attr))
        except (ImportError, AttributeError):
            return []
    if "numpy.dtype" in names:  # a dtype unpickles through its class (numpy.dtypes.Float64DType, ...)
        import numpy as np

        resolved += [getattr(np.dtypes, n) for n in dir(getattr(np, "dtypes", None))
                     if n.endswith("DType") and n != "ObjectDType"]
    return resolved


def _unsafe_globals(path: Path) -> list[str]:
    """The dotted names of the globals ``weights_only`` would refuse in ``path`` (``[]`` when the
    file cannot be read that far)."""
    import torch

    try:
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # noqa: BLE001 - an unreadable file: the load's own error stands
        return []


def _is_module_class(name: str) -> bool:
    """Whether the dotted ``name`` is a ``torch.nn.Module`` subclass (a pickled model) or not loaded
    in this process (a class from the user's own code: most likely a model too). Only modules
    already imported are looked at: a file never makes fer-nla import (and so run) a module."""
    import sys

    import torch

    module, _, attr = name.rpartition(".")
    found = getattr(sys.modules.get(module), attr, None)
    if found is None:
        return module.split(".")[0] not in {"builtins", "collections", "datetime", "decimal", "fractions", "pathlib",
                                            "uuid", "numpy"}
    return isinstance(found, type) and issubclass(found, torch.nn.Module)


def _load_failure(path: Path, err: Exception, *, target: str, names: list[str]) -> str:
    """The message for a PyTorch file that ``torch.load(weights_only=True)`` refused; ``names``:
    the globals it refused (:func:`_unsafe_globals`, ``[]`` when unknown)."""
    text = _ANSI.sub("", str(err))
    found = _GLOBAL.search(text)
    foreign = [name for name in names if not _NUMPY_SAFE.fullmatch(name)]
    models = [name for name in foreign if _is_module_class(name)]
    if foreign and not models:  # values a user added to a checkpoint: say which, not "a pickled model"
        return (f"{path} stores Python objects of {', '.join(foreign)}, which fer-nla never unpickles (it loads "
                "tensors, NumPy arrays and scalars, numbers, strings, lists and dicts): if you added them to the "
                "file, store them as one of those or remove them, and save the file again")
    stored = found.group(1) if found else (models[0] if models else None)
    if stored or "Weights only load failed" in text:
        stores = f" (it stores the Python class {stored})" if stored else ""
        return (f"{path} is a pickled model{stores}, not {target}: fer-nla never unpickles code; load it in your "
                f"own code and save its state_dict ({SAVE_STATE_DICT})")
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    detail = f" ({textwrap.shorten(first, 200, placeholder=' ...')})" if "weights_only" not in first else ""
    return f"{path} is a damaged or truncated PyTorch file{detail}: write or copy it again"
