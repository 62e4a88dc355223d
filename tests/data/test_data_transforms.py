"""The recipe's transforms, the two-view wrapper, subsets and the stratified split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fer_nla.data.augmentation import Augmentation
from fer_nla.data import build_dataset
from fer_nla.data.split import stratified_split
from fer_nla.data.transforms import (
    RECIPE_MEAN,
    RECIPE_STD,
    RandomGaussianNoise,
    TwoViewDataset,
    eval_transform,
    train_transform,
)


def test_eval_transform_resizes_normalises_and_makes_gray_rgb():
    gray = Image.fromarray(np.full((20, 30), 153, dtype=np.uint8), mode="L")
    out = eval_transform(image_size=16)(gray)
    assert out.shape == (3, 16, 16) and out.dtype == torch.float32
    expected = [(153 / 255 - m) / s for m, s in zip(RECIPE_MEAN, RECIPE_STD)]
    np.testing.assert_allclose(out.mean(dim=(1, 2)).numpy(), expected, rtol=1e-5)


def test_gaussian_noise_has_variance_30_on_pixel_values():
    torch.manual_seed(0)
    flat = Image.fromarray(np.full((200, 200, 3), 128, dtype=np.uint8))
    noisy = np.asarray(RandomGaussianNoise(p=1.0)(flat), dtype=np.float64) - 128
    assert abs(noisy.var() - 30.0) < 1.0  # rounding adds 1/12; 120k samples
    assert abs(noisy.mean()) < 0.1
    tiny = Image.fromarray(np.full((2, 2, 3), 128, dtype=np.uint8))
    changed = [RandomGaussianNoise()(tiny) is not tiny for _ in range(400)]
    assert 0.4 < np.mean(changed) < 0.6  # half of the images


def test_train_transform_flips_and_erases():
    torch.manual_seed(0)
    ramp = Image.fromarray(np.tile(np.arange(32, dtype=np.uint8) * 8, (32, 1)), mode="L")
    plain = eval_transform(image_size=32)(ramp)
    outcomes = {"plain": 0, "flipped": 0, "erased": 0}
    transform = train_transform(image_size=32, augment=Augmentation(gaussian_noise=False))
    for _ in range(200):
        out = transform(ramp)
        kind = "plain" if torch.equal(out, plain) else "flipped" if torch.equal(out, plain.flip(-1)) else "erased"
        outcomes[kind] += 1
    # flip p=0.5 and erasing p=0.5, independent: 50 / 50 / 100 expected
    assert 30 < outcomes["plain"] < 70 and 30 < outcomes["flipped"] < 70 and 75 < outcomes["erased"] < 125
    assert torch.equal(train_transform(image_size=32, augment=Augmentation(flip=False, erasing=False, gaussian_noise=False))(ramp), plain)


def test_two_views_are_an_image_and_its_flip_and_subsets_share_the_index():
    dataset = build_dataset("synthetic", num_samples=12, image_size=24)
    view = dataset.subset([5, 2, 9]).with_transform(train_transform(image_size=24))
    pair = TwoViewDataset(view)
    image, flipped, target, index = pair[1]
    assert torch.equal(flipped, image.flip(-1))
    assert target == int(dataset.targets[2]) and index == 1
    assert pair.class_names == dataset.class_names and len(pair) == 3
    nested = view.subset([2, 0])
    assert nested.samples == [dataset.samples[9], dataset.samples[5]]
    np.testing.assert_array_equal(np.asarray(nested.load_image(0)), np.asarray(dataset.load_image(9)))
    assert dataset.transform is None and view.source.base is dataset.source


def test_stratified_split_keeps_class_shares_and_is_seeded():
    targets = np.repeat(np.arange(4), [100, 40, 10, 1])
    train, val = stratified_split(targets, fraction=0.2, seed=3)
    assert np.bincount(targets[val], minlength=4).tolist() == [20, 8, 2, 0]
    assert np.intersect1d(train, val).size == 0 and train.size + val.size == targets.size
    again, _ = stratified_split(targets, fraction=0.2, seed=3)
    other, _ = stratified_split(targets, fraction=0.2, seed=4)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
    with pytest.raises(ValueError):
        stratified_split(targets, fraction=1.0, seed=0)


def test_stratified_subset_keeps_each_class_share_and_all_when_asked_for_more():
    from fer_nla.data.split import stratified_subset

    targets = np.repeat([0, 1, 2], [600, 300, 100])
    keep = stratified_subset(targets, size=500, seed=1)
    assert np.bincount(targets[keep]).tolist() == [300, 150, 50]
    assert (np.diff(keep) > 0).all()
    assert np.array_equal(keep, stratified_subset(targets, size=500, seed=1))
    assert np.array_equal(stratified_subset(targets, size=1000, seed=1), np.arange(1000))
