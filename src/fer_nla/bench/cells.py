"""One benchmark cell = one ``fer-nla train`` run: the setting's labels written as a manifest, the
cell's config saved in its run folder, :func:`fer_nla.train.fit.fit` trains it, and the best
epoch's checkpoint is scored on the test split by :func:`fer_nla.evaluate.evaluate_checkpoint`.

A cell's run folder holds ``config.yaml``, so ``fer-nla train --config CELL/config.yaml --out X``
repeats the cell exactly (same data, labels, seed and code path); a test checks that the two
give identical metrics. The manifest (``path,label,clean_label,is_noisy,split`` + its
``.source.json``) names FERPlus train's images by their ids, so they are decoded as the FERPlus
reader decodes them; the training rows carry the setting's labels, the ``valid`` rows the
validation carve-out (with the setting's labels too, as a user's would be).
"""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fer_nla.bench.settings import SettingSplit
from fer_nla.config import Config
from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources.manifest import write_manifest
from fer_nla.train.paper_protocol import METRICS_KEY as TEST_KEY


@dataclass(frozen=True)
class EvalSplit:
    """Where a cell's best epoch is scored (the test split of the grid): a dataset split by its
    ``build_dataset`` arguments."""

    dataset: str
    root: str
    split: str
    labels: str
    options: dict[str, Any]


def write_setting_manifest(path: Path, pool: FERDataset, split: SettingSplit, *, source: dict[str, Any],
                           extra: dict[str, np.ndarray] | None = None) -> Path:
    """The setting's training rows (its labels, majority as the clean label) and validation rows
    (split ``valid``) of ``pool`` as a manifest at ``path``, with ``source`` (the pool's
    ``build_dataset`` arguments) beside it. ``extra`` adds more splits: name -> pool indices
    (labelled with the pool's majority label), e.g. a held-out fold as ``test``."""
    parts = [_part(pool, split.train_index, split.train_labels, "train"),
             _part(pool, split.val_index, split.val_labels, "valid")]
    for name, index in (extra or {}).items():
        parts.append(_part(pool, index, pool.clean_targets[index], name))
    return write_manifest(path, parts, source=source)


def _part(pool: FERDataset, index: np.ndarray, labels: np.ndarray, name: str) -> FERDataset:
    part = pool.subset(np.asarray(index, dtype=np.int64))
    part.targets = np.asarray(labels, dtype=np.int64)
    part.split = name
    return part


def cell_config(recipe: Config, *, manifest: Path, method: str, seed: int,
                loss_options: dict[str, Any] | None = None, threads: int | None = None) -> Config:
    """The ``fer-nla train`` config of one cell: the recipe on ``manifest`` (its ``valid`` rows
    select the best epoch), ``method`` with ``loss_options``, ``seed``; report and TensorBoard
    off, per-sample signals on; ``threads`` (the worker's PyTorch threads, default this
    process's) recorded as ``train.threads``, so a re-run sums floats in the same order."""
    config = copy.deepcopy(recipe)
    data = config.data
    data.dataset, data.root, data.labels, data.options = "manifest", str(Path(manifest).resolve()), "majority", {}
    data.train_split, data.val_split, data.train_subset = "train", "auto", None
    config.loss.name, config.loss.options = method, dict(loss_options or {})
    config.train.seed = seed
    config.train.report, config.train.tensorboard, config.train.progress = False, False, False
    config.train.record_signals = True
    config.train.threads = int(threads) if threads is not None else torch.get_num_threads()
    return config


