"""The robustness grid: every method on every label setting and seed, same model and budget.

:func:`run_robustness` reads FERPlus once (train under the majority rule, single votes per seed,
the test split), decodes just the images the grid uses into a cache file, then trains the cells
in ``workers`` processes and appends each finished row to ``robustness.partial.jsonl``: a
stopped grid resumes where it stopped (rows already there are kept). The finished grid is
written as ``robustness.json`` (a list of rows), ``robustness.md`` and two plots.
"""

from __future__ import annotations

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

from fer_nla.bench.config import BenchConfig
from fer_nla.bench.runner import CellData, train_cell
from fer_nla.bench.settings import SettingSplit, setting_split
from fer_nla.bench.tensor_data import decode_images, load_tensors, save_tensors
from fer_nla.data import build_dataset
from fer_nla.errors import InputError

Cell = tuple[str, str, int]


@dataclass
class Pool:
    """FERPlus train (majority-rule images) and the test split, as the grid needs them."""

    class_names: tuple[str, ...]
    majority: np.ndarray
    single_vote: dict[int, np.ndarray]
    images: torch.Tensor  # uint8 [M, 3, S, S] for the pool rows in ``rows``
    rows: np.ndarray  # pool index of each decoded image, sorted
    test_images: torch.Tensor
    test_labels: np.ndarray

    def take(self, index: np.ndarray) -> torch.Tensor:
        return self.images[torch.from_numpy(np.searchsorted(self.rows, index))]

    def cell_data(self, split: SettingSplit) -> CellData:
        """The images and labels of one setting's training and validation parts, and the test split."""
        return CellData(train_images=self.take(split.train_index), train_labels=split.train_labels,
                        val_images=self.take(split.val_index), val_labels=split.val_labels,
                        test_images=self.test_images, test_labels=self.test_labels)

    def split(self, setting: str, seed: int, cfg: BenchConfig) -> SettingSplit:
        d = cfg.recipe.data
        return setting_split(setting, majority=self.majority, single_vote=self.single_vote[seed],
                             num_classes=len(self.class_names), seed=seed, val_fraction=d.val_fraction,
                             train_size=d.train_subset)


def _read(cfg: BenchConfig, split: str, labels: str, seed: int) -> Any:
    d = cfg.recipe.data
    if d.dataset != "ferplus":
        raise InputError(f"the robustness bench reads FERPlus (its settings need the ten votes); got data.dataset={d.dataset!r}")
    return build_dataset("ferplus", root=d.root, split=split, labels=labels, num_classes=d.num_classes, seed=seed,
                         skip_bad_images=d.skip_bad_images, **d.options)


def build_pool(cfg: BenchConfig, cells: list[Cell], cache: Path,
               log: Callable[[str], None] = print) -> tuple[Path, tuple[str, ...]]:
    """Read the labels, decode the images the cells use, save them to ``cache``; returns the
    cache and the class names."""
    d, g = cfg.recipe.data, cfg.grid
    seeds = sorted({seed for _, _, seed in cells})
    first = _read(cfg, d.train_split, "single-vote", seeds[0])
    single_vote = {seeds[0]: first.targets}
    for seed in seeds[1:]:
        single_vote[seed] = _read(cfg, d.train_split, "single-vote", seed).targets
    test = _read(cfg, g.test_split, g.test_labels, 0)
    pool = Pool(class_names=tuple(first.class_names), majority=first.clean_targets, single_vote=single_vote,
                images=torch.empty(0), rows=np.zeros(0, dtype=np.int64), test_images=torch.empty(0), test_labels=test.targets)
    needed = set()
    for setting, seed in {(s, seed) for _, s, seed in cells}:
        split = pool.split(setting, seed, cfg)
        needed.update(split.train_index.tolist())
        needed.update(split.val_index.tolist())
    rows = np.array(sorted(needed), dtype=np.int64)
    started = time.perf_counter()
    images = decode_images(first, image_size=d.image_size, indices=rows)
    test_images = decode_images(test, image_size=d.image_size)
    log(f"decoded {rows.size} training and {len(test)} test images at {d.image_size}px in {time.perf_counter() - started:.0f}s")
    return save_tensors(cache, images=images, rows=rows, test_images=test_images, test_labels=test.targets,
                        majority=pool.majority,
                        **{f"single_vote_{s}": v for s, v in single_vote.items()}), tuple(first.class_names)


