"""Face detectors side by side on the real photos of ``tests/data/photos/`` (issue 14, item 5).

For each detector, through ``fer_nla.predict.run_detector`` as ``Predictor`` runs it (boxes
clipped, faces under 16 px dropped, duplicates suppressed):

- faces found / faces in the photos: a face is found when a box overlaps its hand-checked box
  (``faces.json``) by IoU >= 0.4, each box matching one face at most (greedy, highest IoU first);
- false boxes: boxes matching no face;
- ms per photo: the group photo letterboxed (resized to fit, padded with grey) to 640x480 and to
  1920x1080, median of ``--runs`` calls after one warm-up, on ONE thread (OpenCV, onnxruntime
  intra/inter-op, OpenMP); the faces found at that size are counted too.

    python benchmarks/detectors.py                                    # prints the Markdown tables
    python benchmarks/detectors.py --runs 30 --out benchmarks/results/detectors.md

``yuface`` (libfacedetection, BSD) is measured when installed (``pip install yuface``; wheels
for CPython <= 3.11 on Linux x86-64 and Windows only); it is not a fer-nla detector. A machine
busy with other work (1-minute load average above 0.5 at the start) marks the figures
provisional.
"""

from __future__ import annotations

import os

if __name__ == "__main__":  # one OpenMP thread for libraries that read it when they load (yuface)
    os.environ["OMP_NUM_THREADS"] = "1"

import argparse
import json
import platform
import shlex
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fer_nla.predict.detectors import Box, FaceDetector, ScoredBox, box_iou, build_detector, run_detector
from machine import machine_line, median_ms, publish  # benchmarks/machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
PHOTOS = REPO / "tests" / "data" / "photos"
MATCH_IOU = 0.4
PHOTO_SIZES = ((640, 480), (1920, 1080))
GOAL_MS = 50.0  # detector + model per 640x480 photo (the model's share: benchmarks/inference.py)
NOTES = [
    "", "Notes:", "",
    "- retinaface is fer-nla's default detector (`fer_nla/weights/retinaface-mnet025.onnx`, onnxruntime); "
    "detect_side is the longer side it detects at (default 960). haar: OpenCV's cascade as fer-nla runs it "
    "(min_size 48 unless stated).",
    "- yuface 2023.5.1 ships wheels for CPython 3.6-3.11 on Linux x86-64 and Windows only (no sdist): it cannot "
    "be a dependency of fer-nla (Python >= 3.10, macOS, ARM), whatever it measures.",
    "- At 640x480 the group photo's two smallest faces shrink to 15 px, under fer-nla's 16-px minimum face: "
    "the most any detector can report there is 12/14 unless its boxes are larger than the faces.",
    "- Framing: a margin m widens a box to max(w, h) x (1 + 2m) around its centre (fer_nla.inference.faces."
    "expand_box); the margin column is the m that turns the detector's box back into the 48-px FER2013 frame.",
]


@dataclass
class YuFaceDetector:
    """``yuface.detect`` (libfacedetection's CNN) as a fer-nla detector: scores are its
    confidence / 100; images whose longer side exceeds ``detect_side`` (960, above which yuface
    warns that detection degrades) are downsized first."""

    conf: float = 0.5
    detect_side: int = 960

    def detect(self, image_rgb: np.ndarray) -> list[ScoredBox]:
        import yuface

        height, width = image_rgb.shape[:2]
        scale = max(1.0, max(height, width) / self.detect_side)
        if scale > 1:
            image_rgb = cv2.resize(image_rgb, (round(width / scale), round(height / scale)), interpolation=cv2.INTER_AREA)
        confs, boxes, _ = yuface.detect(np.ascontiguousarray(image_rgb[:, :, ::-1]), conf=self.conf)
        return [ScoredBox(Box(*(float(v) * scale for v in box)), float(c) / 100) for c, box in zip(confs, boxes)]


def candidates(names: list[str]) -> dict[str, Callable[[], FaceDetector]]:
    """Detector factories by label, in table order: fer-nla's registered ones and yuface."""
    table: dict[str, Callable[[], FaceDetector]] = {
        "haar": lambda: build_detector("haar"),
        "haar, min_size 24": lambda: build_detector("haar", min_size=24),
        "retinaface": lambda: build_detector("retinaface", threads=1),
        "retinaface, detect_side 640": lambda: build_detector("retinaface", threads=1, detect_side=640),
        "retinaface, no fine pass": lambda: build_detector("retinaface", threads=1, fine_pass=False),
        "yuface": YuFaceDetector,
    }
    return {label: table[label] for label in names}


