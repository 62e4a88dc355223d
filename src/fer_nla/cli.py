"""The ``fer-nla`` command line: a thin dispatcher over the subcommand modules.

Each subcommand lives in ``fer_nla.commands.<name>`` and exposes
``register(subparsers) -> None``; the parser it adds sets ``func`` to a callable
taking the parsed ``argparse.Namespace`` and returning an exit status. Modules are
imported only when the parser is built, so ``fer-nla --version`` stays fast.

Library errors name an option by its Python keyword (``root=...``, ``split='train'``,
``skip_bad_images=True``, ``device='mps'``); a subcommand states how its own user spells each
one (``parser.set_defaults(spelling={...})``) and :func:`spell_options` rewrites the message
before it is printed, so every hint names an option the running command accepts.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Mapping, Sequence

from fer_nla import __version__
from fer_nla.errors import InputError
from fer_nla.extras import missing_module_message, torch_pair_message

# Subcommand name -> module that registers it. Order is the order shown in --help.
COMMAND_MODULES: tuple[str, ...] = (
    "fer_nla.commands.train",
    "fer_nla.commands.eval",
    "fer_nla.commands.data",
    "fer_nla.commands.predict",
    "fer_nla.commands.models",
    "fer_nla.commands.export",
    "fer_nla.commands.audit",
    "fer_nla.commands.bench",
    "fer_nla.commands.serve",
)


# A Python keyword option in a message: ``name=...`` (value unknown), a quoted string, a bool,
# None or a number; not part of a dotted config key (``data.root=``) or a longer word.
_KEYWORD = re.compile(
    r"(?<![\w.])(?P<key>[a-z][a-z_]*)=(?P<value>\.\.\.|'[^']*'|\"[^\"]*\"|True|False|None|-?\d+(?:\.\d+)?)"
)
# What stands for a value the message leaves open (``root=...`` -> ``--root PATH``).
PLACEHOLDERS: dict[str, str] = {"root": "PATH", "split": "SPLIT", "labels": "MODE", "num_classes": "N",
                                "device": "DEVICE", "seed": "SEED", "out": "DIR"}


def spell_options(message: str, spelling: Mapping[str, str]) -> str:
    """``message`` with each ``keyword=value`` whose keyword ``spelling`` knows rewritten in the
    command's spelling: a template where ``{}`` takes the value (unquoted; ``...`` becomes a
    placeholder such as ``PATH``; booleans ``true``/``false``), e.g. ``{"root": "--root {}"}``
    turns ``pass root=...`` into ``pass --root PATH``. Other text is left as it is."""

    def rewrite(match: re.Match[str]) -> str:
        key, value = match["key"], match["value"]
        template = spelling.get(key)
        if template is None:
            return match[0]
        if value == "...":
            value = PLACEHOLDERS.get(key, key.upper())
        elif value[0] in "'\"":
            value = value[1:-1]
        elif value in ("True", "False", "None"):
            value = {"True": "true", "False": "false", "None": "null"}[value]
        return template.format(value)

    return _KEYWORD.sub(rewrite, message)


def worker_message(text: str) -> str:
    """The user's message of an error raised in a DataLoader worker process: PyTorch re-raises it
    in the main process with the worker's whole traceback in front ("Caught InputError in
    DataLoader worker process 0. Original Traceback ..."); only the message is kept."""
    if "Original Traceback" not in text:
        return text
    _, found, message = text.rpartition("InputError: ")
    return message.strip() if found else text


def os_error_message(err: OSError) -> str:
    """One line for an operating-system error: the path, what the system said, and the fix."""
    where = err.filename if err.filename is not None else "a file"
    also = f" -> {err.filename2}" if getattr(err, "filename2", None) else ""
    reason = (err.strerror or str(err)).lower()
    return f"{where}{also}: {reason}; check that the path is right and that you may read (and write) it"


def shorten_lines(message: str, *, limit: int = 1000) -> str:
    """``message`` with each line longer than ``limit`` characters shortened in its middle, at
    word boundaries, saying how much was left out (a 5 MB label echoed back helps nobody)."""
    lines = []
    for line in message.splitlines() or [message]:
        if len(line) > limit:
            head = line[: limit // 2].rsplit(" ", 1)[0]
            tail = line[-(limit // 2):].split(" ", 1)[-1]
            line = f"{head} ... ({len(line) - len(head) - len(tail)} characters left out) ... {tail}"
        lines.append(line)
    return "\n".join(lines)


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
    args, extra = parser.parse_known_args(argv)
    if extra:  # KEY=VALUE overrides written after an option (`--epochs 1 optim.lr=3e-4`) are overrides too
        if not hasattr(args, "overrides") or any(item.startswith("-") or "=" not in item for item in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(func(args) or 0)
    except (InputError, FileNotFoundError) as err:
        message = spell_options(worker_message(str(err)), getattr(args, "spelling", None) or {})
        print(f"fer-nla {args.command}: error: {shorten_lines(message)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a second Ctrl-C, or one where no command catches it: one line, no traceback
        resume = " (its last finished epoch is saved: go on with --resume)" if args.command == "train" else ""
        print(f"fer-nla {args.command}: stopped by Ctrl-C{resume}", file=sys.stderr)
        return 130  # 128 + SIGINT, as shells report it
    except BrokenPipeError:  # output piped into `head` that closed early: not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # Python's final flush must not fail again
        return 141  # 128 + SIGPIPE, as shells report it
    except ModuleNotFoundError as err:  # an optional part (the train or serve extra) is not installed
        message = missing_module_message(err, command=args.command)
        if message is None:
            raise
        print(f"fer-nla {args.command}: error: {message}", file=sys.stderr)
        return 2
    except OSError as err:  # permission denied, a folder where a file belongs, a full disk...
        print(f"fer-nla {args.command}: error: {os_error_message(err)}", file=sys.stderr)
        return 2
    except RuntimeError as err:  # torchvision built for another torch: one line, not its traceback
        message = torch_pair_message(err)
        if message is None:
            raise
        print(f"fer-nla {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