def load_pool(cache: Path, class_names: tuple[str, ...]) -> Pool:
    t = load_tensors(cache)
    votes = {int(k.rsplit("_", 1)[1]): v.numpy() for k, v in t.items() if k.startswith("single_vote_")}
    return Pool(class_names=class_names, majority=t["majority"].numpy(), single_vote=votes, images=t["images"],
                rows=t["rows"].numpy(), test_images=t["test_images"], test_labels=t["test_labels"].numpy())


def run_cell(cfg: BenchConfig, pool: Pool, cell: Cell) -> dict[str, Any]:
    """Train one cell and return its row."""
    method, setting, seed = cell
    split = pool.split(setting, seed, cfg)
    result = train_cell(cfg.recipe, pool.cell_data(split), method=method, class_names=pool.class_names, seed=seed,
                        loss_options=cfg.grid.loss_options.get(method))
    counts = np.bincount(split.train_labels, minlength=len(pool.class_names))
    return {
        "method": method, "setting": setting, "seed": seed,
        "overall_acc": result.test["overall_acc"], "mean_acc": result.test["mean_acc"],
        "per_class_acc": result.test["per_class_acc"], "macro_f1": result.test["macro_f1"],
        "best_epoch": result.best_epoch, "val_select": result.val[cfg.recipe.train.select_metric],
        "train_size": int(split.train_index.size), "train_noise_rate": split.noise_rate,
        "train_imbalance_ratio": split.imbalance_ratio, "train_class_counts": counts.tolist(),
        "val_size": int(split.val_index.size), "seconds": round(result.seconds, 1), "epochs": result.epochs,
    }


_WORKER: dict[str, Any] = {}


def _init_worker(cfg: BenchConfig, cache: str, class_names: tuple[str, ...], threads: int) -> None:
    torch.set_num_threads(threads)
    _WORKER.update(cfg=cfg, pool=load_pool(Path(cache), class_names))


def _work(cell: Cell) -> dict[str, Any]:
    return run_cell(_WORKER["cfg"], _WORKER["pool"], cell)


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
    cache = out / ".cache" / "robustness_images.pt"
    cache, class_names = build_pool(cfg, cells, cache, log)
    workers = min(cfg.grid.workers, max(len(todo), 1))
    threads = cfg.grid.threads or max(1, (os.cpu_count() or 1) // workers)
    with partial.open("a") as sink:
        def keep(row: dict[str, Any]) -> None:
            done[(row["method"], row["setting"], row["seed"])] = row
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            log(f"[{len(done)}/{len(cells)}] {row['method']:>15} {row['setting']:>13} seed {row['seed']}: "
                f"overall {100 * row['overall_acc']:.2f}%  mean {100 * row['mean_acc']:.2f}%  ({row['seconds']:.0f}s)")

        if workers == 1:
            previous = torch.get_num_threads()
            torch.set_num_threads(threads)
            try:
                pool = load_pool(cache, class_names)
                for cell in todo:
                    keep(run_cell(cfg, pool, cell))
            finally:
                torch.set_num_threads(previous)
        else:
            with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                     initargs=(cfg, str(cache), class_names, threads)) as executor:
                for future in as_completed([executor.submit(_work, cell) for cell in todo]):
                    keep(future.result())
    rows = [done[c] for c in cells]
    seconds = time.perf_counter() - started
    from fer_nla.bench.tables import write_outputs

    meta = {"command": command, "machine": machine_line(threads * workers), "seconds": seconds,
            "cells_run_now": len(todo), "config": cfg.to_dict(), "class_names": list(class_names)}
    paths = write_outputs(rows, meta, out)
    partial.unlink()
    cache.unlink(missing_ok=True)
    log(f"grid done in {seconds / 60:.1f} min: " + ", ".join(str(p) for p in paths))
    return rows


def machine_line(cores: int) -> str:
    return (f"{platform.system()} {platform.machine()}, {cores} CPU thread(s) of {os.cpu_count()}, "
            f"Python {platform.python_version()}, torch {torch.__version__}")
