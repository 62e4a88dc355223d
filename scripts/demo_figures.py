"""Run README's demo (`fer-nla train --out DIR`: NLA on the embedded synthetic faces) and write its
figures, wall time and best validation accuracy, with the machine, to a Markdown file.

    python scripts/demo_figures.py                 # writes benchmarks/results/demo_train.md

README.md quotes these two figures; tests/test_doc_figures.py checks that they equal this file,
so a change to the demo's recipe shows up as a failing test until this script is run again.
The run goes to a temporary folder (its decoded-image cache too, so the time includes decoding).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import cpu_model  # noqa: E402 - the benchmarks' one reading of the CPU's name
from suite_figures import minutes  # noqa: E402 - scripts/ is on the path when this runs as a script
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "demo_train.md"


def best_val_accuracy(run: Path) -> tuple[float, int]:
    """The best epoch's validation overall accuracy (0..1) in ``run/metrics.jsonl`` and that epoch."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    best = max((row for row in rows if "val" in row), key=lambda row: row["val"]["overall_acc"])
    return float(best["val"]["overall_acc"]), int(best["epoch"])


def report(*, seconds: float, accuracy: float, epoch: int, load: float) -> str:
    return "\n".join([
        "# README's demo: `fer-nla train --out runs/demo`", "",
        "`python scripts/demo_figures.py` (NLA on the embedded synthetic faces, the default config)", "",
        f"- wall time: **{minutes(seconds)}** ({seconds:.1f} s, decoding the images included)",
        f"- validation accuracy (best epoch, {epoch}): **{accuracy * 100:.2f}%**",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores; load average {load:.2f} before the run",
        f"- software: Python {platform.python_version()}, torch {metadata.version('torch')}, "
        f"fer-nla {metadata.version('fer-nla')}; date {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"Markdown file to write (default {DEFAULT_OUT})")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "demo"
        env = {**os.environ, "FER_NLA_CACHE": str(Path(folder) / "cache")}  # a cold cache: decoding is timed too
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fer_nla", "train", "--out", str(run)], check=True, env=env, cwd=folder)
        seconds = time.perf_counter() - start
        accuracy, epoch = best_val_accuracy(run)
    text = report(seconds=seconds, accuracy=accuracy, epoch=epoch, load=load)
    args.out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
