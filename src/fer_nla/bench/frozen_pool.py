"""The frozen stages' outputs of a whole grid, computed once per image instead of once per label set.

A cell that caches its frozen stages (``train.cache_frozen``) stores the outputs of its own
training and validation images under a key of those images' bytes (:func:`fer_nla.freeze.frozen_outputs`),
so every (setting, seed) of a grid computes its own set, though the sets share most images (they
are drawn from one pool). At 150 px that is about a minute per set. :func:`prewarm_frozen`
computes each image of all the sets (and of the test split) once and writes every set's file
under the key its cell will look up, so the cells only read. An image's outputs are the same
function of the image either way; computed in other batches they may differ in float rounding
(about 1e-6), as any two batchings do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn

from fer_nla.atomic import atomic_write
from fer_nla.config import Config
from fer_nla.data.dataset import FERDataset
from fer_nla.data.memory import cache_folder, decode_to_memory
from fer_nla.data.transforms import RECIPE_MEAN, RECIPE_STD
from fer_nla.freeze import freeze_stages, frozen_cache_path, frozen_outputs
from fer_nla.models import build_model
from fer_nla.train.loaders import decode_options


def _frozen_model(config: Config, num_classes: int) -> nn.Module:
    """The network a cell of ``config`` starts from (``model.backbone_weights``), its stages frozen."""
    model = build_model(config.model.arch, num_classes=num_classes, stem=config.model.stem,
                        backbone_weights=config.model.backbone_weights or None)
    freeze_stages(model, config.model.frozen_stages, arch=config.model.arch)
    return model.eval()


def _cached_sets(config: Config, *, log: Callable[[str], None]) -> tuple[int, list[tuple[list[str], torch.Tensor]]]:
    """The class count and the image sets a cell of ``config`` caches, as (sample ids, decoded
    ``uint8 [N, 3, S, S]``): its training rows (with the rows carved for validation) and, when
    validation is its own split, that split; in the order and with the bytes the trainer's loaders use."""
    from fer_nla.train.run_data import build_run_data

    d = config.data
    data = build_run_data(d, seed=config.train.seed, log=lambda _m: None)
    decode = decode_options(d, log)
    full = decode_to_memory(data.full_train, **decode).images
    needed = np.union1d(data.train_indices, data.val_indices if data.val_indices is not None else []).astype(np.int64)
    sets = [([str(data.full_train.samples[i]) for i in needed], full[torch.as_tensor(needed)])]  # as _cached_loaders
    if data.val_indices is None:
        sets.append(([str(s) for s in data.val.samples], decode_to_memory(data.val, **decode).images))
    return len(data.class_names), sets


def prewarm_frozen(configs: Iterable[Config], *, extra: Iterable[FERDataset] = (), log: Callable[[str], None] = print) -> int:
    """Write the frozen-output cache files the cells of ``configs`` (one per label set; every one
    with ``train.cache_frozen``, the same network, image size and ``data.cache_dir``) will read, and
    those of the ``extra`` evaluation splits, computing each distinct image once. Returns how many
    files were written (those already there are kept)."""
    configs = list(configs)
    if not configs:
        return 0
    first = configs[0]
    d = first.data
    cache_dir = cache_folder(d.cache_dir)
    sets: list[tuple[list[str], torch.Tensor]] = []
    for config in configs:
        num_classes, mine = _cached_sets(config, log=log)
        sets += mine
    model = _frozen_model(first, num_classes=num_classes)
    common = {"image_size": d.image_size, "mean": tuple(RECIPE_MEAN), "std": tuple(RECIPE_STD)}
    decode = decode_options(d, log)
    sets += [([str(x) for x in split.samples], decode_to_memory(split, **decode).images) for split in extra]
    todo = [(ids, images, path) for ids, images in sets
            if not (path := frozen_cache_path(model, images, cache_dir=cache_dir, **common)).is_file()]
    if not todo:
        return 0
    rows: dict[str, int] = {}
    pixels: list[torch.Tensor] = []
    for ids, images, _ in todo:
        for i, key in enumerate(ids):
            if key not in rows:
                rows[key] = len(pixels)
                pixels.append(images[i])
    outputs = frozen_outputs(model, torch.stack(pixels), device=torch.device("cpu"), cache_dir=None, log=log, **common)
    for ids, images, path in todo:
        taken = torch.as_tensor([rows[key] for key in ids])
        if not all(torch.equal(pixels[int(r)], images[i]) for i, r in enumerate(taken)):  # other bytes: the cell computes it
            log(f"frozen outputs: {path.name} not prewarmed (an image decodes differently across sets)")
            continue
        with atomic_write(path) as handle:
            torch.save(outputs[taken].clone(), handle)
    log(f"frozen outputs: {len(pixels)} distinct images computed once for {len(todo)} cached set(s)")
    return len(todo)

