"""Batches from decoded images in memory, augmented on the training device.

:class:`MemoryLoader` replaces ``DataLoader(FERDataset with train_transform, DistributedSampler)``
when the images fit in memory (:mod:`fer_nla.data.memory`): each step takes the batch's rows of
the ``uint8`` tensor, moves them to the device (pinned first on CUDA, or kept there with
``resident=True``) and augments them there (:mod:`fer_nla.data.batch_augment`), so no worker
decodes or transforms an image per step. It yields the batch format
:func:`fer_nla.train.loop.train_one_epoch` and :func:`fer_nla.train.loop.predict_probabilities` read
from today's DataLoader: ``(images, targets, index)``.

The order of samples is :class:`torch.utils.data.DistributedSampler`'s for the same ``seed``,
epoch, rank and world size (shuffled with ``seed + epoch``, padded by repeating its start to a
multiple of the world size, every ``world_size``-th sample from ``rank``): the memory path
visits the samples in the same order as the files path.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from fer_nla.data.augmentation import Augmentation
from fer_nla.data.batch_augment import BatchAugment, eval_batch
from fer_nla.data.memory import MemoryImages
from fer_nla.data.transforms import RECIPE_MEAN, RECIPE_STD


def sampler_order(n: int, *, shuffle: bool, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> np.ndarray:
    """``int64 [ceil(n / world_size)]``: the positions ``DistributedSampler(range(n), num_replicas=
    world_size, rank=rank, shuffle=shuffle, seed=seed)`` yields after ``set_epoch(epoch)``
    (its ``drop_last=False``: padded with the first positions so each rank gets as many)."""
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).numpy()
    else:
        order = np.arange(n, dtype=np.int64)
    total = math.ceil(n / world_size) * world_size
    if total > n:
        order = np.concatenate([order, np.resize(order, total - n)])  # np.resize repeats from the start
    return order[rank:total:world_size].astype(np.int64)


def _on_device(images: Tensor, device: torch.device) -> Tensor:
    """``images`` on ``device``; a gray set held as one expanded channel stays one channel there."""
    if images.shape[1] == 3 and images.stride(1) == 0:
        return images[:, :1].to(device).expand(-1, 3, -1, -1)
    return images.to(device)


class MemoryLoader:
    """Batches ``(images, targets, index)`` of the samples ``indices`` of decoded ``images``.

    Yields, per step:
      - images: ``float32 [B, 3, S, S]`` on ``device``, normalised; training (``train=True``):
        the recipe's augmentation drawn per image (:class:`~fer_nla.data.batch_augment.BatchAugment`),
        else resize and normalise only;
      - targets: CPU ``int64 [B]`` class indices, or ``float32 [B, C]`` distributions (as given);
      - index: CPU ``int64 [B]``, each sample's POSITION in ``indices`` (0..len(indices)-1), which is
        what the DataLoader over ``full.subset(indices)`` yields today; ``SignalRecorder`` maps it to
        the full split through ``train_indices``.

    ``images``: a :class:`MemoryImages` (or its ``uint8 [N, 3, H, W]`` tensor) of the full split;
    ``targets``: ``[N]`` or ``[N, C]`` for the same rows; ``indices``: rows to iterate (default all).
    ``seed``/``set_epoch``: the sample order, as ``DistributedSampler`` (:func:`sampler_order`);
    ``generator``: a ``torch.Generator`` on ``device`` for the augmentation (None: the global
    generators, which the trainer seeds per epoch). ``resident``: keep the whole uint8 tensor on
    ``device`` (no copy per step; for a GPU with room). ``grayscale``: the images were decoded gray
    (``data.grayscale``): the training noise is drawn gray too. Raises ``ValueError`` for inconsistent sizes.
    """

    def __init__(
        self,
        images: MemoryImages | Tensor,
        targets: np.ndarray | Tensor,
        indices: Sequence[int] | np.ndarray | None = None,
        *,
        batch_size: int,
        image_size: int,
        device: torch.device | str = "cpu",
        train: bool,
        shuffle: bool,
        drop_last: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        augment: Augmentation = Augmentation(),
        grayscale: bool = False,
        mean: Sequence[float] = RECIPE_MEAN,
        std: Sequence[float] = RECIPE_STD,
        generator: torch.Generator | None = None,
        resident: bool = False,
    ) -> None:
        pixels = images.images if isinstance(images, MemoryImages) else images
        self.targets = torch.as_tensor(np.asarray(targets))
        self.indices = np.arange(len(pixels), dtype=np.int64) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
        _check(pixels, self.targets, self.indices, batch_size=batch_size, rank=rank, world_size=world_size)
        self.device = torch.device(device)
        self.resident = bool(resident)
        self.images = _on_device(pixels, self.device) if resident else pixels
        self.batch_size, self.image_size, self.train = int(batch_size), int(image_size), train
        self.shuffle, self.drop_last, self.seed = shuffle, drop_last, int(seed)
        self.rank, self.world_size, self.epoch = int(rank), int(world_size), 0
        self.mean, self.std, self.generator = tuple(mean), tuple(std), generator
        self.augment = BatchAugment(image_size=image_size, mean=mean, std=std, augment=augment,
                                    grayscale=grayscale) if train else None
        self.pin = self.device.type == "cuda" and not resident

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose order the next iteration follows (as ``DistributedSampler.set_epoch``)."""
        self.epoch = int(epoch)

    def positions(self) -> np.ndarray:
        """``int64``: this rank's positions in ``indices`` for the current epoch, in order."""
        return sampler_order(len(self.indices), shuffle=self.shuffle, seed=self.seed, epoch=self.epoch,
                             rank=self.rank, world_size=self.world_size)

    def __len__(self) -> int:
        per_rank = math.ceil(len(self.indices) / self.world_size)
        return per_rank // self.batch_size if self.drop_last else math.ceil(per_rank / self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        order = torch.from_numpy(self.positions())
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            position = order[start:start + self.batch_size]
            rows = torch.from_numpy(self.indices)[position]
            yield self._images(rows), self._pinned(self.targets[rows]), self._pinned(position.clone())

    def _pinned(self, tensor: Tensor) -> Tensor:
        return tensor.pin_memory() if self.pin else tensor

    def _images(self, rows: Tensor) -> Tensor:
        """``float32 [B, 3, S, S]`` on the device: the rows' uint8 images moved, then transformed."""
        if self.resident:
            batch = self.images.index_select(0, rows.to(self.images.device))
        else:
            batch = self._pinned(self.images.index_select(0, rows)).to(self.device, non_blocking=True)
        if self.augment is not None:
            return self.augment(batch, generator=self.generator)
        return eval_batch(batch, image_size=self.image_size, mean=self.mean, std=self.std)


def _check(images: Tensor, targets: Tensor, indices: np.ndarray, *, batch_size: int, rank: int, world_size: int) -> None:
    """Raise ``ValueError`` unless the images, targets, indices and sharding agree."""
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(f"images must be uint8 [N, 3, H, W], got {tuple(images.shape)} {images.dtype}")
    if targets.shape[0] != images.shape[0]:
        raise ValueError(f"{targets.shape[0]} targets for {images.shape[0]} images; give one per image")
    if indices.size == 0 or indices.min() < 0 or indices.max() >= images.shape[0]:
        raise ValueError(f"indices must be a non-empty selection of 0..{images.shape[0] - 1}")
    if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"batch_size={batch_size}, rank={rank}, world_size={world_size}: need batch_size >= 1, 0 <= rank < world_size")
