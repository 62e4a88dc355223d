"""The batches of a run: from decoded images in memory, or from the image files every epoch.

``data.loader`` chooses (:class:`fer_nla.config.DataConfig`):

- ``memory``: every image of the training split (and of the validation split, or the rows carved
  from train) is decoded once into a ``uint8`` tensor (:func:`fer_nla.data.memory.decode_to_memory`,
  cached on disk, so the next run starts in seconds) and each batch is augmented on the training
  device (:class:`fer_nla.data.memory_loader.MemoryLoader`: Gaussian noise before the resize,
  flip and erasing per image, as the recipe orders them);
- ``files``: a ``DataLoader`` over the dataset with the recipe's PIL transforms
  (:mod:`fer_nla.data.transforms`) in ``num_workers`` workers, every epoch;
- ``auto``: ``memory`` when both splits' decoded images fit the budget of
  :func:`fer_nla.data.memory.default_budget_bytes`, else ``files``.

Both visit the samples in :class:`~torch.utils.data.DistributedSampler`'s order and yield
``(images float32 [B, 3, S, S], targets, index)`` with ``index`` the position in the trained
part, so the step, the signals and the checkpoints do not know which one ran. The two differ in
float rounding only (tensor against PIL resizing) and in how each draws its random numbers, so a
run resumed with the other loader does not replay exactly: ``data.loader`` is fixed on resume.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from fer_nla.config import DataConfig
from fer_nla.data.dataset import FERDataset
from fer_nla.data.memory import decode_to_memory, default_budget_bytes, memory_bytes
from fer_nla.data.memory_loader import MemoryLoader
from fer_nla.distributed import DistInfo
from fer_nla.train.run_data import RunData

Batches = Iterable[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]


@dataclass
class Loaders:
    """``train(epoch, seed)`` gives an epoch's training batches; ``val`` the validation batches;
    ``steps_per_epoch`` training steps per epoch on this rank; ``kind`` memory or files."""

    kind: str
    train: Callable[[int, int], Batches]
    val: Batches
    steps_per_epoch: int


def choose_loader(cfg: DataConfig, data: RunData) -> str:
    """``memory`` or ``files`` for ``cfg.loader`` (``auto``: memory when the decoded training
    and validation images fit :func:`~fer_nla.data.memory.default_budget_bytes`)."""
    if cfg.loader != "auto":
        return cfg.loader
    needed = memory_bytes(data.full_train, size=cfg.image_size)
    if data.val_indices is None:
        needed += memory_bytes(data.val, size=cfg.image_size)
    return "memory" if needed <= default_budget_bytes() else "files"


MAX_DROPPED_SHARE = 0.05  # a partial last batch over this share of the set is trained on (20+ batches: dropped, as before)


def build_loaders(cfg: DataConfig, data: RunData, *, batch_size: int, eval_batch_size: int, seed: int,
                  info: DistInfo, device: torch.device, log: Callable[[str], None] = print,
                  frozen: torch.nn.Module | None = None) -> Loaders:
    """The run's :class:`Loaders` for ``cfg.loader``. The last partial training batch of a rank
    is dropped only where it is a small share (at most :data:`MAX_DROPPED_SHARE` of the rank's
    samples: a new few each epoch, since the order is shuffled) or a single sample (BatchNorm
    cannot train on one); otherwise, as in a small fine-tuning set, it is trained on (said in the log).
    ``frozen``: the model whose frozen stages' outputs are cached (``train.cache_frozen``,
    :mod:`fer_nla.freeze`): the batches are then those outputs (kind ``cached``)."""
    per_rank = -(-len(data.train_indices) // info.world_size)
    remainder = per_rank % batch_size
    drop_last = per_rank > batch_size and (remainder < 2 or remainder <= MAX_DROPPED_SHARE * per_rank)
    steps = per_rank // batch_size if drop_last else -(-per_rank // batch_size)
    if drop_last and remainder:
        log(f"data: the last partial batch ({remainder} of {per_rank} training samples per process, "
            f"{remainder / per_rank:.1%}) is left out of each epoch; the order is shuffled, so a new few each epoch")
    elif remainder and per_rank > batch_size:
        log(f"data: the last batch of each epoch holds {remainder} samples, not {batch_size}: trained on, since "
            f"leaving it out would skip {remainder / per_rank:.0%} of the training set")
    if frozen is not None:
        return _cached_loaders(cfg, data, frozen, batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed,
                               info=info, device=device, drop_last=drop_last, steps=steps, log=log)
    kind = choose_loader(cfg, data)
    if kind == "memory":
        return _memory_loaders(cfg, data, batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed,
                               info=info, device=device, drop_last=drop_last, steps=steps, log=log)
    return _file_loaders(cfg, data, batch_size=batch_size, eval_batch_size=eval_batch_size, seed=seed,
                         info=info, device=device, drop_last=drop_last, steps=steps)


def _file_loaders(cfg: DataConfig, data: RunData, *, batch_size: int, eval_batch_size: int, seed: int,
                  info: DistInfo, device: torch.device, drop_last: bool, steps: int) -> Loaders:
    sampler = DistributedSampler(data.train, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed)
    pin = device.type == "cuda"
    val = eval_loader(cfg, data.val, kind="files", eval_batch_size=eval_batch_size, info=info, device=device)

    def train(epoch: int, epoch_seed: int) -> Batches:
        sampler.set_epoch(epoch)
        return DataLoader(data.train, batch_size=batch_size, sampler=sampler, num_workers=cfg.num_workers,
                          drop_last=drop_last, pin_memory=pin, generator=torch.Generator().manual_seed(epoch_seed),
                          persistent_workers=False)

    return Loaders("files", train, val, steps)


def decode_options(cfg: DataConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """The keyword arguments of :func:`~fer_nla.data.memory.decode_to_memory` for ``cfg``'s images."""
    return {"size": cfg.image_size, "root": cfg.root, "options": cfg.options, "cache_dir": cfg.cache_dir,
            "grayscale": cfg.grayscale, "log": log}


