"""The ``fer-nla`` command line: a thin dispatcher over the subcommand modules.

Each subcommand lives in ``fer_nla.commands.<name>`` and exposes
``register(subparsers) -> None``; the parser it adds sets ``func`` to a callable
taking the parsed ``argparse.Namespace`` and returning an exit status. Modules are
imported only when the parser is built, so ``fer-nla --version`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from fer_nla import __version__
from fer_nla.errors import InputError

# Subcommand name -> module that registers it. Order is the order shown in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "fer_nla.commands.train",
    "fer_nla.commands.eval",
    "fer_nla.commands.data",
    "fer_nla.commands.predict",
    "fer_nla.commands.export",
    "fer_nla.commands.audit",
    "fer_nla.commands.bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fer-nla",
        description=(
            "Train, evaluate and run facial expression recognition models that stay "
            "accurate under ambiguous, noisy and imbalanced labels (NLA, AAAI 2025)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"fer-nla {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(func(args) or 0)
    except (InputError, FileNotFoundError) as err:
        print(f"fer-nla {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
