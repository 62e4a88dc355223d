"""`fer-nla audit` on a run folder that training leaves: CSV columns, ranking, sheet, errors."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from fer_nla.audit import suspicion_scores
from fer_nla.audit_run import CSV_COLUMNS, Audit, audit_run, contact_sheet, evaluate_against_clean
from fer_nla.cli import main
from fer_nla.commands.audit import SHEET_FACES
from fer_nla.errors import InputError
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
    assert audit.prior == "uniform"  # the default: the signals with the training prior divided out
    expected = suspicion_scores(sig["p_gt_uniform"].astype(np.float32), sig["p_nn_uniform"].astype(np.float32),
                                skip_epochs=1)
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


# -- bad input and honest output ---------------------------------------------------------------
def test_a_run_no_longer_than_the_warm_up_gets_one_warning_on_stderr(run_dir, tmp_path, capsys, recwarn):
    assert main(["audit", "--run", str(run_dir), "--out", str(tmp_path / "a.csv"), "--skip-epochs", "2"]) == 0
    err = capsys.readouterr().err
    assert err.count("the run recorded 2 epoch(s)") == 1 and "fer-nla audit: warning: the run recorded 2 epoch(s)" in err
    assert "--skip-epochs 2" in err and "Traceback" not in err and not recwarn.list
    assert main(["audit", "--run", str(run_dir), "--out", str(tmp_path / "b.csv"), "--noisy-threshold", "0.3"]) == 0
    assert "warm-up" not in capsys.readouterr().err  # 2 epochs, 1 warm-up: nothing to say


@pytest.mark.parametrize("options, named", [
    (["--skip-epochs", "-1"], "--skip-epochs -1"),
    (["--ambiguous-band", "1.5"], "--ambiguous-band 1.5"),
    (["--noisy-threshold", "2"], "--noisy-threshold 2"),
    (["--noisy-threshold", "0.2", "--ambiguous-band", "0.3"], "--ambiguous-band 0.3 is wider than --noisy-threshold 0.2"),
    (["--top", "0"], "--top 0"),
])
def test_options_out_of_range_are_one_clear_error(run_dir, tmp_path, capsys, options, named):
    assert main(["audit", "--run", str(run_dir), "--out", str(tmp_path / "a.csv"), *options]) == 2
    err = capsys.readouterr().err
    assert named in err and err.count("\n") == 1 and not (tmp_path / "a.csv").exists()


def test_folders_that_are_not_audit_ready_runs_are_one_clear_error(run_dir, tmp_path, capsys):
    assert main(["audit", "--run", str(tmp_path / "nowhere"), "--out", str(tmp_path / "a.csv")]) == 2
    assert "nowhere is not a folder" in capsys.readouterr().err
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    (broken / "signals.npz").write_bytes(b"PK\x03\x04 not a zip archive")
    assert main(["audit", "--run", str(broken), "--out", str(tmp_path / "a.csv")]) == 2
    err = capsys.readouterr().err
    assert "signals.npz cannot be read" in err and "Traceback" not in err
    np.savez(broken / "signals.npz", p_gt=np.zeros((1, 3)))
    assert main(["audit", "--run", str(broken), "--out", str(tmp_path / "a.csv")]) == 2
    assert "lacks p_nn, prediction, targets, sample_ids" in capsys.readouterr().err


def test_sheet_and_evaluate_refuse_data_that_changed_since_training(run_dir, tmp_path, capsys):
    moved = tmp_path / "moved"
    shutil.copytree(run_dir, moved)
    config = (moved / "config.yaml").read_text()
    assert "num_samples: 48" in config
    (moved / "config.yaml").write_text(config.replace("num_samples: 48", "num_samples: 30"))
    assert main(["audit", "--run", str(moved), "--out", str(tmp_path / "a.csv"), "--evaluate"]) == 2
    assert "data changed since training" in capsys.readouterr().err


def test_evaluate_with_top_beyond_the_scored_samples_caps_k(run_dir, tmp_path, capsys):
    assert main(["audit", "--run", str(run_dir), "--out", str(tmp_path / "a.csv"), "--top", "1000",
                 "--evaluate", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["evaluation"]["k"] == summary["num_scored"] == summary["evaluation"]["num_scored"]


def test_evaluate_where_every_known_label_is_clean_says_so(run_dir):
    audit = audit_run(run_dir)
    clean = np.full(int(audit.index.max()) + 1, -1)
    clean[audit.index] = audit.given
    result = evaluate_against_clean(audit, clean)
    assert result["roc_auc"] is None and result["noise_rate"] == 0.0 and "every known label is clean" in result["reason"]


def test_help_states_the_defaults_the_code_uses(capsys):
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--skip-epochs N warm-up epochs left out of the score, 0 or more (default 1)" in text
    assert "in [0, 1] (default 0.3)" in text and "(default: all)" in text
    assert "(default: calibrated by confident learning)" in text
    assert f"the --top K, or {SHEET_FACES} without --top" in text


def test_contact_sheet_title_covers_no_face(tmp_path):
    """100 plain red faces (README's --top 100): every face stays a whole red rectangle."""
    from types import SimpleNamespace

    from PIL import Image
    from scipy import ndimage

    n = 100
    audit = Audit(
        class_names=("neutral", "happiness", "surprise"), index=np.arange(n),
        sample_ids=np.array([f"s{i}" for i in range(n)]),
        given=np.arange(n) % 3, predicted=(np.arange(n) + 1) % 3, scores=np.linspace(0.9, 0.1, n), mean_weight=None,
        verdict=np.full(n, "clean", dtype=object),
    )
    faces = SimpleNamespace(load_image=lambda _i: Image.new("RGB", (48, 48), (255, 0, 0)))
    pixels = np.asarray(Image.open(contact_sheet(audit, faces, tmp_path / "sheet.png", top=n)).convert("RGB")).astype(int)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 60) & (pixels[..., 2] < 60)
    labels, count = ndimage.label(red)
    assert count == n  # text drawn across a face would split or notch it
    for box in ndimage.find_objects(labels):
        assert red[box].all(), box
    # the title is above the first row of faces
    title_rows = np.flatnonzero((pixels.sum(axis=2) < 300).any(axis=1))
    assert title_rows[0] < np.flatnonzero(red.any(axis=1))[0]