def _memory_loaders(cfg: DataConfig, data: RunData, *, batch_size: int, eval_batch_size: int, seed: int,
                    info: DistInfo, device: torch.device, drop_last: bool, steps: int,
                    log: Callable[[str], None]) -> Loaders:
    decode = decode_options(cfg, log)
    full = decode_to_memory(data.full_train, **decode)
    soft = data.train.target_mode == "soft"
    targets = data.full_train.soft_targets if soft else data.full_train.targets
    augment = {"augment": cfg.augmentation, "grayscale": cfg.grayscale}
    shard = {"rank": info.rank, "world_size": info.world_size, "device": device, "image_size": cfg.image_size}
    train_loader = MemoryLoader(full, targets, data.train_indices, batch_size=batch_size, train=True, shuffle=True,
                                drop_last=drop_last, seed=seed, **shard, **augment)
    if data.val_indices is not None:  # carved from train: the same decoded rows
        val = MemoryLoader(full, data.full_train.targets, data.val_indices, batch_size=eval_batch_size, train=False,
                           shuffle=False, **shard)
    else:
        val = eval_loader(cfg, data.val, kind="memory", eval_batch_size=eval_batch_size, info=info, device=device, log=log)

    def train(epoch: int, epoch_seed: int) -> Batches:
        del epoch_seed  # the augmentation draws from the global generators, seeded per epoch by fit
        train_loader.set_epoch(epoch)
        return train_loader

    return Loaders("memory", train, val, steps)


