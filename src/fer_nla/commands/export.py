"""``fer-nla export``: a checkpoint's model (or a built-in model) as an ONNX file for onnxruntime."""

from __future__ import annotations

import argparse

from fer_nla.commands.models import add_model_arguments

VERIFY_TOLERANCE = 1e-4  # largest accepted probability difference between PyTorch and onnxruntime


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a checkpoint to ONNX (dynamic batch, class names and preprocessing in the metadata)",
        description=(
            "Write the checkpoint's model as an ONNX file with a dynamic batch size; its class names and "
            "preprocessing (image_size, mean, std) go into the model's metadata, so "
            "`fer-nla predict --backend onnx --checkpoint model.onnx` needs nothing else. The export is "
            "checked by running both PyTorch and onnxruntime on the same random batch. Any failure is one "
            "line on stderr and exit status 2. Without --checkpoint or --model the built-in model is exported "
            "(`fer-nla models` lists them)."
        ),
        epilog=("examples:\n  fer-nla export --checkpoint runs/raf/best.pt              # writes runs/raf/best.onnx\n"
                "  fer-nla export --checkpoint runs/raf/best.pt --onnx raf.onnx\n"
                "  fer-nla export --model ferplus-resnet10s --onnx ferplus.onnx"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser, checkpoint_help="a fer-nla checkpoint (best.pt or last.pt)")
    parser.add_argument("--onnx", metavar="FILE",
                        help="where to write the ONNX model (default: beside the checkpoint, its name with .onnx; "
                             "NAME.onnx in this folder for a built-in model)")
    parser.add_argument("--opset", type=int, default=18,
                        help="ONNX opset version: 18 up to the newest the installed onnx package knows (default 18)")
    parser.add_argument("--no-verify", action="store_true", help="skip the PyTorch vs onnxruntime comparison")
    parser.set_defaults(func=run, spelling={"opset": "--opset {}"})


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fer_nla.builtin import choose_model
    from fer_nla.errors import InputError
    from fer_nla.predict.onnx_export import (
        default_onnx_path,
        export_checkpoint,
        verify_export,
    )

    chosen = choose_model(args.checkpoint, model=args.model)
    target = Path(args.onnx) if args.onnx else default_onnx_path(chosen.path, builtin=chosen.builtin)
    if target.is_dir():
        raise InputError(f"--onnx {target} is a folder: name the model file to write, e.g. {target / 'model.onnx'}")
    path = export_checkpoint(chosen.path, str(target), opset=args.opset)
    print(f"wrote {path} (model: {chosen.label})")
    if not args.no_verify:
        diff = verify_export(chosen.path, str(path))
        if diff > VERIFY_TOLERANCE:
            raise InputError(
                f"{path}: onnxruntime's probabilities differ from PyTorch's by {diff:.2e} (> {VERIFY_TOLERANCE}); "
                "try another --opset, or report the model architecture"
            )
        print(f"verified: onnxruntime and PyTorch probabilities differ by at most {diff:.1e}")
    return 0
