"""``fer-nla eval``: every metric of a checkpoint (or an exported ONNX model) on a dataset split,
printed and saved."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fer_nla.commands import DATASET_FLAGS, add_option_argument, add_scoring_arguments, int_in, parse_options
from fer_nla.commands.models import add_model_arguments
from fer_nla.evaluate import EVAL_KEYS, evaluate_checkpoint

# How eval's user spells the options library errors name by keyword (see fer_nla.cli.spell_options);
# the class count and the seed are the checkpoint's.
SPELLING: dict[str, str] = {
    **{k: v for k, v in DATASET_FLAGS.items() if k not in ("num_classes", "seed")}, "device": "--device {}",
    "prior": "--prior {}",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint on a dataset split",
        description=(
            "Overall, mean-class and top-2 accuracy, per-class accuracy, macro-F1, mAP and the confusion "
            "matrix (rows = true class, in class_names order) of a checkpoint on one split. The dataset, "
            "its root and options default to those the checkpoint was trained with. An ONNX model from "
            "`fer-nla export` is scored with onnxruntime through the preprocessing its metadata states. "
            "Without --checkpoint or --model the built-in model is scored (`fer-nla models` lists them); its "
            "metrics file goes to the current folder unless --output says where."
        ),
        epilog=("examples:\n  fer-nla eval --checkpoint runs/raf/best.pt --dataset rafdb --root /data/RAF-DB --split test --json\n"
                "  fer-nla eval --dataset ferplus --root /data/ferplus --split valid   # the built-in model"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser, checkpoint_help="best.pt or last.pt of a run folder, or an ONNX model from "
                        "`fer-nla export` (scored with onnxruntime; it records no data, so --dataset is needed)")
    parser.add_argument("--dataset", help="dataset name (default: the checkpoint's)")
    parser.add_argument("--root", help="dataset folder (default: the checkpoint's)")
    parser.add_argument("--split", default="test", help="split to evaluate (default test)")
    parser.add_argument("--labels", help="label kind, e.g. majority (default: majority)")
    parser.add_argument("--batch-size", type=int_in(1), default=256, help="images per forward (default 256)")
    parser.add_argument("--num-workers", type=int_in(0, 64), default=0, help="data-loading processes (default 0)")
    parser.add_argument("--skip-bad-images", action=argparse.BooleanOptionalAction, default=None,
                        help="decode every image first; drop and count the undecodable ones instead of failing "
                             "(default: the checkpoint's data.skip_bad_images when evaluating its dataset)")
    parser.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda, mps")
    add_option_argument(parser)
    add_scoring_arguments(parser)
    parser.add_argument("--output", help="where to save the metrics JSON (default: beside the checkpoint; for a "
                                         "built-in model, the current folder)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.set_defaults(func=run, spelling=SPELLING)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fer_nla.builtin import choose_model
    from fer_nla.inference.scoring import parse_prior
    from fer_nla.metrics import format_report

    chosen = choose_model(args.checkpoint, model=args.model)
    result = evaluate_checkpoint(
        str(chosen.path), dataset=args.dataset, root=args.root, split=args.split, labels=args.labels,
        batch_size=args.batch_size, num_workers=args.num_workers, device_name=args.device,
        skip_bad_images=args.skip_bad_images, options=parse_options(args.option, spelling=SPELLING),
        prior=parse_prior(args.prior), calibrated=not args.uncalibrated,
    )
    dataset, split = result["dataset"], result["split"]  # split canonical: --split val -> valid
    name = f"eval_{chosen.path.stem}_{dataset}_{split}.json"  # a built-in model's: not inside the package
    output = Path(args.output) if args.output else Path(name) if chosen.builtin else chosen.path.with_name(name)
    payload = {key: result[key] for key in EVAL_KEYS}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2) + "\n")
    if args.json:
        print(json.dumps(payload))
        print(f"saved {output}", file=sys.stderr)
    else:
        print(f"{chosen.label} on {dataset} {split}")
        print(format_report(result))
        print(_scoring_lines(result))
        print(_drop_line(result))
        print(f"saved {output}")
    return 0


def _scoring_lines(result: dict[str, Any]) -> str:
    """The calibration and the accuracy at each prior, for the text output."""
    ece = result["ece"]
    lines = [f"calibration: expected calibration error {100 * ece['before']:.2f}% uncalibrated, "
             f"{100 * ece['after']:.2f}% at the model's temperature {ece['temperature']:.3f} ({ece['bins']} bins)"]
    for name, point in result["operating_points"].items():
        lines.append(f"prior {name}: overall {100 * point['overall_acc']:.2f}%, mean-class {100 * point['mean_acc']:.2f}%")
    return "\n".join(lines)


def _drop_line(result: dict[str, Any]) -> str:
    """``scored N samples; dropped M: reason K, ...`` for the text output."""
    dropped = result["dropped"]
    total = sum(dropped.values())
    if not total:
        return f"scored {result['num_samples']} samples; dropped none"
    reasons = ", ".join(f"{reason}: {count}" for reason, count in dropped.items())
    return f"scored {result['num_samples']} samples; dropped {total} ({reasons})"
