"""Subcommands of the ``fer-nla`` command line, one module each (see ``fer_nla.cli``).

Each subcommand's parser sets ``spelling``: how its user spells the options that library
errors name by Python keyword (``root=...`` -> ``--root PATH`` or ``data.root=PATH``); see
:func:`fer_nla.cli.spell_options`.
"""

from __future__ import annotations

import argparse

# A reader's own options (beyond root/split/labels/...), given as ``-o KEY=VALUE`` on the command
# line and as ``data.options.KEY=VALUE`` in train configs.
READER_OPTIONS: tuple[str, ...] = ("conflicts", "allow_split_overlap", "crop", "keep_unresolved", "images_dir")
# The commands that read a dataset from flags (data stats/corrupt, eval).
DATASET_FLAGS: dict[str, str] = {"root": "--root {}", "split": "--split {}", "labels": "--labels {}",
                                 "num_classes": "--num-classes {}", "skip_bad_images": "--skip-bad-images",
                                 "seed": "--seed {}", "dataset": "--dataset {}",
                                 **{key: f"-o {key}={{}}" for key in READER_OPTIONS}}
# The commands that read it from config keys (bench, audit; train has shortcut flags for some).
DATASET_KEYS: dict[str, str] = {"root": "data.root={}", "split": "data.train_split={}", "labels": "data.labels={}",
                                "num_classes": "data.num_classes={}", "skip_bad_images": "data.skip_bad_images={}",
                                "seed": "train.seed={}", "dataset": "data.dataset={}",
                                **{key: f"data.options.{key}={{}}" for key in READER_OPTIONS}}


def int_in(low: int, high: int | None = None):  # noqa: ANN201 - an argparse type
    """An argparse ``type``: an integer in ``low..high`` (no upper bound when ``high`` is None),
    so ``--batch-size 0`` or ``--seed -1`` is a usage error naming the flag, never a library's."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            upper = f"..{high}" if high is not None else " or more"
            raise argparse.ArgumentTypeError(f"{value} is outside {low}{upper}")
        return value

    return parse


SEED_RANGE = (0, 2**32 - 1)


def add_option_argument(parser: argparse.ArgumentParser) -> None:
    """``-o/--option KEY=VALUE``: a dataset reader's own option (repeatable)."""
    parser.add_argument("-o", "--option", action="append", default=[], metavar="KEY=VALUE",
                        help="dataset option, e.g. num_samples=2000 (synthetic), conflicts=drop, "
                             "allow_split_overlap=true, crop=never, images_dir=... (affectnet)")


def add_scoring_arguments(parser: argparse.ArgumentParser) -> None:
    """``--prior`` and ``--uncalibrated``: the operating point of the probabilities
    (:mod:`fer_nla.inference.scoring`), shared by predict, eval and serve."""
    parser.add_argument("--prior", default="default", metavar="PRIOR",
                        help="class prior the probabilities assume: default (the one the model records as its "
                             "default; `fer-nla models` and the model card say which), train (the model's training "
                             "data), uniform (every expression equally likely: balanced decisions), or "
                             "comma-separated proportions, one per class in the model's order")
    parser.add_argument("--uncalibrated", action="store_true",
                        help="leave out the temperature fitted on the model's validation split (the labels stay "
                             "the same; the probabilities are less reliable as confidences)")


# Arguments every reader takes: given by the commands' own flags, never by ``-o``.
COMMON_KEYS: tuple[str, ...] = ("root", "split", "labels", "num_classes", "seed", "skip_bad_images")


def parse_options(pairs: list[str], *, spelling: dict[str, str] | None = None) -> dict[str, str]:
    """``-o`` pairs as a dict of their texts (``["num_samples=2000"]`` -> ``{"num_samples":
    "2000"}``). The values stay text here: the dataset's reader declares their types, and
    :func:`fer_nla.data.registry.typed_options` converts them (``"2000"`` -> 2000 for an
    ``int``, ``"true"`` -> True for a ``bool``), as it converts ``data.options`` of a config.

    Raises:
        InputError: a pair without ``=`` or without a key, or a key of :data:`COMMON_KEYS`
            (naming the command's own flag for it from ``spelling``, where it has one).
    """
    from fer_nla.errors import InputError

    options: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--option {pair!r}: expected KEY=VALUE, e.g. num_samples=2000")
        key = key.strip()
        if key in COMMON_KEYS:
            flag = (spelling or {}).get(key)
            fix = f"use {flag.format(value.strip())}" if flag else "this command takes it from the checkpoint's config"
            raise InputError(f"-o {key} sets an argument every dataset has, not a reader option: {fix}")
        options[key] = value.strip()
    return options
