"""``fer-nla bench``'s output folder: a new one by default, never the committed results unless named."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from fer_nla.cli import build_parser, main
from fer_nla.commands.bench import default_out

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "ferplus_cpu.yaml"
NEW_FOLDER = re.compile(r"^runs/bench-\d{8}-\d{6}(-\d+)?$")


@pytest.fixture
def captured(monkeypatch, tmp_path):
    """The bench functions replaced by recorders: no training, nothing written."""
    import fer_nla.bench.audit_compare as audit_compare
    import fer_nla.bench.robustness as robustness

    calls: list[dict] = []
    monkeypatch.setattr(robustness, "run_robustness",
                        lambda cfg, out, **kw: calls.append({"out": str(out), **kw}) or [])
    monkeypatch.setattr(audit_compare, "run_audit_comparison",
                        lambda cfg, out, **kw: calls.append({"out": str(out), **kw}))
    monkeypatch.chdir(tmp_path)
    return calls


@pytest.mark.parametrize("bench", ["robustness", "audit"])
def test_no_out_writes_to_a_new_runs_folder_not_the_committed_results(bench, captured, capsys):
    assert main(["bench", bench, "--config", str(BENCH)]) == 0
    (call,) = captured
    assert NEW_FOLDER.match(call["out"]), call["out"]
    assert "benchmarks/results" not in call["out"]
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].startswith(f"writing to {call['out']}")
    assert f"--out {call['out']}" in printed  # how to resume it
    assert f"--out {call['out']}" in call["command"]  # the recorded command names the folder


def test_the_committed_results_change_only_when_named(captured):
    assert main(["bench", "robustness", "--config", str(BENCH), "--out", "benchmarks/results"]) == 0
    assert captured[0]["out"] == "benchmarks/results"


def test_parsed_default_is_none_and_help_states_the_new_folder(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per option: no wrapping inside the names
    args = build_parser().parse_args(["bench", "robustness", "--config", "x.yaml"])
    assert args.out is None
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "robustness", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: a new runs/bench-YYYYmmdd-HHMMSS under the current folder" in text
    assert "only with an explicit --out benchmarks/results" in text
    assert "resumes when run again with the same explicit --out" in text


def test_default_out_is_timestamped_and_never_reuses_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    when = datetime(2025, 3, 4, 5, 6, 7)
    assert default_out(now=when) == Path("runs/bench-20250304-050607")
    Path("runs/bench-20250304-050607").mkdir(parents=True)
    assert default_out(now=when) == Path("runs/bench-20250304-050607-2")
