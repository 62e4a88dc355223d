"""The recipe's augmentation on uint8 batches: each op's rate and size, per-image draws, replay, eval path."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from fer_nla.data.augmentation import Augmentation
from fer_nla.data.batch_augment import BatchAugment, add_pixel_noise, augment_batch, eval_batch, normalise_batch
from fer_nla.data.transforms import RECIPE_STD, eval_transform

STD_255 = torch.tensor(RECIPE_STD).view(1, 3, 1, 1) * 255  # one normalised unit in 0..255 levels


def _binomial_ok(share: float, n: int, p: float = 0.5) -> bool:
    return abs(share - p) < 4 * math.sqrt(p * (1 - p) / n)


def _random_batch(n: int, size: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def test_noise_alone_hits_half_the_images_with_variance_30_on_0_255():
    images = torch.full((2000, 3, 8, 8), 128, dtype=torch.uint8)
    torch.manual_seed(0)
    out = add_pixel_noise(images).float()
    noised = (out != 128).flatten(1).any(1)
    assert _binomial_ok(noised.float().mean().item(), 2000)
    deviation = out[noised] - 128  # rounded noise: variance 30 + 1/12 (no clipping at 128 +- 23 sigma)
    assert deviation.std().item() == pytest.approx(math.sqrt(30 + 1 / 12), abs=0.05)
    assert deviation.mean().item() == pytest.approx(0.0, abs=0.05)
    assert torch.equal(out[~noised], torch.full_like(out[~noised], 128))


def test_noise_rounds_and_clips_to_0_255():
    images = torch.tensor([0, 255], dtype=torch.uint8).repeat_interleave(1000).view(2000, 1, 1, 1).expand(-1, 3, 4, 4)
    torch.manual_seed(1)
    out = add_pixel_noise(images.contiguous(), p=1.0)
    assert out.dtype == torch.uint8  # integers, so rounded; uint8 holds only 0..255
    assert (out[:1000] > 0).any() and (out[1000:] < 255).any()  # clipped, not wrapped: 0 - 3 is 0, not 253
    assert out[:1000].float().mean() < 5 and out[1000:].float().mean() > 250


def test_noise_comes_before_the_resize():
    """Noise added at 48 px then resized to 24 px is averaged down; after the resize it would keep sqrt(30)."""
    augment = BatchAugment(image_size=24, augment=Augmentation(flip=False, erasing=False))
    torch.manual_seed(2)
    flat = torch.full((400, 3, 48, 48), 128, dtype=torch.uint8)
    levels = (augment(flat) - eval_batch(flat, image_size=24)) * STD_255
    noised = levels.abs().flatten(1).amax(1) > 0.5
    assert _binomial_ok(noised.float().mean().item(), 400)
    assert levels[noised].std().item() < 0.5 * math.sqrt(30)  # measured 1.8 levels, vs 5.5 after


def test_flip_alone_flips_half_the_images():
    images = _random_batch(2000, 6)
    plain = eval_batch(images, image_size=6)
    torch.manual_seed(3)
    out = BatchAugment(image_size=6, augment=Augmentation(erasing=False, gaussian_noise=False))(images)
    flipped = (out == plain.flip(-1)).flatten(1).all(1)
    kept = (out == plain).flatten(1).all(1)
    assert torch.all(flipped ^ kept)
    assert _binomial_ok(flipped.float().mean().item(), 2000)


def test_erasing_alone_erases_half_the_images_2_to_30_percent_in_one_rectangle():
    torch.manual_seed(4)
    out = BatchAugment(image_size=48, augment=Augmentation(flip=False, gaussian_noise=False))(torch.full((2000, 3, 48, 48), 200, dtype=torch.uint8))
    erased = (out == 0).all(1)  # a flat 200 image is nowhere 0 after normalising
    share = erased.float().mean((1, 2))
    hit = share > 0
    assert _binomial_ok(hit.float().mean().item(), 2000)
    assert share[hit].min() >= 0.015 and share[hit].max() <= 0.32  # 2-30 % up to whole-pixel sides
    assert share[hit].mean().item() == pytest.approx(0.16, abs=0.01)  # scale uniform on (0.02, 0.3)
    for mask in erased[hit][:50]:
        rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
        box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
        assert box.item() == mask.sum().item()  # one filled rectangle


def test_draws_are_per_image_not_per_batch():
    torch.manual_seed(5)
    out = BatchAugment(image_size=16, augment=Augmentation(gaussian_noise=False))(torch.full((64, 3, 16, 16), 200, dtype=torch.uint8))
    masks = (out == 0).all(1)
    erased = masks.flatten(1).any(1)
    assert 0 < erased.sum() < 64
    assert len({tuple(m.flatten().tolist()) for m in masks[erased]}) > 1  # rectangles differ


def test_torchvision_v2_draws_once_per_batch():
    """Why kornia: v2's random transforms treat a batch tensor as one image (torchvision 0.29)."""
    images = torch.rand(64, 3, 8, 8)
    torch.manual_seed(6)
    flipped = [bool((v2.RandomHorizontalFlip()(images) == images.flip(-1)).flatten(1).all(1).float().mean() in (0, 1))
               for _ in range(4)]
    masks = (v2.RandomErasing(p=1.0)(images) == 0).all(1)
    assert all(flipped)
    assert all(torch.equal(m, masks[0]) for m in masks)