def test_classes_too_small_for_a_per_class_count_are_named_in_one_warning():
    from fer_nla.audit_run import reliability_notes
    from fer_nla.cli import spell_options
    from fer_nla.commands.audit import SPELLING

    notes = reliability_notes(epochs=12, skip_epochs=1, calibration=None, too_few={"disgust": 20, "contempt": 12})
    assert len(notes) == 1 and "disgust (20), contempt (12)" in notes[0] and "min_class_samples=50" in notes[0]
    spelled = spell_options(notes[0], SPELLING)
    assert "--min-class-samples 50" in spelled and "--rule global" in spelled
    assert reliability_notes(epochs=12, skip_epochs=1, calibration=None, too_few={}) == []


def test_the_train_prior_audit_reads_the_signals_as_trained_and_old_runs_fall_back_to_it(run_dir, tmp_path):
    sig = load_signals(run_dir / "signals.npz")
    audit = audit_run(run_dir, skip_epochs=1, prior="train")
    expected = suspicion_scores(sig["p_gt"].astype(np.float32), sig["p_nn"].astype(np.float32), skip_epochs=1)
    assert audit.prior == "train" and audit.scores == pytest.approx(expected[audit.index])
    assert not np.allclose(sig["p_gt"].astype(np.float32), sig["p_gt_uniform"].astype(np.float32), equal_nan=True)
    old = tmp_path / "old_run"
    shutil.copytree(run_dir, old)
    np.savez_compressed(old / "signals.npz", **{k: v for k, v in sig.items() if not k.endswith("_uniform")})
    fallback = audit_run(old, skip_epochs=1)
    assert fallback.prior == "train" and fallback.scores == pytest.approx(audit.scores)
    assert any("recorded before fer-nla kept them at the uniform prior" in note for note in fallback.notes)
    with pytest.raises(InputError, match="prior='balanced' is not one of uniform, train"):
        audit_run(run_dir, prior="balanced")
