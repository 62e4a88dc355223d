"""Frozen early stages (``model.frozen_stages``) and their cached outputs (``train.cache_frozen``).

``model.frozen_stages=K`` follows mmdetection's ``frozen_stages`` convention: ``-1`` freezes
nothing, ``0`` the stem, ``K >= 1`` the stem and stages 1..K. Frozen parameters get no gradient
and their BatchNorm layers stay in eval mode (running statistics, as the pretrained network
used them), so the frozen part is a fixed function of the image.

A fixed function can be computed once: with ``train.cache_frozen=true`` the frozen part's output
for every training and validation image and for its horizontal flip is computed before the
first epoch (:func:`frozen_outputs`, cached on disk by content) and the run trains only the rest
(:class:`TrailingPart`). A cached sample is ``float32 [2, C, H, W]``: view 0 the image's output,
view 1 its flip's; flipping the image swaps the two (:func:`swap_views`), which is how the
step makes NLA's flipped view from a cached batch. The cached path then computes what the
uncached one does (the same weights see the same values) and differs only in float rounding;
it needs no random augmentation, since an augmented image has no fixed output
(:func:`check_cacheable`).

Only networks that declare their stages support this (:class:`fer_nla.models.SmallResNet`,
``resnet10s``: stem, then stages 1-4; ``dlib_resnet``: stem, then dlib's levels 4..0 as stages 1-5).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch import Tensor, nn

from fer_nla.atomic import atomic_write
from fer_nla.data.augmentation import Augmentation
from fer_nla.data.batch_augment import eval_batch
from fer_nla.errors import InputError

# Bumped when the cached values would change for the same weights and images.
CACHE_VERSION = 1


def stage_ends(model: nn.Module, *, arch: str = "") -> tuple[int, ...]:
    """The index in ``model.features`` where the stem and each stage end. Raises
    :class:`InputError` for a network that declares no stages."""
    ends = tuple(getattr(model, "stage_ends", ()) or ())
    if not ends:
        raise InputError(f"model.frozen_stages needs a network with declared stages (resnet10s, dlib_resnet); "
                         f"{arch or type(model).__name__} has none: leave model.frozen_stages=-1")
    return ends


def freeze_stages(model: nn.Module, stages: int, *, arch: str = "") -> int:
    """Freeze the stem and stages 1..``stages`` of ``model`` (``-1``: nothing): no gradient, and
    BatchNorm kept in eval mode by the model's ``train()``. Returns the number of modules of
    ``model.features`` frozen. Raises :class:`InputError` for a ``stages`` the network lacks."""
    if stages < 0:
        return 0
    ends = stage_ends(model, arch=arch)
    if stages >= len(ends):
        raise InputError(f"model.frozen_stages={stages} but {arch or type(model).__name__} has a stem and "
                         f"{len(ends) - 1} stages: choose -1..{len(ends) - 1} ({len(ends) - 1}: only the head trains)")
    end = ends[stages]
    for module in list(model.features)[:end]:
        module.requires_grad_(False)
    model.frozen_end = end
    model.train(model.training)
    return end


def swap_views(batch: Tensor) -> Tensor:
    """``[B, 2, ...]`` cached views -> the same with views 0 and 1 swapped: the cached form of a
    horizontal flip (the flip of an image's flip is the image)."""
    return batch.flip(1)


class TrailingPart(nn.Module):
    """What trains when the frozen part is cached: the stages after ``model.frozen_end``, the
    pooling and the head, applied to view 0 of a cached batch ``float32 [B, 2, C, H, W]``;
    returns logits ``[B, num_classes]``. Holds ``model`` itself (no copy): training this trains
    ``model``, whose state dict the checkpoints save. A
    :class:`~fer_nla.models.FeatureNetwork` like ``model``: the feature maps of a cached batch
    are those of the whole network on the images, so methods that need features train here too."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward_features(self, batch: Tensor) -> Tensor:
        """Cached views ``[B, 2, C, H, W]`` -> the network's last feature maps ``[B, C', h, w]`` of view 0."""
        m = self.model
        return m.features[m.frozen_end:](batch[:, 0])

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """The network's own head (:meth:`fer_nla.models.SmallResNet.forward_head`)."""
        return self.model.forward_head(x, pre_logits=pre_logits)

    def forward(self, batch: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(batch))


