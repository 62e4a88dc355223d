"""What the timing benchmarks share: the median time of a call, the CPU's name and the line
saying whether the machine was idle (``python benchmarks/X.py`` finds this module beside it)."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

BUSY_LOAD = 0.5  # 1-minute load average above which the figures are marked provisional


def median_ms(run: Callable[[], object], *, runs: int) -> float:
    """Median wall milliseconds of ``run()`` over ``runs`` calls (at least 1) after one warm-up call."""
    run()
    times = []
    for _ in range(max(1, runs)):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * float(statistics.median(times))


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (else the platform's processor string)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(load: float) -> str:
    """``- machine: CPU, N cores; idle machine (...)`` or, above :data:`BUSY_LOAD`, provisional."""
    state = (f"**provisional (machine busy)**: load average {load:.2f} before the run on {os.cpu_count()} cores"
             if load > BUSY_LOAD else f"idle machine (load average {load:.2f} before the run)")
    return f"- machine: {cpu_model()}, {os.cpu_count()} cores; {state}"


def publish(text: str, out: Path | None, *, end: str = "\n") -> None:
    """Print the report ``text`` (followed by ``end``) and, with ``out``, write it there too
    (its folder made first)."""
    print(text, end=end)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
