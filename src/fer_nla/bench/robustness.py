"""The robustness grid: every method on every label setting and seed, same model and budget.

Each cell is one ``fer-nla train`` run (:mod:`fer_nla.bench.cells`): :func:`run_robustness`
reads FERPlus once (train under the majority rule, single votes per seed), writes each
(setting, seed)'s labels as a manifest under ``out/settings/``, then trains the cells through
:func:`fer_nla.train.fit.fit` in ``workers`` processes, each cell in ``out/cells/<method>/<setting>-seed<k>/``
(its ``config.yaml`` repeats it with ``fer-nla train --config``), scores each best epoch on the
test split and appends the row to ``robustness.partial.jsonl``: a stopped grid resumes where it
stopped (rows already there are kept). The finished grid is written as ``robustness.json`` (a
list of rows), ``robustness.md`` and two plots. Decoded images are cached in ``out/.cache``.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fer_nla.bench.cells import EvalSplit, cell_config, run_cell, write_setting_manifest
from fer_nla.bench.config import BenchConfig
from fer_nla.bench.settings import SettingSplit, setting_split
from fer_nla.config import Config
from fer_nla.data import build_dataset
from fer_nla.data.dataset import FERDataset
from fer_nla.errors import InputError

Cell = tuple[str, str, int]


@dataclass
class Pool:
    """FERPlus train under the majority rule, with one annotator's vote per image per seed."""

    class_names: tuple[str, ...]
    by_seed: dict[int, FERDataset]  # targets: the seed's single votes; clean_targets: the majority label
    source: dict[str, Any]  # the build_dataset arguments of the pool's images (manifests' provenance)

    @property
    def majority(self) -> np.ndarray:
        return next(iter(self.by_seed.values())).clean_targets

    def split(self, setting: str, seed: int, cfg: BenchConfig, *, log: Callable[[str], None] = print) -> SettingSplit:
        """The labels and parts of ``setting`` for ``seed`` (a label set of ``bench.label_sets`` read from its file)."""
        d = cfg.recipe.data
        label_set = None
        if setting in cfg.grid.label_sets:
            from fer_nla.bench.label_sets import read_label_set

            quiet = seed != min(self.by_seed)  # every seed reads the same file over the same images: say it once
            label_set = read_label_set(cfg.grid.label_sets[setting], sample_ids=self.by_seed[seed].samples,
                                       class_names=self.class_names, root=self.source.get("root"),
                                       log=(lambda _: None) if quiet else log)
        return setting_split(setting, majority=self.majority, single_vote=self.by_seed[seed].targets,
                             num_classes=len(self.class_names), seed=seed, val_fraction=d.val_fraction,
                             train_size=d.train_subset, label_set=label_set, imbalance_budget=cfg.grid.imbalance_budget)


def _root(cfg: BenchConfig) -> str | None:
    """The FERPlus root of the bench config, absolute (manifests and cells are read from elsewhere)."""
    root = cfg.recipe.data.root
    return os.path.abspath(os.path.expanduser(str(root))) if root else None


def read_pool(cfg: BenchConfig, seeds: list[int]) -> Pool:
    """The pool for ``seeds`` (FERPlus only: its settings need the ten votes)."""
    d = cfg.recipe.data
    if d.dataset != "ferplus":
        raise InputError(f"the robustness bench reads FERPlus (its settings need the ten votes); got data.dataset={d.dataset!r}")
    root = _root(cfg)
    by_seed = {seed: build_dataset("ferplus", root=root, split=d.train_split, labels="single-vote", num_classes=d.num_classes,
                                   seed=seed, skip_bad_images=d.skip_bad_images, **d.options) for seed in seeds}
    first = by_seed[seeds[0]]
    source = {"dataset": "ferplus", "root": root, "split": d.train_split, "labels": "majority",
              "num_classes": len(first.class_names), "seed": 0, "options": dict(d.options)}
    return Pool(class_names=tuple(first.class_names), by_seed=by_seed, source=source)


def test_set(cfg: BenchConfig) -> EvalSplit:
    g = cfg.grid
    return EvalSplit("ferplus", _root(cfg) or "", g.test_split, g.test_labels, dict(cfg.recipe.data.options))


