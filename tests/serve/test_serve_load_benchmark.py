"""benchmarks/serve_load.py: its percentiles, its accounting of every request, its report lines."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "serve_load.py"


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark(SCRIPT, "bench_serve_load")


def test_percentiles_interpolate_between_ranks_as_numpy_does(bench) -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert bench.percentile(values, 50) == 3.0
    assert bench.percentile(values, 95) == pytest.approx(4.8)  # numpy.percentile([1..5], 95)
    assert bench.percentile(values, 0) == 1.0 and bench.percentile(values, 100) == 5.0
    assert bench.percentile([7.0], 95) == 7.0 and math.isnan(bench.percentile([], 50))


def test_every_request_is_counted_once_by_status_or_error(bench) -> None:
    Outcome = bench.Outcome
    outcomes = [Outcome(200, 0.1, faces=14), Outcome(200, 0.3, faces=14), Outcome(200, 0.2, faces=13),
                Outcome(503, 0.001), Outcome(None, 5.0, error="ConnectionResetError")]
    summary = bench.summarize(outcomes, sent=6, wall_s=2.0)  # one request sent but never recorded
    assert summary.statuses == {200: 3, 503: 1} and summary.errors == {"ConnectionResetError": 1}
    assert summary.accounted == 5 and summary.requests_per_s == 3.0
    assert summary.mismatched == 1  # the 200 with 13 faces where the first had 14
    assert summary.max_ms == pytest.approx(300.0)  # answered requests only: the reset one has no latency
    assert summary.p50_ms == pytest.approx(150.0)
    lines = bench.report_lines(summary, concurrency=8)
    assert lines[-1] == "- accounted for: 5 of 6 (1 LOST)"
    assert "status codes: 200: 3, 503: 1; errors (no HTTP answer): ConnectionResetError: 1" in lines[2]
    full = bench.summarize(outcomes[:4], sent=4, wall_s=1.0)
    assert bench.report_lines(full, concurrency=8)[-1] == "- accounted for: 4 of 4 (nothing lost)"
