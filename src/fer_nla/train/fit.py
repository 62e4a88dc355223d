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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from fer_nla.checkpoint import CheckpointMeta, check_compatible, load_checkpoint, load_state_into, save_checkpoint
from fer_nla.config import Config, save_config
from fer_nla.distributed import DistInfo, barrier, env_dist_info, init_distributed, shutdown_distributed
from fer_nla.errors import InputError
from fer_nla.freeze import TrailingPart, freeze_stages, swap_views
from fer_nla.inference.scoring import calibration_report
from fer_nla.methods import require_soft_target_support
from fer_nla.metrics import HEADLINE_METRICS, classification_report, mean_cross_entropy
from fer_nla.model_init import init_model, init_source, resolve_init
from fer_nla.models import RANDOM_BACKBONE_WARNING, build_model, load_backbone_weights
from fer_nla.runtime import epoch_seed, resolve_device, seed_everything, set_determinism, use_channels_last
from fer_nla.train.loaders import Loaders, build_loaders
from fer_nla.train import paper_protocol
from fer_nla.train.loop import EpochResult, learning_rate, predict_probabilities, train_one_epoch
from fer_nla.train.run_data import RunData, build_run_data, preprocess_spec, small_validation_warning
from fer_nla.train.run_folder import RunFolder, check_resume_config, check_same_data, data_fingerprint
from fer_nla.train.signals import SignalRecorder
from fer_nla.train.step import TrainStep, build_train_step


