"""The reference recipe's transforms and the two-view wrapper (image and its flipped copy).

Train: Gaussian pixel noise (variance 30 on 0..255 values) on half of the images before
anything else, resize, to tensor, normalise, random horizontal flip, random erasing with
scale (0.02, 0.3). Eval: resize, to tensor, normalise, by :mod:`fer_nla.inference.preprocess`. Every image is made 3-channel RGB
first; with ``grayscale`` (``data.grayscale``) it is made gray first (PIL's luma, ITU-R 601-2:
``Image.convert("L")``) and the noise is drawn once per pixel, so all three channels stay equal.
Randomness comes from torch's generator, so DataLoader workers are seeded properly.
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

from fer_nla.data.augmentation import Augmentation
from fer_nla.inference.preprocess import Preprocess

RECIPE_MEAN: tuple[float, float, float] = (0.577, 0.4494, 0.4001)
RECIPE_STD: tuple[float, float, float] = (0.2628, 0.2395, 0.2383)
NOISE_VARIANCE = 30.0  # on 0..255 pixel values
NOISE_PROBABILITY = 0.5
ERASING_SCALE = (0.02, 0.3)
AFFINE_DEGREES = 10.0  # built-in model recipe (data.affine): rotation of up to +-10 degrees,
AFFINE_TRANSLATE = 0.1  # a shift of up to 10% of the side,
AFFINE_SCALE = (0.9, 1.1)  # and a scale of 0.9-1.1, common in FER training on 48-px faces


class ToRGB:
    """Any PIL image (gray, palette, RGBA, ...) as 3-channel RGB."""

    def __call__(self, image: Image.Image) -> Image.Image:
        return image if image.mode == "RGB" else image.convert("RGB")

    def __repr__(self) -> str:
        return "ToRGB()"


def to_gray(image: Image.Image) -> Image.Image:
    """Any PIL image as one gray channel (mode ``L``): made RGB as :class:`ToRGB` does, then
    ``Image.convert("L")`` (ITU-R 601-2 luma, L = 0.299 R + 0.587 G + 0.114 B, rounded); a gray
    image is returned as is (for R = G = B the luma is that value exactly)."""
    return image if image.mode == "L" else ToRGB()(image).convert("L")


class ToGray:
    """Any PIL image as gray (:func:`to_gray`, mode ``L``); :class:`ToRGB` after it replicates
    the channel to three."""

    def __call__(self, image: Image.Image) -> Image.Image:
        return to_gray(image)

    def __repr__(self) -> str:
        return "ToGray()"


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
    augment: Augmentation = Augmentation(),
    grayscale: bool = False,
) -> T.Compose:
    """PIL image -> float tensor ``3 x image_size x image_size`` with the recipe's augmentation,
    the steps ``augment`` switches on; its ``affine`` adds a random rotation/shift/scale
    (``AFFINE_*``) after normalising, 0 filling; ``grayscale`` makes the image gray
    (:func:`to_gray`) before the noise, which is then gray too."""
    steps: list[Any] = [ToGray()] if grayscale else [ToRGB()]
    if augment.gaussian_noise:
        steps.append(RandomGaussianNoise())
    if grayscale:
        steps.append(ToRGB())
    steps += [T.Resize((image_size, image_size)), T.ToTensor(), T.Normalize(list(mean), list(std))]
    if augment.affine:
        steps.append(T.RandomAffine(AFFINE_DEGREES, translate=(AFFINE_TRANSLATE, AFFINE_TRANSLATE), scale=AFFINE_SCALE,
                                    interpolation=T.InterpolationMode.BILINEAR))
    if augment.flip:
        steps.append(T.RandomHorizontalFlip())
    if augment.erasing:
        steps.append(T.RandomErasing(scale=ERASING_SCALE))
    return T.Compose(steps)


def eval_transform(
    *, image_size: int, mean: Sequence[float] = RECIPE_MEAN, std: Sequence[float] = RECIPE_STD,
    grayscale: bool = False,
) -> T.Compose:
    """PIL image -> float tensor ``3 x image_size x image_size``: the one eval-time preprocessing
    (:class:`fer_nla.inference.preprocess.Preprocess`: resize and normalise only; ``grayscale``:
    PIL's luma on all three channels first) that ``eval``, ``predict`` and ``serve`` use too."""
    preprocess = Preprocess(image_size=image_size, mean=tuple(mean), std=tuple(std), grayscale=grayscale)  # type: ignore[arg-type]
    return T.Compose([preprocess, torch.from_numpy])


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
