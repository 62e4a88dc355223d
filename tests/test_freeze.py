"""model.frozen_stages and train.cache_frozen: frozen stages stay fixed, and the cached path trains
exactly what the uncached one trains."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fer_nla.builtin import DEFAULT_MODEL, builtin_path
from fer_nla.checkpoint import load_model
from fer_nla.config import load_config
from fer_nla.data.memory_loader import MemoryLoader
from fer_nla.errors import InputError
from fer_nla.freeze import CachedLoader, TrailingPart, freeze_stages, frozen_outputs, swap_views
from fer_nla.models import build_model
from fer_nla.train.fit import fit

BUILTIN = f"builtin:{DEFAULT_MODEL}"
TINY = [
    "data.options.num_samples=64", "data.options.image_size=48", "data.image_size=48", "train.batch_size=8",
    "train.eval_batch_size=64", "train.progress=false", "train.tensorboard=false", "train.report=false",
    "train.record_signals=false", "train.threads=1", "data.flip=false", "data.erasing=false",
    "data.gaussian_noise=false", "data.loader=memory", f"model.init={BUILTIN}", "model.frozen_stages=3",
    "optim.lr=1e-3",
]


@pytest.fixture(autouse=True)
def _threads_restored():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tiny(tmp_path, *extra: str, epochs: int = 2):
    return load_config(None, [*TINY, f"train.epochs={epochs}", f"data.cache_dir={tmp_path / 'cache'}", *extra])


def test_frozen_stages_get_no_gradient_and_keep_batchnorm_in_eval_mode():
    model = build_model("resnet10s", num_classes=8)
    assert model.stage_ends == (6, 7, 8, 9, 10)
    assert freeze_stages(model, 3, arch="resnet10s") == 9
    frozen, trained = list(model.features)[:9], list(model.features)[9:]
    assert not any(p.requires_grad for m in frozen for p in m.parameters())
    assert all(p.requires_grad for m in trained for p in m.parameters()) and model.fc.weight.requires_grad
    model.train()
    assert not any(m.training for m in frozen) and all(m.training for m in trained)
    model.eval()
    assert not model.features[9].training
    assert freeze_stages(build_model("resnet10s", num_classes=8), -1) == 0


@pytest.mark.parametrize(("arch", "stages", "message"), [
    ("resnet10s", 5, r"a stem and 4 stages: choose -1..4 \(4: only the head trains\)"),
    ("cnn_small", 0, "needs a network with declared stages"),
])
def test_stages_a_network_lacks_are_refused(arch, stages, message):
    with pytest.raises(InputError, match=message):
        freeze_stages(build_model(arch, num_classes=8), stages, arch=arch)


@pytest.mark.parametrize(("extra", "message"), [
    (["train.cache_frozen=true", "data.flip=true"], "set data.flip=false"),
    (["train.cache_frozen=true", "data.erasing=true", "data.affine=true"], "set data.erasing=false, data.affine=false"),
    (["train.cache_frozen=true", "model.frozen_stages=-1"], "needs frozen stages to cache"),
    (["model.frozen_stages=-2"], "model.frozen_stages must be -1"),
])
def test_settings_the_cache_cannot_honour_are_refused(tmp_path, extra, message):
    with pytest.raises(InputError, match=message):
        tiny(tmp_path, *extra)


def test_cached_views_are_the_frozen_outputs_of_the_image_and_its_flip():
    model, _ = load_model(builtin_path(DEFAULT_MODEL))
    freeze_stages(model, 3)
    images = torch.randint(0, 256, (5, 3, 48, 48), dtype=torch.uint8)
    cached = frozen_outputs(model, images, image_size=48, mean=(0.5,) * 3, std=(0.25,) * 3, device=torch.device("cpu"),
                            log=lambda _line: None)
    assert cached.shape == (5, 2, 128, 6, 6) and cached.dtype == torch.float32
    x = (images.float() / 255 - 0.5) / 0.25
    model.eval()
    with torch.no_grad():
        part = TrailingPart(model)
        assert torch.allclose(part(cached), model(x), atol=1e-4)
        assert torch.allclose(part(swap_views(cached)), model(x.flip(3)), atol=1e-4)


def test_frozen_outputs_are_cached_on_disk_by_frozen_weights_and_images(tmp_path):
    model = build_model("resnet10s", num_classes=8)
    freeze_stages(model, 2)
    images = torch.randint(0, 256, (4, 3, 48, 48), dtype=torch.uint8)
    lines: list[str] = []
    args = {"image_size": 48, "mean": (0.5,) * 3, "std": (0.25,) * 3, "device": torch.device("cpu"),
            "cache_dir": tmp_path, "log": lines.append}
    first = frozen_outputs(model, images, **args)
    again = frozen_outputs(model, images, **args)
    assert len(lines) == 1 and torch.equal(first, again) and len(list(tmp_path.glob("frozen-*.pt"))) == 1
    with torch.no_grad():
        model.fc.weight.add_(1.0)  # not frozen: the same cache entry
    frozen_outputs(model, images, **args)
    assert len(lines) == 1
    with torch.no_grad():
        model.features[0].weight.add_(1.0)  # frozen: a new entry
    frozen_outputs(model, images, **args)
    assert len(lines) == 2 and len(list(tmp_path.glob("frozen-*.pt"))) == 2


@pytest.mark.parametrize(("rank", "world_size"), [(0, 1), (1, 2)])
def test_the_cached_loader_visits_samples_in_the_memory_loaders_order(rank, world_size):
    n, indices = 37, np.arange(3, 37, dtype=np.int64)
    images = torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8)
    targets = np.arange(n) % 5
    memory = MemoryLoader(images, targets, indices, batch_size=4, image_size=8, train=False, shuffle=True, seed=7,
                          rank=rank, world_size=world_size)
    outputs = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1, 1).expand(n, 2, 1, 1, 1) + 0.0
    cached = CachedLoader(outputs, torch.arange(n), torch.as_tensor(targets), torch.as_tensor(indices), batch_size=4,
                          shuffle=True, seed=7, rank=rank, world_size=world_size)
    for epoch in (0, 3):
        memory.set_epoch(epoch)
        cached.set_epoch(epoch)
        mem_batches, cached_batches = list(memory), list(cached)
        assert len(mem_batches) == len(cached_batches) == len(cached)
        for (_, mt, mi), (views, ct, ci) in zip(mem_batches, cached_batches, strict=True):
            assert torch.equal(mi, ci) and torch.equal(mt, ct)
            assert torch.equal(views[:, 0].flatten().long(), torch.as_tensor(indices)[ci])


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("loss", ["ce", "nla"])
def test_the_cached_path_trains_exactly_what_the_uncached_path_trains(tmp_path, loss):
    """Same frozen weights, same batches, the same convolution kernels (channels_last off: the
    cached path never uses it): bit-identical losses, accuracies and weights."""
    runs = {}
    for cached in ("true", "false"):
        out = tmp_path / cached
        fit(tiny(tmp_path, f"train.cache_frozen={cached}", f"loss.name={loss}", "train.select_init=false",
                 "train.channels_last=off"), out, log=lambda _line: None)
        runs[cached] = out
    with_cache, without = _metrics(runs["true"]), _metrics(runs["false"])
    assert len(with_cache) == len(without) == 2
    for a, b in zip(with_cache, without, strict=True):
        assert (a["train_loss"], a["train_acc"], a["val_loss"], a["val"]) == (b["train_loss"], b["train_acc"], b["val_loss"], b["val"])
    state_a, state_b = (load_model(runs[k] / "last.pt")[0].state_dict() for k in ("true", "false"))
    start = load_model(builtin_path(DEFAULT_MODEL))[0].state_dict()
    for key, value in state_a.items():
        assert torch.equal(value, state_b[key]), key
        frozen = key.startswith("features.") and int(key.split(".")[1]) < 9
        if frozen or key.startswith("fc."):
            assert torch.equal(value, start[key]) == frozen, key  # frozen stays (BN statistics too); the head moves


def test_select_init_false_keeps_the_start_out_of_the_choice(tmp_path):
    lines: list[str] = []
    result = fit(tiny(tmp_path, "train.cache_frozen=true", "train.select_init=false", "loss.name=ce", epochs=1),
                 tmp_path / "run", log=lines.append)
    assert result.best_epoch == 1
    assert not any(line.startswith("epoch 0") for line in lines)
