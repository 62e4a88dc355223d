"""``fit``: a whole training run, from config to run folder, resumable and DDP-aware.

Each epoch is seeded from ``(seed, epoch, rank)`` (shuffling, augmentation and data-loader
workers), so a run resumed from ``last.pt`` at an epoch boundary replays exactly the epochs an
uninterrupted run would have made. ``best.pt`` (best epoch on the validation split) and
``last.pt`` (with optimizer, scheduler, scaler and RNG states) are written atomically after
every epoch; a run killed mid-epoch resumes at the start of that epoch.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from fer_nla.checkpoint import check_compatible, load_checkpoint, load_state_into, save_checkpoint
from fer_nla.config import Config, save_config
from fer_nla.distributed import DistInfo, barrier, env_dist_info, init_distributed, shutdown_distributed
from fer_nla.engine import (
    build_train_step,
    epoch_seed,
    learning_rate,
    predict_probabilities,
    seed_everything,
    select_device,
    set_determinism,
    train_one_epoch,
    use_channels_last,
)
from fer_nla.errors import InputError
from fer_nla.losses import require_soft_target_support
from fer_nla.metrics import HEADLINE_METRICS, classification_report, mean_cross_entropy
from fer_nla.models import RANDOM_BACKBONE_WARNING, build_model, load_backbone_weights
from fer_nla.run_folder import RunFolder, check_resume_config, check_same_data, data_fingerprint
from fer_nla.training_data import RunData, build_run_data, preprocess_spec
from fer_nla.training_signals import SignalRecorder


@dataclass
class FitResult:
    """Where the run is and how its best epoch scored on the validation split."""

    run: RunFolder
    best_epoch: int
    best_metrics: dict[str, Any]
    epochs_done: int


def _rng_states() -> dict[str, Any]:
    np_state = np.random.get_state()
    states: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _restore_rng(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _loader(dataset: Any, *, batch_size: int, sampler: DistributedSampler, num_workers: int, seed: int,
            device: torch.device, drop_last: bool) -> DataLoader:
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers, drop_last=drop_last,
        pin_memory=device.type == "cuda", generator=torch.Generator().manual_seed(seed),
        persistent_workers=False,
    )


def _epoch_line(epoch: int, epochs: int, result: Any, val: dict[str, Any], lr: float, best: bool) -> str:
    return (
        f"epoch {epoch}/{epochs}  loss {result.loss:.4f}  train acc {100 * result.accuracy:.2f}%  "
        f"val acc {100 * val['overall_acc']:.2f}%  val mean acc {100 * val['mean_acc']:.2f}%  "
        f"{result.images_per_second:.0f} img/s  lr {lr:.2e}{'  *best*' if best else ''}"
    )


def fit(
    config: Config,
    out: str | Path,
    *,
    resume: bool = False,
    on_step: Callable[[int, int], None] | None = None,
    log: Callable[[str], None] = print,
) -> FitResult:
    """Train as ``config`` says into the folder ``out`` (``resume``: continue from its last.pt).

    ``on_step(epoch, step)`` is called before every step (tests use it to interrupt a run).
    """
    if not str(out).strip():
        raise InputError("the run folder is an empty path: name the folder to write the run to (nothing is written into the current folder)")
    run = RunFolder(Path(out))
    if config.data.root:  # saved absolute: a resume from another folder reads the same data
        config.data.root = os.path.abspath(os.path.expanduser(config.data.root))
    dist_env = env_dist_info()
    if dist_env.is_main:
        run.prepare(resume=resume)
    barrier()
    payload = None
    if resume:
        payload = load_checkpoint(run.last)
        check_resume_config(payload.get("config"), config.to_dict(), run=run)
        check_compatible(payload, path=run.last, arch=config.model.arch, stem=config.model.stem)
    tc = config.train
    device = select_device(tc.device, local_rank=dist_env.local_rank)
    info: DistInfo = init_distributed(device)
    main_log: Callable[[str], None] = log if info.is_main else (lambda _msg: None)
    try:
        return _fit(config, run, info, device, payload, on_step, main_log)
    finally:
        shutdown_distributed()


def _fit(config: Config, run: RunFolder, info: DistInfo, device: torch.device, payload: dict[str, Any] | None,
         on_step: Callable[[int, int], None] | None, log: Callable[[str], None]) -> FitResult:
    tc = config.train
    set_determinism(deterministic=tc.deterministic, device=device)
    seed_everything(tc.seed)
    data: RunData = build_run_data(config.data, seed=tc.seed, log=log)
    fingerprint = data_fingerprint(data.full_train, data.val)
    if payload is not None:
        check_same_data(payload.get("data_fingerprint"), fingerprint, run=run)
    if data.train.target_mode == "soft":  # label distributions: refuse a loss without a meaning for them now
        require_soft_target_support(config.loss.name, label_mode=config.data.labels)
    class_names = list(data.class_names)
    log(f"data: {config.data.dataset} {data.full_train.split} {len(data.train)} samples, validation {len(data.val)} "
        f"({data.val_source}); {len(class_names)} classes; device {device}, {info.world_size} process(es)")

    model = build_model(config.model.arch, num_classes=len(class_names), stem=config.model.stem)
    if payload is not None:
        check_compatible(payload, path=run.last, num_classes=len(class_names), class_names=class_names)
        load_state_into(model, payload, path=run.last)
    elif config.model.backbone_weights:
        log(load_backbone_weights(model, config.model.backbone_weights).summary())
    elif config.model.expect_backbone_weights:
        log(RANDOM_BACKBONE_WARNING)
    channels_last = use_channels_last(tc.channels_last, device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    net: torch.nn.Module = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) if info.enabled else model

    counts = np.bincount(data.full_train.targets[data.train_indices], minlength=len(class_names))
    step, scheduler = build_train_step(config, model, class_counts=counts, device=device, channels_last=channels_last, net=net)
    loss_fn, optimizer, scaler, amp_dtype = step.loss_fn, step.optimizer, step.scaler, step.amp_dtype

    recorder = SignalRecorder(
        num_samples=len(data.full_train), epochs=tc.epochs, train_indices=data.train_indices,
        targets=data.full_train.targets, sample_ids=data.full_train.samples,
        with_weights=config.loss.name == "nla", device=device,
    ) if tc.record_signals else None

    start_epoch, best_value, best_epoch, best_metrics = 0, -1.0, 0, {}
    if payload is not None:
        resume_state = payload["resume"]
        optimizer.load_state_dict(resume_state["optimizer"])
        if scheduler is not None and resume_state.get("scheduler") is not None:
            scheduler.load_state_dict(resume_state["scheduler"])
        if scaler is not None and resume_state.get("scaler") is not None:
            scaler.load_state_dict(resume_state["scaler"])
        _restore_rng(resume_state["rng"])
        start_epoch = int(payload["epoch"])
        best_value, best_epoch = float(resume_state["best_value"]), int(resume_state["best_epoch"])
        best_metrics = dict(resume_state.get("best_metrics", {}))
        if info.is_main:
            run.write_metrics([m for m in run.read_metrics() if m["epoch"] <= start_epoch])
        if recorder is not None:
            recorder.restore(run.signals, epochs_done=start_epoch)
        log(f"resuming {run.root} after epoch {start_epoch}/{tc.epochs}")
    if info.is_main:
        save_config(config, run.config)

    writer = None
    if info.is_main and tc.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(log_dir=str(run.tensorboard), purge_step=start_epoch + 1)

    train_sampler = DistributedSampler(data.train, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=tc.seed)
    val_sampler = DistributedSampler(data.val, num_replicas=info.world_size, rank=info.rank, shuffle=False)
    val_loader = DataLoader(data.val, batch_size=tc.eval_batch_size, sampler=val_sampler,
                            num_workers=config.data.num_workers, pin_memory=device.type == "cuda")
    per_rank = len(train_sampler)
    drop_last = per_rank > tc.batch_size
    steps_per_epoch = per_rank // tc.batch_size if drop_last else 1
    if tc.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, tc.max_steps_per_epoch)
    epoch_seconds: list[float] = []
    base = {"model": {"arch": config.model.arch, "num_classes": len(class_names), "stem": config.model.stem},
            "class_names": class_names, "preprocess": preprocess_spec(config.data), "config": config.to_dict(),
            "data_fingerprint": fingerprint}

    try:
        for epoch in range(start_epoch, tc.epochs):
            started = time.perf_counter()
            seed = epoch_seed(tc.seed, epoch, info.rank)
            seed_everything(seed)
            loss_fn.set_epoch(epoch)
            train_sampler.set_epoch(epoch)
            loader = _loader(data.train, batch_size=tc.batch_size, sampler=train_sampler, num_workers=config.data.num_workers,
                             seed=seed, device=device, drop_last=drop_last)
            if recorder is not None:
                recorder.start_epoch()
            progress = _progress(tc, info, epoch, steps_per_epoch * tc.batch_size * info.world_size, epoch_seconds)
            try:
                result = train_one_epoch(step, loader, epoch=epoch, last_good=_last_good(run), max_steps=tc.max_steps_per_epoch,
                                         on_signals=recorder.add if recorder is not None else None, on_step=on_step,
                                         progress=progress)
            finally:
                if progress is not None:
                    progress.close()
            lr = learning_rate(optimizer)
            if scheduler is not None:
                scheduler.step()
            probs = predict_probabilities(net, val_loader, device=device, amp_dtype=amp_dtype, channels_last=channels_last,
                                          num_classes=len(class_names))
            val = classification_report(probs["targets"], probs["probs"], class_names=class_names)
            val_loss = mean_cross_entropy(probs["targets"], probs["probs"])  # CE against the given labels
            if recorder is not None:
                recorder.end_epoch(epoch)
            epoch_seconds.append(time.perf_counter() - started)
            value = float(val[tc.select_metric])
            improved = value > best_value
            if improved:
                best_value, best_epoch, best_metrics = value, epoch + 1, val
            line = {"epoch": epoch + 1, "lr": lr, "train_loss": result.loss, "train_acc": result.accuracy,
                    "val_loss": val_loss,
                    "train_samples": result.samples,
                    "images_per_second": result.images_per_second, "seconds": epoch_seconds[-1],
                    "val": {k: val[k] for k in HEADLINE_METRICS}, "val_per_class_acc": val["per_class_acc"],
                    "val_confusion_matrix": val["confusion_matrix"], "best": improved}
            if info.is_main:
                metrics = {"train": {"loss": result.loss, "acc": result.accuracy}, "val": val}
                state = {**base, "state_dict": model.state_dict(), "epoch": epoch + 1, "metrics": metrics}
                if recorder is not None:
                    recorder.save(run.signals)
                if improved:
                    save_checkpoint(run.best, state)
                resume_state = {"optimizer": optimizer.state_dict(),
                                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                                "scaler": scaler.state_dict() if scaler is not None else None, "rng": _rng_states(),
                                "best_value": best_value, "best_epoch": best_epoch, "best_metrics": best_metrics}
                save_checkpoint(run.last, {**state, "resume": resume_state})
                run.append_metrics(line)
                if writer is not None:
                    _log_tensorboard(writer, line, epoch + 1)
                log(_epoch_line(epoch + 1, tc.epochs, result, val, lr, improved))
            barrier()
    finally:
        if writer is not None:
            writer.close()
    if info.is_main:
        from fer_nla.report import write_report

        write_report(run, class_names=class_names, loss_name=config.loss.name,
                     data={"train_split": data.full_train.split, "train_samples": len(data.train),
                           "val_samples": len(data.val), "val_source": data.val_source})
        log(f"best epoch {best_epoch}: val {tc.select_metric} {100 * best_value:.2f}%")
        log(f"report: {run.report}")
    return FitResult(run=run, best_epoch=best_epoch, best_metrics=best_metrics, epochs_done=tc.epochs)


def _last_good(run: RunFolder) -> str:
    return str(run.last) if run.last.is_file() else "none: no epoch finished yet"


def _progress(tc: Any, info: DistInfo, epoch: int, total: int, epoch_seconds: list[float]) -> Any:
    if not (tc.progress and info.is_main):
        return None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=f"epoch {epoch + 1}/{tc.epochs}", unit="img", unit_scale=True, leave=False, dynamic_ncols=True)
    if epoch_seconds:
        left = (tc.epochs - epoch) * float(np.mean(epoch_seconds))
        bar.set_description(f"epoch {epoch + 1}/{tc.epochs} (run ~{left / 60:.1f} min left)")
    return bar


def _log_tensorboard(writer: Any, line: dict[str, Any], step: int) -> None:
    writer.add_scalar("train/loss", line["train_loss"], step)
    writer.add_scalar("train/acc", line["train_acc"], step)
    writer.add_scalar("val/loss", line["val_loss"], step)
    writer.add_scalar("train/lr", line["lr"], step)
    writer.add_scalar("train/images_per_second", line["images_per_second"], step)
    for key, value in line["val"].items():
        writer.add_scalar(f"val/{key}", value, step)
    writer.flush()
