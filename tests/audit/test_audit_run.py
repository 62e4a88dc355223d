"""`fer-nla audit` on a run folder that training leaves: CSV columns, ranking, sheet, errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from fer_nla.audit import suspicion_scores
from fer_nla.audit_run import CSV_COLUMNS, audit_run
from fer_nla.cli import main
from fer_nla.config import load_config
from fer_nla.train.fit import fit
from fer_nla.train.signals import load_signals

TINY = [
    "data.options.num_samples=48", "data.options.image_size=32", "data.image_size=32", "train.epochs=2",
    "train.batch_size=16", "train.eval_batch_size=64", "train.progress=false", "train.tensorboard=false",
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit") / "run"
    fit(load_config(None, TINY), out, log=lambda _m: None)
    return out


def test_audit_ranks_every_trained_sample_by_the_recorded_margins(run_dir):
    audit = audit_run(run_dir, skip_epochs=1)
    sig = load_signals(run_dir / "signals.npz")
    expected = suspicion_scores(sig["p_gt"].astype(np.float32), sig["p_nn"].astype(np.float32), skip_epochs=1)
    trained = np.flatnonzero(np.isfinite(expected))
    assert sorted(audit.index.tolist()) == trained.tolist()
    assert np.all(np.diff(audit.scores) <= 0)
    assert audit.scores == pytest.approx(expected[audit.index])
    assert audit.given.tolist() == sig["targets"][audit.index].tolist()
    assert set(audit.verdict) <= {"likely noisy", "ambiguous", "clean"}


def test_audit_command_writes_csv_sheet_and_json(run_dir, tmp_path, capsys):
    out, sheet = tmp_path / "audit.csv", tmp_path / "sheet.png"
    assert main(["audit", "--run", str(run_dir), "--top", "10", "--out", str(out), "--sheet", str(sheet),
                 "--evaluate", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(out.open()))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [int(r["rank"]) for r in rows] == list(range(1, 11))
    assert all(r["path"].startswith("synthetic:train:") for r in rows)
    assert sheet.stat().st_size > 10_000 and sheet.read_bytes()[:4] == b"\x89PNG"
    assert summary["num_scored"] == len(audit_run(run_dir)) == sum(summary["verdicts"].values())
    # the synthetic set knows its clean labels (blended faces draw theirs from a mix)
    assert set(summary["evaluation"]) >= {"precision_at_k", "recall_at_k", "roc_auc", "k"}


def test_audit_of_a_folder_without_signals_is_a_clear_error(tmp_path, capsys):
    assert main(["audit", "--run", str(tmp_path), "--out", str(tmp_path / "a.csv")]) == 2
    assert "train.record_signals" in capsys.readouterr().err
