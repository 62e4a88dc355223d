"""One training step, one epoch, and evaluation; device, precision and optimizer choices.

The two views of NLA (an image and its horizontal flip) go through the model as ONE batch of
``2B`` images by default (``two_view_forward="batched"``): one forward and one backward
instead of two, so the convolutions run on larger batches. BatchNorm then normalises each
layer with statistics over both views together; ``"separate"`` keeps the reference code's
two forward calls (and its per-view BatchNorm statistics) for exact reproduction.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fer_nla.config import Config, OptimConfig
from fer_nla.distributed import all_reduce_sum, all_reduce_tensor, gather_arrays
from fer_nla.errors import InputError
from fer_nla.losses import build_loss, hard_labels
from fer_nla.losses.nla import gt_and_nearest_negative


class NonFiniteLossError(InputError):
    """Training diverged (nan or inf loss); the message says where and what to change."""


# -- device and numerics -----------------------------------------------------------------------
def select_device(name: str = "auto", *, local_rank: int = 0) -> torch.device:
    """``auto``: CUDA (this process's local GPU), else Apple MPS, else CPU; or cpu, cuda,
    cuda:N, mps. The one device check of every command: see :func:`fer_nla.runtime.resolve_device`
    (an :class:`InputError` naming ``device=...``, what this machine has, and the fix)."""
    from fer_nla.runtime import resolve_device

    return resolve_device(name, local_rank=local_rank)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device`` (``None``: full float32).

    ``auto`` is bf16 on CUDA GPUs that support it, else fp16 on CUDA, and float32 on CPU
    and MPS (where half-precision convolutions are slower or less complete)."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    if dtype is torch.float16 and device.type == "cpu":
        raise InputError("train.precision=fp16 is not supported on CPU; use bf16 or fp32")
    return dtype


def use_channels_last(setting: str, device: torch.device) -> bool:
    """``auto``: on for CUDA and CPU (measured +20% ResNet-18 training on 2 CPU cores), off on MPS."""
    if setting == "auto":
        return device.type in ("cuda", "cpu")
    return setting == "on"


def set_determinism(*, deterministic: bool, device: torch.device) -> None:
    """Deterministic kernels (slower) or cuDNN autotuning (faster, run-to-run jitter)."""
    if deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.benchmark = device.type == "cuda"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices)."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """The seed of one epoch on one rank: resuming at an epoch boundary replays it exactly."""
    return (seed * 1_000_003 + epoch * 1009 + rank) % 2**63


# -- optimizer ---------------------------------------------------------------------------------
def build_optimizer(params: Iterable[Tensor], cfg: OptimConfig) -> torch.optim.Optimizer:
    """Adam (the recipe), AdamW or SGD with momentum."""
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=cfg.momentum > 0)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, *, epochs: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Stepped once per epoch: ExponentialLR(gamma) as the recipe, cosine to zero, or none."""
    if cfg.scheduler == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.gamma)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return None


# -- training ----------------------------------------------------------------------------------
def needs_flip_view(loss_fn: nn.Module) -> bool:
    """Whether the loss uses the logits of the flipped view (NLA's consistency term does; the
    baselines ignore it), as the loss class declares with ``uses_flip_view``
    (:class:`fer_nla.losses.base.PairLoss`); a module without the attribute gets one view."""
    return bool(getattr(loss_fn, "uses_flip_view", False))


@dataclass
class StepSignals:
    """Per-sample quantities of one batch, recorded at no extra forward (all detached)."""

    index: Tensor
    p_gt: Tensor
    p_nn: Tensor
    prediction: Tensor
    weights: Tensor | None = None
    correct: Tensor | None = None


@dataclass
class EpochResult:
    """What one training epoch measured (reduced over ranks)."""

    loss: float
    accuracy: float
    samples: int
    seconds: float
    images_per_second: float
    extras: dict[str, Any] = field(default_factory=dict)


