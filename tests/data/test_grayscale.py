"""data.grayscale: every image made gray (PIL luma) in three equal channels, in both loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fer_nla.train.fit as fit_module
from fer_nla.data.augmentation import Augmentation
from fer_nla.checkpoint import load_checkpoint, read_meta
from fer_nla.config import load_config
from fer_nla.data import build_dataset
from fer_nla.data.batch_augment import BatchAugment, eval_batch
from fer_nla.data.dataset import FERDataset
from fer_nla.data.images import FileImages
from fer_nla.data.memory import cache_key, decode_to_memory
from fer_nla.data.transforms import RECIPE_MEAN, RECIPE_STD, eval_transform, to_gray, train_transform
from fer_nla.train.fit import fit

MEAN = torch.tensor(RECIPE_MEAN).view(-1, 1, 1)
STD = torch.tensor(RECIPE_STD).view(-1, 1, 1)


def _levels(x: torch.Tensor) -> torch.Tensor:
    """Normalised ``[..., 3, H, W]`` back to 0..255 levels."""
    return (x * STD + MEAN) * 255


def _equal_channels(x: torch.Tensor) -> bool:
    levels = _levels(x)
    return bool(torch.allclose(levels[..., 0, :, :], levels[..., 1, :, :], atol=1e-3)
                and torch.allclose(levels[..., 0, :, :], levels[..., 2, :, :], atol=1e-3))


def _colour(seed: int = 0, size: int = 20) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), mode="RGB")


def _synthetic(n: int = 6) -> FERDataset:
    return build_dataset("synthetic", split="train", num_samples=n, image_size=32)


def test_to_gray_is_pils_luma_and_keeps_a_gray_image():
    image = _colour()
    assert np.array_equal(np.asarray(to_gray(image)), np.asarray(image.convert("L")))
    r, g, b = (np.asarray(image, dtype=np.int64)[..., c] for c in range(3))
    assert np.abs(np.asarray(to_gray(image), dtype=np.int64) - (0.299 * r + 0.587 * g + 0.114 * b)).max() <= 1
    gray = image.convert("L")
    assert to_gray(gray) is gray
    assert np.array_equal(np.asarray(to_gray(image.convert("RGBA"))), np.asarray(gray))


def test_files_path_makes_colour_gray_in_three_equal_channels_noise_included():
    image = _colour(size=24)
    want = eval_transform(image_size=16)(image.convert("L"))
    assert torch.equal(eval_transform(image_size=16, grayscale=True)(image), want)
    assert not _equal_channels(eval_transform(image_size=16)(image))
    augment = train_transform(image_size=16, grayscale=True, augment=Augmentation(erasing=False))
    torch.manual_seed(0)
    outputs = [augment(image) for _ in range(12)]
    assert all(_equal_channels(x) for x in outputs)
    plain = [want, want.flip(-1)]
    assert any(not any(torch.allclose(x, p, atol=1e-6) for p in plain) for x in outputs)  # some were noised


def test_memory_path_decodes_gray_and_keys_the_cache_by_it(tmp_path):
    dataset = _synthetic()
    gray = decode_to_memory(dataset, size=32, use_cache=False, grayscale=True, log=lambda _m: None)
    assert gray.images.stride(1) == 0  # held as one channel, as gray sources are
    for i in range(len(dataset)):
        luma = np.asarray(dataset.load_image(i).convert("L"))
        for c in range(3):
            assert np.array_equal(gray.images[i, c].numpy(), luma)
    colour = decode_to_memory(dataset, size=32, use_cache=False, log=lambda _m: None)
    assert not torch.equal(colour.images[:, 0], colour.images[:, 1])
    assert cache_key(dataset, size=32, grayscale=True) != cache_key(dataset, size=32)
    assert cache_key(dataset, size=32, grayscale=False) == colour.key  # off: the key is what it was


def test_batch_noise_is_gray_with_grayscale():
    images = torch.full((200, 1, 12, 12), 120, dtype=torch.uint8).expand(-1, 3, -1, -1)
    torch.manual_seed(0)
    out = BatchAugment(image_size=12, grayscale=True, augment=Augmentation(erasing=False))(images)
    assert _equal_channels(out)
    noised = (out - eval_batch(images, image_size=12)).abs().flatten(1).amax(1) > 1e-4
    assert 50 < int(noised.sum()) < 150
    torch.manual_seed(0)
    assert not _equal_channels(BatchAugment(image_size=12, augment=Augmentation(erasing=False))(images))  # the recipe's noise per channel


def _gray_files(tmp_path: Path) -> FERDataset:
    rng = np.random.default_rng(1)
    paths = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (48, 48), dtype=np.uint8), mode="L").save(path)
        paths.append(str(path))
    return FERDataset(samples=paths, targets=[0, 1, 0, 1], class_names=("a", "b"), source=FileImages(paths),
                      name="folder", split="train", info={"labels": "majority"})


def _same_with_and_without(dataset: FERDataset) -> None:
    on = decode_to_memory(dataset, size=48, use_cache=False, grayscale=True, log=lambda _m: None).images
    off = decode_to_memory(dataset, size=48, use_cache=False, log=lambda _m: None).images
    assert torch.equal(on, off)
    for i in range(len(dataset)):
        image = dataset.load_image(i)
        assert torch.equal(eval_transform(image_size=40, grayscale=True)(image), eval_transform(image_size=40)(image))


def test_gray_images_like_ferplus_change_no_pixel(tmp_path):
    _same_with_and_without(_gray_files(tmp_path))


def test_ferplus_changes_no_pixel(ferplus_root):
    valid = build_dataset("ferplus", root=ferplus_root, split="valid")
    _same_with_and_without(valid.subset(np.arange(24)))


@pytest.mark.parametrize("loader", ["memory", "files"])
def test_a_grayscale_run_trains_and_validates_on_gray_batches_and_says_so_in_its_checkpoint(tmp_path, monkeypatch,
                                                                                             loader):
    seen: list[torch.Tensor] = []
    real_build = fit_module.build_model

    def recording_build(*args, **kwargs):
        model = real_build(*args, **kwargs)
        model.register_forward_pre_hook(lambda _m, inputs: seen.append(inputs[0].detach().float().cpu()))
        return model

    monkeypatch.setattr(fit_module, "build_model", recording_build)
    threads = torch.get_num_threads()
    config = load_config(None, [
        "data.options.num_samples=16", "data.options.image_size=32", "data.image_size=32", "train.batch_size=8",
        "train.progress=false", "train.epochs=1", "train.tensorboard=false", "train.report=false", "loss.name=ce",
        "model.arch=cnn_small", "data.erasing=false", "train.threads=1", "data.grayscale=true", f"data.loader={loader}",
    ])
    try:
        fit(config, tmp_path / "run", log=lambda _m: None)
    finally:
        torch.set_num_threads(threads)
    assert len(seen) >= 3  # training steps (two views) and validation
    assert all(_equal_channels(x) for x in seen)
    assert load_checkpoint(tmp_path / "run" / "best.pt")["preprocess"]["grayscale"] is True
    assert read_meta(tmp_path / "run" / "best.pt").grayscale is True