@dataclass
class Score:
    found: int = 0
    faces: int = 0
    false: int = 0

    def add(self, other: Score) -> None:
        self.found, self.faces, self.false = self.found + other.found, self.faces + other.faces, self.false + other.false


def match(boxes: list[Box], truth: list[Box], *, iou: float = MATCH_IOU) -> Score:
    """Faces of ``truth`` found by ``boxes`` (greedy one-to-one matching at IoU >= ``iou``) and the boxes matching none."""
    pairs = sorted(((box_iou(b, t), i, j) for i, b in enumerate(boxes) for j, t in enumerate(truth)), reverse=True)
    used_b, used_t = set(), set()
    for value, i, j in pairs:
        if value >= iou and i not in used_b and j not in used_t:
            used_b.add(i)
            used_t.add(j)
    return Score(found=len(used_t), faces=len(truth), false=len(boxes) - len(used_b))


def load_photos(folder: Path) -> dict[str, tuple[np.ndarray, list[Box]]]:
    """Each photo of ``faces.json`` as an RGB array with its face boxes."""
    truth = json.loads((folder / "faces.json").read_text())
    photos = {}
    for name, entry in truth.items():
        with Image.open(folder / name) as image:
            photos[name] = (np.asarray(image.convert("RGB")), [Box(*box) for box in entry["faces"]])
    return photos


def letterbox(image: np.ndarray, boxes: list[Box], width: int, height: int) -> tuple[np.ndarray, list[Box]]:
    """``image`` resized to fit ``width x height`` and centred on grey, with its boxes carried along."""
    scale = min(width / image.shape[1], height / image.shape[0])
    w, h = round(image.shape[1] * scale), round(image.shape[0] * scale)
    left, top = (width - w) // 2, (height - h) // 2
    canvas = np.full((height, width, 3), 128, dtype=np.uint8)
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    canvas[top:top + h, left:left + w] = cv2.resize(image, (w, h), interpolation=interpolation)
    return canvas, [Box(round(b.x * scale) + left, round(b.y * scale) + top, round(b.w * scale), round(b.h * scale))
                    for b in boxes]


def measure(detector: FaceDetector, photos: dict[str, tuple[np.ndarray, list[Box]]], *, runs: int,
            group: str = "group.jpg") -> tuple[dict[str, Score], list[tuple[float, Score]]]:
    """Scores per photo, and (ms, score) of the group photo at each of :data:`PHOTO_SIZES`."""
    per_photo = {name: match([f.box for f in run_detector(detector, image).faces], truth)
                 for name, (image, truth) in photos.items()}
    timed = []
    for width, height in PHOTO_SIZES:
        image, truth = letterbox(*photos[group], width, height)
        score = match([f.box for f in run_detector(detector, image).faces], truth)
        timed.append((median_ms(lambda: run_detector(detector, image), runs=runs), score))
    return per_photo, timed


def tables(results: dict[str, tuple[dict[str, Score], list[tuple[float, Score]]]]) -> list[str]:
    """The summary table (one row a detector) and the per-photo table (faces found / faces, false boxes)."""
    sizes = " | ".join(f"ms {w}x{h} (found)" for w, h in PHOTO_SIZES)
    lines = [f"| detector | faces found | false boxes | {sizes} |", "|---|---|---|" + "---|" * len(PHOTO_SIZES)]
    for label, (per_photo, timed) in results.items():
        total = Score()
        for score in per_photo.values():
            total.add(score)
        cells = " | ".join(f"{ms:.1f} ({s.found}/{s.faces})" for ms, s in timed)
        lines.append(f"| {label} | {total.found}/{total.faces} | {total.false} | {cells} |")
    names = list(next(iter(results.values()))[0])
    lines += ["", "Per photo: faces found / faces (false boxes).", "",
              "| photo | " + " | ".join(results) + " |", "|---|" + "---|" * len(results)]
    for name in names:
        cells = " | ".join(f"{r[0][name].found}/{r[0][name].faces} ({r[0][name].false})" for r in results.values())
        lines.append(f"| {name} | {cells} |")
    return lines


