"""``fer-nla predict``: expressions of the faces in photos, folders and videos."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from fer_nla.commands import add_scoring_arguments, int_in
from fer_nla.commands.models import add_model_arguments

if TYPE_CHECKING:
    from fer_nla.predict.predictor import Predictor

EXIT_SOME_FAILED = 1  # some inputs failed (each is reported in its record); 2 is a usage error
EXIT_INTERRUPTED = 130  # Ctrl-C stopped a run over files (the shell's 128 + SIGINT); a camera or stream run ends so: 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict the expressions of faces in images, folders and videos",
        description=(
            "Find the faces in each image (folders recursively; videos every k-th frame), crop them with a "
            "margin and classify them. Each input file gets a record: its faces (box [x, y, w, h], label, "
            "probabilities, and for videos the frame and its time in seconds, every sampled frame listed) or "
            "the error that stopped it. Files that fail are reported and skipped; the exit status is 1 when "
            "any input failed. An image without a face is not a failure (faces=[] and a note) unless "
            "--no-face-is-error is given; a video read only in part (a note: read 3 of 10 frames) is not "
            "one unless --strict is given. Annotated copies mirror the inputs' folders under DIR. Without "
            "--checkpoint or --model the built-in model is used (`fer-nla models` lists the built-in models); "
            "which model runs is printed on stderr first."
        ),
        epilog=(
            "examples:\n"
            "  fer-nla predict photo.jpg\n"
            "  fer-nla predict --checkpoint runs/raf/best.pt photos/ party.jpg --annotate out/\n"
            "  fer-nla predict --checkpoint runs/raf/best.pt clip.mp4 --every 10 --csv clip.csv\n"
            "  fer-nla predict --camera 0 --fps 5 --csv live.csv      (Ctrl-C ends it; the CSV is still written)\n"
            "  fer-nla predict rtsp://192.168.1.20:554/stream --duration 60 --summary\n"
            "  fer-nla predict --backend onnx --checkpoint model.onnx crops/ --faces-cropped --json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="image files, video files, folders, or stream URLs (rtsp://, http:// MJPEG, ...)")
    parser.add_argument("--camera", metavar="N", help="read camera N live (0: the first; or a device path such as "
                        "/dev/video2); Ctrl-C or --duration ends it")
    parser.add_argument("--fps", type=float, metavar="RATE",
                        help="videos, streams and cameras: classify about RATE frames per second (files: every fps/RATE-th "
                             "frame; live sources: at most RATE per second by the clock), instead of --every")
    parser.add_argument("--duration", type=float, metavar="SECONDS",
                        help="read each video, stream or camera for at most SECONDS (a live source's clock)")
    parser.add_argument("--follow", type=float, nargs="?", const=5.0, metavar="SECONDS",
                        help="read video files as recordings still being written: at the end, wait for more frames "
                             "until none came for SECONDS (default 5); for raw MJPEG, MPEG-TS, fragmented MP4")
    parser.add_argument("--show", action="store_true",
                        help="show video frames with their boxes and labels in a window as they are classified (needs "
                             "a display and the desktop OpenCV, opencv-python); q or Esc ends the run")
    add_model_arguments(parser, checkpoint_help="a fer-nla checkpoint (best.pt) or an exported .onnx model")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                        help="torch (the train extra) or onnx (onnxruntime, no PyTorch); auto: onnx for .onnx files and built-in "
                             "models, torch for .pt checkpoints (default)")
    parser.add_argument("--device", default="auto",
                        help="auto (cuda, else mps, else cpu), cpu, cuda, cuda:1, mps (onnx backend: auto, cpu, cuda)")
    parser.add_argument("--faces-cropped", action="store_true",
                        help="inputs are already face crops (RAF-DB aligned, FERPlus): skip detection")
    parser.add_argument("--every", type=int, default=1, metavar="K", help="videos: predict every K-th frame (default 1)")
    parser.add_argument("--smooth", type=float, metavar="SECONDS",
                        help="videos: average each tracked face's probabilities over about SECONDS (an exponential "
                             "moving average per track; labels flicker less, with that much lag). Default: off")
    parser.add_argument("--summary", action="store_true",
                        help="videos: print each face track's time in view, its dominant expression and the share of "
                             "each (with --csv they are also written beside it, with a timeline plot per video)")
    parser.add_argument("--json", action="store_true", help="print one JSON list with a record per input file")
    parser.add_argument("--csv", metavar="FILE", help="write one row per face (and per file without faces) to FILE")
    parser.add_argument("--annotate", metavar="DIR", help="write copies of the images and videos with boxes and labels to DIR")
    parser.add_argument("--detector", default="retinaface",  # fer_nla.predict.detectors.DEFAULT_DETECTOR (no cv2 import here)
                        help="face detector: retinaface (default; a CNN shipped in the package: turned faces, "
                             "sunglasses, faces down to ~16 px) or haar (OpenCV's Haar cascade: frontal faces, 48 px and up)")
    parser.add_argument("--min-face", type=int, default=48, metavar="PX",
                        help="haar detector: smallest face side it searches for, in pixels (default 48)")
    parser.add_argument("--min-face-size", type=int_in(1), default=16, metavar="PX",
                        help="smallest face classified (shorter side, px, any detector): smaller detected boxes are "
                             "dropped, smaller --faces-cropped inputs fail (default 16)")
    parser.add_argument("--margin", type=float, default=0.0,  # fer_nla.inference.faces.DEFAULT_MARGIN (no cv2 import here)
                        help="widen each face box by this fraction of its side on every side before cropping "
                             "(default 0: the detectors' boxes frame faces as FER2013 crops do)")
    parser.add_argument("--max-side", type=int, default=1600, metavar="PX",
                        help="larger images are downsized to this longest side for detection only (default 1600)")
    parser.add_argument("--batch-size", type=int_in(1), default=32, help="faces per forward pass (default 32)")
    add_scoring_arguments(parser)
    parser.add_argument("--no-face-is-error", action="store_true", help="count images without a face as failed inputs")
    parser.add_argument("--strict", action="store_true",
                        help="count inputs read only in part (a truncated video: 'read 3 of 10 frames') as failed; "
                             "an image without a face still needs --no-face-is-error to fail")
    parser.set_defaults(func=run, spelling={"device": "--device {}", "annotate_dir": "--annotate {}",
                                             "backend": "--backend {}", "prior": "--prior {}"})


def run(args: argparse.Namespace) -> int:
    from fer_nla.inference.scoring import parse_prior
    from fer_nla.predict.display import Window
    from fer_nla.predict.files import predict_files
    from fer_nla.predict.inputs import (
        camera_source,
        is_stream,
        live_input,
        quiet_video_decoder_logs,
    )
    from fer_nla.predict.records import FileRecord, records_to_json, write_csv
    from fer_nla.predict.summary import (
        format_summaries,
        summarize_tracks,
        write_video_reports,
    )

    options = {
        "detector": args.detector,
        "detector_options": {"min_size": args.min_face} if args.detector == "haar" else {},
        "margin": args.margin, "batch_size": args.batch_size, "max_side": args.max_side,
        "min_face_size": args.min_face_size, "prior": parse_prior(args.prior), "calibrated": not args.uncalibrated,
    }
    predictor, label = _predictor(args, options)
    live_only = all(is_stream(p) for p in args.paths)  # Ctrl-C is how a camera or stream run ends: exit 0
    _check_before_work(args, predictor)
    scoring = "calibrated" if not args.uncalibrated else "uncalibrated"
    print(f"model: {label}; prior {args.prior.strip().lower() if ',' not in args.prior else 'as given'}, {scoring}",
          file=sys.stderr)  # once it loaded: a usage error stays the only line

    def show(record: FileRecord) -> None:
        if args.json:
            return
        if record.error is not None:
            print(f"{record.file}: error: {record.error.removeprefix(f'{record.file}: ')}", file=sys.stderr)  # named once
            return
        for face in record.faces:
            where = f" frame {face.frame}" if face.frame is not None else ""
            where += f" ({face.time:.3f} s)" if face.time is not None else ""
            print(f"{record.file}{where}: {face.label} {face.probs[face.label]:.2f} box {list(face.box)}")
        if record.note:  # no face found; a video read only in part
            print(f"{record.file}: {record.note}")

    quiet_video_decoder_logs()  # a damaged video is reported in its record, not in FFmpeg's words
    inputs = [*args.paths, *([live_input(camera_source(args.camera))] if args.camera is not None else [])]
    window = Window() if args.show else None
    try:
        records = predict_files(
            predictor, inputs, every=args.every, faces_cropped=args.faces_cropped, annotate_dir=args.annotate,
            no_face_is_error=args.no_face_is_error, strict=args.strict, exclude=[args.csv] if args.csv else [],
            on_record=show, smooth=args.smooth, fps=args.fps, duration=args.duration, show=window,
            follow=args.follow,
        )
    finally:
        if window is not None:
            window.close()
    if args.json:
        print(records_to_json(records))
    reports: list = []
    if args.csv:
        write_csv(records, args.csv, class_names=predictor.class_names)
        reports, missing = write_video_reports(records, args.csv, class_names=predictor.class_names)
        if missing:
            print(missing, file=sys.stderr)
    if args.summary:
        tracks = [s for r in records for s in summarize_tracks(r, class_names=predictor.class_names)]
        print(format_summaries(tracks) if tracks else "no face track in any video", file=sys.stderr if args.json else sys.stdout)
    failed = sum(r.failed for r in records)
    faces = sum(len(r.faces) for r in records)
    summary = f"{len(records)} input{'s' if len(records) != 1 else ''}, {faces} face{'s' if faces != 1 else ''}, {failed} failed"
    if args.csv:
        summary += f"; rows in {args.csv}" + (f" and {len(reports)} summary file(s) beside it" if reports else "")
    if args.annotate:
        summary += f"; annotated copies in {args.annotate}"
    if records.interrupted:
        summary += "; ended by Ctrl-C (what was read by then is kept)"
    print(summary, file=sys.stderr)
    if failed:
        return EXIT_SOME_FAILED
    return EXIT_INTERRUPTED if records.interrupted and not live_only else 0


def _predictor(args: argparse.Namespace, options: dict[str, Any]) -> tuple[Predictor, str]:
    """The predictor of ``--checkpoint``/``--model`` (the built-in default with neither) on
    ``--backend``/``--device`` (:meth:`Predictor.load`), and how to name its model."""
    from fer_nla.builtin import BUILTIN_PREFIX, choose_model
    from fer_nla.predict.predictor import Predictor

    chosen = choose_model(args.checkpoint, model=args.model)
    ref = f"{BUILTIN_PREFIX}{chosen.builtin}" if chosen.builtin is not None else chosen.path
    return Predictor.load(ref, backend=args.backend, device=args.device, **options), chosen.label


def _check_before_work(args: argparse.Namespace, predictor: object) -> None:
    """Usage errors that would otherwise surface per file or after the whole run: an unknown
    detector (built now, once) and a ``--csv`` path that is a folder or lies under a file."""
    import math
    from pathlib import Path

    from fer_nla.errors import InputError

    if not args.faces_cropped:
        predictor.detector  # noqa: B018 - builds it: an unknown name or a broken cascade stops here, exit 2
    if not args.paths and args.camera is None:
        raise InputError("nothing to predict on: give image or video files, folders, stream URLs, or --camera N")
    if args.show:
        from fer_nla.predict.display import check_display

        check_display()
    for flag, value in (("--fps", args.fps), ("--duration", args.duration), ("--follow", args.follow)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise InputError(f"{flag} {value:g}: give a positive number, or leave it out")
    if args.fps is not None and args.every != 1:
        raise InputError("give --every K (every K-th frame) or --fps RATE (frames per second), not both")
    if args.smooth is not None and not (math.isfinite(args.smooth) and args.smooth > 0):
        raise InputError(f"--smooth {args.smooth:g}: give a positive number of seconds (e.g. --smooth 0.5), or leave it out")
    if args.csv:
        target = Path(args.csv)
        if target.is_dir():
            raise InputError(f"--csv {target} is a folder: name the CSV file to write, e.g. {target / 'predictions.csv'}")
        blocked = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
        if blocked is not None:
            raise InputError(f"--csv {target}: {blocked} is a file, not a folder; choose another path")
