"""Cached frozen stages against no cache, on cells of the pretrained regime (issue 15, item 3).

Each named cell folder (``OUT/cells/<method>/<setting>-seed<k>`` of ``fer-nla bench regime``)
holds the config it was trained with (``train.cache_frozen=true``) and its metrics. This script
trains the same config again through ``fer-nla train``'s code path with the cache off
(``train.cache_frozen=false``: every batch goes through the frozen stem and stages 1-3) and
``train.channels_last=off`` (the cached path never uses channels-last kernels, whose float sums
differ), then compares every epoch's training loss, training accuracy (given and clean labels),
and validation loss and accuracy, and prints a Markdown table:

    python benchmarks/cache_check.py runs/regime/cells/ce/symmetric_30-seed0 \\
        runs/regime/cells/nla/single_vote-seed0 --out benchmarks/results/pretrained_regime_cache_check.md
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

KEYS = ("train_loss", "train_acc", "train_acc_clean", "val_loss")


def compare(cell: Path, work: Path) -> tuple[list[str], float, float]:
    """Retrain ``cell`` without the cache into ``work``; the table lines, and both runs' seconds."""
    from fer_nla.config import load_config
    from fer_nla.train.fit import fit

    config = load_config(cell / "config.yaml", ["train.cache_frozen=false", "train.channels_last=off"])
    started = time.perf_counter()
    fit(config, work, log=lambda _line: None)
    uncached_seconds = time.perf_counter() - started
    cached = [json.loads(line) for line in (cell / "metrics.jsonl").read_text().splitlines()]
    plain = [json.loads(line) for line in (work / "metrics.jsonl").read_text().splitlines()]
    lines = []
    for a, b in zip(cached, plain, strict=True):
        diffs = [abs(a[k] - b[k]) for k in KEYS] + [abs(a["val"]["overall_acc"] - b["val"]["overall_acc"])]
        lines.append(f"| {cell.parent.name}/{cell.name} | {a['epoch']} | {a['train_loss']:.6f} | {b['train_loss']:.6f} | "
                     f"{100 * a['train_acc']:.2f} / {100 * a['train_acc_clean']:.2f} | "
                     f"{100 * b['train_acc']:.2f} / {100 * b['train_acc_clean']:.2f} | "
                     f"{100 * a['val']['overall_acc']:.2f} | {100 * b['val']['overall_acc']:.2f} | {max(diffs):.1e} |")
    return lines, sum(m["seconds"] for m in cached), uncached_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cells", nargs="+", type=Path, help="cell folders of a `fer-nla bench regime` run")
    parser.add_argument("--out", type=Path, default=None, help="write the Markdown table here too")
    args = parser.parse_args(argv)
    text = ["# Cached frozen stages against no cache (pretrained regime)", "",
            f"- command: `python benchmarks/cache_check.py {' '.join(str(c) for c in args.cells)}`",
            "- the cached run is the grid's own cell; the uncached one retrains its config.yaml with "
            "train.cache_frozen=false, train.channels_last=off", "",
            "| cell | epoch | train loss, cached | train loss, uncached | train acc given / clean, cached (%) | "
            "same, uncached (%) | val acc, cached (%) | val acc, uncached (%) | largest difference |",
            "|---|---|---|---|---|---|---|---|---|"]
    timings = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, cell in enumerate(args.cells):
            lines, cached_s, uncached_s = compare(cell, Path(tmp) / f"run{i}")
            text += lines
            timings.append(f"- {cell.parent.name}/{cell.name}: epochs took {cached_s:.0f} s cached (the grid's "
                           f"cell, beside another worker) and {uncached_s:.0f} s uncached (alone)")
    text += ["", *timings, ""]
    print("\n".join(text))
    if args.out is not None:
        args.out.write_text("\n".join(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
