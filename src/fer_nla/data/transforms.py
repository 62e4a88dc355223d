"""The reference recipe's transforms and the two-view wrapper (image and its flipped copy).

Train: Gaussian pixel noise (variance 30 on 0..255 values) on half of the images before
anything else, resize, to tensor, normalise, random horizontal flip, random erasing with
scale (0.02, 0.3). Eval: resize, to tensor, normalise. Every image is made 3-channel RGB
first. Randomness comes from torch's generator, so DataLoader workers are seeded properly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import transforms as T

RECIPE_MEAN: tuple[float, float, float] = (0.577, 0.4494, 0.4001)
RECIPE_STD: tuple[float, float, float] = (0.2628, 0.2395, 0.2383)
NOISE_VARIANCE = 30.0  # on 0..255 pixel values
NOISE_PROBABILITY = 0.5
ERASING_SCALE = (0.02, 0.3)


class ToRGB:
    """Any PIL image (gray, palette, RGBA, ...) as 3-channel RGB."""

    def __call__(self, image: Image.Image) -> Image.Image:
        return image if image.mode == "RGB" else image.convert("RGB")

    def __repr__(self) -> str:
        return "ToRGB()"


class RandomGaussianNoise:
    """With probability ``p``, add N(0, ``variance``) noise to the 0..255 pixel values (then
    round and clip), as the reference does before its transform."""

    def __init__(self, *, variance: float = NOISE_VARIANCE, p: float = NOISE_PROBABILITY) -> None:
        self.std = math.sqrt(variance)
        self.p = p

    def __call__(self, image: Image.Image) -> Image.Image:
        if torch.rand(()) >= self.p:
            return image
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32))
        noisy = (pixels + torch.randn(pixels.shape) * self.std).round().clamp_(0, 255)
        return Image.fromarray(noisy.to(torch.uint8).numpy(), mode=image.mode)

    def __repr__(self) -> str:
        return f"RandomGaussianNoise(variance={self.std ** 2:g}, p={self.p})"


def train_transform(
    *,
    image_size: int,
    mean: Sequence[float] = RECIPE_MEAN,
    std: Sequence[float] = RECIPE_STD,
    flip: bool = True,
    erasing: bool = True,
    gaussian_noise: bool = True,
) -> T.Compose:
    """PIL image -> float tensor ``3 x image_size x image_size`` with the recipe's augmentation."""
    steps: list[Any] = [ToRGB()]
    if gaussian_noise:
        steps.append(RandomGaussianNoise())
    steps += [T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(list(mean), list(std))]
    if flip:
        steps.append(T.RandomHorizontalFlip())
    if erasing:
        steps.append(T.RandomErasing(scale=ERASING_SCALE))
    return T.Compose(steps)


def eval_transform(
    *, image_size: int, mean: Sequence[float] = RECIPE_MEAN, std: Sequence[float] = RECIPE_STD
) -> T.Compose:
    """PIL image -> float tensor ``3 x image_size x image_size``: resize and normalise only."""
    return T.Compose([ToRGB(), T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(list(mean), list(std))])


class TwoViewDataset(Dataset):
    """Wraps a dataset returning ``(image_tensor, target, index)`` to return ``(image,
    flipped image, target, index)``: the second view is the horizontal flip of the first
    (same augmentation otherwise), as NLA's consistency term expects."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, Any, int]:
        image, target, sample_index = self.dataset[index]
        if not isinstance(image, torch.Tensor):
            raise TypeError("TwoViewDataset needs a dataset whose transform returns tensors (train_transform)")
        return image, image.flip(-1), target, sample_index

    def __getattr__(self, name: str) -> Any:  # class_names, targets, ... of the wrapped dataset
        if name == "dataset":
            raise AttributeError(name)
        return getattr(self.dataset, name)
