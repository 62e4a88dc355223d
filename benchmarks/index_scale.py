"""How long indexing an AffectNet-sized CSV takes, and how much memory it needs.

Generates an official-format AffectNet ``training.csv`` (path, face box, 68 landmarks,
expression 0..10, valence, arousal) with the image files it names (hard links to a few tiny
JPEGs, so the reader's missing-file check and its reading of each image's size to check the
face box against it run for real), then times
``build_dataset("affectnet", ...)`` in a fresh process per size and, in another fresh
process, measures its peak traced memory (tracemalloc: Python objects and numpy arrays).
Memory should grow in proportion to the rows (a constant number of bytes per row).

    python benchmarks/index_scale.py                  # 30k, 100k and 300k rows
    python benchmarks/index_scale.py --rows 300000    # one size
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

HEADER = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n"
ROWS_PER_FOLDER = 300  # AffectNet's layout: about a thousand numbered folders
LINKS_PER_FILE = 50_000


def make_affectnet(root: Path, rows: int, *, seed: int = 0) -> None:
    """An AffectNet-like training.csv of ``rows`` rows and the image files it lists."""
    rng = np.random.default_rng(seed)
    images = root / "Manually_Annotated_Images"
    images.mkdir(parents=True)
    face = Image.new("RGB", (64, 64), (128, 100, 90))
    pool = [";".join(f"{v:.2f}" for v in rng.uniform(0, 500, 136)) for _ in range(500)]
    codes = rng.integers(0, 11, rows)
    boxes = np.concatenate([rng.integers(0, 40, (rows, 2)), rng.integers(8, 40, (rows, 2))], axis=1)  # some clamped
    names = [f"{i // ROWS_PER_FOLDER}/{rng.bytes(28).hex()}.jpg" for i in range(rows)]
    for folder in range(rows // ROWS_PER_FOLDER + 1):
        (images / str(folder)).mkdir()
    with open(root / "training.csv", "w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for i, name in enumerate(names):
            x, y, w, h = boxes[i]
            handle.write(f"{name},{x},{y},{w},{h},{pool[i % len(pool)]},{codes[i]},{rng.uniform(-1, 1):.4f},0.1\n")
            if i % LINKS_PER_FILE == 0:  # file systems cap hard links per file (ext4: 65,000)
                template = root / f"face{i // LINKS_PER_FILE}.jpg"
                face.save(template)
            os.link(template, images / name)


MEASURE = """
import json, sys, time, tracemalloc
from fer_nla.data import build_dataset
root, traced = sys.argv[1], sys.argv[2] == "1"
if traced:
    tracemalloc.start()
start = time.perf_counter()
dataset = build_dataset("affectnet", root=root, split="train")
seconds = time.perf_counter() - start
peak = tracemalloc.get_traced_memory()[1] if traced else 0
kept = tracemalloc.get_traced_memory()[0] if traced else 0
print(json.dumps({"seconds": seconds, "peak": peak, "held": kept, "samples": len(dataset)}))
"""


def measure(root: Path, *, traced: bool) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", MEASURE, str(root), "1" if traced else "0"],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[30_000, 100_000, 300_000])
    parser.add_argument("--workdir", default=None, help="folder for the generated data (default: a temp folder)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"{'rows':>8} {'kept':>8} {'index s':>8} {'rows/s':>10} {'peak MiB':>9} {'held MiB':>9} {'peak B/row':>11} {'make s':>7}")
    for rows in args.rows:
        work = Path(tempfile.mkdtemp(prefix="fer-nla-index-", dir=args.workdir))
        try:
            start = time.perf_counter()
            make_affectnet(work, rows)
            made = time.perf_counter() - start
            timed = measure(work, traced=False)
            traced = measure(work, traced=True)
            print(f"{rows:>8} {timed['samples']:>8} {timed['seconds']:>8.2f} {rows / timed['seconds']:>10,.0f} "
                  f"{traced['peak'] / 2**20:>9.1f} {traced['held'] / 2**20:>9.1f} {traced['peak'] / rows:>11.0f} {made:>7.1f}")
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
