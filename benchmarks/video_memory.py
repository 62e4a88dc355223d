"""Long video in constant memory: the peak resident memory and speed of ``predict_files`` on a
generated 10-minute 720p clip, on one and on two threads (issue 26: peak RSS under 600 MB).

    python benchmarks/video_memory.py --out benchmarks/results/video_memory_cpu.md [--minutes 10] [--every 5]

The clip (made once, in ``--workdir``): 1280x720 at 30 frames per second, MJPG, a grey
background with two real faces from ``tests/data/photos`` moving on slow circles, so every
sampled frame has faces to detect, track and classify. Each thread count runs in a new process:
the built-in model and RetinaFace on onnxruntime with that many intra-op threads
(``Predictor.from_onnx(builtin_onnx_path(), threads=N, detector_options={"threads": N})``), every
``--every``-th frame classified (every frame is still decoded), the records written as CSV. Its
peak resident memory is the process's own high-water mark (``VmHWM``); frames per second count
the frames decoded and the frames classified, over the wall clock of ``predict_files``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from machine import machine_line, publish

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "tests" / "data" / "photos"
GOAL_MB = 600.0
CHILD = """
import json, sys, time
from fer_nla.predict import Predictor, predict_files, write_csv
threads, every, video, csv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
from fer_nla.builtin import builtin_onnx_path
predictor = Predictor.from_onnx(builtin_onnx_path(), threads=threads, detector_options={"threads": threads})
start = time.perf_counter()
records = predict_files(predictor, [video], every=every)
seconds = time.perf_counter() - start
write_csv(records, csv, class_names=predictor.class_names)
status = open("/proc/self/status").read().split("VmHWM:")[1].split()[0]
(record,) = records
print(json.dumps({"seconds": seconds, "sampled": len(record.frames), "faces": len(record.faces),
                  "peak_mb": int(status) / 1024, "tracks": len({f.track_id for f in record.faces}),
                  "error": record.error, "note": record.note}))
"""


def face_patch(name: str, side: int) -> np.ndarray:
    x, y, w, h = json.loads((PHOTOS / "faces.json").read_text())[name]["faces"][0]
    pad = max(w, h) // 3
    image = Image.open(PHOTOS / name).convert("RGB")
    return np.asarray(image.crop((x - pad, y - pad, x + max(w, h) + pad, y + max(w, h) + pad)).resize((side, side)))


def make_clip(path: Path, *, minutes: float, fps: int = 30, size: tuple[int, int] = (1280, 720)) -> Path:
    """The benchmark's clip (see the module docstring); kept if it exists."""
    if path.is_file():
        return path
    width, height = size
    faces = [face_patch("frontal_astronaut.jpg", 160), face_patch("frontal_obama.jpg", 140)]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    background = np.full((height, width, 3), 110, dtype=np.uint8)
    for k in range(int(minutes * 60 * fps)):
        frame = background.copy()
        for j, patch in enumerate(faces):
            angle = 2 * math.pi * (k / (fps * 20) + j / 2)
            cx, cy = int(width * (0.3 + 0.4 * j) + 120 * math.cos(angle)), int(height / 2 + 120 * math.sin(angle))
            side = patch.shape[0]
            frame[cy - side // 2:cy - side // 2 + side, cx - side // 2:cx - side // 2 + side] = patch
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=int, default=5, help="classify every K-th frame (all are decoded)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "fer-nla-video-memory")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0]
    started = time.perf_counter()
    clip = make_clip(args.workdir / f"clip_{args.minutes:g}min_720p.avi", minutes=args.minutes)
    made = time.perf_counter() - started
    frames = int(cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FRAME_COUNT))
    rows = []
    for threads in args.threads:
        done = subprocess.run([sys.executable, "-c", CHILD, str(threads), str(args.every), str(clip),
                               str(args.workdir / f"records_{threads}.csv")], capture_output=True, text=True, check=True)
        result = json.loads(done.stdout.strip().splitlines()[-1])
        rows.append((threads, result))
    lines = [
        "# Long video in constant memory (issue 26)",
        "",
        f"- command: `python benchmarks/video_memory.py --minutes {args.minutes:g} --every {args.every}`",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        machine_line(load),
        f"- clip: {args.minutes:g} min, 1280x720, 30 fps, MJPG, {frames} frames, two moving faces "
        f"({clip.stat().st_size / 1e6:.0f} MB; made in {made:.0f} s)",
        f"- every {args.every}-th frame classified (all decoded); built-in model and RetinaFace on onnxruntime",
        "",
        "| threads | peak RSS | goal | decoded frames/s | classified frames/s | faces | tracks | wall |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for threads, r in rows:
        ok = "met" if r["peak_mb"] < GOAL_MB else "**missed**"
        lines.append(f"| {threads} | {r['peak_mb']:.0f} MB | under {GOAL_MB:.0f} MB: {ok} | {frames / r['seconds']:.1f} | "
                     f"{r['sampled'] / r['seconds']:.1f} | {r['faces']} | {r['tracks']} | {r['seconds']:.0f} s |")
    publish("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
