"""The synthetic faces: deterministic, with known ambiguity, and learnable by a tiny CNN."""

from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn

from fer_nla.cli import main
from fer_nla.data import build_dataset
from fer_nla.data.synthetic import face_spec


def pixels(dataset, index):
    return np.asarray(dataset.load_image(index))


def test_faces_are_deterministic_per_seed_index_and_split():
    small = build_dataset("synthetic", num_samples=10, seed=3)
    large = build_dataset("synthetic", num_samples=40, seed=3)
    np.testing.assert_array_equal(pixels(small, 7), pixels(large, 7))
    np.testing.assert_array_equal(small.targets, large.targets[:10])
    other_seed = build_dataset("synthetic", num_samples=10, seed=4)
    valid = build_dataset("synthetic", num_samples=10, seed=3, split="valid")
    assert not np.array_equal(pixels(small, 7), pixels(other_seed, 7))
    assert not np.array_equal(pixels(small, 7), pixels(valid, 7))
    assert small.load_image(0).size == (48, 48) and small.load_image(0).mode == "RGB"
    assert set(valid.samples).isdisjoint(small.samples)


def test_blended_faces_record_their_mix_and_draw_labels_from_it():
    dataset = build_dataset("synthetic", num_samples=3000, num_classes=8, mix_share=0.3)
    soft = dataset.soft_targets
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, rtol=1e-6)
    blended = soft.max(axis=1) < 1.0
    assert abs(blended.mean() - 0.3) < 0.03 and blended.sum() == dataset.info["blended"]
    assert np.array_equal(soft.argmax(axis=1), dataset.clean_targets)  # the dominant expression
    assert np.all(dataset.targets[~blended] == dataset.clean_targets[~blended])
    # a blended face's label is its dominant expression with probability w: disagreement = mean(1 - w)
    weights = soft[blended].max(axis=1)
    disagree = (dataset.targets != dataset.clean_targets)[blended].mean()
    assert abs(disagree - (1 - weights).mean()) < 0.04
    assert np.all(soft[np.arange(len(dataset)), dataset.targets] > 0)  # labels drawn from the mix
    spec = face_spec(seed=0, split="train", index=5, num_classes=8, mix_share=0.3)
    assert spec.label == dataset.targets[5] and spec.dominant == dataset.clean_targets[5]


def test_stats_command_reports_the_synthetic_noise(capsys):
    assert main(["data", "stats", "-o", "num_samples=500", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    dataset = build_dataset("synthetic", num_samples=500)
    assert stats["num_samples"] == 500 and stats["class_names"] == list(dataset.class_names)
    assert list(stats["class_counts"].values()) == np.bincount(dataset.targets, minlength=7).tolist()
    assert stats["noise_rate"] == float((dataset.targets != dataset.clean_targets).mean())
    counts = np.bincount(dataset.targets, minlength=7)
    assert stats["imbalance_ratio"] == counts.max() / counts.min()


def as_tensor(dataset):
    images = np.stack([pixels(dataset, i) for i in range(len(dataset))]).astype(np.float32) / 255
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    return (x - x.mean(dim=(1, 2, 3), keepdim=True)) / x.std(dim=(1, 2, 3), keepdim=True)


def test_a_tiny_cnn_learns_the_expressions_well_above_chance():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train = build_dataset("synthetic", num_samples=2000, image_size=32, seed=1)
        test = build_dataset("synthetic", num_samples=500, image_size=32, seed=1, split="test")
        x_train, y_train = as_tensor(train), torch.from_numpy(train.targets)
        x_test, y_test = as_tensor(test), torch.from_numpy(test.clean_targets)

        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]

        model = nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 7))
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(12):
            for batch in torch.randperm(len(x_train)).split(64):
                loss = nn.functional.cross_entropy(model(x_train[batch]), y_train[batch])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    finally:
        torch.set_num_threads(threads)
    print(f"held-out accuracy of the tiny CNN: {accuracy:.3f} (chance {1 / 7:.3f})")
    assert accuracy >= 2.5 / 7
