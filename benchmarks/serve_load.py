"""Load on `fer-nla serve` over loopback: requests/s, latency percentiles, every request accounted for.

Starts ``python -m fer_nla serve`` (the real command: uvicorn, the built-in model unless
``--model``/``--checkpoint``) on a free 127.0.0.1 port, waits for ``/healthz``, sends a few
warm-up requests (not counted), then ``--requests`` photos (``POST /v1/predict``, raw body) with
``--concurrency`` in flight from as many threads, each on its own keep-alive connection
(``http.client``, no extra package). It prints requests/s, p50/p95/max latency, the count of
each status code, the requests that got no HTTP answer (errors: reset, refused, timed out), the
200 answers whose face count differs from the first one's, and checks that every request sent
is one of those (nothing lost). Then it stops the server.

    python benchmarks/serve_load.py                                  # 200 requests, 8 at a time, group.jpg
    python benchmarks/serve_load.py --requests 500 --concurrency 16 --queue 4   # see 503s
    python benchmarks/serve_load.py --out benchmarks/results/serve_load_cpu.md

A machine busy with other work (load average above 0.5 at the start) marks the figures provisional.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from machine import machine_line, publish  # benchmarks/machine.py, beside this script

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTO = REPO / "tests" / "data" / "photos" / "group.jpg"
WARM_UP = 3
START_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Outcome:
    """One request: its HTTP ``status`` (``None``: no answer), ``latency_s`` (send to last byte),
    ``error`` (why there was no answer) and, for a 200, the number of ``faces`` in it."""

    status: int | None
    latency_s: float
    error: str | None = None
    faces: int | None = None


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values`` by linear interpolation between the closest
    ranks (numpy's default); ``nan`` for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    """What a run of ``sent`` requests gave over ``wall_s`` seconds."""

    sent: int
    wall_s: float
    statuses: dict[int, int]
    errors: dict[str, int]
    p50_ms: float
    p95_ms: float
    max_ms: float
    mismatched: int

    @property
    def accounted(self) -> int:
        """Requests with an HTTP status or a recorded error: equal to ``sent`` when nothing was lost."""
        return sum(self.statuses.values()) + sum(self.errors.values())

    @property
    def requests_per_s(self) -> float:
        """Requests sent per second of wall time, all outcomes counted."""
        return self.sent / self.wall_s if self.wall_s > 0 else math.nan


def summarize(outcomes: Sequence[Outcome], *, sent: int, wall_s: float) -> Summary:
    """Counts and latency percentiles of ``outcomes`` (all answered requests' latencies, any
    status); ``mismatched``: 200 answers whose face count differs from the first 200's."""
    answered = [o for o in outcomes if o.status is not None]
    faces = [o.faces for o in answered if o.status == 200]
    latencies = [1000 * o.latency_s for o in answered]
    return Summary(
        sent=sent, wall_s=wall_s,
        statuses=dict(sorted(Counter(o.status for o in answered).items())),
        errors=dict(sorted(Counter(o.error or "unknown" for o in outcomes if o.status is None).items())),
        p50_ms=percentile(latencies, 50), p95_ms=percentile(latencies, 95), max_ms=max(latencies, default=math.nan),
        mismatched=sum(count != faces[0] for count in faces),
    )


def report_lines(summary: Summary, *, concurrency: int) -> list[str]:
    """The figures as Markdown list lines; the last says whether every request is accounted for."""
    lost = summary.sent - summary.accounted
    codes = ", ".join(f"{code}: {count}" for code, count in summary.statuses.items()) or "none"
    errors = ", ".join(f"{name}: {count}" for name, count in summary.errors.items()) or "0"
    return [
        f"- requests: {summary.sent}, {concurrency} in flight, in {summary.wall_s:.1f} s: "
        f"**{summary.requests_per_s:.1f} requests/s**",
        f"- latency: p50 {summary.p50_ms:.0f} ms, p95 {summary.p95_ms:.0f} ms, max {summary.max_ms:.0f} ms",
        f"- status codes: {codes}; errors (no HTTP answer): {errors}; 200 answers with another face count: "
        f"{summary.mismatched}",
        f"- accounted for: {summary.accounted} of {summary.sent} ({'nothing lost' if lost == 0 else f'{lost} LOST'})",
    ]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int, options: list[str], log: Path) -> subprocess.Popen:
    """``python -m fer_nla serve`` on 127.0.0.1:``port`` with ``options``; its output goes to ``log``."""
    command = [sys.executable, "-m", "fer_nla", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", *options]
    with open(log, "wb") as handle:
        return subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO)


