"""Batch augmentation: the recipe's transforms, each image drawing its own randomness."""

from __future__ import annotations

import pytest
import torch

from fer_nla.bench.tensor_data import augment_batch, normalise
from fer_nla.data.transforms import RECIPE_MEAN, RECIPE_STD


def images(n: int = 256, size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)


def test_without_augmentation_it_is_the_recipe_normalisation():
    x = images(4)
    out = augment_batch(x, generator=torch.Generator(), flip=False, erasing=False, gaussian_noise=False)
    expected = (x.float() / 255 - torch.tensor(RECIPE_MEAN).view(1, 3, 1, 1)) / torch.tensor(RECIPE_STD).view(1, 3, 1, 1)
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.equal(out, normalise(x))


def test_flip_is_drawn_per_image():
    x = images()
    out = augment_batch(x, generator=torch.Generator().manual_seed(0), erasing=False, gaussian_noise=False)
    flipped = torch.tensor([torch.equal(o, normalise(x[i:i + 1])[0].flip(2)) for i, o in enumerate(out)])
    same = torch.tensor([torch.equal(o, normalise(x[i:i + 1])[0]) for i, o in enumerate(out)])
    assert (flipped | same).all()
    assert 90 < int(flipped.sum()) < 166  # about half of 256


def test_erasing_zeroes_one_box_on_about_half_the_images_within_the_area_range():
    x = torch.full((400, 3, 32, 32), 200, dtype=torch.uint8)  # normalises to non-zero everywhere
    out = augment_batch(x, generator=torch.Generator().manual_seed(0), flip=False, gaussian_noise=False)
    erased = (out == 0).all(dim=1).flatten(1).float().mean(dim=1)
    hit = erased > 0
    assert 160 < int(hit.sum()) < 240
    # 2-30% of the area, up to the rounding of the box sides to whole pixels
    assert erased[hit].min() >= 0.01 and erased[hit].max() <= 0.35


def test_noise_has_the_recipe_variance_on_half_the_images_and_the_generator_decides():
    x = torch.full((400, 3, 32, 32), 128, dtype=torch.uint8)
    g = torch.Generator().manual_seed(3)
    out = augment_batch(x, generator=g, flip=False, erasing=False)
    pixels = out * torch.tensor(RECIPE_STD).view(1, 3, 1, 1) * 255 + torch.tensor(RECIPE_MEAN).view(1, 3, 1, 1) * 255
    noisy = (pixels - 128).abs().flatten(1).amax(dim=1) > 0.5
    assert 160 < int(noisy.sum()) < 240
    assert (pixels[noisy] - 128).var().item() == pytest.approx(30 + 1 / 12, rel=0.05)  # + rounding
    again = augment_batch(x, generator=torch.Generator().manual_seed(3), flip=False, erasing=False)
    assert torch.equal(out, again)

