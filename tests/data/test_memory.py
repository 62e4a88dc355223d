"""Decoded images in memory: cache key, cache reuse and repair, stored size, and the memory loader."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler
from torchvision import transforms as T

from fer_nla.data import build_dataset
from fer_nla.data.batch_augment import eval_batch
from fer_nla.data.dataset import FERDataset
from fer_nla.data.images import FileImages
from fer_nla.data.memory import cache_folder, cache_key, decode_to_memory, fits_in_memory, memory_bytes
from fer_nla.data.memory_loader import MemoryLoader
from fer_nla.data.transforms import eval_transform
from fer_nla.errors import InputError

from conftest import write_image


def _synthetic(n: int = 24, size: int = 48, **kw) -> FERDataset:
    return build_dataset("synthetic", split="train", num_samples=n, image_size=size, **kw)


def _files(tmp_path: Path, sizes: list[tuple[int, int]], *, mode: str = "RGB") -> FERDataset:
    paths = [str(write_image(tmp_path / "img" / f"{i}.png", 10 * i + 5, size=s, mode=mode)) for i, s in enumerate(sizes)]
    return FERDataset(samples=paths, targets=[i % 2 for i in range(len(paths))], class_names=("a", "b"),
                      source=FileImages(paths), name="folder", split="train", info={"labels": "majority"})


def _counting(monkeypatch) -> list[int]:
    calls: list[int] = []
    original = FERDataset.load_image

    def load_image(self, index):
        calls.append(index)
        return original(self, index)

    monkeypatch.setattr(FERDataset, "load_image", load_image)
    return calls


def test_second_decode_loads_the_cache_without_decoding(tmp_path, monkeypatch):
    dataset = _synthetic()
    first = decode_to_memory(dataset, size=48, cache_dir=tmp_path, log=lambda _: None)
    calls = _counting(monkeypatch)
    second = decode_to_memory(dataset, size=48, cache_dir=tmp_path, log=lambda _: None)
    assert calls == [] and second.from_cache and not first.from_cache
    assert torch.equal(first.images, second.images) and first.images.shape == (24, 3, 48, 48)
    assert first.images.dtype == torch.uint8 and first.native
    expected = torch.from_numpy(np.array(dataset.load_image(5))).permute(2, 0, 1)
    assert torch.equal(second.images[5], expected)


def test_cache_key_changes_when_a_file_changes(tmp_path):
    dataset = _files(tmp_path, [(16, 16)] * 3)
    before = cache_key(dataset, size=16, root=tmp_path)
    assert cache_key(dataset, size=16, root=tmp_path) == before
    first = decode_to_memory(dataset, size=16, cache_dir=tmp_path / "c", log=lambda _: None)
    write_image(Path(dataset.samples[1]), 99, size=(16, 16))  # same byte size: only the mtime tells
    st = os.stat(dataset.samples[1])
    os.utime(dataset.samples[1], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert cache_key(dataset, size=16, root=tmp_path) != before
    again = decode_to_memory(dataset, size=16, cache_dir=tmp_path / "c", log=lambda _: None)
    assert not again.from_cache and int(again.images[1, 0, 0, 0]) == 99 and int(first.images[1, 0, 0, 0]) == 15
    assert cache_key(dataset, size=32, root=tmp_path) != cache_key(dataset, size=16, root=tmp_path)
    assert cache_key(dataset.subset([2, 1, 0]), size=16, root=tmp_path) != cache_key(dataset, size=16, root=tmp_path)


def test_corrupt_cache_is_rebuilt_with_one_line(tmp_path):
    dataset = _synthetic(8)
    built = decode_to_memory(dataset, size=48, cache_dir=tmp_path, log=lambda _: None)
    data = built.cache_path.read_bytes()
    built.cache_path.write_bytes(data[: len(data) // 2])  # truncated
    lines: list[str] = []
    again = decode_to_memory(dataset, size=48, cache_dir=tmp_path, log=lines.append)
    assert len(lines) == 1 and "unreadable" in lines[0] and str(built.cache_path) in lines[0]
    assert not again.from_cache and torch.equal(again.images, built.images)
    assert decode_to_memory(dataset, size=48, cache_dir=tmp_path, log=lines.append).from_cache  # rewritten whole


def test_cache_file_mode_honours_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        built = decode_to_memory(_synthetic(4), size=48, cache_dir=tmp_path, log=lambda _: None)
    finally:
        os.umask(old)
    assert built.cache_path.parent == tmp_path and built.cache_path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == [built.cache_path.name]  # no temporary file left


def test_unwritable_cache_is_skipped_with_a_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    lines: list[str] = []
    built = decode_to_memory(_synthetic(4), size=48, cache_dir=blocker / "sub", log=lines.append)
    assert built.cache_path is None and len(built) == 4 and len(lines) == 1 and "without it" in lines[0]


def test_cache_folder_order(tmp_path):
    env = {"FER_NLA_CACHE": str(tmp_path / "a"), "XDG_CACHE_HOME": str(tmp_path / "x"), "HOME": str(tmp_path)}
    assert cache_folder(tmp_path / "given", environ=env) == tmp_path / "given"
    assert cache_folder(environ=env) == tmp_path / "a"
    assert cache_folder(environ={"XDG_CACHE_HOME": str(tmp_path / "x")}) == tmp_path / "x" / "fer-nla"
    assert cache_folder(environ={}) == Path("~/.cache/fer-nla").expanduser()


def test_mixed_sizes_are_resized_at_decode_and_said(tmp_path):
    dataset = _files(tmp_path, [(20, 24), (20, 24), (40, 32)])
    lines: list[str] = []
    images = decode_to_memory(dataset, size=16, use_cache=False, log=lines.append)
    assert not images.native and images.images.shape == (3, 3, 16, 16) and "after the resize" in lines[0]
    for i in range(3):  # each as T.Resize((16, 16)) of the decoded image, as the files path does
        expected = np.asarray(T.Resize((16, 16))(dataset.load_image(i)))
        assert torch.equal(images.images[i], torch.from_numpy(expected.copy()).permute(2, 0, 1))
    with pytest.raises(InputError, match="different sizes"):
        decode_to_memory(dataset, size=None, use_cache=False, log=lambda _: None)


def test_large_images_resized_small_kept_native(tmp_path):
    kept = decode_to_memory(_files(tmp_path / "k", [(30, 20)] * 2), size=8, use_cache=False)
    assert kept.native and kept.image_shape == (20, 30)
    big = decode_to_memory(_files(tmp_path / "b", [(30, 20)] * 2), size=8, native_cap=16, use_cache=False)
    assert not big.native and big.image_shape == (8, 8)


def test_gray_images_share_one_channel(tmp_path):
    images = decode_to_memory(_files(tmp_path, [(16, 16)] * 3, mode="L"), size=16, use_cache=False).images
    assert images.shape == (3, 3, 16, 16) and images.stride(1) == 0
    assert int(images[2, 1, 0, 0]) == 25


def test_memory_estimate_and_budget():
    dataset = _synthetic(10)
    assert memory_bytes(dataset, size=48) == 10 * 3 * 48 * 48
    assert memory_bytes(dataset, size=112) == 10 * 3 * 112 * 112
    assert fits_in_memory(dataset, size=48, budget_bytes=10 * 3 * 48 * 48)
    assert not fits_in_memory(dataset, size=48, budget_bytes=10 * 3 * 48 * 48 - 1)
    assert fits_in_memory(dataset, size=48)  # default budget: min(2 GiB, RAM / 4)


# -- the loader ---------------------------------------------------------------------------------
def _loader(images, targets, indices=None, **kw) -> MemoryLoader:
    options = {"batch_size": 4, "image_size": 40, "train": True, "shuffle": True, "seed": 3}
    return MemoryLoader(images, targets, indices, **{**options, **kw})


def test_loader_batches_shapes_and_every_index_once(tmp_path):
    dataset = _synthetic(22)
    images = decode_to_memory(dataset, size=40, cache_dir=tmp_path, log=lambda _: None)
    loader = _loader(images, dataset.targets)
    seen = []
    for x, y, index in loader:
        assert x.shape == (len(index), 3, 40, 40) and len(index) in (4, 2) and x.dtype == torch.float32 and y.dtype == index.dtype == torch.int64
        assert torch.equal(y, torch.from_numpy(dataset.targets[index.numpy()]))
        seen += index.tolist()
    assert len(loader) == 6 and sorted(seen) == list(range(22))  # last batch of 2 kept (drop_last=False)
    loader.set_epoch(1)
    assert [i for _, _, b in loader for i in b.tolist()] != seen  # another epoch, another order
    assert len(_loader(images, dataset.targets, drop_last=True)) == 5


def test_loader_order_matches_distributed_sampler_and_shards_disjointly():
    images = torch.zeros((10, 3, 8, 8), dtype=torch.uint8)
    shards = []
    for rank in (0, 1):
        loader = _loader(images, np.zeros(10, np.int64), rank=rank, world_size=2, image_size=8)
        loader.set_epoch(4)
        sampler = DistributedSampler(range(10), num_replicas=2, rank=rank, shuffle=True, seed=3)
        sampler.set_epoch(4)
        order = [i for _, _, b in loader for i in b.tolist()]
        assert order == list(sampler)
        shards.append(set(order))
    assert shards[0].isdisjoint(shards[1]) and shards[0] | shards[1] == set(range(10))


def test_loader_index_is_the_position_in_indices_and_eval_is_the_eval_transform(tmp_path):
    dataset = _synthetic(12)
    images = decode_to_memory(dataset, size=48, cache_dir=tmp_path, log=lambda _: None)
    indices = np.array([9, 2, 7])
    loader = _loader(images, dataset.targets, indices, train=False, shuffle=False, image_size=48)
    x, y, index = next(iter(loader))
    assert index.tolist() == [0, 1, 2] and y.tolist() == dataset.targets[indices].tolist()
    view = dataset.subset(indices).with_transform(eval_transform(image_size=48))
    assert torch.allclose(x, torch.stack([view[i][0] for i in range(3)]), atol=1e-6)
    assert torch.equal(x, eval_batch(images.images[torch.from_numpy(indices)], image_size=48))
    resident = _loader(images, dataset.targets, indices, train=False, shuffle=False, image_size=48, resident=True)
    assert torch.equal(next(iter(resident))[0], x)


def test_loader_soft_targets_and_seeded_replay(tmp_path):
    dataset = _synthetic(8, labels="distribution")
    images = decode_to_memory(dataset, size=48, cache_dir=tmp_path, log=lambda _: None)
    runs = []
    for _ in range(2):
        torch.manual_seed(11)
        runs.append([(x, y) for x, y, _ in _loader(images, dataset.soft_targets, image_size=32)])
    x, y = runs[0][0]
    assert y.shape == (4, dataset.num_classes) and y.dtype == torch.float32
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(*runs))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("resident", [False, True])
def test_loader_on_cuda_keeps_targets_and_index_on_the_cpu(resident):
    images = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8).expand(-1, 3, -1, -1)  # gray, shared channel
    loader = _loader(images, np.arange(10) % 2, train=False, shuffle=False, image_size=8, device="cuda", resident=resident)
    x, y, index = next(iter(loader))
    assert x.device.type == "cuda" and y.device.type == index.device.type == "cpu"
    assert torch.equal(x.cpu(), eval_batch(images[:4].contiguous(), image_size=8))


def test_loader_refuses_inconsistent_input():
    images = torch.zeros((4, 3, 8, 8), dtype=torch.uint8)
    with pytest.raises(ValueError, match="targets"):
        _loader(images, np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="indices"):
        _loader(images, np.zeros(4, np.int64), [0, 4])
    with pytest.raises(ValueError, match="rank"):
        _loader(images, np.zeros(4, np.int64), rank=2, world_size=2)