@dataclass
class FitResult:
    """Where the run is and how its best epoch scored on the validation split."""

    run: RunFolder
    best_epoch: int
    best_metrics: dict[str, Any]
    epochs_done: int
    paper_protocol: dict[str, Any] | None = None  # train.paper_protocol's test-selected figures (paper_selection)


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

    With ``model.init`` the config is first made to follow that checkpoint
    (:func:`fer_nla.model_init.resolve_init`: arch, stem, gray input), changing ``config``.
    ``on_step(epoch, step)`` is called before every step (tests use it to interrupt a run).
    Raises :class:`InputError` for a config, data or run folder that cannot be used (before
    any epoch), and :class:`~fer_nla.train.step.NonFiniteLossError` when training diverges.
    """
    if not str(out).strip():
        raise InputError("the run folder is an empty path: name the folder to write the run to (nothing is written into the current folder)")
    run = RunFolder(Path(out))
    if config.data.root:  # saved absolute: a resume from another folder reads the same data
        config.data.root = os.path.abspath(os.path.expanduser(config.data.root))
    dist_env = env_dist_info()
    env_log: Callable[[str], None] = log if dist_env.is_main else (lambda _msg: None)
    if not resume:  # before the run folder is made: a model.init that cannot be used leaves none behind
        resolve_init(config, log=env_log)
    if dist_env.is_main:
        run.prepare(resume=resume)
    barrier()
    payload, saved = None, None
    if resume:
        payload = load_checkpoint(run.last)
        saved = CheckpointMeta.from_payload(payload)
        resolve_init(config, log=env_log, resumed=saved)
        check_resume_config(saved.config, config.to_dict(), run=run)
        check_compatible(saved, path=run.last, arch=config.model.arch, stem=config.model.stem)
    device = resolve_device(config.train.device, local_rank=dist_env.local_rank)
    info: DistInfo = init_distributed(device)
    main_log: Callable[[str], None] = log if info.is_main else (lambda _msg: None)
    session = None
    flushed = config.train.flush_denormal and torch.set_flush_denormal(True)  # False where the CPU cannot
    try:
        session = _setup(config, run, info, device, payload, saved, main_log)
        for epoch in range(session.start_epoch, config.train.epochs):
            _epoch(session, epoch, on_step)
        return _finish(session)
    finally:
        if flushed:
            torch.set_flush_denormal(False)  # PyTorch's default, for whatever runs in this process next
        if session is not None and session.writer is not None:
            session.writer.close()  # idempotent: _finish closed it on success
        shutdown_distributed()


@dataclass
class _Session:
    """What a run holds from its setup to its last epoch."""

    config: Config
    run: RunFolder
    info: DistInfo
    device: torch.device
    log: Callable[[str], None]
    data: RunData
    model: torch.nn.Module
    net: torch.nn.Module
    step: TrainStep
    scheduler: Any
    loaders: Loaders
    recorder: SignalRecorder | None
    writer: Any
    base: CheckpointMeta
    start_epoch: int = 0
    best_value: float = -1.0
    best_epoch: int = 0
    best_metrics: dict[str, Any] = field(default_factory=dict)
    epoch_seconds: list[float] = field(default_factory=list)
    clean_targets: torch.Tensor | None = None  # int64 [len(train)] by training position (-1 unknown): train_acc_clean
    test_batches: Any = None  # train.paper_protocol: the test split scored every epoch (never for selection)

    @property
    def class_names(self) -> list[str]:
        return list(self.data.class_names)


def _setup(config: Config, run: RunFolder, info: DistInfo, device: torch.device, payload: dict[str, Any] | None,
           saved: CheckpointMeta | None, log: Callable[[str], None]) -> _Session:
    """Data, model, step, loaders and recorder of a run; a resumed run's states restored
    (``payload``: last.pt as loaded, ``saved``: its metadata)."""
    tc = config.train
    if tc.threads is not None:  # a benchmark cell records its thread count: reductions then sum alike
        torch.set_num_threads(tc.threads)
    set_determinism(deterministic=tc.deterministic, device=device)
    seed_everything(tc.seed)
    data = build_run_data(config.data, seed=tc.seed, log=log)
    fingerprint = data_fingerprint(data.full_train, data.val)
    if saved is not None:
        check_same_data(saved.data_fingerprint, fingerprint, run=run)
    if data.train.target_mode == "soft":  # label distributions: refuse a loss without a meaning for them now
        require_soft_target_support(config.loss.name, label_mode=config.data.labels)
    class_names = list(data.class_names)
    model, net, channels_last = _model(config, class_names, run=run, info=info, device=device, payload=payload,
                                       saved=saved, log=log)
    step, scheduler = build_train_step(config, model, class_counts=data.class_counts(), device=device, channels_last=channels_last, net=net,
                                       num_samples=len(data.train_indices), distributed=info.enabled,
                                       class_prior=data.class_prior())
    if tc.cache_frozen:
        step.flip = swap_views
    loaders = build_loaders(config.data, data, batch_size=tc.batch_size, eval_batch_size=tc.eval_batch_size, seed=tc.seed,
                            info=info, device=device, log=log, frozen=model if tc.cache_frozen else None)
    log(f"data: {config.data.dataset} {data.full_train.split} {len(data.train)} samples, validation {len(data.val)} "
        f"({data.val_source}); {len(class_names)} classes; {loaders.kind} loader; device {device}, "
        f"{info.world_size} process(es)")
    small = small_validation_warning(data)
    if small:
        log(small)
    recorder = SignalRecorder(
        num_samples=len(data.full_train), epochs=tc.epochs, train_indices=data.train_indices,
        targets=data.full_train.targets, sample_ids=data.full_train.samples,
        with_weights=step.method.sample_weights, device=device, with_uniform=step.to_uniform is not None,
    ) if tc.record_signals else None
    pre = preprocess_spec(config.data)
    base = CheckpointMeta(arch=config.model.arch, num_classes=len(class_names), stem=config.model.stem,
                          class_names=tuple(class_names), image_size=int(pre["image_size"]), mean=tuple(pre["mean"]),
                          std=tuple(pre["std"]), config=config.to_dict(), data_fingerprint=fingerprint,
                          grayscale=bool(pre["grayscale"]), class_prior=data.class_prior(),
                          logit_offset=_offset(step.method.logit_offset()))
    session = _Session(config, run, info, device, log, data, model, net, step, scheduler, loaders, recorder, None, base)
    if tc.paper_protocol:
        test = paper_protocol.test_dataset(config, class_names=class_names, log=log)
        session.test_batches = paper_protocol.test_batches(config, test, kind=loaders.kind, info=info, device=device,
                                                           frozen=model if tc.cache_frozen else None, log=log)
    if data.full_train.clean_targets is not None:  # by position in the trained part, as the loaders' index is
        clean = np.asarray(data.full_train.clean_targets)[data.train_indices]
        session.clean_targets = torch.as_tensor(clean, dtype=torch.int64, device=device)
    if payload is not None:
        _restore(session, payload)
    elif config.model.init and tc.select_init:
        _score_start(session)
    if info.is_main:
        save_config(config, run.config)
        if tc.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            session.writer = SummaryWriter(log_dir=str(run.tensorboard), purge_step=session.start_epoch + 1)
    return session


def _model(config: Config, class_names: list[str], *, run: RunFolder, info: DistInfo, device: torch.device,
           payload: dict[str, Any] | None, saved: CheckpointMeta | None,
           log: Callable[[str], None]) -> tuple[torch.nn.Module, torch.nn.Module, bool]:
    """The model (resumed, from a ``model.init`` checkpoint, from backbone weights, or fresh;
    warned when a recipe expects weights it was not given), on the device, and its DDP wrapper."""
    model = build_model(config.model.arch, num_classes=len(class_names), stem=config.model.stem)
    if saved is not None:  # resuming: payload is last.pt, saved its metadata
        check_compatible(saved, path=run.last, num_classes=len(class_names), class_names=class_names)
        load_state_into(model, payload, path=run.last)
    elif config.model.init:
        log(init_model(model, config.model.init, class_names=class_names))
    elif config.model.backbone_weights:
        log(load_backbone_weights(model, config.model.backbone_weights).summary())
    elif config.model.expect_backbone_weights:
        log(RANDOM_BACKBONE_WARNING)
    frozen = freeze_stages(model, config.model.frozen_stages, arch=config.model.arch)
    if frozen:
        log(f"model.frozen_stages={config.model.frozen_stages}: the first {frozen} modules of the network are frozen "
            f"(no gradient, BatchNorm in eval mode){'; their outputs are cached' if config.train.cache_frozen else ''}")
    cached = config.train.cache_frozen
    channels_last = use_channels_last(config.train.channels_last, device) and not cached  # cached views are 5-D
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    trained: torch.nn.Module = TrailingPart(model) if cached else model
    net = DistributedDataParallel(trained, device_ids=[device.index] if device.type == "cuda" else None) if info.enabled else trained
    return model, net, channels_last


def _score_start(session: _Session) -> None:
    """Validate a ``model.init`` network before training (epoch 0) and write it as best.pt, so a
    fine-tuning run never ends worse on its validation split than the model it started from:
    an epoch replaces it only by scoring higher."""
    tc = session.config.train
    init_offset = _init_offset(init_source(session.config.model.init).meta, session.class_names)
    val, _ = _validate(session, logit_offset=init_offset)
    session.best_value, session.best_epoch, session.best_metrics = float(val[tc.select_metric]), 0, val
    if session.info.is_main:
        meta = replace(session.base.with_epoch(0, {"val": val}), temperature=val["temperature"],
                       logit_offset=init_offset)
        save_checkpoint(session.run.best, meta, state_dict=session.model.state_dict())
    session.log(f"epoch 0 (model.init before training): val acc {100 * val['overall_acc']:.2f}%  val mean acc "
                f"{100 * val['mean_acc']:.2f}%; best.pt holds it until an epoch scores higher ({tc.select_metric})")


def _start_line(session: _Session) -> dict[str, Any] | None:
    """The epoch-0 metrics line of :func:`_score_start` when it is still the best, else None."""
    best = session.best_metrics
    if session.best_epoch != 0 or not best:
        return None
    return {"epoch": 0, "val": {k: best[k] for k in HEADLINE_METRICS}, "val_per_class_acc": best["per_class_acc"],
            "val_confusion_matrix": best["confusion_matrix"]}


def _restore(session: _Session, payload: dict[str, Any]) -> None:
    """Optimizer, scheduler, scaler, RNG and best-epoch states of ``last.pt``; metrics and
    signals cut back to its epoch."""
    state = payload["resume"]
    step, run = session.step, session.run
    step.optimizer.load_state_dict(state["optimizer"])
    if session.scheduler is not None and state.get("scheduler") is not None:
        session.scheduler.load_state_dict(state["scheduler"])
    if step.scaler is not None and state.get("scaler") is not None:
        step.scaler.load_state_dict(state["scaler"])
    if state.get("method") is not None:  # the method's own parameters and per-sample state
        step.method.load_state_dict(state["method"])
    _restore_rng(state["rng"])
    session.start_epoch = int(payload["epoch"])
    session.best_value, session.best_epoch = float(state["best_value"]), int(state["best_epoch"])
    session.best_metrics = dict(state.get("best_metrics", {}))
    if session.info.is_main:
        run.write_metrics([m for m in run.read_metrics() if m["epoch"] <= session.start_epoch])
    if session.recorder is not None:
        session.recorder.restore(run.signals, epochs_done=session.start_epoch)
    session.log(f"resuming {run.root} after epoch {session.start_epoch}/{session.config.train.epochs}")


def _epoch(session: _Session, epoch: int, on_step: Callable[[int, int], None] | None) -> None:
    """Train one epoch, validate, and (main process) save checkpoints, metrics and signals."""
    tc, step = session.config.train, session.step
    started = time.perf_counter()
    seed = epoch_seed(tc.seed, epoch, session.info.rank)
    seed_everything(seed)
    step.method.set_epoch(epoch)
    if session.recorder is not None:
        session.recorder.start_epoch()
    progress = _progress(tc, session.info, epoch, session.loaders.steps_per_epoch * tc.batch_size * session.info.world_size,
                         session.epoch_seconds)
    try:
        result = train_one_epoch(step, session.loaders.train(epoch, seed), epoch=epoch, last_good=_last_good(session.run),
                                 max_steps=tc.max_steps_per_epoch, on_step=on_step, progress=progress,
                                 on_signals=session.recorder.add if session.recorder is not None else None,
                                 clean_targets=session.clean_targets)
    finally:
        if progress is not None:
            progress.close()
    lr = learning_rate(step.optimizer)
    if session.scheduler is not None:
        session.scheduler.step()
    val, val_loss = _validate(session, logit_offset=session.base.logit_offset)
    test = None if session.test_batches is None else paper_protocol.score_test(
        session.net, session.test_batches, class_names=session.class_names, device=session.device,
        amp_dtype=step.amp_dtype, channels_last=step.channels_last)
    if session.recorder is not None:
        session.recorder.end_epoch(epoch)
    session.epoch_seconds.append(time.perf_counter() - started)
    improved = float(val[tc.select_metric]) > session.best_value
    if improved:
        session.best_value, session.best_epoch, session.best_metrics = float(val[tc.select_metric]), epoch + 1, val
    if session.info.is_main:
        _save(session, epoch, result, val, val_loss=val_loss, lr=lr, improved=improved, test=test)
    barrier()


def _validate(session: _Session, *, logit_offset: tuple[float, ...] | None) -> tuple[dict[str, Any], float]:
    """The validation split's classification report, with the temperature fitted on it
    (``temperature``, saved with the checkpoint) and the expected calibration error before and
    after it (``ece``, ``ece_calibrated``) at the training prior (the network's logits plus
    ``logit_offset``), and the mean cross-entropy (given labels)."""
    step = session.step
    probs = predict_probabilities(session.net, session.loaders.val, device=session.device, amp_dtype=step.amp_dtype,
                                  channels_last=step.channels_last, num_classes=len(session.class_names))
    val = classification_report(probs["targets"], probs["probs"], class_names=session.class_names)
    val |= calibration_report(probs["probs"], probs["targets"], logit_offset=logit_offset)
    return val, mean_cross_entropy(probs["targets"], probs["probs"])


def _init_offset(init: CheckpointMeta, class_names: list[str]) -> tuple[float, ...] | None:
    """The logit offset an init network carries (its own loss's, not this run's), mapped to the
    run's classes by name as its head is (a class it lacks: 0); ``None`` where it records none."""
    if init.logit_offset is None:
        return None
    by_name = dict(zip(init.class_names, init.logit_offset))
    return tuple(float(by_name.get(name, 0.0)) for name in class_names)


