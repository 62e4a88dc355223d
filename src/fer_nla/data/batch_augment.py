"""The recipe's training augmentation on whole uint8 batches, on the batch's device.

Same steps, order and parameters as :func:`fer_nla.data.transforms.train_transform` (the NLA
recipe, ``/work/shared/docs/NLA-METHOD.md``), each image drawing its own randomness:

1. Gaussian pixel noise, N(0, 30) on the 0..255 values, rounded and clipped, on half the images,
   BEFORE the resize (a few lines of torch: it needs the round and clip on 0..255); with
   ``grayscale`` (gray images, ``data.grayscale``) one draw per pixel for all three channels;
2. resize to ``image_size`` x ``image_size`` (bilinear, antialiased:
   ``torchvision.transforms.v2.functional.resize`` on uint8, skipped at that size already);
3. ``/ 255`` and normalise with the recipe's mean and std;
4. with ``affine`` (off in the NLA recipe; on in the built-in model's recipe): a random
   rotation of up to ``AFFINE_DEGREES``, shift of up to ``AFFINE_TRANSLATE`` of the side and
   scale in ``AFFINE_SCALE`` per image, zeros (the mean) filling the corners
   (``kornia.augmentation.RandomAffine``; ``torchvision.transforms.RandomAffine`` with the same
   ranges in the PIL path);
5. horizontal flip on half the images (``kornia.augmentation.RandomHorizontalFlip``);
6. random erasing, p 0.5, area 2-30 %, aspect 0.3-3.3, value 0 in normalised units
   (``kornia.augmentation.RandomErasing``).

Why kornia and not ``torchvision.transforms.v2``: v2's random transforms treat a ``[B, 3, H, W]``
tensor as ONE image with leading dimensions, so a batch gets one draw (checked with torchvision
0.29: ``v2.RandomHorizontalFlip`` flips all images or none, ``v2.RandomErasing`` erases the same
rectangle in every image; ``tests/data/test_batch_augment.py`` keeps that check). Kornia draws
per sample (``same_on_batch=False``).

Two stated differences from torchvision's ``RandomErasing``: kornia draws the aspect ratio
uniformly on ``[0.3, 1]`` or ``[1, 3.3]`` (a fair coin between them) instead of log-uniformly
on ``[0.3, 3.3]``, and clamps a rectangle that does not fit to the image instead of retrying
(up to 10 times) and giving up; the erased share still lies in 2-30 % of the image up to
pixel rounding.

Randomness: from torch's global generators (the noise from the batch device's, kornia's
draws from the CPU's, both seeded by ``torch.manual_seed``), or from a passed
``torch.Generator`` on the batch's device: the noise draws from it and kornia's draws from
the CPU generator re-seeded by one draw of it inside ``torch.random.fork_rng`` (the global
state is restored). Either way a seeded epoch replays exactly on the same device.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import kornia.augmentation as KA
import torch
from torch import Tensor
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from fer_nla.data.augmentation import Augmentation
from fer_nla.data.transforms import (
    AFFINE_DEGREES,
    AFFINE_SCALE,
    AFFINE_TRANSLATE,
    ERASING_SCALE,
    NOISE_PROBABILITY,
    NOISE_VARIANCE,
    RECIPE_MEAN,
    RECIPE_STD,
)

ERASING_RATIO = (0.3, 3.3)  # torchvision's RandomErasing default, which the recipe keeps
ERASING_PROBABILITY = 0.5
FLIP_PROBABILITY = 0.5


def _check_batch(images: Tensor) -> None:
    if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        dtype = images.dtype if isinstance(images, Tensor) else ""
        raise ValueError(f"expected uint8 images [B, 3, H, W] (0..255 RGB), got {shape} {dtype}")


def add_pixel_noise(
    images: Tensor, *, variance: float = NOISE_VARIANCE, p: float = NOISE_PROBABILITY,
    generator: torch.Generator | None = None, gray: bool = False,
) -> Tensor:
    """``uint8 [B, 3, H, W]`` -> ``uint8 [B, 3, H, W]``: each image, with probability ``p``, gets
    N(0, ``variance``) noise on its 0..255 values, rounded and clipped to 0..255 (per pixel and
    channel, as :class:`fer_nla.data.transforms.RandomGaussianNoise`; ``gray``: one draw per pixel
    added to every channel, so gray images stay gray)."""
    b = images.shape[0]
    chosen = torch.rand(b, device=images.device, generator=generator) < p
    shape = (b, 1, *images.shape[2:]) if gray else tuple(images.shape)
    noise = torch.randn(shape, device=images.device, generator=generator) * math.sqrt(variance)
    noisy = (images.float() + noise).round_().clamp_(0, 255).to(torch.uint8)
    return torch.where(chosen.view(b, 1, 1, 1), noisy, images)


def resize_batch(images: Tensor, *, image_size: int) -> Tensor:
    """``uint8 [B, 3, H, W]`` -> ``uint8 [B, 3, S, S]`` (bilinear, antialiased, rounded to uint8
    as PIL's ``T.Resize`` gives); returned as is when already ``S x S``."""
    if tuple(images.shape[-2:]) == (image_size, image_size):
        return images
    return TF.resize(images, [image_size, image_size], interpolation=InterpolationMode.BILINEAR, antialias=True)


def normalise_batch(images: Tensor, *, mean: Sequence[float] = RECIPE_MEAN, std: Sequence[float] = RECIPE_STD) -> Tensor:
    """``uint8 [B, 3, H, W]`` -> ``float32``: ``(x / 255 - mean) / std`` per channel, the same
    operations as ``T.ToTensor`` then ``T.Normalize``."""
    m = torch.tensor(list(mean), dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    s = torch.tensor(list(std), dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return images.float().div_(255).sub_(m).div_(s)


def eval_batch(
    images: Tensor, *, image_size: int, mean: Sequence[float] = RECIPE_MEAN, std: Sequence[float] = RECIPE_STD
) -> Tensor:
    """Evaluation: ``uint8 [B, 3, H, W]`` -> ``float32 [B, 3, S, S]``, resize and normalise only
    (as :func:`fer_nla.data.transforms.eval_transform`). Raises ``ValueError`` for another input."""
    _check_batch(images)
    return normalise_batch(resize_batch(images, image_size=image_size), mean=mean, std=std)


class BatchAugment:
    """The recipe's training augmentation of ``uint8 [B, 3, H, W]`` -> ``float32 [B, 3, S, S]``
    on the batch's device (see the module doc); ``augment`` switches the steps as
    :class:`fer_nla.config.DataConfig` does; ``grayscale`` (the images are gray, as
    ``data.grayscale`` decodes them) draws the noise once per pixel. Build once, call per batch."""

    def __init__(
        self,
        *,
        image_size: int,
        mean: Sequence[float] = RECIPE_MEAN,
        std: Sequence[float] = RECIPE_STD,
        augment: Augmentation = Augmentation(),
        grayscale: bool = False,
    ) -> None:
        self.image_size = int(image_size)
        self.mean, self.std = tuple(mean), tuple(std)
        self.gaussian_noise, self.grayscale = augment.gaussian_noise, bool(grayscale)
        self.affine = KA.RandomAffine(
            degrees=AFFINE_DEGREES, translate=(AFFINE_TRANSLATE, AFFINE_TRANSLATE), scale=AFFINE_SCALE, p=1.0
        ) if augment.affine else None
        self.flip = KA.RandomHorizontalFlip(p=FLIP_PROBABILITY) if augment.flip else None
        self.erasing = KA.RandomErasing(
            scale=ERASING_SCALE, ratio=ERASING_RATIO, value=0.0, p=ERASING_PROBABILITY
        ) if augment.erasing else None

    def __call__(self, images: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Augment one batch. ``generator``: a ``torch.Generator`` on ``images.device`` (None: the
        global generators). Raises ``ValueError`` for non-uint8 input or a generator elsewhere."""
        _check_batch(images)
        if generator is not None and generator.device.type != images.device.type:
            raise ValueError(f"the generator is on {generator.device}, the images on {images.device}; use one device")
        if self.gaussian_noise:
            images = add_pixel_noise(images, generator=generator, gray=self.grayscale)
        x = normalise_batch(resize_batch(images, image_size=self.image_size), mean=self.mean, std=self.std)
        if self.affine is None and self.flip is None and self.erasing is None:
            return x
        with self._kornia_rng(generator):
            if self.affine is not None:
                x = self.affine(x)
            if self.flip is not None:
                x = self.flip(x)
            if self.erasing is not None:
                x = self.erasing(x)
        return x

    @staticmethod
    def _kornia_rng(generator: torch.Generator | None) -> Any:
        """Kornia draws from the global CPU generator: with ``generator`` given, a forked CPU
        state seeded by one draw of it (one host sync on a GPU), restored afterwards."""
        if generator is None:
            return nullcontext()
        seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
        return _cpu_rng_seeded(seed)

    def __repr__(self) -> str:
        steps = [f"noise(var={NOISE_VARIANCE:g}, p={NOISE_PROBABILITY}{', gray' if self.grayscale else ''})" if self.gaussian_noise else "",
                 f"resize({self.image_size})", "normalise", "affine" if self.affine is not None else "", "flip" if self.flip is not None else "",
                 "erasing" if self.erasing is not None else ""]
        return f"BatchAugment({', '.join(s for s in steps if s)})"


@contextmanager
def _cpu_rng_seeded(seed: int) -> Iterator[None]:
    """The global CPU generator seeded with ``seed`` inside the block, its state restored after."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def augment_batch(
    images: Tensor,
    *,
    image_size: int,
    augment: Augmentation = Augmentation(),
    grayscale: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One-off :class:`BatchAugment` call: ``uint8 [B, 3, H, W]`` -> ``float32 [B, 3, S, S]``."""
    return BatchAugment(image_size=image_size, augment=augment, grayscale=grayscale)(images, generator=generator)