def wait_ready(process: subprocess.Popen, port: int, log: Path) -> dict:
    """``/healthz``'s JSON once the server answers it; exits with the server's log if it stops first."""
    end = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < end:
        if process.poll() is not None:
            raise SystemExit(f"the server stopped (exit {process.returncode}):\n{log.read_text()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            answer = connection.getresponse()
            if answer.status == 200:
                return json.loads(answer.read())
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server did not answer /healthz within {START_TIMEOUT_S:.0f} s:\n{log.read_text()}")


def post_photo(connections: threading.local, port: int, photo: bytes, *, timeout: float) -> Outcome:
    """One ``POST /v1/predict`` on this thread's keep-alive connection (a new one after an error)."""
    started = time.perf_counter()
    try:
        if getattr(connections, "http", None) is None:
            connections.http = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        connections.http.request("POST", "/v1/predict", body=photo, headers={"Content-Type": "image/jpeg"})
        answer = connections.http.getresponse()
        body = answer.read()
        latency = time.perf_counter() - started
        faces = json.loads(body)["count"] if answer.status == 200 else None
        return Outcome(answer.status, latency, faces=faces)
    except (OSError, http.client.HTTPException, ValueError, KeyError) as err:
        if getattr(connections, "http", None) is not None:
            connections.http.close()
        connections.http = None
        return Outcome(None, time.perf_counter() - started, error=type(err).__name__)


def run_load(port: int, photo: bytes, *, requests: int, concurrency: int, timeout: float) -> Summary:
    """``requests`` posts of ``photo``, ``concurrency`` at a time, after :data:`WARM_UP` uncounted ones."""
    connections = threading.local()
    for _ in range(WARM_UP):
        post_photo(connections, port, photo, timeout=timeout)
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        started = time.perf_counter()
        outcomes = list(pool.map(lambda _: post_photo(connections, port, photo, timeout=timeout), range(requests)))
        wall = time.perf_counter() - started
    return summarize(outcomes, sent=requests, wall_s=wall)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The script's options; what follows ``--`` goes to ``fer-nla serve``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (default 8)")
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--timeout", type=float, default=120.0, help="client timeout per request, seconds")
    parser.add_argument("--out", type=Path, help="also write the report (Markdown) to this file")
    parser.add_argument("--note", help="a line added to the report (e.g. what else ran on the machine)")
    parser.add_argument("serve_options", nargs=argparse.REMAINDER,
                        help="after --: options for fer-nla serve (--model, --threads 2, --queue 4, --workers 2...)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Runs the benchmark, prints the report (and writes it to ``--out``); exits 1 if a request was lost."""
    args = parse_args(argv)
    photo = args.photo.read_bytes()
    options = [o for o in args.serve_options if o != "--"]
    load = os.getloadavg()[0]
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "server.log"
        server = start_server(port, options, log)
        try:
            health = wait_ready(server, port, log)
            summary = run_load(port, photo, requests=args.requests, concurrency=args.concurrency, timeout=args.timeout)
        finally:
            server.terminate()  # SIGTERM: uvicorn shuts down gracefully
            server.wait(timeout=60)
    command = shlex.join(["python", "benchmarks/serve_load.py", *(sys.argv[1:] if argv is None else argv)])
    queue = health["queue"]
    lines = [
        "# fer-nla serve under load, on loopback", "", f"`{command}`", "",
        machine_line(load),
        f"- software: Python {platform.python_version()}, fer-nla {health['version']}, {platform.system()} "
        f"{platform.machine()}; date {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- server: `{' '.join(['fer-nla serve', shlex.join(options)]).strip()}` on 127.0.0.1, model "
        f"{health['model']} ({health['model_version']}); per worker {queue['threads']} inference thread(s) and "
        f"{queue['capacity']} places (running + waiting)",
        f"- photo: {args.photo.name}, {len(photo):,} bytes, POST /v1/predict as the raw body",
        *([f"- note: {args.note}"] if args.note else []),
        *report_lines(summary, concurrency=args.concurrency),
    ]
    text = "\n".join(lines) + "\n"
    publish(text, args.out, end="")
    if summary.accounted != summary.sent:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
