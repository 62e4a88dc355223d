"""Inference speed of a built-in expression model on ONE CPU thread (issue 14's goals):

1. classifier faces/s at batch 1 and 32, PyTorch (eval, ``torch.inference_mode``) and
   onnxruntime (the model exported with fer-nla's own ``export_onnx``; one intra-op and one
   inter-op thread), on random input of the model's size; goal: at least 1,300 faces/s at
   batch 32 through onnxruntime;
2. detector + model time per 640x480 and 1920x1080 photo, end to end through ``Predictor``
   with its default detector; goal: under 50 ms per 640x480 photo.

    python benchmarks/inference.py                                  # the default built-in model
    python benchmarks/inference.py --model ferplus-resnet10s --seconds 5 --runs 30
    python benchmarks/inference.py --checkpoint runs/x/best.pt --out benchmarks/results/inference_cpu.md

Both libraries run in this one process, so their ratio is measured under the same conditions.
Faces/s: after a warm-up, calls are counted for ``--seconds`` split into ``--repeats`` windows;
the median window's rate is reported. The photo is the group photo of ``tests/data/photos/``
when present, else FERPlus valid faces pasted on a grey background (``FER_NLA_FERPLUS`` or
../shared/data/ferplus), else a drawing, which the detector may not take for faces (the table
then says 0 faces found: the time is the detector's alone). A machine busy with other work
(load average above 0.5 at the start) marks the figures provisional.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one OpenMP thread for libraries that read it when they load (yuface's libgomp)
    os.environ["OMP_NUM_THREADS"] = "1"

import argparse
import inspect
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from fer_nla.builtin import DEFAULT_MODEL, builtin_path
from fer_nla.checkpoint import load_model
from fer_nla.errors import InputError
from fer_nla.predict.onnx_export import export_onnx
from fer_nla.predict.predictor import Predictor
from fer_nla.inference.preprocess import Preprocess
from machine import machine_line, median_ms, publish  # benchmarks/machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
GOAL_FACES_PER_S = 1300  # onnxruntime, batch 32, one thread (the `fer` package's quantised model: 1,324)
GOAL_PHOTO_MS = 50.0  # detector + model per 640x480 photo
PHOTO_SIZES = ((640, 480), (1920, 1080))
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
FERPLUS_FACES = ("fer0028645.png", "fer0028642.png", "fer0028654.png", "fer0028644.png")


@dataclass(frozen=True)
class ClassifierRow:
    """Faces per second of one backend at one batch size."""

    backend: str
    batch: int
    faces_per_s: float


@dataclass(frozen=True)
class PhotoRow:
    """Median times on one photo: ``ms`` of ``Predictor.predict`` (end to end), ``detect_ms`` of
    the detection step alone; ``faces`` found."""

    size: tuple[int, int]
    content: str
    backend: str
    detector: str
    faces: int
    ms: float
    detect_ms: float


def use_one_thread() -> None:
    """One thread for PyTorch (intra- and, where still settable, inter-op) and OpenCV."""
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # settable only before the first inter-op work of the process
        pass
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def ort_session(path: Path, *, threads: int = 1):
    """An onnxruntime CPU session of ``path`` with ``threads`` intra-op and inter-op threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = threads
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def rate_per_second(run: Callable[[], object], *, items: int, seconds: float, repeats: int = 3) -> float:
    """Median rate of ``items`` per call of ``run`` over ``repeats`` windows of ``seconds / repeats``
    wall seconds each (every window times at least one call), after a warm-up of 3 calls or
    a tenth of ``seconds``, whichever is longer. Returns items per second (> 0)."""
    start = time.perf_counter()
    warm = 0
    while warm < 3 or time.perf_counter() - start < seconds / 10:
        run()
        warm += 1
    rates = []
    for _ in range(max(1, repeats)):
        calls, begin = 0, time.perf_counter()
        while calls == 0 or time.perf_counter() - begin < seconds / max(1, repeats):
            run()
            calls += 1
        rates.append(items * calls / (time.perf_counter() - begin))
    return float(statistics.median(rates))


