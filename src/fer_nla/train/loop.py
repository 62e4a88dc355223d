"""One training epoch over a loader, and the probabilities of a model on a loader (validation).

Both take batches ``(images [B, 3, S, S] float32, targets [B] int64 or [B, C] float32,
index [B] int64)``, from a DataLoader over files or from the in-memory loader
(:class:`fer_nla.data.memory_loader.MemoryLoader`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fer_nla.distributed import all_reduce_sum, gather_arrays
from fer_nla.losses import hard_labels
from fer_nla.train.step import NonFiniteLossError, NonFiniteStep, StepSignals, TrainStep

FINITE_CHECK_EVERY = 50  # steps between the epoch loop's host synchronisations (nan/inf check, progress)


@dataclass
class EpochResult:
    """What one training epoch measured (reduced over ranks)."""

    loss: float
    accuracy: float
    samples: int
    seconds: float
    images_per_second: float
    extras: dict[str, Any] = field(default_factory=dict)
    accuracy_clean: float | None = None  # against the clean labels, where the data knows them


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
    check_every: int = FINITE_CHECK_EVERY,
    clean_targets: Tensor | None = None,
) -> EpochResult:
    """Run one epoch of ``step`` over ``loader``; loss and accuracy are reduced over ranks.

    The loop does not wait for the device each step: a nan/inf in the logits or the loss is
    noted on the device and checked every ``check_every`` steps and at the epoch's end, where
    it raises :class:`NonFiniteLossError` naming the epoch and the first bad step. Checkpoints
    are written after the epoch, so a diverged epoch never reaches one.

    Targets are class indices ``[B]`` or label distributions ``[B, C]``; the accuracy counts a
    sample correct when the prediction is the given label (a distribution's argmax).
    ``clean_targets`` (int64 ``[N]`` on the step's device, indexed by the loader's sample index;
    -1 where unknown) adds ``accuracy_clean``: the share of training samples with a known clean
    label that the model predicts as that label, as they pass through training (a model that fits
    noisy labels drifts away from it while ``accuracy`` keeps rising)."""
    step.model.train()  # the method stays in training mode throughout: validation never runs it
    step.first_nonfinite = None
    loss_sum = torch.zeros((), dtype=torch.float64, device=step.device)
    correct = torch.zeros((), dtype=torch.int64, device=step.device)
    clean_correct = torch.zeros((), dtype=torch.int64, device=step.device)
    clean_known = torch.zeros((), dtype=torch.int64, device=step.device)
    seen = 0
    start = time.perf_counter()
    try:
        for i, (images, targets, index) in enumerate(loader):
            if max_steps is not None and i >= max_steps:
                break
            if on_step is not None:
                on_step(epoch, i)
            loss, logits, signals = step(images, targets, index, step_number=i + 1)
            batch = int(targets.shape[0])
            loss_sum += loss.double() * batch
            predicted = logits.argmax(dim=1)
            correct += (predicted == hard_labels(targets.to(step.device))).sum()
            if clean_targets is not None:
                clean = clean_targets[index.to(clean_targets.device)]
                clean_correct += (predicted == clean).sum()  # -1 never equals a prediction
                clean_known += (clean >= 0).sum()
            seen += batch
            if on_signals is not None:
                on_signals(signals)
            if (i + 1) % check_every == 0:  # the only host synchronisations inside the epoch
                step.check_finite()
                if progress is not None:
                    progress.set_postfix(loss=f"{loss_sum.item() / max(seen, 1):.3f}", refresh=False)
            if progress is not None:
                progress.update(batch)
        step.check_finite()
    except NonFiniteStep as err:
        raise NonFiniteLossError(
            f"{err} at epoch {epoch + 1}, step {err.step}: training diverged and was stopped. "
            f"The last good checkpoint is kept ({last_good}). Lower optim.lr, set train.grad_clip=5, "
            "or use train.precision=fp32"
        ) from None
    seconds = time.perf_counter() - start
    counts = torch.stack([loss_sum, correct.double(), clean_correct.double(), clean_known.double()]).tolist()  # one sync
    total_loss, total_correct, total_clean, total_known, total_seen = all_reduce_sum(
        [*counts, float(seen)], device=step.device
    )
    total_seen = max(total_seen, 1.0)
    return EpochResult(
        loss=total_loss / total_seen,
        accuracy=total_correct / total_seen,
        samples=int(total_seen),
        seconds=seconds,
        images_per_second=total_seen / max(seconds, 1e-9),
        accuracy_clean=total_clean / total_known if clean_targets is not None and total_known > 0 else None,
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