def _offset(offset: list[float] | None) -> tuple[float, ...] | None:
    return None if offset is None else tuple(offset)


def _save(session: _Session, epoch: int, result: EpochResult, val: dict[str, Any], *, val_loss: float, lr: float,
          improved: bool, test: dict[str, Any] | None = None) -> None:
    """Signals, best.pt (when improved), last.pt with the resume states, the metrics line,
    TensorBoard and the epoch's log line; each file written atomically."""
    run, step, tc = session.run, session.step, session.config.train
    line = {"epoch": epoch + 1, "lr": lr, "train_loss": result.loss, "train_acc": result.accuracy, "val_loss": val_loss,
            "train_samples": result.samples, "images_per_second": result.images_per_second,
            "seconds": session.epoch_seconds[-1], "val": {k: val[k] for k in HEADLINE_METRICS},
            "val_per_class_acc": val["per_class_acc"], "val_confusion_matrix": val["confusion_matrix"], "best": improved}
    if result.accuracy_clean is not None:  # the data knows clean labels: how far training drifts from them
        line["train_acc_clean"] = result.accuracy_clean
    if test is not None:  # train.paper_protocol: recorded, never used to choose best.pt
        line[paper_protocol.METRICS_KEY] = test
    metrics = {"train": {"loss": result.loss, "acc": result.accuracy}, "val": val}
    meta = replace(session.base.with_epoch(epoch + 1, metrics), temperature=val["temperature"])
    weights = session.model.state_dict()
    if session.recorder is not None:
        session.recorder.save(run.signals)
    if improved:
        save_checkpoint(run.best, meta, state_dict=weights)
    resume_state = {"optimizer": step.optimizer.state_dict(),
                    "scheduler": session.scheduler.state_dict() if session.scheduler is not None else None,
                    "scaler": step.scaler.state_dict() if step.scaler is not None else None, "rng": _rng_states(),
                    "method": step.method.state_dict(),
                    "best_value": session.best_value, "best_epoch": session.best_epoch,
                    "best_metrics": session.best_metrics}
    save_checkpoint(run.last, meta, state_dict=weights, resume=resume_state)
    run.append_metrics(line)
    if session.writer is not None:
        _log_tensorboard(session.writer, line, epoch + 1)
    session.log(_epoch_line(epoch + 1, tc.epochs, result, val, lr, improved))