def prepare_settings(cfg: BenchConfig, pool: Pool, pairs: set[tuple[str, int]], out: Path, *,
                     log: Callable[[str], None] = print) -> dict[tuple[str, int], dict[str, Any]]:
    """Write each (setting, seed)'s manifest under ``out/settings``; returns its path and the
    facts of its training part for the rows."""
    facts = {}
    for setting, seed in sorted(pairs):
        split = pool.split(setting, seed, cfg, log=log)
        path = write_setting_manifest(out / "settings" / f"{setting}-seed{seed}.csv", pool.by_seed[seed], split,
                                      source=pool.source)
        counts = np.bincount(split.train_labels, minlength=len(pool.class_names))
        facts[(setting, seed)] = {"manifest": path, "train_size": int(split.train_index.size),
                                  "train_noise_rate": split.noise_rate, "train_imbalance_ratio": split.imbalance_ratio,
                                  "train_class_counts": counts.tolist(), "val_size": int(split.val_index.size)}
    return facts


def cell_recipe(cfg: BenchConfig, out: Path) -> Config:
    """The grid's recipe with the decoded-image cache kept beside the results."""
    recipe = copy.deepcopy(cfg.recipe)
    recipe.data.cache_dir = str((out / ".cache").resolve())
    return recipe


def train_one(recipe: Config, cfg: BenchConfig, cell: Cell, facts: dict[str, Any], test: EvalSplit, out: Path) -> dict[str, Any]:
    """Train and score one cell; its row."""
    method, setting, seed = cell
    loss, options = cfg.grid.loss_of(method)
    config = cell_config(recipe, manifest=facts["manifest"], method=loss, seed=seed, loss_options=options,
                         threads=torch.get_num_threads())
    run_dir = out / "cells" / method / f"{setting}-seed{seed}"
    result = run_cell(config, run_dir, test)
    (run_dir / "signals.npz").unlink(missing_ok=True)  # the grid's tables do not use them
    stats = {k: v for k, v in facts.items() if k != "manifest"}
    return {
        "method": method, "setting": setting, "seed": seed,
        "overall_acc": result["test"]["overall_acc"], "mean_acc": result["test"]["mean_acc"],
        "per_class_acc": result["test"]["per_class_acc"], "macro_f1": result["test"]["macro_f1"],
        "best_epoch": result["best_epoch"], "val_select": result["val"][recipe.train.select_metric],
        **stats, "seconds": round(result["seconds"], 1), "epochs": result["epochs"], "run": str(run_dir),
    }


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def read_partial(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a kill: that cell runs again
            continue
    return rows


def run_robustness(cfg: BenchConfig, out: str | Path, *, command: str = "", log: Callable[[str], None] = print,
                   fresh: bool = False) -> list[dict[str, Any]]:
    """Run the grid into ``out``; returns the rows (also in ``out/robustness.json``)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / "robustness.partial.jsonl"
    if fresh and partial.exists():
        partial.unlink()
    cells = cfg.grid.cells()
    done = {(r["method"], r["setting"], r["seed"]): r for r in read_partial(partial)}
    todo = [c for c in cells if c not in done]
    log(f"robustness grid: {len(cells)} cells ({len(done)} already in {partial}), {cfg.grid.workers} worker(s)")
    started = time.perf_counter()
    pool = read_pool(cfg, sorted({seed for _, _, seed in cells}))
    facts = prepare_settings(cfg, pool, {(s, seed) for _, s, seed in todo}, out)
    recipe, test = cell_recipe(cfg, out), test_set(cfg)
    workers = min(cfg.grid.workers, max(len(todo), 1))
    threads = cfg.grid.threads or max(1, (os.cpu_count() or 1) // workers)
    with partial.open("a") as sink:
        def keep(row: dict[str, Any]) -> None:
            done[(row["method"], row["setting"], row["seed"])] = row
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            log(f"[{len(done)}/{len(cells)}] {row['method']:>15} {row['setting']:>13} seed {row['seed']}: "
                f"overall {100 * row['overall_acc']:.2f}%  mean {100 * row['mean_acc']:.2f}%  ({row['seconds']:.0f}s)")

        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                 initargs=(threads,)) as executor:
            futures = [executor.submit(train_one, recipe, cfg, cell, facts[cell[1:]], test, out) for cell in todo]
            for future in as_completed(futures):
                keep(future.result())
    rows = [done[c] for c in cells]
    seconds = time.perf_counter() - started
    from fer_nla.bench.tables import write_outputs

    meta = {"command": command, "machine": machine_line(threads * workers), "seconds": seconds,
            "cells_run_now": len(todo), "config": cfg.to_dict(), "class_names": list(pool.class_names)}
    paths = write_outputs(rows, meta, out)
    partial.unlink()
    log(f"grid done in {seconds / 60:.1f} min: " + ", ".join(str(p) for p in paths))
    return rows


def machine_line(cores: int) -> str:
    return (f"{platform.system()} {platform.machine()}, {cores} CPU thread(s) of {os.cpu_count()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}")
