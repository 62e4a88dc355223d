"""FERPlus as published (fer2013.csv + fer2013new.csv) against the folder layout, on real data.

Writes the published pair from a FERPlus folder layout (each split's label.csv rows in order,
every PNG's pixels as a fer2013.csv row, plus one not-a-face row without an image name every
1,000 rows, as FERPlus marks them), then builds every split and label mode from both layouts
and prints, per pair: sample counts, whether targets and sampled pixels agree, the rows dropped
for having no image name, and the indexing time of each layout.

    python benchmarks/ferplus_published_layout.py --ferplus ../shared/data/ferplus
"""

from __future__ import annotations

import argparse
import csv
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from fer_nla.data import build_dataset

HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"
SPLITS = (("Training", "FER2013Train", "train"), ("PublicTest", "FER2013Valid", "valid"))
NOT_A_FACE = ",0,0,0,0,0,0,0,0,0,10\n"


def write_published(source: Path, out: Path) -> None:
    """The published pair of the folder layout at ``source``, written to ``out``."""
    with open(out / "fer2013.csv", "w") as pixels, open(out / "fer2013new.csv", "w") as votes:
        pixels.write("emotion,pixels,Usage\n")
        votes.write(HEADER)
        for usage, folder, _ in SPLITS:
            with open(source / folder / "label.csv", newline="") as handle:
                for i, row in enumerate(csv.reader(handle)):
                    gray = np.asarray(Image.open(source / folder / row[0]).convert("L")).reshape(-1)
                    pixels.write(f"0,{' '.join(map(str, gray))},{usage}\n")
                    votes.write(f"{usage},{row[0]},{','.join(row[2:])}\n")
                    if i % 1000 == 0:
                        pixels.write(f"0,{' '.join(['0'] * 2304)},{usage}\n")
                        votes.write(f"{usage},{NOT_A_FACE}")


def compare(folders: Path, published: Path) -> None:
    print(f"{'split':<6} {'labels':<13} {'folder':>7} {'csv':>7} {'targets':>8} {'pixels':>7} {'no name':>8} "
          f"{'folder s':>9} {'csv s':>6}")
    for _, _, split in SPLITS:
        for labels in ("majority", "plurality", "distribution", "single-vote"):
            start = time.perf_counter()
            a = build_dataset("ferplus", root=folders, split=split, labels=labels)
            middle = time.perf_counter()
            b = build_dataset("ferplus", root=published, split=split, labels=labels)
            end = time.perf_counter()
            same = np.array_equal(a.targets, b.targets)
            pixels = all(np.array_equal(np.asarray(a.load_image(i)), np.asarray(b.load_image(i)))
                         for i in range(0, len(a), 997))
            print(f"{split:<6} {labels:<13} {len(a):>7} {len(b):>7} {'equal' if same else 'DIFFER':>8} "
                  f"{'equal' if pixels else 'DIFFER':>7} {b.info['dropped_no_image_name']:>8} "
                  f"{middle - start:>9.1f} {end - middle:>6.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ferplus", required=True, help="the FERPlus folder layout (FER2013Train/, FER2013Valid/)")
    parser.add_argument("--workdir", default=None, help="where to write the pair (default: a temp folder)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fer-nla-ferplus-", dir=args.workdir))
    try:
        start = time.perf_counter()
        write_published(Path(args.ferplus), work)
        print(f"wrote {work} in {time.perf_counter() - start:.0f} s")
        compare(Path(args.ferplus), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
