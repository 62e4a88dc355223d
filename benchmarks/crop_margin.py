"""Which crop margin gives a model the framing it was trained on: FERPlus valid faces through
the whole-photo path (detector, margin crop, classifier), against the faces fed directly.

Each FERPlus valid face (majority labels; 48x48 gray) is upscaled ``--upscale`` times (bicubic)
and pasted at the centre of a 640x480 grey photo with mild pixel noise; ``Predictor`` finds the
face with the default detector, widens the box by the margin on every side into a square crop
and classifies it. Accuracy is over all faces (a photo whose face is not found counts as wrong),
so a margin that frames faces as FER2013 does scores closest to the direct figure.

    python benchmarks/crop_margin.py --root ../shared/data/ferplus --margins 0 0.05 0.1 0.2
    python benchmarks/crop_margin.py --root ... --checkpoint runs/x/best.pt --count 1000
"""

from __future__ import annotations

import argparse
import shlex
import sys

import numpy as np
from PIL import Image

from fer_nla.builtin import DEFAULT_MODEL, choose_model
from fer_nla.data.registry import build_dataset
from fer_nla.predict.predictor import Predictor

CANVAS = (480, 640)  # height, width


def photo_of(face: Image.Image, *, upscale: int, rng: np.random.Generator) -> np.ndarray:
    """``uint8 [480, 640, 3]``: the face upscaled and centred on grey N(128, 8) noise."""
    height, width = CANVAS
    photo = np.clip(rng.normal(128, 8, size=(height, width, 3)), 0, 255).astype(np.uint8)
    side = face.width * upscale
    big = np.asarray(face.convert("RGB").resize((side, side), Image.BICUBIC))
    top, left = (height - side) // 2, (width - side) // 2
    photo[top:top + side, left:left + side] = big
    return photo


def score(predictor: Predictor, faces: list[Image.Image], targets: np.ndarray, *, upscale: int,
          seed: int) -> tuple[float, float]:
    """(accuracy over all faces, share of photos with a face found) through the photo path."""
    rng = np.random.default_rng(seed)
    correct = found = 0
    for face, target in zip(faces, targets):
        preds = predictor.predict(photo_of(face, upscale=upscale, rng=rng))[0]
        if not preds:
            continue
        found += 1
        best = max(preds, key=lambda p: -1.0 if p.score is None else p.score)
        correct += int(predictor.class_names.index(best.label) == int(target))
    return correct / len(faces), found / len(faces)


def direct(predictor: Predictor, faces: list[Image.Image], targets: np.ndarray) -> float:
    """Accuracy of the faces fed as they are (``faces_cropped``)."""
    probs = predictor.probabilities([np.asarray(f.convert("RGB")) for f in faces])
    return float((probs.argmax(axis=1) == targets).mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="the FERPlus folder (FER2013Valid/ inside)")
    parser.add_argument("--checkpoint", default=None, help=f"a fer-nla checkpoint (default: built-in {DEFAULT_MODEL})")
    parser.add_argument("--margins", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2])
    parser.add_argument("--count", type=int, default=800, help="valid faces used (seeded choice)")
    parser.add_argument("--upscale", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = build_dataset("ferplus", root=args.root, split="valid", labels="majority")
    chosen = np.sort(np.random.default_rng(args.seed).choice(len(data), size=min(args.count, len(data)), replace=False))
    faces = [Image.open(data.samples[i]).copy() for i in chosen]
    targets = np.asarray(data.targets)[chosen]
    model = choose_model(args.checkpoint)
    lines = [f"`python benchmarks/crop_margin.py {shlex.join(sys.argv[1:] if argv is None else argv)}`", "",
             f"model: {model.label}; {len(faces)} FERPlus valid faces (majority labels), {args.upscale}x upscaled on a "
             f"640x480 grey photo", "", "| crop | accuracy | faces found |", "|---|---:|---:|"]
    base = Predictor.load(str(model.path), device="cpu")
    lines.append(f"| the 48x48 face itself (no detector) | {100 * direct(base, faces, targets):.2f}% | - |")
    for margin in args.margins:
        predictor = Predictor.load(str(model.path), device="cpu", margin=margin)
        acc, found = score(predictor, faces, targets, upscale=args.upscale, seed=args.seed)
        lines.append(f"| detector box + margin {margin:g} | {100 * acc:.2f}% | {100 * found:.1f}% |")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
