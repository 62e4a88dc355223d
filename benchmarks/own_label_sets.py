"""Two noisy label sets of our own for FERPlus train, as CSVs (image,label) that
``bench.label_sets`` takes: noise the grid's built-in settings never draw.

- ``runner_up``: annotator ambiguity. For ``--rate`` of the faces whose votes hold a second
  emotion with at least 2 votes (one vote is FERPlus's outlier), the label is that runner-up
  emotion: instance-dependent noise between the two expressions people confused on that face.
- ``to_neutral``: majority-class drift. ``--rate`` of the faces of every emotion but neutral
  (drawn per class) are labelled neutral: the bias a model that calls posed anger "neutral" learns.

Every other face keeps its majority label; faces without one (FERPlus's rule) are left out. A
tie between runner-up emotions goes to the lower class index (neutral first, numpy's argmax): 419
of the 9,856 faces eligible on FERPlus train have one, so part of ``runner_up`` also drifts to neutral.

    python benchmarks/own_label_sets.py --root /path/to/ferplus --out runs/own_labels
    fer-nla bench regime --config benchmarks/identity_regime.yaml --no-ablation --out runs/identity-own \\
        data.root=/path/to/ferplus bench.label_sets.runner_up=runs/own_labels/runner_up.csv \\
        bench.label_sets.to_neutral=runs/own_labels/to_neutral.csv "bench.settings=[runner_up,to_neutral]"
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from fer_nla.data.votes import NUM_EMOTION_COLUMNS, drop_outlier_votes, majority_labels
from fer_nla.labels import EMOTIONS

NEUTRAL = 0


def read_votes(root: Path) -> tuple[list[str], np.ndarray]:
    """FER2013Train/label.csv: image names and ``int64 [N, 10]`` votes."""
    names, votes = [], []
    with open(root / "FER2013Train" / "label.csv", newline="") as handle:
        for row in csv.reader(handle):
            if row and row[0].strip():
                names.append(row[0].strip())
                votes.append([int(v) for v in row[2:12]])
    return names, np.asarray(votes, dtype=np.int64)


def runner_up(votes: np.ndarray, majority: np.ndarray, *, rate: float, seed: int) -> np.ndarray:
    """Majority labels with ``rate`` of the faces that have a runner-up emotion (2+ votes, after
    the majority class) moved to it."""
    counts = drop_outlier_votes(votes)[:, :NUM_EMOTION_COLUMNS].copy()
    counts[np.arange(len(counts)), np.maximum(majority, 0)] = 0
    second = counts.argmax(axis=1)
    eligible = np.flatnonzero((majority >= 0) & (counts.max(axis=1) >= 2))
    moved = np.random.default_rng(seed).choice(eligible, size=round(rate * len(eligible)), replace=False)
    labels = majority.copy()
    labels[moved] = second[moved]
    return labels


def to_neutral(majority: np.ndarray, *, rate: float, seed: int) -> np.ndarray:
    """Majority labels with ``rate`` of each non-neutral class (rounded per class) labelled neutral."""
    rng, labels = np.random.default_rng(seed), majority.copy()
    for k in range(1, NUM_EMOTION_COLUMNS):
        members = np.flatnonzero(majority == k)
        labels[rng.choice(members, size=round(rate * len(members)), replace=False)] = NEUTRAL
    return labels


def write(path: Path, names: list[str], labels: np.ndarray, majority: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = np.flatnonzero(labels >= 0)
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["image", "label"])
        out.writerows([names[i], EMOTIONS[labels[i]].lower()] for i in kept)
    wrong = float(np.mean(labels[kept] != majority[kept]))
    return f"{path}: {len(kept):,} faces, {wrong:.1%} labels differ from the majority"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, required=True, help="FERPlus root (FER2013Train/label.csv)")
    parser.add_argument("--out", type=Path, required=True, help="folder for runner_up.csv and to_neutral.csv")
    parser.add_argument("--rate", type=float, default=0.4,
                        help="share of the eligible faces relabelled, in (0, 1] (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the faces drawn (default %(default)s)")
    args = parser.parse_args(argv)
    if not 0 < args.rate <= 1:
        parser.error(f"--rate {args.rate:g} is not a share: give a number in (0, 1], e.g. 0.4")
    if not (args.root / "FER2013Train" / "label.csv").is_file():
        parser.error(f"{args.root / 'FER2013Train' / 'label.csv'} does not exist: --root is the FERPlus folder that holds "
                     "FER2013Train/label.csv (the ten votes per image)")
    names, votes = read_votes(args.root)
    majority = majority_labels(votes)
    print(write(args.out / "runner_up.csv", names, runner_up(votes, majority, rate=args.rate, seed=args.seed), majority))
    print(write(args.out / "to_neutral.csv", names, to_neutral(majority, rate=args.rate, seed=args.seed), majority))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
