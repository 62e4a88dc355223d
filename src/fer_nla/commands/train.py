"""``fer-nla train``: train a model into a run folder (also under ``torchrun`` for DDP)."""

from __future__ import annotations

import argparse
from typing import Any

from fer_nla.commands import DATASET_KEYS, add_option_argument, parse_options

# Shortcut flags -> config keys; they apply before the positional key=value overrides.
SHORTCUTS: tuple[tuple[str, str, Any, str], ...] = (
    ("--dataset", "data.dataset", str, "dataset name (default synthetic: the embedded demo set)"),
    ("--root", "data.root", str, "dataset folder"),
    ("--labels", "data.labels", str, "label kind, e.g. majority or single-vote (FERPlus)"),
    ("--num-classes", "data.num_classes", int, "7 or 8 where the dataset offers both"),
    ("--loss", "loss.name", str, "loss name (nla, ce, focal, ...)"),
    ("--epochs", "train.epochs", int, "number of epochs"),
    ("--batch-size", "train.batch_size", int, "batch size per process"),
    ("--lr", "optim.lr", float, "learning rate"),
    ("--device", "train.device", str, "auto (cuda, else mps, else cpu), cpu, cuda, cuda:1, mps"),
    ("--seed", "train.seed", int, "random seed"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a model (NLA by default) into a run folder",
        description=(
            "Train an expression classifier. With no dataset it trains on the embedded synthetic set in a "
            "few minutes on a CPU. The run folder gets config.yaml, metrics.jsonl, best.pt (best epoch on "
            "the validation split), last.pt (for --resume), signals.npz, report.md and TensorBoard files. "
            "For several GPUs or nodes: torchrun --nproc_per_node=N -m fer_nla train ..."
        ),
        epilog="examples:\n  fer-nla train --out runs/demo\n"
               "  fer-nla train --config configs/rafdb_nla.yaml --out runs/raf data.root=/data/RAF-DB optim.lr=2e-4\n"
               "  fer-nla train --out runs/raf --resume",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", help="YAML config file (see configs/)")
    parser.add_argument("--out", required=True, help="run folder to create (or to continue with --resume)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")
    for flag, _key, kind, text in SHORTCUTS:
        parser.add_argument(flag, type=kind, help=f"{text} (= {_key})")
    parser.add_argument("--deterministic", action=argparse.BooleanOptionalAction, default=None,
                        help="deterministic kernels (slower); = train.deterministic")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (= train.progress=false)")
    add_option_argument(parser)  # -o KEY=VALUE = data.options.KEY=VALUE, as in data stats and eval
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides with dotted keys, e.g. optim.lr=3e-4 loss.options.lam_a=0.3")
    parser.set_defaults(func=run, spelling=SPELLING)


# How train's user spells the options library errors name by keyword (see fer_nla.cli.spell_options);
# run() adds device as the user gave it (--device or train.device=).
SPELLING: dict[str, str] = {
    **DATASET_KEYS, "root": "--root {}", "labels": "--labels {}", "num_classes": "--num-classes {}",
    "seed": "--seed {}", "resume": "--resume", "out": "--out {}", "device": "train.device={}",
}


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    """The shortcut flags as ``key=value`` strings, then each ``-o KEY=VALUE`` as
    ``data.options.KEY=VALUE``, then the positional overrides (so those win). Raises
    :class:`InputError` for a ``-o`` pair that is not ``KEY=VALUE`` or sets an argument every
    dataset has (``-o root=...``: naming ``--root``)."""
    items = []
    for flag, key, _kind, _text in SHORTCUTS:
        value = getattr(args, flag.lstrip("-").replace("-", "_"))
        if value is not None:
            items.append(f"{key}={value}")
    if args.deterministic is not None:
        items.append(f"train.deterministic={str(args.deterministic).lower()}")
    if args.no_progress:
        items.append("train.progress=false")
    pairs = getattr(args, "option", None) or []
    parse_options(pairs, spelling=SPELLING)  # checked as data stats and eval check them
    for pair in pairs:
        key, _sep, value = pair.partition("=")
        items.append(f"data.options.{key.strip()}={value}")
    return items + list(args.overrides)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fer_nla.config import load_config
    from fer_nla.errors import InputError
    from fer_nla.train.fit import fit
    from fer_nla.runtime import resolve_device

    typed = any(item.strip().startswith("train.device=") for item in args.overrides)  # overrides win over --device
    args.spelling = {**SPELLING, "device": "--device {}" if args.device is not None and not typed else "train.device={}"}

    config_path = args.config
    if args.resume:
        saved = Path(args.out) / "config.yaml"
        if args.config:
            raise InputError("--resume continues with the run's own config.yaml; drop --config (overrides still apply)")
        if not saved.is_file():
            raise InputError(f"--resume: {saved} does not exist; is --out the folder of an earlier run?")
        config_path = saved
    config = load_config(config_path, overrides_from_args(args))
    resolve_device(config.train.device)  # before the run folder is made: a device this machine lacks
    fit(config, args.out, resume=args.resume)
    return 0
