"""Write the test suite's figures (test count, outcomes, wall time, machine) to a Markdown file.

    python scripts/suite_figures.py                      # runs `python -m pytest tests -q`, then writes
    python scripts/suite_figures.py --junit report.xml   # from a finished run's --junitxml file
    python scripts/suite_figures.py --output pytest.log  # from a finished run's printed output

The default output is ``benchmarks/results/test_suite.md``; README.md links to it instead of
quoting a count that goes stale. When this script runs pytest itself the wall time is its own
stopwatch; from a finished run it is the time pytest reported (and the machine is this one: run
the script where the tests ran). The exit status is pytest's (or 0 for a finished run).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import cpu_model  # noqa: E402 - the benchmarks' one reading of the CPU's name
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "test_suite.md"
OUTCOMES = ("passed", "failed", "errors", "skipped", "xfailed", "xpassed")
# pytest's last line: "== 917 passed, 3 skipped, 2 warnings in 194.12s (0:03:14) ==" (-q drops the '=')
_SUMMARY = re.compile(r"^=*\s*(?P<counts>(?:\d+ \w+(?:, )?)+) in (?P<seconds>[\d.]+)s\b", re.M)
_COUNT = re.compile(r"(\d+) (\w+)")


@dataclass
class SuiteFigures:
    """What one run of the suite gave: counts per outcome and its wall time in seconds."""

    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    source: str = ""

    @property
    def total(self) -> int:
        """Tests collected and run (warnings are not tests)."""
        return sum(self.counts.get(name, 0) for name in OUTCOMES)


def parse_output(text: str) -> SuiteFigures:
    """The figures of pytest's printed summary line (the last one, if several)."""
    matches = list(_SUMMARY.finditer(text))
    if not matches:
        raise ValueError("no pytest summary line ('N passed ... in S s') found in the output")
    last = matches[-1]
    counts: dict[str, int] = {}
    for number, word in _COUNT.findall(last["counts"]):
        word = {"error": "errors", "warning": "warnings"}.get(word, word)
        counts[word] = counts.get(word, 0) + int(number)
    return SuiteFigures(counts=counts, seconds=float(last["seconds"]), source="pytest's summary line")


def parse_junit(path: Path) -> SuiteFigures:
    """The figures of a ``--junitxml`` file (its testsuite totals)."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    if not suites:
        raise ValueError(f"{path}: no <testsuite> element")
    tests = failures = errors = skipped = 0
    seconds = 0.0
    for suite in suites:
        tests += int(suite.get("tests", 0))
        failures += int(suite.get("failures", 0))
        errors += int(suite.get("errors", 0))
        skipped += int(suite.get("skipped", 0))
        seconds += float(suite.get("time", 0.0))
    counts = {"passed": tests - failures - errors - skipped, "failed": failures, "errors": errors, "skipped": skipped}
    return SuiteFigures(counts={k: v for k, v in counts.items() if v}, seconds=seconds, source=f"JUnit file {path.name}")


def run_suite(pytest_args: list[str]) -> tuple[SuiteFigures, int]:
    """Run ``python -m pytest tests -q`` in the repository; its figures and exit status."""
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "tests", "-q", f"--junitxml={junit}", *pytest_args]
        start = time.perf_counter()
        status = subprocess.call(command, cwd=ROOT)
        wall = time.perf_counter() - start
        if not junit.is_file():
            raise SystemExit(f"pytest wrote no JUnit file (exit status {status}); nothing to report")
        figures = parse_junit(junit)
    figures.seconds, figures.source = wall, "`python -m pytest tests -q` run by this script, wall clock"
    return figures, status


def minutes(seconds: float) -> str:
    """``194.1`` -> ``3m14s``."""
    whole = round(seconds)
    return f"{whole // 60}m{whole % 60:02d}s"


def version_of(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def report(figures: SuiteFigures, *, command: str) -> str:
    """The Markdown report; its first table row is what README's readers look for."""
    outcomes = ", ".join(f"{figures.counts[name]} {name}" for name in OUTCOMES if figures.counts.get(name))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = [
        "# The test suite: count and wall time",
        "",
        f"`{command}` (written by `python scripts/suite_figures.py`; do not edit by hand)",
        "",
        "| tests | outcomes | wall time |",
        "|---:|---|---:|",
        f"| {figures.total} | {outcomes} | {minutes(figures.seconds)} ({figures.seconds:.1f} s) |",
        "",
        f"- machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}; "
        f"load average {load:.2f} when written",
        f"- software: Python {platform.python_version()}, torch {version_of('torch')}, "
        f"torchvision {version_of('torchvision')}, pytest {version_of('pytest')}, fer-nla {version_of('fer-nla')} "
        f"(commit {commit()})",
        f"- FERPlus data: {'present' if _ferplus_present() else 'absent (its tests skipped)'}",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- time from: {figures.source}",
        "",
    ]
    return "\n".join(lines)


def _ferplus_present() -> bool:
    root = Path(os.environ.get("FER_NLA_FERPLUS") or ROOT.parent / "shared" / "data" / "ferplus")
    return (root / "FER2013Valid" / "label.csv").is_file()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--junit", type=Path, help="a finished run's --junitxml file (no tests are run)")
    given.add_argument("--output", type=Path, help="a finished run's printed output (no tests are run)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the Markdown file to write (default %(default)s)")
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments when the script runs the suite")
    args = parser.parse_args(argv)
    status = 0
    if args.junit:
        figures, command = parse_junit(args.junit), "python -m pytest tests"
    elif args.output:
        figures, command = parse_output(args.output.read_text(errors="replace")), "python -m pytest tests"
    else:
        figures, status = run_suite(args.pytest_args)
        command = " ".join(["python -m pytest tests -q", *args.pytest_args])
    text = report(figures, command=command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text, end="")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