def framing(detector: FaceDetector, folder: Path, *, count: int, upscale: int = 4) -> dict[str, float]:
    """How ``detector`` boxes FER2013's faces: the first ``count`` FERPlus images of ``folder``
    (48x48), upscaled ``upscale`` times (bicubic) and centred on a grey canvas twice that size.
    Returns the share of images with a face box, the medians of the box's longer side and of its
    centre's offset (right, down) as fractions of the 48-px frame, and the margin that makes
    ``expand_box`` (side = longer side x (1 + 2 margin)) give back the frame: median of
    ``(1 / side - 1) / 2`` per image."""
    paths = sorted(folder.glob("*.png"))[:count]
    frame = 48 * upscale
    sides, dx, dy, margins = [], [], [], []
    for path in paths:
        with Image.open(path) as image:
            face = np.asarray(image.convert("RGB").resize((frame, frame), Image.BICUBIC))
        canvas = np.full((2 * frame, 2 * frame, 3), 128, dtype=np.uint8)
        canvas[frame // 2:frame // 2 + frame, frame // 2:frame // 2 + frame] = face
        faces = run_detector(detector, canvas).faces
        if not faces:
            continue
        box = max(faces, key=lambda f: f.box.w * f.box.h).box
        side = max(box.w, box.h) / frame
        sides.append(side)
        dx.append((box.x + box.w / 2 - frame) / frame)
        dy.append((box.y + box.h / 2 - frame) / frame)
        margins.append((1 / side - 1) / 2)
    if not sides:
        return {"found": 0.0}
    return {"found": len(sides) / max(1, len(paths)), "side": statistics.median(sides),
            "dx": statistics.median(dx), "dy": statistics.median(dy), "margin": statistics.median(margins),
            "margin_q1": float(np.quantile(margins, 0.25)), "margin_q3": float(np.quantile(margins, 0.75))}


def framing_table(rows: dict[str, dict[str, float]], *, count: int) -> list[str]:
    lines = ["", f"Framing of FER2013 faces (first {count} FERPlus train images, 4x upscaled, centred on grey): "
             "box side and centre offset as fractions of the 48-px frame; the margin that gives the frame back.", "",
             "| detector | faces boxed | box side | centre offset (x, y) | margin: median (quartiles) |",
             "|---|---|---|---|---|"]
    for label, r in rows.items():
        if r["found"] == 0:
            lines.append(f"| {label} | 0% | - | - | - |")
            continue
        lines.append(f"| {label} | {100 * r['found']:.0f}% | {r['side']:.2f} | {r['dx']:+.3f}, {r['dy']:+.3f} | "
                     f"{r['margin']:.3f} ({r['margin_q1']:.3f}-{r['margin_q3']:.3f}) |")
    return lines


def header(command: str, load: float) -> list[str]:
    import onnxruntime

    return ["# Face detectors on real photos", "", f"`{command}`", "",
            machine_line(load),
            f"- software: Python {platform.python_version()}, OpenCV {cv2.__version__}, "
            f"onnxruntime {onnxruntime.__version__}",
            f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
            "- photos: tests/data/photos (sources and licences in SOURCES.md); found = IoU >= 0.4 with a "
            "hand-checked box; times: detection only (run_detector), one thread, median", ""]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, default=PHOTOS)
    parser.add_argument("--runs", type=int, default=15, help="timed calls per photo size (median)")
    parser.add_argument("--detectors", nargs="+", default=["haar", "haar, min_size 24", "retinaface",
                                                            "retinaface, no fine pass", "retinaface, detect_side 640",
                                                            "yuface"])
    parser.add_argument("--ferplus", type=Path, help="FERPlus image folder (e.g. FER2013Train): also measure "
                        "how each detector frames FER2013 faces")
    parser.add_argument("--framing-count", type=int, default=500, help="FERPlus images for the framing table")
    parser.add_argument("--out", type=Path, help="also write the Markdown here")
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    cv2.setNumThreads(1)
    photos = load_photos(args.photos)
    results, framings = {}, {}
    for label, factory in candidates(args.detectors).items():
        try:
            detector = factory()
        except ImportError as err:
            print(f"skipping {label}: {err}", file=sys.stderr)
            continue
        results[label] = measure(detector, photos, runs=args.runs)
        if args.ferplus is not None:
            framings[label] = framing(detector, args.ferplus, count=args.framing_count)
    given = argv if argv is not None else sys.argv[1:]
    command = "python benchmarks/detectors.py " + " ".join(shlex.quote(a) for a in given)
    lines = header(command.strip(), load) + tables(results)
    if framings:
        lines += framing_table(framings, count=args.framing_count)
    lines += NOTES
    text = "\n".join(lines) + "\n"
    publish(text, args.out)


if __name__ == "__main__":
    main()
