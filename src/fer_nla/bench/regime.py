"""The pretrained regime (issue 15): every method fine-tuning a face-pretrained network on noisy labels.

Two disjoint halves of FERPlus train, assigned by a seeded hash of each image's id
(``data.train_fold``, :func:`fer_nla.data.split.fold_indices`):

1. **half P** (fold 1/2) pretrains the network with majority labels through
   :func:`fer_nla.train.fit.fit` (the built-in model's recipe, ``configs/ferplus_model.yaml``,
   with :data:`PRETRAIN_OVERRIDES`), into ``out/pretrain``; resumed when it is there;
2. **half F** (fold 2/2) is the pool of the label settings (:mod:`fer_nla.bench.settings`): each
   cell fine-tunes the half-P network (``model.init``) on the setting's labels, with its best
   epoch chosen on a carve of half F with the setting's labels, and is scored on FERPlus valid
   with majority labels (:func:`fer_nla.evaluate.evaluate_checkpoint` on the images).

The cells are the robustness grid's (``method x setting x seed``, CE on clean labels) plus an
ablation of NLA (:data:`ABLATIONS` on :data:`ABLATION_SETTINGS`). Each is one ``fer-nla train``
run (:mod:`fer_nla.bench.cells`); rows are appended to ``regime.partial.jsonl`` as cells finish,
so a stopped grid resumes; the finished grid is ``pretrained_regime.json`` and ``.md``
(:mod:`fer_nla.bench.regime_tables`).
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch

from fer_nla.bench.cells import EvalSplit, cell_config, run_cell
from fer_nla.bench.config import CLEAN_SETTING, BenchConfig
from fer_nla.bench.robustness import Pool, cell_recipe, machine_line, prepare_settings, read_partial, read_pool, test_set
from fer_nla.config import Config
from fer_nla.errors import InputError
from fer_nla.train.run_data import fold_of

PRETRAIN_FOLD, FINETUNE_FOLD = "1/2", "2/2"
# Half P's pretraining: the built-in model's recipe on majority labels, 40 epochs, its best epoch
# chosen on a carve of half P (FERPlus valid, where the grid is scored, chooses nothing).
PRETRAIN_OVERRIDES: tuple[str, ...] = ("data.labels=majority", f"data.train_fold={PRETRAIN_FOLD}",
                                       "data.val_split=carve", "train.epochs=40", "train.progress=false")
# NLA's ablation (the reference is "nla" itself): label -> loss options.
ABLATIONS: dict[str, dict[str, Any]] = {
    "nla_naw_only": {"lam_c": 0.0},
    "nla_consistency_only": {"lam_b": 0.0},
    "nla_no_schedule": {"schedule": False},
    "nla_detached": {"detach_weights": True},
    "nla_consistency_mean": {"consistency_reduction": "mean"},
}
ABLATION_SETTINGS: tuple[str, ...] = ("single_vote", "symmetric_30")


@dataclass(frozen=True)
class RegimeCell:
    """One run: ``method`` is the row's label (a loss name, or an :data:`ABLATIONS` label),
    ``loss`` the loss trained, ``options`` its options."""

    method: str
    loss: str
    setting: str
    seed: int
    options: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.method, self.setting, self.seed)


def ablation_labels(cfg: BenchConfig, *, ablation: bool = True) -> dict[str, dict[str, Any]]:
    """The ablation rows this grid adds (label -> NLA's options): none without ``ablation``, and
    never a label the grid already runs as a method (a ``bench.variants`` row such as
    ``nla_consistency_mean`` is a grid row on every setting, not an ablation row)."""
    methods = {m for m, _, _ in cfg.grid.cells()}
    return {label: options for label, options in ABLATIONS.items() if ablation and label not in methods}


def regime_cells(cfg: BenchConfig, *, ablation: bool = True) -> list[RegimeCell]:
    """The grid's cells (seed-major, as :meth:`GridSpec.cells`), then the ablation's."""
    cells = [RegimeCell(m, cfg.grid.loss_of(m)[0], s, seed, cfg.grid.loss_of(m)[1]) for m, s, seed in cfg.grid.cells()]
    settings = [s for s in ABLATION_SETTINGS if s in cfg.grid.settings]
    cells += [RegimeCell(label, "nla", s, seed, dict(options)) for seed in cfg.grid.seeds for s in settings
              for label, options in ablation_labels(cfg, ablation=ablation).items()]
    return cells


def pretrain_config(path: str | Path, *, root: str | None, overrides: Sequence[str] = ()) -> Config:
    """The pretraining recipe: the file at ``path``, then :data:`PRETRAIN_OVERRIDES`, the data
    root of the grid, and ``overrides``. Raises :class:`InputError` for a missing file or a bad key."""
    from fer_nla.config import load_config

    if not Path(path).is_file():
        raise InputError(f"pretraining recipe {path} does not exist; pass --pretrain-config configs/ferplus_model.yaml")
    try:
        return load_config(path, [*PRETRAIN_OVERRIDES, f"data.root={root}", *overrides])
    except InputError as err:
        raise InputError(f"the pretraining recipe ({path} with --pretrain {' '.join(overrides) or '(none)'}): {err}") from None


def pretrain(pretrain_config: Config, out: Path, *, log: Callable[[str], None] = print) -> Path:
    """Pretrain on half P into ``out`` (resumed when ``out/last.pt`` exists); its best.pt."""
    from fer_nla.train.fit import fit
    from fer_nla.train.run_folder import RunFolder

    folder = RunFolder(out)
    resume = folder.last.is_file()
    log(f"pretraining on half P ({PRETRAIN_FOLD} of FERPlus train) into {out}" + (" (resumed)" if resume else ""))
    fit(pretrain_config, out, resume=resume, log=log)
    return folder.best


def half_f_pool(cfg: BenchConfig, seeds: list[int], *, log: Callable[[str], None] = print) -> Pool:
    """FERPlus train's half F (:data:`FINETUNE_FOLD`), single votes per seed, majority as clean."""
    pool = read_pool(cfg, seeds)
    d = copy.deepcopy(cfg.recipe.data)
    d.root, d.train_fold = pool.source["root"], FINETUNE_FOLD
    first = pool.by_seed[seeds[0]]
    keep = fold_of(d, first, log=log)
    return Pool(class_names=pool.class_names, by_seed={s: ds.subset(keep) for s, ds in pool.by_seed.items()},
                source=pool.source)


def prewarm_cells(recipe: Config, pairs: Sequence[tuple[str, int]], facts: dict[tuple[str, int], dict[str, Any]],
                  test: EvalSplit, *, log: Callable[[str], None] = print) -> None:
    """Compute the frozen outputs every cell of ``pairs`` will read, and the test split's, once per
    image (:func:`fer_nla.bench.frozen_pool.prewarm_frozen`), before the workers start."""
    from fer_nla.bench.frozen_pool import prewarm_frozen
    from fer_nla.data import build_dataset

    configs = [cell_config(recipe, manifest=facts[pair]["manifest"], method="ce", seed=pair[1]) for pair in pairs]
    split = build_dataset(test.dataset, root=test.root, split=test.split, labels=test.labels,
                          num_classes=recipe.data.num_classes, **test.options)
    prewarm_frozen(configs, extra=[split], log=log)


def train_regime_cell(recipe: Config, cell: RegimeCell, facts: dict[str, Any], test: EvalSplit, out: Path, *,
                      paper_protocol: bool = False) -> dict[str, Any]:
    """Train and score one cell; its row (with per-epoch ``history``). ``paper_protocol``: the
    cell also scores ``test`` after every epoch (``train.paper_protocol``) and the row gets the
    test-selected figures as ``paper`` (:func:`fer_nla.train.paper_protocol.paper_selection`)."""
    config = cell_config(recipe, manifest=facts["manifest"], method=cell.loss, seed=cell.seed, loss_options=cell.options,
                         threads=torch.get_num_threads())
    config.train.record_signals = False  # the tables do not use them
    if paper_protocol:
        config.train.paper_protocol, config.data.test_split = True, test.split
        config.data.test_source = {"dataset": test.dataset, "root": test.root, "labels": test.labels, "options": test.options}
    run_dir = out / "cells" / cell.method / f"{cell.setting}-seed{cell.seed}"
    result = run_cell(config, run_dir, test)
    stats = {k: v for k, v in facts.items() if k != "manifest"}
    scored = result["test"]
    return {
        "method": cell.method, "loss": cell.loss, "loss_options": cell.options, "setting": cell.setting,
        "seed": cell.seed, "overall_acc": scored["overall_acc"], "mean_acc": scored["mean_acc"],
        "per_class_acc": scored["per_class_acc"], "macro_f1": scored["macro_f1"], "best_epoch": result["best_epoch"],
        "val_select": result["val"][recipe.train.select_metric], **stats, "seconds": round(result["seconds"], 1),
        "history": result["epochs"], "run": str(run_dir),
        **({"paper": result["paper_protocol"]} if result.get("paper_protocol") else {}),
    }


def run_order(cells: Sequence[RegimeCell], *, workers: int) -> list[RegimeCell]:
    """``cells`` in the order the workers take them: the cells of ``workers`` label sets
    ((setting, seed) pairs) at a time, alternating between them, so that each worker starts on
    another pair and computes that pair's frozen outputs (about a minute at 150 px) while the
    others do the same for theirs, instead of all computing the same one at once. The tables keep
    :func:`regime_cells`' order."""
    groups: dict[tuple[str, int], list[RegimeCell]] = {}
    for cell in cells:
        groups.setdefault((cell.setting, cell.seed), []).append(cell)
    batches = list(groups.values())
    ordered: list[RegimeCell] = []
    for start in range(0, len(batches), max(workers, 1)):
        chunk = batches[start:start + max(workers, 1)]
        for i in range(max(len(g) for g in chunk)):
            ordered += [g[i] for g in chunk if i < len(g)]
    return ordered


# Bench keys that only choose which cells run or how fast: a resumed run may change them.
EXTENDABLE_BENCH_KEYS: tuple[str, ...] = ("methods", "settings", "seeds", "clean_reference", "workers", "threads", "quick")


def recipe_stamp(cfg: BenchConfig, pretrain_config: Config | None) -> dict[str, Any]:
    """What every cell of a run folder must share: the fine-tuning recipe, the bench keys that
    change a cell's result, and the pretraining recipe (as JSON values)."""
    bench = cfg.to_dict()
    bench["bench"] = {k: v for k, v in bench["bench"].items() if k not in EXTENDABLE_BENCH_KEYS}
    pretraining = pretrain_config.to_dict() if pretrain_config is not None else None
    return json.loads(json.dumps({"fine_tuning": bench, "pretraining": pretraining}))


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _differences(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [f"{prefix.rstrip('.')}: {a!r} then, {b!r} now"]


def check_same_recipe(out: Path, cfg: BenchConfig, pretrain_config: Config | None) -> None:
    """Record the recipe in ``out/regime.recipe.json``, or raise :class:`InputError` when the folder
    holds a run with another one: its finished cells and pretraining would be reused under the
    new recipe's name. Cells, seeds and worker counts may change (a run is extended or resumed)."""
    stamp, current = out / "regime.recipe.json", recipe_stamp(cfg, pretrain_config)
    if not stamp.is_file():
        stamp.write_text(json.dumps(current, indent=1) + "\n")
        return
    changed = _differences(json.loads(stamp.read_text()), current)
    if changed:
        shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise InputError(f"{out} holds a regime run with another recipe ({shown}): its pretraining and finished cells "
                         f"would be reused under the new one. Write to another folder, or give the same settings to resume it")


def start_invocation(out: Path, *, started: float, cells_before: int) -> int:
    """Record that a run (or a resume) of the grid started at ``started`` (seconds since the epoch,
    before any pretraining or prewarming, as the invocation's own wall time counts), in
    ``out/regime.invocations.jsonl``; returns its index, which each row it finishes carries
    (``row["invocation"]``)."""
    path = out / "regime.invocations.jsonl"
    index = len(path.read_text().splitlines()) if path.is_file() else 0
    with path.open("a") as sink:
        sink.write(json.dumps({"started": started, "cells_before": cells_before}) + "\n")
    return index


def invocation_times(out: Path, rows: Sequence[dict[str, Any]], *, now_seconds: float) -> list[dict[str, Any]]:
    """``[{"seconds", "cells"}]`` per invocation of the grid in ``out``: from its start to its last
    finished row (an invocation stopped early ends there), the current one ``now_seconds`` long."""
    path = out / "regime.invocations.jsonl"
    starts = [json.loads(line)["started"] for line in path.read_text().splitlines()] if path.is_file() else []
    result = []
    for index, started in enumerate(starts):
        mine = [r["finished_at"] for r in rows if r.get("invocation") == index]
        current = index == len(starts) - 1
        if mine or current:
            result.append({"seconds": now_seconds if current else max(mine) - started, "cells": len(mine)})
    return result


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def run_regime(cfg: BenchConfig, pretrain_config: Config | None, out: str | Path, *, command: str = "",
               ablation: bool = True, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Pretrain (or resume; ``bench.start=pretrain``) or take the recipe's backbone weights as they
    are (``bench.start=backbone``, ``pretrain_config`` then ``None``), then run every cell not yet in
    ``out/regime.partial.jsonl``; returns the rows, also written as ``out/pretrained_regime.json`` and ``.md``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if (cfg.grid.start == "pretrain") != (pretrain_config is not None):
        raise InputError("bench.start=pretrain needs the pretraining recipe (--pretrain-config) and bench.start=backbone "
                         "none: the cells then start from model.backbone_weights")
    check_same_recipe(out, cfg, pretrain_config)
    started, started_at = time.perf_counter(), time.time()
    recipe = cell_recipe(cfg, out)
    if pretrain_config is not None:
        recipe.model.init = str(pretrain(pretrain_config, out / "pretrain", log=log).resolve())
    elif not recipe.model.backbone_weights:
        raise InputError("bench.start=backbone starts every cell from model.backbone_weights: set it (e.g. "
                         "model.backbone_weights=dlib_face_recognition_resnet_model_v1)")
    partial = out / "regime.partial.jsonl"
    cells = regime_cells(cfg, ablation=ablation)
    done = {(r["method"], r["setting"], r["seed"]): r for r in read_partial(partial)}
    todo = run_order([c for c in cells if c.key not in done], workers=cfg.grid.workers)
    log(f"pretrained regime: {len(cells)} cells ({len(done)} already in {partial}), {cfg.grid.workers} worker(s)")
    pool = half_f_pool(cfg, sorted({c.seed for c in cells}), log=log)
    facts = prepare_settings(cfg, pool, {(c.setting, c.seed) for c in todo}, out, log=log)
    test = test_set(cfg)
    if cfg.grid.start == "backbone" and recipe.train.cache_frozen and todo:  # the frozen part is the backbone's
        prewarm_cells(recipe, sorted({(c.setting, c.seed) for c in todo}), facts, test, log=log)
    invocation = start_invocation(out, started=started_at, cells_before=len(done))
    workers = min(cfg.grid.workers, max(len(todo), 1))
    threads = cfg.grid.threads or max(1, (os.cpu_count() or 1) // workers)
    with partial.open("a") as sink, ProcessPoolExecutor(workers, mp_context=get_context("spawn"),
                                                        initializer=_init_worker, initargs=(threads,)) as executor:
        futures = [executor.submit(train_regime_cell, recipe, c, facts[(c.setting, c.seed)], test, out,
                                   paper_protocol=cfg.grid.paper_protocol) for c in todo]
        for future in as_completed(futures):
            row = {**future.result(), "invocation": invocation, "finished_at": time.time()}
            done[(row["method"], row["setting"], row["seed"])] = row
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            log(f"[{len(done)}/{len(cells)}] {row['method']:>20} {row['setting']:>13} seed {row['seed']}: overall "
                f"{100 * row['overall_acc']:.2f}%  mean {100 * row['mean_acc']:.2f}%  best epoch {row['best_epoch']}  "
                f"({row['seconds']:.0f}s)")
    rows = [done[c.key] for c in cells]
    elapsed = time.perf_counter() - started
    invocations = invocation_times(out, rows, now_seconds=elapsed)
    meta = {"command": command, "machine": machine_line(threads * workers), "cells_run_now": len(todo),
            "config": cfg.to_dict(),
            **({"invocations": invocations, "seconds": sum(i["seconds"] for i in invocations)} if len(invocations) > 1
               else {"seconds": elapsed}),
            "pretrain_config": pretrain_config.to_dict() if pretrain_config is not None else None,
            "class_names": list(pool.class_names), "clean_setting": CLEAN_SETTING,
            "half_f_size": int(len(next(iter(pool.by_seed.values())))), "ablations": ablation_labels(cfg, ablation=ablation)}
    from fer_nla.bench.regime_tables import write_regime_outputs

    paths = write_regime_outputs(rows, meta, out)
    log(f"pretrained regime done in {meta['seconds'] / 60:.1f} min: " + ", ".join(str(p) for p in paths))
    return rows