def _digest(model: nn.Module, images: Tensor, *, image_size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> str:
    h = hashlib.blake2b(digest_size=12)
    h.update(f"v{CACHE_VERSION} {image_size} {mean} {std} {model.frozen_end} {type(model).__name__}".encode())
    for key, value in model.state_dict().items():
        if key.startswith("features.") and int(key.split(".")[1]) < model.frozen_end:
            h.update(key.encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    h.update(str(tuple(images.shape)).encode())
    h.update(images.contiguous().numpy().tobytes())
    return h.hexdigest()


@torch.inference_mode()
def frozen_cache_path(model: nn.Module, images: Tensor, *, image_size: int, mean: tuple[float, ...],
                      std: tuple[float, ...], cache_dir: Path) -> Path:
    """Where :func:`frozen_outputs` stores (and looks for) the outputs of ``images``: a file under
    ``cache_dir`` named by a digest of the frozen weights, the images' bytes and the preprocessing."""
    return Path(cache_dir) / f"frozen-{_digest(model, images, image_size=image_size, mean=mean, std=std)}.pt"


def frozen_outputs(model: nn.Module, images: Tensor, *, image_size: int, mean: tuple[float, ...],
                   std: tuple[float, ...], device: torch.device, cache_dir: Path | None = None,
                   batch_size: int = 256, log: Callable[[str], None] = print) -> Tensor:
    """The frozen part's outputs ``float32 [N, 2, C, H, W]`` (CPU) for decoded images
    ``uint8 [N, 3, h, w]``: view 0 of each image resized and normalised as for evaluation
    (:func:`fer_nla.data.batch_augment.eval_batch`), view 1 of its horizontal flip.

    With ``cache_dir`` the result is stored as ``frozen-<digest>.pt`` there, keyed by the frozen
    weights, the images' bytes and the preprocessing, and read back (``weights_only=True``) when
    present: every run on the same images and frozen weights computes it once."""
    path = None
    if cache_dir is not None:
        path = frozen_cache_path(model, images, image_size=image_size, mean=mean, std=std, cache_dir=Path(cache_dir))
        if path.is_file():
            return torch.load(path, map_location="cpu", weights_only=True)
    frozen = model.features[:model.frozen_end]
    was_training = model.training
    model.eval()
    parts = []
    for start in range(0, len(images), batch_size):
        x = eval_batch(images[start:start + batch_size].to(device), image_size=image_size, mean=mean, std=std)
        parts.append(torch.stack([frozen(x), frozen(x.flip(3))], dim=1).float().cpu())
    model.train(was_training)
    out = torch.cat(parts)
    log(f"frozen stages: computed the outputs {tuple(out.shape[2:])} of {len(images)} images and their flips")
    if path is not None:
        with atomic_write(path) as handle:
            torch.save(out, handle)
    return out


def check_cacheable(*, frozen_stages: int, augment: Augmentation) -> None:
    """Raise :class:`InputError` unless ``train.cache_frozen`` can hold: stages frozen and no
    random augmentation (an augmented image has no fixed output to cache)."""
    if frozen_stages < 0:
        raise InputError("train.cache_frozen=true needs frozen stages to cache: set model.frozen_stages "
                         "(e.g. 3: the stem and stages 1-3 of resnet10s)")
    on = augment.switched_on()
    if on:
        raise InputError(f"train.cache_frozen=true caches each image's frozen output once, so random augmentation "
                         f"cannot apply: set {', '.join(f'data.{k}=false' for k in on)} (NLA's flipped view is "
                         "still made, from the cached flip)")


class CachedLoader:
    """Batches ``(views float32 [B, 2, C, H, W], targets, index)`` of cached frozen outputs, in
    :class:`~fer_nla.data.memory_loader.MemoryLoader`'s order for the same ``seed``, epoch, rank
    and world size (:func:`~fer_nla.data.memory_loader.sampler_order`), so a cached run visits the
    samples as the uncached one does. ``outputs``: ``[M, 2, C, H, W]`` rows; ``rows``: ``int64 [N]``,
    for each sample of ``indices``'s split, its row in ``outputs`` (-1: not computed);
    ``targets``: ``[N]`` or ``[N, C]``; ``indices``: the samples to iterate; ``index`` yields each
    one's position in ``indices``. Raises ``ValueError`` when a sample to iterate has no row."""

    def __init__(self, outputs: Tensor, rows: Tensor, targets: Tensor, indices: Tensor, *, batch_size: int,
                 shuffle: bool, drop_last: bool = False, seed: int = 0, rank: int = 0, world_size: int = 1,
                 device: torch.device | str = "cpu") -> None:
        self.outputs, self.targets = outputs, torch.as_tensor(targets)
        self.rows = torch.as_tensor(rows, dtype=torch.int64)[torch.as_tensor(indices, dtype=torch.int64)]
        if len(self.rows) == 0 or bool((self.rows < 0).any()):
            raise ValueError("every sample to iterate needs a cached output")
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        self.batch_size, self.shuffle, self.drop_last, self.seed = int(batch_size), shuffle, drop_last, int(seed)
        self.rank, self.world_size, self.epoch, self.device = int(rank), int(world_size), 0, torch.device(device)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        per_rank = -(-len(self.indices) // self.world_size)
        return per_rank // self.batch_size if self.drop_last else -(-per_rank // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        from fer_nla.data.memory_loader import sampler_order

        order = torch.from_numpy(sampler_order(len(self.indices), shuffle=self.shuffle, seed=self.seed, epoch=self.epoch,
                                               rank=self.rank, world_size=self.world_size))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            position = order[start:start + self.batch_size]
            batch = self.outputs.index_select(0, self.rows[position]).to(self.device, non_blocking=True)
            yield batch, self.targets[self.indices[position]], position.clone()
