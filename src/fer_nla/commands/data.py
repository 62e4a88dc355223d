"""``fer-nla data stats`` and ``fer-nla data corrupt``: look at a dataset, or write a
reproducibly corrupted copy of its labels as a manifest CSV that training reads back."""

from __future__ import annotations

import argparse
import math
import json
import os
from typing import Any

from fer_nla.commands import DATASET_FLAGS, SEED_RANGE, add_option_argument, int_in, parse_options
from fer_nla.data.dataset import FERDataset
from fer_nla.data.corrupt import FIT_MODES, NOISE_KINDS, PAIR_SCHEMES, corrupt_dataset, pair_partners
from fer_nla.data.registry import available_datasets, build_dataset, typed_options
from fer_nla.data.sources.common import LABEL_MODES, RENAMED_MODES, SPLITS
from fer_nla.data.sources.manifest import write_manifest
from fer_nla.data.stats import dataset_stats
from fer_nla.errors import InputError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="dataset statistics and label corruption")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    stats = actions.add_parser("stats", help="sample count, count per class, imbalance ratio, noise rate")
    _dataset_arguments(stats)
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.set_defaults(func=run_stats, spelling=DATASET_FLAGS)

    corrupt = actions.add_parser("corrupt", help="write a manifest with seeded label noise and/or class imbalance")
    _dataset_arguments(corrupt)
    corrupt.add_argument("--noise", choices=NOISE_KINDS, help="kind of label noise")
    corrupt.add_argument("--rate", type=float, help="share of labels to move (exactly round(rate * N))")
    corrupt.add_argument("--pairs", choices=PAIR_SCHEMES, default="next",
                         help="pairwise partner of class k: next = k+1 mod C; confusable = FER's confused pairs")
    corrupt.add_argument("--imbalance", type=float, metavar="FACTOR",
                         help="subsample to an exponential profile with largest/smallest class = FACTOR")
    corrupt.add_argument("--fit", choices=FIT_MODES, default="exact",
                         help="exact: largest profile that fits every class; clip: keep the largest class whole")
    corrupt.add_argument("--out", required=True, help="manifest CSV to write")
    corrupt.add_argument("--json", action="store_true", help="print the result's statistics as one JSON object")
    corrupt.set_defaults(func=run_corrupt, spelling={**DATASET_FLAGS, "factor": "--imbalance {}", "fit": "--fit {}"})


def _dataset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", choices=available_datasets(), default="synthetic",
                        help="dataset format (default: the embedded synthetic faces)")
    parser.add_argument("--root", help="dataset folder or file (not needed for synthetic)")
    parser.add_argument("--split", default="train", help=f"one of {', '.join(SPLITS)}")
    parser.add_argument("--labels", choices=(*LABEL_MODES, *RENAMED_MODES), default="majority",
                        help="label mode (plurality, distribution and single-vote need FERPlus votes)")
    parser.add_argument("--num-classes", type=int, choices=(7, 8), help="7 (no contempt) or 8 classes")
    parser.add_argument("--seed", type=int_in(*SEED_RANGE), default=0, help="seed of single-vote draws, synthetic faces and corruption")
    parser.add_argument("--skip-bad-images", action="store_true",
                        help="decode every image when indexing; drop and count the undecodable ones")
    add_option_argument(parser)


def _source(args: argparse.Namespace) -> dict[str, Any]:
    """The ``build_dataset`` arguments these options stand for (recorded in manifests, with the
    reader's options typed: ``num_samples: 300``, not ``"300"``)."""
    options = typed_options(args.dataset, parse_options(args.option, spelling=DATASET_FLAGS))
    return {
        "dataset": args.dataset, "root": args.root, "split": args.split, "labels": args.labels,
        "num_classes": args.num_classes, "seed": args.seed, "options": options,
    }


def _build(source: dict[str, Any], skip_bad_images: bool) -> FERDataset:
    arguments = dict(source)
    return build_dataset(arguments.pop("dataset"), skip_bad_images=skip_bad_images,
                         **arguments.pop("options"), **arguments)


