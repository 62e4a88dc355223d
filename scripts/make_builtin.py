"""Write a built-in model's package files: ``src/fer_nla/weights/NAME.pt`` from a training run,
and ``NAME.onnx``, the ONNX export of that checkpoint that prediction runs without PyTorch.

    python scripts/make_builtin.py runs/ferplus_model --name ferplus-resnet10s [--grayscale]
    python scripts/make_builtin.py --name ferplus-resnet10s      # the ONNX file of the shipped .pt only
    python scripts/make_builtin.py --name ferplus-resnet10s --data-root ../shared/data/ferplus   # + scoring

With ``--data-root`` (the training data, where the run's config read it) the checkpoint's
``scoring`` entry is written first (:func:`fer_nla.train.scoring_record.record_scoring`): the
class prior of the targets the run trained on, the logit offset of its loss, the temperature
fitted on the validation split it chose its epoch on, and with ``--default-tau`` the default
operating point.

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
    parser.add_argument("--data-root", type=Path, help="the training data: record the class prior, logit offset "
                        "and temperature")
    parser.add_argument("--default-tau", type=float, help="with --data-root: the default operating point, the "
                        "prior pi ** (1 - tau) (0: train, 1: uniform)")
    args = parser.parse_args()
    if args.default_tau is not None and args.data_root is None:
        parser.error("--default-tau is recorded with the scoring entry: give --data-root too")
    model = get_builtin(args.name)
    if args.run is not None:
        write_checkpoint(args.run / "best.pt", WEIGHTS_DIR / model.file, grayscale=args.grayscale)
    if args.data_root is not None:
        write_scoring(WEIGHTS_DIR / model.file, data_root=args.data_root, default_tau=args.default_tau)
    onnx = export_checkpoint(WEIGHTS_DIR / model.file, WEIGHTS_DIR / model.onnx)
    diff = verify_export(WEIGHTS_DIR / model.file, onnx)
    print(f"wrote {onnx} ({onnx.stat().st_size / 1e6:.1f} MB; largest probability difference to the checkpoint {diff:.1e})")
    assert diff < 1e-5, diff


def write_scoring(checkpoint: Path, *, data_root: Path, default_tau: float | None) -> None:
    """Record the checkpoint's scoring entry (:func:`fer_nla.train.scoring_record.record_scoring`)
    from the data its config names, at ``data_root``; the weights stay as they are."""
    from fer_nla.train.scoring_record import record_scoring

    meta = read_meta(checkpoint)
    figures = record_scoring(checkpoint, data_root=data_root, default_tau=default_tau)
    prior = ", ".join(f"{name} {share:.4f}" for name, share in zip(meta.class_names, figures["class_prior"]))
    default = figures["default_prior"]
    default = default if isinstance(default, str) else ", ".join(f"{v:.4f}" for v in default)
    print(f"recorded in {checkpoint}: class prior {prior}; logit offset {figures['logit_offset']}; default prior "
          f"{default}; temperature {figures['temperature']:.4f} on {figures['num_faces']} validation faces "
          f"(ECE {100 * figures['ece']:.2f}% -> {100 * figures['ece_calibrated']:.2f}%)")


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
