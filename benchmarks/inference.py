"""Inference speed on this machine: faces per second for PyTorch and onnxruntime at batch 1
and 32 (ResNet-18 at the recipe's image sizes), and face-detector time per photo.

    python benchmarks/inference.py                    # sizes 224 and 48, 640x480 photo
    python benchmarks/inference.py --sizes 112 --seconds 5
    python benchmarks/inference.py --threads 1        # on a busy machine: no thread oversubscription

Prints markdown tables; the onnxruntime/PyTorch ratio is measured in the same run. Random
weights: speed does not depend on them. The detector photo holds real FERPlus faces when the
data is present (``FER_NLA_FERPLUS`` or ../shared/data/ferplus), else it is noise.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from fer_nla.data.transforms import RECIPE_MEAN, RECIPE_STD
from fer_nla.labels import EMOTIONS
from fer_nla.models import build_model
from fer_nla.predict.detectors import HaarCascadeDetector, detect_faces
from fer_nla.predict.onnx_backend import OnnxBackend
from fer_nla.predict.onnx_export import export_onnx
from fer_nla.predict.preprocess import Preprocess
from fer_nla.predict.torch_backend import TorchBackend

FERPLUS_FACES = ("fer0028645.png", "fer0028642.png", "fer0028654.png", "fer0028644.png")


def per_call_seconds(fn: Callable[[], object], *, seconds: float, min_calls: int = 3) -> float:
    """Median seconds per call of ``fn`` after one warm-up call, over ``seconds`` (at least ``min_calls``)."""
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_calls or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def model_rows(size: int, *, stem: str, batches: list[int], seconds: float, workdir: Path,
               threads: int | None) -> list[str]:
    model = build_model("resnet18", num_classes=len(EMOTIONS), stem=stem).eval()
    preprocess = Preprocess(size, RECIPE_MEAN, RECIPE_STD)
    path = export_onnx(model, workdir / f"resnet18_{size}.onnx", class_names=list(EMOTIONS), preprocess=preprocess)
    backends = {"PyTorch": TorchBackend(model, class_names=list(EMOTIONS), preprocess=preprocess),
                "onnxruntime": OnnxBackend(path, threads=threads)}
    rows = []
    for batch in batches:
        inputs = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
        rate = {name: batch / per_call_seconds(lambda b=b: b.logits(inputs), seconds=seconds)
                for name, b in backends.items()}
        rows.append(f"| ResNet-18 ({stem} stem) | {size} | {batch} | {rate['PyTorch']:.1f} | "
                    f"{rate['onnxruntime']:.1f} | {rate['onnxruntime'] / rate['PyTorch']:.2f} |")
    return rows


def detector_photo(width: int, height: int) -> tuple[np.ndarray, str]:
    rng = np.random.default_rng(0)
    photo = np.clip(rng.normal(128, 20, size=(height, width, 3)), 0, 255).astype(np.uint8)
    env = os.environ.get("FER_NLA_FERPLUS")
    folder = (Path(env) if env else Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "ferplus") / "FER2013Valid"
    if not all((folder / n).is_file() for n in FERPLUS_FACES):
        return photo, "noise"
    side = min(width, height) // 4
    for i, name in enumerate(FERPLUS_FACES):
        face = np.asarray(Image.open(folder / name).convert("RGB").resize((side, side), Image.BICUBIC))
        x = (i % 2) * width // 2 + width // 8
        y = (i // 2) * height // 2 + height // 8
        photo[y:y + side, x:x + side] = face
    return photo, f"{len(FERPLUS_FACES)} FERPlus faces"


def detector_rows(sizes: list[tuple[int, int]], *, seconds: float) -> list[str]:
    detector = HaarCascadeDetector()
    rows = []
    for width, height in sizes:
        photo, content = detector_photo(width, height)
        found = len(detect_faces(detector, photo))
        sec = per_call_seconds(lambda: detect_faces(detector, photo), seconds=seconds)
        rows.append(f"| Haar cascade (min face 48 px) | {width}x{height} ({content}) | {found} | {sec * 1000:.1f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 48], help="model input sizes (default 224 48)")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32], help="batch sizes (default 1 32)")
    parser.add_argument("--stem", default="imagenet", help="ResNet stem (the recipes use imagenet at every size)")
    parser.add_argument("--threads", type=int, help="threads for both PyTorch and onnxruntime (default: each library's own)")
    parser.add_argument("--seconds", type=float, default=3.0, help="measuring time per cell (default 3)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    import onnxruntime

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), onnxruntime {onnxruntime.__version__} "
          f"({args.threads or 'default'} threads), "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| model | input px | batch | PyTorch faces/s | onnxruntime faces/s | onnxruntime / PyTorch |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            for row in model_rows(size, stem=args.stem, batches=args.batches, seconds=args.seconds, workdir=Path(tmp), threads=args.threads):
                print(row, flush=True)
    print("\n| detector | photo | faces found | ms per photo |")
    print("|---|---|---|---|")
    for row in detector_rows([(640, 480), (1920, 1080)], seconds=args.seconds):
        print(row, flush=True)


if __name__ == "__main__":
    main()
