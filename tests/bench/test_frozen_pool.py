"""A grid's frozen outputs computed once per image (fer_nla.bench.frozen_pool): the cells then only read."""

from __future__ import annotations

import numpy as np
import torch

from fer_nla.bench.cells import cell_config, write_setting_manifest
from fer_nla.bench.frozen_pool import prewarm_frozen
from fer_nla.bench.settings import SettingSplit
from fer_nla.builtin import DEFAULT_MODEL, builtin_path
from fer_nla.config import load_config
from fer_nla.data import build_dataset
from fer_nla.train.fit import fit

OPTIONS = {"num_samples": 64, "image_size": 48}


def _configs(tmp_path):
    source = {"dataset": "synthetic", "root": None, "split": "train", "labels": "majority", "num_classes": None,
              "seed": 0, "options": OPTIONS}
    pool = build_dataset("synthetic", split="train", **OPTIONS)
    recipe = load_config(None, [
        "model.arch=resnet10s", f"model.backbone_weights={builtin_path(DEFAULT_MODEL)}", "model.frozen_stages=3",
        "train.cache_frozen=true", "data.flip=false", "data.erasing=false", "data.gaussian_noise=false",
        "data.image_size=48", "train.epochs=1", "train.batch_size=16", f"data.cache_dir={tmp_path / 'cache'}",
        "data.loader=memory"])
    configs = []
    for seed, start in ((0, 0), (1, 8)):  # two label sets sharing most images
        rows = np.arange(64)
        train, val = rows[(rows + start) % 4 != 0], rows[(rows + start) % 4 == 0]
        split = SettingSplit("s", train, pool.targets[train], pool.targets[train], val, pool.targets[val])
        manifest = write_setting_manifest(tmp_path / f"s{seed}.csv", pool, split, source=source)
        configs.append(cell_config(recipe, manifest=manifest, method="ce", seed=seed, threads=1))
    return configs


def test_prewarmed_cells_read_every_frozen_output_and_it_equals_their_own(tmp_path):
    configs = _configs(tmp_path)
    test = build_dataset("synthetic", split="test", **{**OPTIONS, "num_samples": 32})
    logged: list[str] = []
    threads = torch.get_num_threads()
    try:
        assert prewarm_frozen(configs, extra=[test], log=logged.append) == 5  # 2 x (train, valid) + the test split: 64 + 32 images
        assert any("96 distinct images computed once for 5 cached set(s)" in m for m in logged)
        assert prewarm_frozen(configs, extra=[test], log=logged.append) == 0  # all there: nothing computed
        cell_log: list[str] = []
        fit(configs[1], tmp_path / "cell", log=cell_log.append)
        assert not any("frozen stages: computed" in m for m in cell_log)  # the cell only read
        # the prewarmed values are the cell's own up to float rounding
        own = tmp_path / "own"
        fit(_configs_with_cache(configs[1], own), tmp_path / "cell2", log=lambda _m: None)
        files = sorted((tmp_path / "cache").glob("frozen-*.pt"))
        for path in sorted(own.glob("frozen-*.pt")):
            twin = next(f for f in files if f.name == path.name)
            torch.testing.assert_close(torch.load(path, weights_only=True), torch.load(twin, weights_only=True),
                                       atol=1e-5, rtol=1e-5)
    finally:
        torch.set_num_threads(threads)


def _configs_with_cache(config, cache_dir):
    import copy

    other = copy.deepcopy(config)
    other.data.cache_dir = str(cache_dir)
    return other
