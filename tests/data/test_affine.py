"""data.affine: a random rotation/shift/scale per image, off by default (the NLA recipe unchanged)."""

from __future__ import annotations

import kornia.augmentation as KA
import pytest
import torch
from torchvision import transforms as T

from fer_nla.data.augmentation import NO_AUGMENTATION, Augmentation
from fer_nla.config import DataConfig, load_config
from fer_nla.data.batch_augment import (
    ERASING_PROBABILITY,
    ERASING_RATIO,
    FLIP_PROBABILITY,
    BatchAugment,
    add_pixel_noise,
    eval_batch,
    normalise_batch,
    resize_batch,
)
from fer_nla.data.transforms import AFFINE_DEGREES, AFFINE_SCALE, AFFINE_TRANSLATE, ERASING_SCALE, train_transform
from fer_nla.distributed import DistInfo
from fer_nla.train.loaders import build_loaders
from fer_nla.train.run_data import build_run_data


def _pattern(n: int, size: int = 24) -> torch.Tensor:
    """``n`` copies of one asymmetric uint8 image (a bright off-centre square on a ramp)."""
    image = torch.linspace(0, 200, size).round().to(torch.uint8).expand(3, size, size).clone()
    image[:, 3:10, 5:15] = 255
    return image.expand(n, -1, -1, -1).contiguous()


def test_kornia_path_draws_an_affine_per_image():
    images = _pattern(8)
    torch.manual_seed(0)
    out = BatchAugment(image_size=24, augment=Augmentation(affine=True, flip=False, erasing=False, gaussian_noise=False))(images)
    plain = eval_batch(images, image_size=24)
    assert all(not torch.allclose(x, plain[0], atol=1e-3) for x in out)  # p = 1: every image moved
    assert len({tuple(x.flatten().round(decimals=3).tolist()) for x in out}) == 8  # each its own draw


def test_files_path_applies_torchvisions_random_affine_with_the_same_ranges():
    steps = train_transform(image_size=24, augment=Augmentation(affine=True)).transforms
    affine = [s for s in steps if isinstance(s, T.RandomAffine)]
    assert len(affine) == 1
    names = [type(s).__name__ for s in steps]
    assert names.index("Normalize") < names.index("RandomAffine") < names.index("RandomHorizontalFlip")
    assert list(affine[0].degrees) == [-AFFINE_DEGREES, AFFINE_DEGREES]
    assert tuple(affine[0].translate) == (AFFINE_TRANSLATE, AFFINE_TRANSLATE) and tuple(affine[0].scale) == AFFINE_SCALE
    image = T.ToPILImage()(_pattern(1)[0])
    torch.manual_seed(1)
    moved = train_transform(image_size=24, augment=Augmentation(affine=True, flip=False, erasing=False, gaussian_noise=False))(image)
    assert not torch.allclose(moved, train_transform(image_size=24, augment=NO_AUGMENTATION)(image), atol=1e-3)


def test_off_by_default_leaves_the_recipes_output_unchanged():
    assert DataConfig().affine is False
    assert not any(isinstance(s, T.RandomAffine) for s in train_transform(image_size=24).transforms)
    images = _pattern(16, size=32)
    augment = BatchAugment(image_size=24)
    flip = KA.RandomHorizontalFlip(p=FLIP_PROBABILITY)
    erase = KA.RandomErasing(scale=ERASING_SCALE, ratio=ERASING_RATIO, value=0.0, p=ERASING_PROBABILITY)
    torch.manual_seed(2)
    got = augment(images)
    torch.manual_seed(2)  # the recipe step by step: noise, resize, normalise, flip, erasing; no affine draw between
    want = erase(flip(normalise_batch(resize_batch(add_pixel_noise(images), image_size=24))))
    assert torch.equal(got, want)


@pytest.mark.parametrize("loader", ["memory", "files"])
def test_the_run_passes_data_affine_to_its_loader(loader):
    config = load_config(None, ["data.options.num_samples=8", "data.options.image_size=24", "data.image_size=24",
                                "data.affine=true", f"data.loader={loader}"])
    data = build_run_data(config.data, seed=0, log=lambda _m: None)
    loaders = build_loaders(config.data, data, batch_size=4, eval_batch_size=8, seed=0, info=DistInfo(),
                            device=torch.device("cpu"), log=lambda _m: None)
    if loader == "memory":
        assert loaders.train(0, 0).augment.affine is not None
    else:
        assert any(isinstance(s, T.RandomAffine) for s in data.train.transform.transforms)