def _print_table(stats: dict[str, Any]) -> None:
    """The :func:`fer_nla.data.stats.dataset_stats` summary as text: counts per class (and clean
    counts where the dataset knows clean labels), imbalance over non-empty classes, the empty
    classes, the noise rate, and what the reader counted while building (e.g. FERPlus ``rows``)."""
    total = max(stats["num_samples"], 1)
    clean = stats.get("clean_class_counts")
    print(f"{stats['dataset']} {stats['split']}: {stats['num_samples']} samples, {stats['num_classes']} classes")
    print(f"{'class':<12}{'count':>8}{'share':>9}" + (f"{'clean':>8}" if clean else ""))
    for name, count in stats["class_counts"].items():
        print(f"{name:<12}{count:>8}{count / total:>9.2%}" + (f"{clean.get(name, 0):>8}" if clean else ""))
    ratio = stats["imbalance_ratio"]
    empty = stats.get("empty_classes") or []
    print(f"imbalance ratio (largest/smallest non-empty class): {'n/a' if ratio is None else f'{ratio:.2f}'}"
          + (f"; empty classes: {', '.join(empty)}" if empty else ""))
    noise = stats["noise_rate"]
    print(f"noise rate: {'unknown (no clean labels)' if noise is None else f'{noise:.2%}'}")
    for key, value in stats["info"].items():
        if key == "rows":
            print(f"label file rows: {value}")
        elif key.startswith(("dropped", "bad_images_dropped", "blended", "skipped", "boxes_clamped", "split_overlap")):
            print(f"{key.replace('_', ' ')}: {value}")


def run_stats(args: argparse.Namespace) -> int:
    stats = dataset_stats(_build(_source(args), args.skip_bad_images))
    if args.json:
        print(json.dumps(stats))
    else:
        _print_table(stats)
    return 0


def run_corrupt(args: argparse.Namespace) -> int:
    if args.noise is None and args.imbalance is None:
        raise InputError("data corrupt needs --noise {symmetric,pairwise} --rate R, or --imbalance FACTOR, or both")
    if args.noise is not None and args.rate is None:
        raise InputError(f"--noise {args.noise} needs --rate R (a share in [0, 1], e.g. --rate 0.2)")
    if args.rate is not None and not 0.0 <= args.rate <= 1.0:
        raise InputError(f"--rate {args.rate}: the noise rate must lie in [0, 1]")
    if not str(args.out).strip():
        raise InputError("--out is empty; name the manifest CSV to write, e.g. --out noisy.csv")
    if args.imbalance is not None and not math.isfinite(args.imbalance):
        raise InputError(f"--imbalance {args.imbalance}: the factor must be a finite number >= 1")
    if args.imbalance is not None and args.imbalance < 1.0:
        raise InputError(f"--imbalance {args.imbalance}: the factor is largest/smallest class and must be >= 1")
    if args.labels == "distribution":  # a manifest holds one label per image: the distributions would be lost
        raise InputError(
            "data corrupt writes one label per image, so --labels distribution's vote distributions cannot be "
            "written; use --labels plurality (each distribution's top label) or --labels majority"
        )
    source = _source(args)
    dataset = _build(source, args.skip_bad_images)
    partners = pair_partners(dataset.num_classes, scheme=args.pairs) if args.noise == "pairwise" else None
    result = corrupt_dataset(dataset, seed=args.seed, noise=args.noise, rate=args.rate or 0.0,
                             imbalance=args.imbalance, partners=partners, fit=args.fit)
    path = write_manifest(args.out, result, source=_absolute(source))
    stats = dataset_stats(result)
    if args.json:
        print(json.dumps({**stats, "manifest": str(path), "noisy": int((result.targets != result.clean_targets).sum())}))
    else:
        _print_table(stats)
        corruption = result.info["corruption"]
        moved = corruption["moved"]
        if corruption["imbalance_achieved"] is not None:
            print(f"imbalance asked {args.imbalance:g} (--fit {args.fit}), kept {corruption['imbalance_achieved']:.3g}"
                  + (": classes rarer than their target stay whole" if args.fit == "clip" else ""))
        print(f"labels moved by this corruption: {moved} of {len(result)} ({moved / max(len(result), 1):.2%})")
        print(f"wrote {len(result)} rows to {path}")
    return 0


def _absolute(source: dict[str, Any]) -> dict[str, Any]:
    """The source with an absolute root, so the manifest can be read from any folder."""
    if source["root"] is not None:
        source = {**source, "root": os.path.abspath(os.path.expanduser(str(source["root"])))}
    return source
