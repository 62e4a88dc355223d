"""One benchmark cell: train a model with one loss on in-memory images, select the best epoch on
the validation split, and score that epoch on the test split.

The step itself is the product's :class:`~fer_nla.train.step.TrainStep` (the two views of NLA, the
finiteness checks) with the product's losses, optimizer and scheduler, built once per run; only
the data path differs from ``fer-nla train`` (uint8 tensors in memory, batch augmentation).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from fer_nla.bench.tensor_data import augment_batch, normalise
from fer_nla.config import Config
from fer_nla.runtime import seed_everything, use_channels_last
from fer_nla.train.loop import train_one_epoch
from fer_nla.train.step import StepSignals, build_train_step
from fer_nla.metrics import classification_report
from fer_nla.models import build_model


@dataclass
class CellData:
    """uint8 images ``[N, 3, S, S]`` with int64 labels for training, validation and test;
    ``extra`` images are only predicted (held-out folds)."""

    train_images: Tensor
    train_labels: np.ndarray
    val_images: Tensor
    val_labels: np.ndarray
    test_images: Tensor
    test_labels: np.ndarray
    extra_images: Tensor | None = None


@dataclass
class CellResult:
    test: dict[str, Any]
    val: dict[str, Any]
    best_epoch: int
    seconds: float
    epochs: list[dict[str, float]] = field(default_factory=list)
    p_gt: np.ndarray | None = None  # [epochs, N_train] float16, recorded during training
    p_nn: np.ndarray | None = None
    extra_probs: np.ndarray | None = None  # [N_extra, C] at the best epoch


def _recorder(p_gt: np.ndarray, p_nn: np.ndarray, epoch: int) -> Callable[[StepSignals], None]:
    """Writes each step's p_gt and p_nn into row ``epoch`` of the arrays."""

    def record(sig: StepSignals) -> None:
        p_gt[epoch, sig.index.numpy()] = sig.p_gt.cpu().numpy()
        p_nn[epoch, sig.index.numpy()] = sig.p_nn.cpu().numpy()

    return record


@torch.no_grad()
def predict(model: nn.Module, images: Tensor, *, device: torch.device, batch_size: int = 512) -> np.ndarray:
    """Softmax probabilities of uint8 ``images`` (normalised, no augmentation)."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, images.shape[0], batch_size):
        batch = normalise(images[start:start + batch_size]).to(device)
        out.append(torch.softmax(model(batch).float(), dim=1).cpu())
    model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


def train_cell(
    recipe: Config,
    data: CellData,
    *,
    method: str,
    class_names: Sequence[str],
    seed: int,
    loss_options: dict[str, Any] | None = None,
    device: torch.device | None = None,
    record_signals: bool = False,
) -> CellResult:
    """Train ``method`` as ``recipe`` says on ``data``; the test scores are those of the epoch
    with the best ``recipe.train.select_metric`` on the validation split."""
    started = time.perf_counter()
    device = device or torch.device("cpu")
    tc, dc = recipe.train, recipe.data
    num_classes = len(class_names)
    seed_everything(seed)
    model = build_model(recipe.model.arch, num_classes=num_classes, stem=recipe.model.stem).to(device)
    channels_last = use_channels_last(tc.channels_last, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    counts = np.bincount(data.train_labels, minlength=num_classes)
    run = copy.deepcopy(recipe)
    run.loss.name, run.loss.options = method, dict(loss_options or {})
    step, scheduler = build_train_step(run, model, class_counts=counts, device=device, channels_last=channels_last)
    loss_fn = step.loss_fn
    generator = torch.Generator().manual_seed(seed)
    labels = torch.from_numpy(np.asarray(data.train_labels, dtype=np.int64))
    n = labels.numel()
    steps = max(n // tc.batch_size, 1)  # the last partial batch is dropped, as in fer-nla train
    p_gt = np.full((tc.epochs, n), np.nan, dtype=np.float16) if record_signals else None
    p_nn = np.full((tc.epochs, n), np.nan, dtype=np.float16) if record_signals else None
    best: dict[str, Any] = {"value": -1.0}
    history = []
    for epoch in range(tc.epochs):
        loss_fn.set_epoch(epoch)
        order = torch.randperm(n, generator=generator)
        batches = (
            (augment_batch(data.train_images[index], generator=generator, flip=dc.flip, erasing=dc.erasing,
                           gaussian_noise=dc.gaussian_noise), labels[index], index)
            for index in order[:steps * tc.batch_size].split(tc.batch_size)
        )
        record = _recorder(p_gt, p_nn, epoch) if p_gt is not None and p_nn is not None else None
        result = train_one_epoch(step, batches, epoch=epoch, last_good="none (benchmark cell)", on_signals=record)
        if scheduler is not None:
            scheduler.step()
        val = classification_report(data.val_labels, predict(model, data.val_images, device=device), class_names=class_names)
        value = float(val[tc.select_metric])
        history.append({"epoch": epoch + 1, "train_loss": result.loss, "train_acc": result.accuracy,
                        "images_per_second": result.images_per_second,
                        "val_overall_acc": val["overall_acc"], "val_mean_acc": val["mean_acc"]})
        if value > best["value"]:
            test = classification_report(data.test_labels, predict(model, data.test_images, device=device),
                                         class_names=class_names)
            extra = predict(model, data.extra_images, device=device) if data.extra_images is not None else None
            best = {"value": value, "epoch": epoch + 1, "val": val, "test": test, "extra": extra}
    return CellResult(test=best["test"], val=best["val"], best_epoch=best["epoch"], seconds=time.perf_counter() - started,
                      epochs=history, p_gt=p_gt, p_nn=p_nn, extra_probs=best["extra"])