def run_cell(config: Config, run_dir: Path, test: EvalSplit, *, keep_checkpoints: bool = False,
             with_probabilities: bool = False, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train ``config`` into ``run_dir`` with :func:`fit` and score its best epoch on ``test``
    (:func:`score_cached` when the run cached its frozen stages, else
    :func:`fer_nla.evaluate.evaluate_checkpoint`).

    Returns ``val`` (the best epoch's validation report), ``test`` (its report on ``test``, with
    ``probs``/``targets`` when ``with_probabilities``), ``best_epoch``, ``epochs`` (per-epoch
    history from metrics.jsonl; with ``train.paper_protocol`` each epoch's test figures too),
    ``paper_protocol`` (the test-selected figures, or ``None``) and ``seconds``. A finished cell folder is trained again from
    scratch; ``keep_checkpoints=False`` deletes best.pt and last.pt once scored (the run folder
    keeps config.yaml, metrics.jsonl and signals.npz)."""
    from fer_nla.evaluate import evaluate_checkpoint
    from fer_nla.train.fit import fit
    from fer_nla.train.run_folder import RunFolder

    started = time.perf_counter()
    if run_dir.exists():
        shutil.rmtree(run_dir)  # an interrupted cell starts again: cells are short
    result = fit(config, run_dir, log=log or (lambda _line: None))
    folder = RunFolder(run_dir)
    if config.train.cache_frozen and not with_probabilities:
        scored = score_cached(folder.best, test, frozen_stages=config.model.frozen_stages, cache_dir=config.data.cache_dir,
                              batch_size=config.train.eval_batch_size)
    else:
        scored = evaluate_checkpoint(str(folder.best), dataset=test.dataset, root=test.root, split=test.split,
                                     labels=test.labels, options=test.options, device_name=config.train.device,
                                     batch_size=config.train.eval_batch_size, with_probabilities=with_probabilities,
                                     network_logits=True)  # as validation scores them: comparable across methods
    history = [{"epoch": m["epoch"], "train_loss": m["train_loss"], "train_acc": m["train_acc"],
                **({"train_acc_clean": m["train_acc_clean"]} if "train_acc_clean" in m else {}),
                "val_loss": m["val_loss"], "val_overall_acc": m["val"]["overall_acc"],
                "val_mean_acc": m["val"]["mean_acc"], "images_per_second": m["images_per_second"],
                **({"test_overall_acc": m[TEST_KEY]["overall_acc"], "test_mean_acc": m[TEST_KEY]["mean_acc"]}
                   if TEST_KEY in m else {})}
               for m in folder.read_metrics()]
    if not keep_checkpoints:
        folder.best.unlink(missing_ok=True)
        folder.last.unlink(missing_ok=True)
    return {"val": result.best_metrics, "test": scored, "best_epoch": result.best_epoch, "epochs": history,
            "paper_protocol": result.paper_protocol, "seconds": time.perf_counter() - started}


@torch.inference_mode()
def score_cached(checkpoint: Path, test: EvalSplit, *, frozen_stages: int, cache_dir: str | None,
                 batch_size: int = 512) -> dict[str, Any]:
    """The classification report of ``checkpoint`` on ``test`` computed as training computed its
    validation: the frozen stages' outputs of the test images (:func:`fer_nla.freeze.frozen_outputs`,
    computed once per frozen weights and cached under ``cache_dir``), then the trained part.
    It equals :func:`fer_nla.evaluate.evaluate_checkpoint` on the images up to float rounding
    (``tests/bench/test_regime.py`` checks both on one cell) at a fraction of the cost, since
    every cell of a grid shares the frozen weights. Keys: those of
    :func:`fer_nla.metrics.classification_report` plus ``num_samples``."""
    from fer_nla.checkpoint import load_model
    from fer_nla.data import build_dataset
    from fer_nla.data.memory import cache_folder, decode_to_memory
    from fer_nla.freeze import TrailingPart, freeze_stages, frozen_outputs
    from fer_nla.metrics import classification_report

    model, meta = load_model(checkpoint)
    freeze_stages(model, frozen_stages, arch=meta.arch)
    data = build_dataset(test.dataset, root=test.root, split=test.split, labels=test.labels,
                         num_classes=meta.num_classes, **test.options)
    images = decode_to_memory(data, size=meta.image_size, root=test.root, options=test.options, cache_dir=cache_dir,
                              grayscale=meta.grayscale, log=lambda _line: None).images
    outputs = frozen_outputs(model, images, image_size=meta.image_size, mean=tuple(meta.mean), std=tuple(meta.std),
                             device=torch.device("cpu"), cache_dir=cache_folder(cache_dir), log=lambda _line: None)
    part = TrailingPart(model).eval()
    probs = torch.cat([torch.softmax(part(outputs[i:i + batch_size]), dim=1) for i in range(0, len(outputs), batch_size)])
    report = classification_report(np.asarray(data.targets), probs.numpy(), class_names=list(data.class_names))
    return {**report, "num_samples": int(len(data.targets))}
