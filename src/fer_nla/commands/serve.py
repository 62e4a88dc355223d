"""``fer-nla serve``: an HTTP API and a browser page for an expression model (uvicorn + FastAPI).

The flags become :class:`fer_nla.serve.ServeSettings`, served by
:func:`fer_nla.serve.server.run_server` (with ``--workers N`` > 1 the settings reach each uvicorn
worker process as ``FER_NLA_SERVE_*`` environment variables).
"""

from __future__ import annotations

import argparse
import sys

from fer_nla.commands import add_scoring_arguments, int_in
from fer_nla.commands.models import add_model_arguments


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP: a JSON API and a page to drop photos on",
        description=(
            "Serve an expression model over HTTP. POST /v1/predict takes a photo (the multipart field 'file', "
            "or the raw body) and answers JSON: each face's box, detector score, label and probabilities, the "
            "model's name and version, the photo's size; ?annotate=1 answers the photo with the faces drawn. "
            "GET /v1/models, GET /healthz, API docs at /docs, and a page at / to choose or drop a photo. The "
            "model is loaded once per worker process; inference runs on --threads threads per worker, with at "
            "most --queue requests waiting (more are answered 503 with Retry-After). Binds 127.0.0.1 (this "
            "machine only) unless --host says otherwise. Needs the serve extra: pip install \"fer-nla[serve]\"."
        ),
        epilog=(
            "examples:\n"
            "  fer-nla serve                                   # http://127.0.0.1:8000/\n"
            "  fer-nla serve --checkpoint runs/raf/best.pt --port 9000\n"
            "  fer-nla serve --workers 2 --max-upload-mb 5 --timeout 10\n"
            "  curl -F file=@photo.jpg http://127.0.0.1:8000/v1/predict"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_arguments(parser, checkpoint_help="a fer-nla checkpoint (best.pt) or an exported .onnx model")
    parser.add_argument("--backend", choices=("auto", "torch", "onnx"), default="auto",
                        help="torch (the train extra) or onnx (onnxruntime); auto: onnx for .onnx files and built-in models, "
                             "torch for .pt checkpoints (default)")
    parser.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda, cuda:1, mps")
    parser.add_argument("--detector", choices=("retinaface", "haar"), default="retinaface",
                        help="face detector (default retinaface)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0: every network)")
    parser.add_argument("--port", type=int_in(1, 65535), default=8000, help="port (default 8000)")
    parser.add_argument("--workers", type=int_in(1), default=1,
                        help="worker processes, each with its own copy of the model (default 1)")
    parser.add_argument("--threads", type=int_in(1), default=1,
                        help="inference threads per worker, sharing its model (default 1)")
    parser.add_argument("--queue", type=int_in(0), default=16,
                        help="requests per worker that may wait for a thread; more get 503 (default 16)")
    parser.add_argument("--max-upload-mb", type=float, default=20.0, metavar="MB",
                        help="largest request body in megabytes (1 MB = 10^6 bytes); larger: 413 (default 20)")
    parser.add_argument("--max-pixels", type=int_in(1), default=50_000_000, metavar="N",
                        help="largest image, width x height in pixels; larger: 413 (default 50000000)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="seconds from a request's upload having arrived to its answer: waiting for a thread "
                             "and inference (default 30); past it: 504")
    parser.add_argument("--upload-timeout", type=float, default=30.0, metavar="S",
                        help="seconds an upload may take to arrive (default 30); past it: 408. Uploads are read "
                             "before a request takes an inference place, so slow clients never hold one")
    parser.add_argument("--max-uploads", type=int_in(1), default=32, metavar="N",
                        help="uploads read at once per worker; one more: 503 (default 32; memory: N x --max-upload-mb)")
    add_scoring_arguments(parser)
    parser.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info",
                        help="uvicorn's log level (default info)")
    parser.set_defaults(func=run, spelling={
        "backend": "--backend {}", "detector": "--detector {}", "max_upload_bytes": "--max-upload-mb",
        "max_pixels": "--max-pixels {}", "timeout_s": "--timeout {}", "upload_timeout_s": "--upload-timeout {}",
        "max_uploads": "--max-uploads {}", "threads": "--threads {}", "queue": "--queue {}",
        "checkpoint": "--checkpoint {}", "device": "--device {}", "host": "--host {}", "port": "--port {}",
        "prior": "--prior {}",
    })


def run(args: argparse.Namespace) -> int:
    from fer_nla.errors import InputError
    from fer_nla.serve.server import run_server
    from fer_nla.serve.settings import ServeSettings

    if not args.max_upload_mb > 0:
        raise InputError(f"--max-upload-mb {args.max_upload_mb:g}: give a size above 0 megabytes")
    settings = ServeSettings(
        model=args.model, checkpoint=args.checkpoint, backend=args.backend, device=args.device,
        detector=args.detector, max_upload_bytes=round(args.max_upload_mb * 1_000_000), max_pixels=args.max_pixels,
        timeout_s=args.timeout, upload_timeout_s=args.upload_timeout, max_uploads=args.max_uploads,
        threads=args.threads, queue=args.queue, prior=args.prior,
        calibrated=not args.uncalibrated,
    )
    run_server(settings, host=args.host, port=args.port, workers=args.workers, log_level=args.log_level,
               say=lambda line: print(f"fer-nla serve: {line}", file=sys.stderr))
    return 0