@dataclass
class TrainStep:
    """The pieces one step needs; ``scaler`` only for fp16."""

    model: nn.Module
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    two_view_forward: str = "batched"
    grad_clip: float | None = None
    scaler: torch.amp.GradScaler | None = None

    def autocast(self) -> Any:
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def to_device(self, images: Tensor) -> Tensor:
        images = images.to(self.device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def forward_views(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """Logits of the images and of their horizontal flips (``None`` when the loss does
        not use the flipped view: the baselines then cost one view, not two)."""
        if not needs_flip_view(self.loss_fn):
            return self.model(images), None
        flipped = images.flip(3)
        if self.two_view_forward == "batched":
            return self.model(torch.cat([images, flipped])).chunk(2)
        return self.model(images), self.model(flipped)

    def __call__(self, images: Tensor, targets: Tensor, index: Tensor) -> tuple[Tensor, Tensor, StepSignals]:
        """One optimisation step; returns the (detached) loss, the logits and the signals."""
        images, targets = self.to_device(images), targets.to(self.device, non_blocking=True)
        with self.autocast():
            logits, logits_flip = self.forward_views(images)
        self.raise_unless_finite_everywhere(logits, logits_flip, targets)
        loss = self.loss_fn(logits.float(), None if logits_flip is None else logits_flip.float(), targets)
        self.raise_unless_finite_everywhere(loss)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        return loss.detach(), logits.detach(), self.signals(logits.detach().float(), targets, index)

    def raise_unless_finite_everywhere(self, *tensors: Tensor | None) -> None:
        """Raise ``FloatingPointError`` on every rank when any rank has a nan/inf value, before
        the backward pass (a rank stopping alone would leave the others waiting forever)."""
        bad = torch.zeros((), device=self.device)
        for tensor in tensors:
            if tensor is not None and tensor.is_floating_point():
                bad = bad + (~torch.isfinite(tensor.detach())).any().float()
        all_reduce_tensor(bad)
        if bad.item() > 0:
            kind = "loss" if len(tensors) == 1 else "logits"
            raise FloatingPointError(f"non-finite {kind} (nan or inf)")

    def signals(self, logits: Tensor, targets: Tensor, index: Tensor) -> StepSignals:
        """NAW's own record (``loss.last``) for NLA; p_gt/p_nn from the logits otherwise. With soft
        targets ``[B, C]`` the given label is each distribution's argmax."""
        last = getattr(self.loss_fn, "last", None)
        prediction = logits.argmax(dim=1)
        if last is not None:
            return StepSignals(index, last.p_gt, last.p_nn, prediction, last.weights, last.correct)
        p_gt, p_nn, correct = gt_and_nearest_negative(logits, hard_labels(targets))
        return StepSignals(index, p_gt, p_nn, prediction, None, correct)


def build_train_step(
    config: Config,
    model: nn.Module,
    *,
    class_counts: np.ndarray,
    device: torch.device,
    channels_last: bool,
    net: nn.Module | None = None,
) -> tuple[TrainStep, torch.optim.lr_scheduler.LRScheduler | None]:
    """The loss (``config.loss``, built once), optimizer, scheduler, precision and scaler of a
    run, assembled into a :class:`TrainStep` on ``net`` (the DDP wrapper; default ``model``).

    The loss's own input check is switched off: the step already checks the logits on every
    rank and datasets check their targets, so it would only add a device sync per step."""
    tc = config.train
    try:
        options = {"check": False, **config.loss.options}
        loss_fn = build_loss(config.loss.name, epochs=tc.epochs, class_counts=class_counts, **options).to(device)
    except ValueError as err:
        raise InputError(f"loss: {err}") from None
    optimizer = build_optimizer(model.parameters(), config.optim)
    scheduler = build_scheduler(optimizer, config.optim, epochs=tc.epochs)
    amp_dtype = autocast_dtype(tc.precision, device)
    scaler = torch.amp.GradScaler(device.type) if amp_dtype is torch.float16 else None
    step = TrainStep(net if net is not None else model, loss_fn, optimizer, device, amp_dtype, channels_last,
                     tc.two_view_forward, tc.grad_clip, scaler)
    return step, scheduler


def train_one_epoch(
    step: TrainStep,
    loader: Iterable[tuple[Tensor, Tensor, Tensor]],
    *,
    epoch: int,
    last_good: str,
    max_steps: int | None = None,
    on_signals: Callable[[StepSignals], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    progress: Any = None,
) -> EpochResult:
    """Run one epoch of ``step`` over ``loader``; loss and accuracy are reduced over ranks.

    Targets are class indices ``[B]`` or label distributions ``[B, C]``; the accuracy counts a
    sample correct when the prediction is the given label (a distribution's argmax)."""
    step.model.train()
    loss_sum = torch.zeros((), dtype=torch.float64, device=step.device)
    correct = torch.zeros((), dtype=torch.int64, device=step.device)
    seen = 0
    start = time.perf_counter()
    for i, (images, targets, index) in enumerate(loader):
        if max_steps is not None and i >= max_steps:
            break
        if on_step is not None:
            on_step(epoch, i)
        try:
            loss, logits, signals = step(images, targets, index)
        except FloatingPointError as err:
            raise NonFiniteLossError(
                f"{err} at epoch {epoch + 1}, step {i + 1}: training diverged and was stopped. "
                f"The last good checkpoint is kept ({last_good}). Lower optim.lr, set train.grad_clip=5, "
                "or use train.precision=fp32"
            ) from None
        batch = int(targets.shape[0])
        loss_sum += loss.double() * batch
        correct += (logits.argmax(dim=1) == hard_labels(targets.to(step.device))).sum()
        seen += batch
        if on_signals is not None:
            on_signals(signals)
        if progress is not None:
            progress.update(batch)
            progress.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    seconds = time.perf_counter() - start
    total_loss, total_correct, total_seen = all_reduce_sum([loss_sum.item(), float(correct.item()), float(seen)], device=step.device)
    total_seen = max(total_seen, 1.0)
    return EpochResult(
        loss=total_loss / total_seen,
        accuracy=total_correct / total_seen,
        samples=int(total_seen),
        seconds=seconds,
        images_per_second=total_seen / max(seconds, 1e-9),
    )


# -- evaluation --------------------------------------------------------------------------------
@torch.no_grad()
def predict_probabilities(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Any, Tensor]],
    *,
    device: torch.device,
    num_classes: int,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict[str, np.ndarray]:
    """Softmax probabilities, targets and dataset indices of every sample the loader yields,
    gathered over ranks and sorted by index (so each rank shards the data)."""
    model.eval()
    probs, targets, indices = [], [], []
    for images, target, index in loader:
        images = images.to(device, non_blocking=True)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast(device_type=device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
        with ctx:
            logits = model(images)
        probs.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        targets.append(np.asarray(target))
        indices.append(np.asarray(index))
    local = {
        "probs": np.concatenate(probs) if probs else np.zeros((0, num_classes), np.float32),
        "targets": np.concatenate(targets) if targets else np.zeros(0, np.int64),
        "indices": np.concatenate(indices) if indices else np.zeros(0, np.int64),
    }
    merged = gather_arrays(local)
    order = np.argsort(merged["indices"], kind="stable")
    _, first = np.unique(merged["indices"][order], return_index=True)  # drop padded repeats
    keep = order[first]
    return {key: value[keep] for key, value in merged.items()}


def learning_rate(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])