def _finish(session: _Session) -> FitResult:
    """Close TensorBoard, write report.md (main process, unless ``train.report`` is off)."""
    if session.writer is not None:
        session.writer.close()
    tc, run, data = session.config.train, session.run, session.data
    if session.info.is_main:
        if tc.report:
            from fer_nla.train.report import write_report

            write_report(run, class_names=session.class_names, loss_name=session.config.loss.name,
                         data={"train_split": data.full_train.split, "train_samples": len(data.train),
                               "val_samples": len(data.val), "val_source": data.val_source},
                         start=_start_line(session))
        start = " (the model.init network before training: no epoch scored higher)" if session.best_epoch == 0 else ""
        session.log(f"best epoch {session.best_epoch}{start}: val {tc.select_metric} {100 * session.best_value:.2f}%")
        if tc.report:
            session.log(f"report: {run.report}")
    selection = paper_protocol.paper_selection(run.read_metrics()) if tc.paper_protocol and session.info.is_main else None
    if selection is not None:
        session.log(paper_protocol.selection_line(selection))
    return FitResult(run=run, best_epoch=session.best_epoch, best_metrics=session.best_metrics, epochs_done=tc.epochs,
                     paper_protocol=selection)


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
    if "train_acc_clean" in line:
        writer.add_scalar("train/acc_clean", line["train_acc_clean"], step)
    writer.add_scalar("val/loss", line["val_loss"], step)
    writer.add_scalar("train/lr", line["lr"], step)
    writer.add_scalar("train/images_per_second", line["images_per_second"], step)
    for key, value in line["val"].items():
        writer.add_scalar(f"val/{key}", value, step)
    writer.flush()
