"""benchmarks/startup.py: a process's wall time and peak memory, the report's goal marks, and the
check that predict imports none of PyTorch, torchvision, kornia or scikit-learn."""

from __future__ import annotations

from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "startup.py"


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark(SCRIPT, "bench_startup")


def test_run_once_measures_a_process_that_holds_memory(bench):
    seconds, peak = bench.run_once([], code="import time; x = b\"x\" * 80_000_000; time.sleep(0.2)")  # every page written
    assert 0.2 <= seconds < 10 and 80 <= peak < 200  # the 80 MB it held, plus Python itself (not the parent's)
    seconds, small = bench.run_once(["--version"])
    assert 10 < small < 80  # the command line without a model: far below the 80 MB process
    with pytest.raises(RuntimeError, match="exited 3: boom"):
        bench.run_once([], code="import sys; print('boom', file=sys.stderr); sys.exit(3)")


def test_the_report_marks_each_goal_on_the_slowest_run(bench):
    timings = {"fer-nla --help": bench.Timing([0.2, 0.3, 1.2], [40, 41, 42]),
               "fer-nla models": bench.Timing([0.3], [90]),
               "fer-nla predict group.jpg": bench.Timing([0.5, 0.6], [150, 310])}
    text = bench.report(timings, heavy=[], load=0.1, runs=3)
    assert "| `fer-nla --help` | 0.30 (goal < 1 s: **missed**) | 1.20 | 42 |" in text
    assert "| `fer-nla models` | 0.30 | 0.30 | 90 |" in text
    assert "| `fer-nla predict group.jpg` | 0.55 (goal < 1.5 s: met) | 0.60 | 310 (goal < 300 MB: **missed**) |" in text
    assert "scikit-learn" not in text and "sklearn, matplotlib, tensorboard: none" in text


def test_listing_the_models_imports_no_training_library(bench):
    assert bench.heavy_modules_imported(["models"]) == []
