"""Decoded images held in memory as one uint8 tensor, and the recipe's augmentation on batches.

A grid of a hundred short runs cannot afford PNG decoding and per-image PIL transforms on every
step. The images are decoded and resized once (``T.Resize``'s bilinear, antialiased), kept as
``uint8 [N, 3, S, S]`` and saved to a cache file the workers load. :func:`augment_batch` applies
the recipe's training augmentation (:mod:`fer_nla.data.transforms`) to a whole batch, each
image drawing its own randomness: Gaussian pixel noise (variance 30 on 0..255) on half the
images, normalisation, horizontal flip on half, random erasing (p 0.5, area 2-30%, aspect
0.3-3.3, value 0). One difference, stated: the noise is added after the resize, not before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.transforms import functional as TF

from fer_nla.data.dataset import FERDataset
from fer_nla.data.transforms import ERASING_SCALE, NOISE_PROBABILITY, NOISE_VARIANCE, RECIPE_MEAN, RECIPE_STD

ERASING_RATIO = (0.3, 3.3)
ERASING_PROBABILITY = 0.5


def decode_images(dataset: FERDataset, *, image_size: int, indices: Sequence[int] | np.ndarray | None = None) -> Tensor:
    """``uint8 [N, 3, S, S]``: the dataset's images (all, or ``indices``), RGB, resized to S."""
    rows = np.arange(len(dataset)) if indices is None else np.asarray(indices, dtype=np.int64)
    out = torch.empty((rows.size, 3, image_size, image_size), dtype=torch.uint8)
    for i, index in enumerate(rows):
        image = TF.resize(dataset.load_image(int(index)), [image_size, image_size])
        out[i] = TF.pil_to_tensor(image.convert("RGB"))
    return out


def save_tensors(path: Path, **arrays: Tensor | np.ndarray) -> Path:
    """Write tensors to ``path`` atomically (a temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({k: torch.as_tensor(v) for k, v in arrays.items()}, tmp)
    tmp.replace(path)
    return path


def load_tensors(path: Path) -> dict[str, Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)


def normalise(images: Tensor, *, mean: Sequence[float] = RECIPE_MEAN, std: Sequence[float] = RECIPE_STD) -> Tensor:
    """uint8 or 0..255 float images -> the recipe's normalised float32."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1) * 255.0
    s = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1) * 255.0
    return (images.float() - m) / s


def augment_batch(
    images: Tensor,
    *,
    generator: torch.Generator,
    flip: bool = True,
    erasing: bool = True,
    gaussian_noise: bool = True,
) -> Tensor:
    """The recipe's training augmentation of ``uint8 [B, 3, S, S]``, per image, -> float32."""
    x = images.float()
    b = x.shape[0]
    if gaussian_noise:
        noisy = torch.rand(b, generator=generator) < NOISE_PROBABILITY
        noise = torch.randn(x.shape, generator=generator) * math.sqrt(NOISE_VARIANCE)
        x = torch.where(noisy.view(b, 1, 1, 1), (x + noise).round().clamp(0, 255), x)
    x = normalise(x)
    if flip:
        flipped = torch.rand(b, generator=generator) < 0.5
        x = torch.where(flipped.view(b, 1, 1, 1), x.flip(3), x)
    if erasing:
        x = _erase(x, generator)
    return x


def _erase(x: Tensor, generator: torch.Generator) -> Tensor:
    """Per-image random erasing with value 0 (T.RandomErasing's draw, the box clipped to fit
    instead of redrawn)."""
    b, _, h, w = x.shape
    area = h * w * (ERASING_SCALE[0] + (ERASING_SCALE[1] - ERASING_SCALE[0]) * torch.rand(b, generator=generator))
    log_lo, log_hi = math.log(ERASING_RATIO[0]), math.log(ERASING_RATIO[1])
    ratio = torch.exp(log_lo + (log_hi - log_lo) * torch.rand(b, generator=generator))
    eh = torch.sqrt(area * ratio).round().clamp(1, h).long()
    ew = torch.sqrt(area / ratio).round().clamp(1, w).long()
    top = (torch.rand(b, generator=generator) * (h - eh + 1).float()).long()
    left = (torch.rand(b, generator=generator) * (w - ew + 1).float()).long()
    apply = torch.rand(b, generator=generator) < ERASING_PROBABILITY
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    box = ((rows >= top.view(b, 1, 1)) & (rows < (top + eh).view(b, 1, 1))
           & (cols >= left.view(b, 1, 1)) & (cols < (left + ew).view(b, 1, 1)) & apply.view(b, 1, 1))
    return x.masked_fill(box.unsqueeze(1), 0.0)
