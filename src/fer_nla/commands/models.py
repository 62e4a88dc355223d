"""``fer-nla models``: the built-in expression models shipped in the package; and the
``--checkpoint`` / ``--model`` pair that predict, eval and export share."""

from __future__ import annotations

import argparse
import json
from typing import Any

COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "NAME"), ("default", "DEFAULT"), ("num_classes", "CLASSES"), ("input", "INPUT"), ("summary", "SUMMARY"),
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the built-in expression models (used when no --checkpoint is given)",
        description=(
            "The expression models shipped inside fer-nla (nothing is downloaded): name, whether it is the "
            "default (what predict, eval and export use without --checkpoint or --model), its classes, the "
            "input it expects, a summary, its weight file and its model card (training data and terms, "
            "figures, limits). Select one with --model NAME, or in Python with Predictor.pretrained(NAME)."
        ),
        epilog="examples:\n  fer-nla models\n  fer-nla models --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--json", action="store_true", help="print one JSON list with an object per model")
    parser.set_defaults(func=run)


def add_model_arguments(parser: argparse.ArgumentParser, *, checkpoint_help: str) -> None:
    """``--checkpoint PATH`` and ``--model NAME``, mutually exclusive; with neither the command
    uses the built-in default model (:func:`fer_nla.builtin.choose_model`)."""
    from fer_nla.builtin import DEFAULT_MODEL

    group = parser.add_mutually_exclusive_group()
    group.add_argument("--checkpoint", help=f"{checkpoint_help} (default: the built-in model {DEFAULT_MODEL})")
    group.add_argument("--model", metavar="NAME",
                       help=f"a built-in model by name (default {DEFAULT_MODEL}; `fer-nla models` lists them)")


def run(args: argparse.Namespace) -> int:
    from fer_nla.builtin import builtin_models, describe_builtin

    rows = [describe_builtin(model.name) for model in builtin_models()]
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


def format_table(rows: list[dict[str, Any]]) -> str:
    """An aligned table of :func:`fer_nla.builtin.describe_builtin` rows (the default marked
    ``*``), each followed by its class names, weight file and model card."""
    cells = [[_cell(row, key) for key, _ in COLUMNS] for row in rows]
    widths = [max(len(title), *(len(line[i]) for line in cells)) for i, (_, title) in enumerate(COLUMNS)]
    lines = ["  ".join(title.ljust(width) for (_, title), width in zip(COLUMNS, widths)).rstrip()]
    for row, line in zip(rows, cells):
        lines.append("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip())
        card = row["card"] if row["card_exists"] else f"{row['card']} (missing)"
        lines += [f"  classes: {', '.join(row['class_names'])}", f"  weights: {row['file']}", f"  onnx:    {row['onnx']}",
                  f"  card:    {card}", f"  prior:   {prior_text(row)}"]
    return "\n".join(lines)


def _cell(row: dict[str, Any], key: str) -> str:
    if key == "default":
        return "*" if row["default"] else ""
    if key == "input":
        return f"{row['image_size']}x{row['image_size']} {'gray' if row['grayscale'] else 'RGB'}"
    return str(row[key])


def prior_text(row: dict) -> str:
    """The default operating point and temperature of a :func:`describe_builtin` row, in words."""
    prior = row["default_prior"]
    if not isinstance(prior, str):
        prior = "class shares " + ", ".join(f"{name} {share:.3f}" for name, share in zip(row["class_names"], prior))
    return f"default {prior} (--prior train|uniform|... for another), temperature {row['temperature']:.3f}"
