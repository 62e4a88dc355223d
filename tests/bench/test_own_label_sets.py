"""benchmarks/own_label_sets.py: the two noisy label sets of our own that the identity grid's
cells were re-run on (issue 25): runner-up ambiguity and drift to neutral, planted on known votes."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fer_nla.bench.label_sets import read_label_set
from fer_nla.data.votes import majority_labels
from fer_nla.labels import EMOTIONS

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("own_label_sets", ROOT / "benchmarks" / "own_label_sets.py")
own = importlib.util.module_from_spec(spec)
spec.loader.exec_module(own)


def _votes() -> np.ndarray:
    """40 faces: 10 happiness with 3 surprise votes, 10 sadness with a single (outlier) anger vote,
    10 neutral with 2 fear votes, 10 anger without a second emotion."""
    rows = []
    for top, second, count in ((1, 2, 3), (3, 4, 1), (0, 6, 2), (4, None, 0)):
        for _ in range(10):
            v = np.zeros(10, dtype=np.int64)
            v[top] = 7
            if second is not None:
                v[second] = count
            rows.append(v)
    return np.stack(rows)


def test_runner_up_moves_the_rate_of_faces_with_a_second_emotion_of_two_votes_to_it():
    votes = _votes()
    majority = majority_labels(votes)
    labels = own.runner_up(votes, majority, rate=0.5, seed=3)
    moved = np.flatnonzero(labels != majority)
    assert len(moved) == 10  # half of the 20 eligible faces: single votes are outliers, anger has no second
    assert set(labels[moved]) <= {2, 6} and set(moved) <= set(range(10)) | set(range(20, 30))
    assert all(labels[i] == {1: 2, 0: 6}[majority[i]] for i in moved)
    assert np.array_equal(labels, own.runner_up(votes, majority, rate=0.5, seed=3))  # seeded


def test_to_neutral_moves_the_rate_of_each_non_neutral_class_to_neutral():
    majority = majority_labels(_votes())
    labels = own.to_neutral(majority, rate=0.3, seed=0)
    for k in (1, 3, 4):
        members = majority == k
        assert np.sum(labels[members] == 0) == 3 and np.all(np.isin(labels[members], (0, k)))
    assert np.array_equal(labels[majority == 0], majority[majority == 0])


def test_the_written_files_are_label_sets_the_grid_reads(tmp_path, capsys):
    votes = _votes()
    folder = tmp_path / "ferplus" / "FER2013Train"
    folder.mkdir(parents=True)
    names = [f"fer{i:07d}.png" for i in range(len(votes))]
    folder.joinpath("label.csv").write_text("".join(f'{n},"(0, 0, 48, 48)",{",".join(map(str, v))}\n'
                                                    for n, v in zip(names, votes)))
    assert own.main(["--root", str(tmp_path / "ferplus"), "--out", str(tmp_path / "sets"), "--rate", "0.5"]) == 0
    assert "runner_up.csv: 40 faces, 25.0% labels differ" in capsys.readouterr().out
    class_names = [e.lower() for e in EMOTIONS]
    for name in ("runner_up", "to_neutral"):
        read = read_label_set(tmp_path / "sets" / f"{name}.csv", sample_ids=[f"FER2013Train/{n}" for n in names],
                              class_names=class_names, root=str(tmp_path / "ferplus"), log=lambda _: None)
        assert (read >= 0).all() and len(read) == 40
    to_neutral = read_label_set(tmp_path / "sets" / "to_neutral.csv", sample_ids=names, class_names=class_names,
                                root=None, log=lambda _: None)
    assert np.sum(to_neutral == 0) == 10 + 15  # the 10 neutral faces and half of the 30 others


def test_a_wrong_root_or_rate_is_a_usage_error_naming_the_fix(tmp_path, capsys):
    for args, said in ((["--root", str(tmp_path)], "--root is the FERPlus folder that holds FER2013Train/label.csv"),
                       (["--root", str(tmp_path), "--rate", "1.5"], "--rate 1.5 is not a share")):
        with pytest.raises(SystemExit) as stop:
            own.main([*args, "--out", str(tmp_path / "sets")])
        assert stop.value.code == 2 and said in capsys.readouterr().err
    assert not (tmp_path / "sets").exists()
