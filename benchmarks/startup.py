"""How long a fer-nla command takes to start and how much memory it holds: ``fer-nla --help``,
``fer-nla models`` and ``fer-nla predict`` on one photo, each run as a new process several times.

    python benchmarks/startup.py --out benchmarks/results/startup_cpu.md [--runs 7]
    .venv-core/bin/python benchmarks/startup.py --out benchmarks/results/startup_cpu_core.md   # a core install

Each run is timed by wall clock from the start of the process to its exit, and its peak resident
memory is the process's own high-water mark (``VmHWM`` in ``/proc/self/status``, written as it
exits; ``ru_maxrss`` would count the parent's memory that a spawned child starts from). The
command runs as ``python -c "from fer_nla.cli import main; ..."``, which is what the ``fer-nla``
script does. The goals of issue 22 are
printed beside the figures: ``--help`` under 1 s; ``predict`` on a photo under 1.5 s and 300 MB.
A last run of predict reports which of PyTorch, torchvision, kornia and scikit-learn it imported
(none, in a core install or beside them).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from machine import machine_line, publish

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "data" / "photos" / "group.jpg"
HEAVY = ("torch", "torchvision", "kornia", "sklearn", "matplotlib", "tensorboard")
# command label -> (fer-nla arguments, goal seconds, goal MB; None: no goal)
COMMANDS: dict[str, tuple[list[str], float | None, float | None]] = {
    "fer-nla --help": (["--help"], 1.0, None),
    "fer-nla models": (["models"], None, None),
    "fer-nla predict group.jpg": (["predict", str(PHOTO)], 1.5, 300.0),
}


@dataclass(frozen=True)
class Timing:
    """Wall seconds and peak resident megabytes (10^6 bytes) of the runs of one command."""

    seconds: list[float]
    peak_mb: list[float]


# Prepended to the code a timed process runs: at exit it writes its peak resident memory (kB).
PEAK_REPORT = ("import atexit, sys\n"
               "atexit.register(lambda: sys.stderr.write('peak_kb ' + next(line.split()[1] for line in "
               "open('/proc/self/status') if line.startswith('VmHWM')) + '\\n'))\n")
FER_NLA = "import sys\nfrom fer_nla.cli import main\nsys.exit(main(sys.argv[1:]))\n"


def run_once(args: list[str], *, code: str = FER_NLA) -> tuple[float, float]:
    """``(wall seconds, peak resident MB)`` of one new Python process running ``code`` (default:
    the ``fer-nla`` command line) with ``args``; raises ``RuntimeError`` with its error output
    when it fails."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_REPORT + code, *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args) or code.strip()} exited {done.returncode}: {done.stderr.strip()[-500:]}")
    peak_kb = int(done.stderr.rsplit("peak_kb ", 1)[1].split()[0])
    return seconds, peak_kb * 1024 / 1e6


def measure(args: list[str], *, runs: int) -> Timing:
    """``runs`` timed runs of ``fer-nla ARGS`` after one untimed run (file caches warm)."""
    run_once(args)
    results = [run_once(args) for _ in range(max(1, runs))]
    return Timing([s for s, _ in results], [m for _, m in results])


def heavy_modules_imported(args: list[str]) -> list[str]:
    """The modules of :data:`HEAVY` that ``fer-nla ARGS`` has imported when it finishes."""
    code = (f"import sys; from fer_nla.cli import main; status = main({args!r}); "
            f"print('imported:' + ','.join(m for m in {HEAVY!r} if sys.modules.get(m) is not None)); sys.exit(status)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    found = done.stdout.rsplit("imported:", 1)[-1].strip()
    return [m for m in found.split(",") if m]


def install_kind() -> str:
    """Whether PyTorch is installed beside fer-nla here (a core install has none)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return "core (`pip install fer-nla`: no PyTorch installed)"
    return "with the train extra (PyTorch installed, not imported by these commands)"


def goal_mark(value: float, goal: float | None, unit: str) -> str:
    if goal is None:
        return ""
    return f" (goal < {goal:g} {unit}: {'met' if value < goal else '**missed**'})"


def report(timings: dict[str, Timing], *, heavy: list[str], load: float, runs: int,
           out: str = "benchmarks/results/startup_cpu.md") -> str:
    """The Markdown report: one row per command (median and slowest run, peak memory) with goals."""
    lines = ["# Start-up time and memory of fer-nla commands", "",
             f"`python benchmarks/startup.py --out {out} --runs {runs}` (with the Python of the install measured)", "",
             machine_line(load),
             f"- software: Python {platform.python_version()}, {platform.system()} {platform.machine()}; "
             f"date {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"- each command: {runs} runs as a new process after one untimed run; wall clock to exit, "
             "peak resident memory (VmHWM)",
             f"- install: {install_kind()}",
             f"- modules predict imported of {', '.join(HEAVY)}: {', '.join(heavy) or 'none'}", "",
             "| command | median s | slowest s | peak MB |", "|---|---:|---:|---:|"]
    for label, timing in timings.items():
        _, goal_s, goal_mb = COMMANDS[label]
        median, slowest, peak = statistics.median(timing.seconds), max(timing.seconds), max(timing.peak_mb)
        lines.append(f"| `{label}` | {median:.2f}{goal_mark(slowest, goal_s, 's')} | {slowest:.2f} | "
                     f"{peak:.0f}{goal_mark(peak, goal_mb, 'MB')} |")
    lines.append("")
    lines.append("Goals are judged on the slowest run and the largest peak.")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command (default 7)")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    timings = {label: measure(argv, runs=args.runs) for label, (argv, _, _) in COMMANDS.items()}
    heavy = heavy_modules_imported(COMMANDS["fer-nla predict group.jpg"][0])
    out = str(args.out.resolve().relative_to(ROOT)) if args.out and args.out.resolve().is_relative_to(ROOT) else str(args.out)
    publish(report(timings, heavy=heavy, load=load, runs=args.runs, out=out), args.out)


if __name__ == "__main__":
    main()