def classifier_rows(model: torch.nn.Module, onnx_path: Path, *, image_size: int, batches: list[int],
                    seconds: float, repeats: int = 3) -> list[ClassifierRow]:
    """Faces/s of ``model`` (PyTorch, eval, inference mode) and of its ONNX export at
    ``onnx_path`` (onnxruntime, one thread) for random ``batch x 3 x image_size x image_size``
    float32 input (the preprocessed, normalised range). PyTorch's thread count is the caller's
    (:func:`use_one_thread`). Rows: PyTorch for each batch, then onnxruntime."""
    model = model.to("cpu").eval()
    session = ort_session(onnx_path)
    input_name = session.get_inputs()[0].name

    def torch_run(inputs: np.ndarray) -> Callable[[], object]:
        tensor = torch.from_numpy(inputs)

        def run() -> object:
            with torch.inference_mode():
                return model(tensor)
        return run

    def ort_run(inputs: np.ndarray) -> Callable[[], object]:
        return lambda: session.run(None, {input_name: inputs})

    rows = []
    for backend, runner in (("PyTorch", torch_run), ("onnxruntime", ort_run)):
        for batch in batches:
            inputs = np.random.default_rng(0).standard_normal((batch, 3, image_size, image_size)).astype(np.float32)
            rate = rate_per_second(runner(inputs), items=batch, seconds=seconds, repeats=repeats)
            rows.append(ClassifierRow(backend, batch, rate))
    return rows


def find_group_photo(folder: Path) -> Path | None:
    """The image in ``folder`` whose name contains ``group`` (the first by name), else None."""
    if not folder.is_dir():
        return None
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and "group" in p.name.lower())
    return found[0] if found else None


def fit_photo(image: Image.Image, width: int, height: int) -> np.ndarray:
    """``image`` centre-cropped to the ``width:height`` aspect and resized to it: ``HxWx3`` uint8."""
    image = image.convert("RGB")
    scale = max(width / image.width, height / image.height)
    w, h = round(width / scale), round(height / scale)
    left, top = (image.width - w) // 2, (image.height - h) // 2
    return np.asarray(image.crop((left, top, left + w, top + h)).resize((width, height), Image.BICUBIC))


def ferplus_folder() -> Path:
    env = os.environ.get("FER_NLA_FERPLUS")
    return (Path(env) if env else REPO.parent / "shared" / "data" / "ferplus") / "FER2013Valid"


def pasted_faces(width: int, height: int, folder: Path) -> np.ndarray:
    """Four FERPlus faces, upscaled to a quarter of the shorter side, on a grey 2x2 grid."""
    photo = np.full((height, width, 3), 128, dtype=np.uint8)
    side = min(width, height) // 4
    for i, name in enumerate(FERPLUS_FACES):
        face = np.asarray(Image.open(folder / name).convert("RGB").resize((side, side), Image.BICUBIC))
        x, y = (i % 2) * width // 2 + width // 8, (i // 2) * height // 2 + height // 8
        photo[y:y + side, x:x + side] = face
    return photo


