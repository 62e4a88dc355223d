"""One benchmark cell really learns, is deterministic, and scores the epoch chosen on validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fer_nla.bench.config import load_bench_config
from fer_nla.bench.runner import CellData, train_cell


def patterned(n: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Noisy images whose class (0-3) is a texture (horizontal, vertical or diagonal stripes,
    none): learnable in seconds by a globally pooled CNN."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 4
    images = torch.randint(60, 140, (n, 3, 32, 32), generator=g, dtype=torch.int32)
    y, x = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    for k, stripes in enumerate(((y // 2) % 2, (x // 2) % 2, ((x + y) // 2) % 2)):
        images[labels == k] += 100 * stripes
    return images.clamp(0, 255).to(torch.uint8), labels.numpy()


@pytest.fixture(scope="module")
def faces():
    train, val, test = patterned(512, 0), patterned(128, 1), patterned(128, 2)
    data = CellData(train[0], train[1], val[0], val[1], test[0], test[1], extra_images=test[0][:10])
    return data, ("neutral", "happiness", "surprise", "sadness")


RECIPE = load_bench_config(None, ["data.image_size=32", "train.epochs=3", "optim.lr=3e-3", "data.erasing=false", "train.select_metric=mean_acc"]).recipe


@pytest.mark.parametrize("method", ["ce", "nla"])
def test_a_cell_learns_and_reports_the_best_validation_epoch(faces, method):
    data, names = faces
    result = train_cell(RECIPE, data, method=method, class_names=names, seed=0, record_signals=True)
    assert result.test["overall_acc"] > 0.9  # 4 classes: chance is 0.25
    vals = [e["val_mean_acc"] for e in result.epochs]
    assert result.best_epoch == int(np.argmax(vals)) + 1 and result.val["mean_acc"] == max(vals)
    assert result.p_gt.shape == (3, 512) and result.p_nn.shape == (3, 512)
    seen = np.isfinite(result.p_gt.astype(np.float32))
    assert seen.sum(axis=1).tolist() == [512] * 3  # every full batch recorded once per epoch
    assert result.extra_probs.shape == (10, 4) and np.allclose(result.extra_probs.sum(1), 1, atol=1e-4)


def test_the_same_seed_gives_the_same_cell(faces):
    data, names = faces
    a = train_cell(RECIPE, data, method="gce", class_names=names, seed=3)
    b = train_cell(RECIPE, data, method="gce", class_names=names, seed=3)
    assert a.test["per_class_acc"] == b.test["per_class_acc"] and a.epochs[-1]["train_loss"] == b.epochs[-1]["train_loss"]