def _cached_loaders(cfg: DataConfig, data: RunData, model: torch.nn.Module, *, batch_size: int, eval_batch_size: int,
                    seed: int, info: DistInfo, device: torch.device, drop_last: bool, steps: int,
                    log: Callable[[str], None]) -> Loaders:
    """Loaders over the frozen stages' cached outputs of the training and validation images
    (:func:`fer_nla.freeze.frozen_outputs`, on disk beside the decoded images)."""
    from fer_nla.data.memory import cache_folder
    from fer_nla.data.transforms import RECIPE_MEAN, RECIPE_STD
    from fer_nla.freeze import CachedLoader, frozen_outputs

    decode = decode_options(cfg, log)
    common = {"image_size": cfg.image_size, "mean": tuple(RECIPE_MEAN), "std": tuple(RECIPE_STD), "device": device,
              "cache_dir": cache_folder(cfg.cache_dir), "log": log}
    shard = {"rank": info.rank, "world_size": info.world_size, "device": device}

    def outputs_of(images: torch.Tensor, needed: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.full((len(images),), -1, dtype=torch.int64)
        rows[torch.as_tensor(needed)] = torch.arange(len(needed))
        return frozen_outputs(model, images[torch.as_tensor(needed)], **common), rows

    full = decode_to_memory(data.full_train, **decode).images
    needed = np.union1d(data.train_indices, data.val_indices if data.val_indices is not None else [])
    outputs, rows = outputs_of(full, needed.astype(np.int64))
    soft = data.train.target_mode == "soft"
    targets = torch.as_tensor(data.full_train.soft_targets if soft else data.full_train.targets)
    train_loader = CachedLoader(outputs, rows, targets, torch.as_tensor(data.train_indices), batch_size=batch_size,
                                shuffle=True, drop_last=drop_last, seed=seed, **shard)
    hard = torch.as_tensor(data.full_train.targets)
    if data.val_indices is not None:
        val = CachedLoader(outputs, rows, hard, torch.as_tensor(data.val_indices), batch_size=eval_batch_size,
                           shuffle=False, **shard)
    else:
        val = eval_loader(cfg, data.val, kind="cached", eval_batch_size=eval_batch_size, info=info, device=device,
                          log=log, frozen=model)

    def train(epoch: int, epoch_seed: int) -> Batches:
        del epoch_seed  # no random augmentation: the order is the sampler's
        train_loader.set_epoch(epoch)
        return train_loader

    return Loaders("cached", train, val, steps)


def eval_loader(cfg: DataConfig, dataset: FERDataset, *, kind: str, eval_batch_size: int, info: DistInfo,
                device: torch.device, log: Callable[[str], None] = print, frozen: torch.nn.Module | None = None) -> Batches:
    """Batches ``(images or cached views, targets, index)`` of a whole evaluation split held apart
    from training (its own validation split, or the paper protocol's test split), in order, sharded
    over the ranks: ``kind`` ``memory`` (decoded once, cached on disk), ``files`` (PIL every pass)
    or ``cached`` (the frozen stages' outputs of ``frozen``, :func:`fer_nla.freeze.frozen_outputs`)."""
    shard = {"rank": info.rank, "world_size": info.world_size, "device": device}
    if kind == "files":
        sampler = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=False)
        return DataLoader(dataset, batch_size=eval_batch_size, sampler=sampler, num_workers=cfg.num_workers,
                          pin_memory=device.type == "cuda")
    images = decode_to_memory(dataset, **decode_options(cfg, log))
    if kind == "memory":
        return MemoryLoader(images, dataset.targets, batch_size=eval_batch_size, train=False, shuffle=False,
                            image_size=cfg.image_size, **shard)
    from fer_nla.data.memory import cache_folder
    from fer_nla.data.transforms import RECIPE_MEAN, RECIPE_STD
    from fer_nla.freeze import CachedLoader, frozen_outputs

    assert frozen is not None, "kind='cached' needs the model whose frozen stages are cached"
    outputs = frozen_outputs(frozen, images.images, image_size=cfg.image_size, mean=tuple(RECIPE_MEAN),
                             std=tuple(RECIPE_STD), device=device, cache_dir=cache_folder(cfg.cache_dir), log=log)
    count = len(outputs)
    return CachedLoader(outputs, torch.arange(count), torch.as_tensor(dataset.targets), torch.arange(count),
                        batch_size=eval_batch_size, shuffle=False, **shard)