def drawn_faces(width: int, height: int) -> np.ndarray:
    """Three cartoon faces (skin ellipse, eyes, brows, mouth) on a textured background."""
    rng = np.random.default_rng(0)
    background = np.clip(rng.normal(110, 25, size=(height, width, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(background)
    draw = ImageDraw.Draw(image)
    side = min(width, height) // 3
    for i in range(3):
        cx, cy = width * (2 * i + 1) // 6, height // 2
        w, h = side * 3 // 4, side
        draw.ellipse((cx - w // 2, cy - h // 2, cx + w // 2, cy + h // 2), fill=(224, 180, 150))
        for ex in (cx - w // 5, cx + w // 5):
            draw.ellipse((ex - w // 12, cy - h // 8, ex + w // 12, cy - h // 20), fill=(40, 30, 30))
            draw.line((ex - w // 8, cy - h // 5, ex + w // 8, cy - h // 5), fill=(60, 40, 30), width=max(1, side // 40))
        draw.arc((cx - w // 4, cy + h // 10, cx + w // 4, cy + h // 3), 0, 180, fill=(150, 50, 50), width=max(1, side // 30))
    return np.asarray(image)


def benchmark_photo(width: int, height: int, *, photos: Path = REPO / "tests" / "data" / "photos") -> tuple[np.ndarray, str]:
    """A ``height x width x 3`` uint8 RGB photo with faces and a description of what it holds:
    the group photo of ``photos`` when there is one, else FERPlus faces (data present), else a drawing."""
    group = find_group_photo(photos)
    if group is not None:
        with Image.open(group) as image:
            return fit_photo(image, width, height), f"{group.relative_to(REPO) if group.is_relative_to(REPO) else group}"
    folder = ferplus_folder()
    if all((folder / name).is_file() for name in FERPLUS_FACES):
        return pasted_faces(width, height, folder), f"{len(FERPLUS_FACES)} FERPlus valid faces on grey"
    return drawn_faces(width, height), "3 drawn cartoon faces"


def detector_label(predictor: Predictor, name: str | None = None) -> str:
    """``name (Class)`` of the predictor's detector; without ``name`` (a ``Predictor`` built
    without ``detector=``) the name is ``Predictor``'s default as it is when run, so a changed
    default shows; the class is that of the object actually built."""
    if name is None:
        default = inspect.signature(Predictor).parameters.get("detector")
        name = default.default if default is not None and isinstance(default.default, str) else None
    kind = type(predictor.detector).__name__
    return f"{name} ({kind})" if name else kind


def photo_row(predictor: Predictor, photo: np.ndarray, *, content: str, backend: str, runs: int,
              detector: str | None = None) -> PhotoRow:
    """Median ms of ``predictor.predict(photo)`` (detection, crops, preprocessing, model) and of
    ``predictor.detect(photo)`` alone over ``runs`` calls each, and the number of faces found."""
    faces = len(predictor.predict(photo)[0])
    total = median_ms(lambda: predictor.predict(photo), runs=runs)
    detect = median_ms(lambda: predictor.detect(photo), runs=runs)
    height, width = photo.shape[:2]
    return PhotoRow((width, height), content, backend, detector_label(predictor, detector), faces, total, detect)


def photo_rows(checkpoint: Path, onnx_path: Path, *, sizes: tuple[tuple[int, int], ...] = PHOTO_SIZES,
               runs: int, photos: Path = REPO / "tests" / "data" / "photos",
               detectors: list[str | None] | None = None) -> list[PhotoRow]:
    """:func:`photo_row` for each photo size and detector (``None``: ``Predictor``'s default),
    through PyTorch (``checkpoint``) and onnxruntime (``onnx_path``, one thread). Raises
    :class:`InputError` for an unknown detector name."""
    rows = []
    for detector in detectors or [None]:
        options = {} if detector is None else {"detector": detector}
        predictors = {"PyTorch": Predictor.from_checkpoint(checkpoint, device="cpu", **options),
                      "onnxruntime": Predictor.from_onnx(onnx_path, threads=1, **options)}
        for width, height in sizes:
            photo, content = benchmark_photo(width, height, photos=photos)
            for backend, predictor in predictors.items():
                rows.append(photo_row(predictor, photo, content=content, backend=backend, runs=runs, detector=detector))
    return rows


def header(*, title: str, command: str, model_line: str, load: float, note: str | None) -> list[str]:
    """The results file's header: command, machine, versions, date and the machine's state."""
    import onnxruntime

    lines = [f"# {title}", "", f"`{command}`", "",
             machine_line(load),
             f"- software: Python {platform.python_version()}, torch {torch.__version__}, "
             f"onnxruntime {onnxruntime.__version__}, {platform.system()} {platform.machine()}",
             f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
             f"- model: {model_line}; one thread everywhere (torch, onnxruntime intra/inter-op, OpenCV, OpenMP)"]
    if note:
        lines.append(f"- note: {note}")
    return lines


def classifier_table(rows: list[ClassifierRow]) -> list[str]:
    """Markdown rows of :func:`classifier_rows`, with the onnxruntime/PyTorch ratio and the goal."""
    torch_rate = {r.batch: r.faces_per_s for r in rows if r.backend == "PyTorch"}
    lines = ["| backend | batch | faces/s | ms per batch | vs PyTorch | goal |", "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        ratio = r.faces_per_s / torch_rate[r.batch] if r.batch in torch_rate else float("nan")
        goal = ""
        if r.backend == "onnxruntime" and r.batch == 32:
            goal = f"{'PASS' if r.faces_per_s >= GOAL_FACES_PER_S else 'FAIL'} (>= {GOAL_FACES_PER_S:,})"
        lines.append(f"| {r.backend} | {r.batch} | {r.faces_per_s:,.0f} | {1000 * r.batch / r.faces_per_s:.2f} | "
                     f"{ratio:.2f}x | {goal} |")
    return lines


def photo_table(rows: list[PhotoRow]) -> list[str]:
    """Markdown rows of :func:`photo_rows`; 640x480 rows carry the goal, 0 faces is said plainly."""
    lines = ["| photo | content | backend | detector | faces found | ms per photo | of which detection | goal |",
             "|---|---|---|---|---:|---:|---:|---|"]
    for r in rows:
        goal = ""
        if r.size == (640, 480):
            goal = f"{'PASS' if r.ms < GOAL_PHOTO_MS else 'FAIL'} (< {GOAL_PHOTO_MS:.0f} ms)"
        faces = str(r.faces) if r.faces else "0 (no face detected: detector time only)"
        lines.append(f"| {r.size[0]}x{r.size[1]} | {r.content} | {r.backend} | {r.detector} | {faces} | {r.ms:.1f} | {r.detect_ms:.1f} | {goal} |")
    return lines


def report(head: list[str], classifiers: list[ClassifierRow], photos: list[PhotoRow], *, seconds: float,
           repeats: int, runs: int) -> str:
    """The whole Markdown report: header, classifier table, photo table."""
    return "\n".join([
        *head, "", f"## Classifier alone ({seconds:g} s per cell, median of {repeats} windows, random input)", "",
        *classifier_table(classifiers), "",
        f"## Detector + model per photo (`Predictor.predict`, median of {runs} runs; "
        "detection alone: `Predictor.detect`)", "",
        *photo_table(photos), "",
    ])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", default=DEFAULT_MODEL, help=f"built-in model name (default {DEFAULT_MODEL})")
    source.add_argument("--checkpoint", type=Path, help="a fer-nla checkpoint instead of a built-in model")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32], help="batch sizes (default 1 32)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed wall seconds per classifier cell (default 3)")
    parser.add_argument("--repeats", type=int, default=3, help="timing windows per cell; the median is reported (default 3)")
    parser.add_argument("--runs", type=int, default=20, help="timed predict calls per photo (default 20)")
    parser.add_argument("--detectors", nargs="+", metavar="NAME",
                        help="detectors to time (default: Predictor's default detector alone)")
    parser.add_argument("--note", help="a line added to the header (e.g. what else ran)")
    parser.add_argument("--out", type=Path, help="also write the Markdown report to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    load = os.getloadavg()[0]
    use_one_thread()
    try:
        checkpoint = args.checkpoint or builtin_path(args.model)
        model, meta = load_model(checkpoint, map_location="cpu")
    except InputError as err:
        raise SystemExit(f"error: {err}") from None
    name = str(args.checkpoint) if args.checkpoint else args.model
    size_mb = Path(checkpoint).stat().st_size / 1e6
    model_line = (f"{name} ({meta.arch}, {meta.image_size}x{meta.image_size} input, {meta.num_classes} classes, "
                  f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, {size_mb:.1f} MB file)")
    command = shlex.join(["python", "benchmarks/inference.py", *(sys.argv[1:] if argv is None else argv)])
    head = header(title=f"Inference speed of {name} on one CPU thread", command=command,
                  model_line=model_line, load=load, note=args.note)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = export_onnx(model, Path(tmp) / "model.onnx", class_names=list(meta.class_names),
                                preprocess=Preprocess.from_dict(meta.preprocess), model_spec=meta.model_spec)
        classifiers = classifier_rows(model, onnx_path, image_size=meta.image_size, batches=args.batches,
                                      seconds=args.seconds, repeats=args.repeats)
        try:
            photos = photo_rows(Path(checkpoint), onnx_path, runs=args.runs, detectors=args.detectors)
        except InputError as err:
            raise SystemExit(f"error: {err}") from None
    text = report(head, classifiers, photos, seconds=args.seconds, repeats=args.repeats, runs=args.runs)
    publish(text, args.out)


if __name__ == "__main__":
    main()