def test_same_seed_replays_same_batch_and_other_seed_differs():
    images = _random_batch(16, 48)
    augment = BatchAugment(image_size=40)
    torch.manual_seed(7)
    a = augment(images)
    torch.manual_seed(7)
    b = augment(images)
    torch.manual_seed(8)
    c = augment(images)
    assert torch.equal(a, b) and not torch.equal(a, c)
    state = torch.get_rng_state()
    d = augment(images, generator=torch.Generator().manual_seed(9))
    e = augment(images, generator=torch.Generator().manual_seed(9))
    assert torch.equal(d, e) and torch.equal(state, torch.get_rng_state())  # a generator leaves the global state alone


def test_all_off_equals_eval_path_and_shapes():
    images = _random_batch(8, 48)
    out = augment_batch(images, image_size=64, augment=Augmentation(flip=False, erasing=False, gaussian_noise=False))
    assert out.shape == (8, 3, 64, 64) and out.dtype == torch.float32
    assert torch.equal(out, eval_batch(images, image_size=64))
    with pytest.raises(ValueError, match="uint8"):
        eval_batch(images.float(), image_size=64)


@pytest.mark.parametrize("size", [24, 40, 48, 64, 112, 224])
def test_eval_path_matches_eval_transform_within_two_levels(size):
    """Tensor antialiased bilinear vs PIL's: measured at most 2/255 (224 px), 1/255 (40 px), exact else."""
    images = _random_batch(6, 48, seed=size)
    reference = torch.stack([eval_transform(image_size=size)(Image.fromarray(np.ascontiguousarray(x.permute(1, 2, 0).numpy())))
                             for x in images])
    levels = (eval_batch(images, image_size=size) - reference).abs() * STD_255
    assert levels.max().item() <= 2.0 + 1e-3
    assert (levels > 0.01).float().mean().item() < 0.05


def test_normalise_is_totensor_then_normalize():
    images = _random_batch(2, 5)
    expected = v2.Normalize(list((0.577, 0.4494, 0.4001)), list(RECIPE_STD))(images.float() / 255)
    assert torch.allclose(normalise_batch(images), expected, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_batches_replay_and_eval_matches_cpu():
    images = _random_batch(16, 48).cuda()
    augment = BatchAugment(image_size=112)
    runs = []
    for _ in range(2):
        torch.manual_seed(12)
        runs.append(augment(images))
    assert runs[0].device.type == "cuda" and torch.equal(runs[0], runs[1])
    seeded = [augment(images, generator=torch.Generator(device="cuda").manual_seed(13)) for _ in range(2)]
    assert torch.equal(seeded[0], seeded[1])
    levels = (eval_batch(images, image_size=112).cpu() - eval_batch(images.cpu(), image_size=112)).abs() * STD_255
    assert levels.max().item() <= 1.0 + 1e-3  # GPU resizes in float and rounds; CPU has a uint8 kernel
