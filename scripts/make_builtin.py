"""Write a built-in model's package files: ``src/fer_nla/weights/NAME.pt`` from a training run,
and ``NAME.onnx``, the ONNX export of that checkpoint that prediction runs without PyTorch.

    python scripts/make_builtin.py runs/ferplus_model --name ferplus-resnet10s [--grayscale]
    python scripts/make_builtin.py --name ferplus-resnet10s      # the ONNX file of the shipped .pt only

The ONNX file is exported with :func:`fer_nla.predict.onnx_export.export_checkpoint` and checked
against the checkpoint (:func:`~fer_nla.predict.onnx_export.verify_export`).

Takes the run's ``best.pt`` (the epoch chosen on its validation split), keeps the weights in
float32 and the checkpoint's metadata (architecture, classes, preprocessing, the run's config,
epoch and validation metrics), blanks the machine-specific ``data.root`` and ``data.cache_dir``
of the saved config, and writes the file atomically with :func:`fer_nla.checkpoint.save_checkpoint`
(loadable with ``weights_only=True``). ``--grayscale`` records that the model expects gray faces
for a run that predates ``data.grayscale`` (its training images were all gray, as FERPlus's are).
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import replace
from pathlib import Path

import torch

from fer_nla.builtin import get_builtin
from fer_nla.checkpoint import load_checkpoint, read_meta, save_checkpoint
from fer_nla.predict.onnx_export import export_checkpoint, verify_export

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "src" / "fer_nla" / "weights"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, nargs="?", help="the run folder holding best.pt (omit: export the shipped .pt)")
    parser.add_argument("--name", required=True, help="the built-in model's name (fer_nla.builtin.BUILTIN_MODELS)")
    parser.add_argument("--grayscale", action="store_true", help="record that the model expects gray faces")
    args = parser.parse_args()
    model = get_builtin(args.name)
    if args.run is not None:
        write_checkpoint(args.run / "best.pt", WEIGHTS_DIR / model.file, grayscale=args.grayscale)
    onnx = export_checkpoint(WEIGHTS_DIR / model.file, WEIGHTS_DIR / model.onnx)
    diff = verify_export(WEIGHTS_DIR / model.file, onnx)
    print(f"wrote {onnx} ({onnx.stat().st_size / 1e6:.1f} MB; largest probability difference to the checkpoint {diff:.1e})")
    assert diff < 1e-5, diff


def write_checkpoint(source: Path, target: Path, *, grayscale: bool) -> None:
    """The run's ``best.pt`` as the package's float32 checkpoint ``target`` (see the module doc)."""
    payload = load_checkpoint(source)
    meta = read_meta(source)
    config = copy.deepcopy(meta.config)
    for key in ("root", "cache_dir"):
        if key in config.get("data", {}):
            config["data"][key] = None
    meta = replace(meta, config=config, grayscale=meta.grayscale or grayscale)
    state = {k: (v.float() if v.is_floating_point() else v).contiguous() for k, v in payload["state_dict"].items()}
    target = save_checkpoint(target, meta, state_dict=state)
    size = target.stat().st_size / 1e6
    params = sum(v.numel() for k, v in state.items() if v.is_floating_point() and "running" not in k)
    print(f"wrote {target} ({size:.1f} MB, {params / 1e6:.2f}M parameters; epoch {meta.epoch}, "
          f"val overall {100 * meta.metrics.get('val', {}).get('overall_acc', float('nan')):.2f}%, "
          f"grayscale {meta.grayscale})")
    assert torch.load(target, weights_only=True)["preprocess"]["grayscale"] == meta.grayscale


if __name__ == "__main__":
    main()
