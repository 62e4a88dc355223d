"""FERPlus vote rules on hand-made votes, and on the real data when it is there."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import write_image

from fer_nla.cli import main
from fer_nla.data import build_dataset
from fer_nla.data.votes import majority_labels, plurality_labels, single_vote_labels, vote_probabilities

# columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
VOTES = np.array([
    [4, 0, 0, 1, 3, 2, 0, 0, 0, 0],  # ones dropped: 4 of 9 is not a majority; plurality neutral
    [6, 0, 1, 1, 0, 0, 0, 0, 2, 0],  # 6 of 8 -> neutral
    [0, 0, 0, 0, 0, 0, 0, 0, 6, 4],  # unknown wins: no emotion
    [0, 5, 5, 0, 0, 0, 0, 0, 0, 0],  # a tie: neither rule decides
    [1, 1, 1, 1, 1, 1, 1, 1, 1, 1],  # every vote an outlier
    [0, 0, 0, 0, 0, 0, 0, 3, 0, 2],  # contempt 3 of 5
])


def test_majority_and_plurality_follow_ferplus_rules():
    assert majority_labels(VOTES).tolist() == [-1, 0, -1, -1, -1, 7]
    assert plurality_labels(VOTES).tolist() == [0, 0, -1, -1, -1, 7]


def test_probabilities_drop_outliers_and_normalise_emotion_votes():
    p = vote_probabilities(VOTES)
    np.testing.assert_allclose(p[0], [4 / 9, 0, 0, 0, 3 / 9, 2 / 9, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(p[1], [1, 0, 0, 0, 0, 0, 0, 0])
    assert p[2].sum() == 0 and p.shape == (6, 8)
    np.testing.assert_allclose(vote_probabilities(VOTES, num_classes=7)[5], np.zeros(7))


def test_single_vote_draws_among_emotion_votes_in_proportion():
    votes = np.tile([[6, 3, 1, 0, 0, 0, 0, 0, 5, 5]], (20000, 1))
    drawn = single_vote_labels(votes, seed=1)
    shares = np.bincount(drawn, minlength=8) / drawn.size
    np.testing.assert_allclose(shares[:3], [0.6, 0.3, 0.1], atol=0.012)  # unknown/NF never drawn
    assert np.array_equal(drawn, single_vote_labels(votes, seed=1))
    assert not np.array_equal(drawn, single_vote_labels(votes, seed=2))
    assert single_vote_labels(VOTES[2:3]).tolist() == [-1]


def make_ferplus(root, votes):
    folder = root / "FER2013Train"
    with open(folder.mkdir(parents=True) or folder / "label.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        for i, row in enumerate(votes):
            write_image(folder / f"fer{i:07d}.png", i, size=(48, 48), mode="L")
            writer.writerow([f"fer{i:07d}.png", "(0, 0, 48, 48)", *row])
    return folder / "label.csv"


def test_label_modes_on_a_fabricated_layout(tmp_path):
    make_ferplus(tmp_path, VOTES)
    majority = build_dataset("ferplus", root=tmp_path)
    assert majority.targets.tolist() == [0, 7] and majority.samples[1].endswith("fer0000005.png")
    assert majority.load_image(0).mode == "RGB"
    assert build_dataset("ferplus", root=tmp_path, num_classes=7).targets.tolist() == [0]
    soft = build_dataset("ferplus", root=tmp_path, labels="probability")
    assert soft.target_mode == "soft" and soft.targets.tolist() == [0, 0, 7]
    assert soft[0][1].tolist() == pytest.approx([4 / 9, 0, 0, 0, 3 / 9, 2 / 9, 0, 0])
    single = build_dataset("ferplus", root=tmp_path, labels="single-vote", keep_unresolved=True)
    assert len(single) == 5 and single.clean_targets.tolist() == [-1, 0, -1, -1, 7]


def test_malformed_label_line(tmp_path):
    label_file = make_ferplus(tmp_path, VOTES[:2])
    label_file.write_text(label_file.read_text() + 'fer9.png,"(0, 0, 48, 48)",1,2,3\n')
    with pytest.raises(ValueError, match=r"label.csv:3: expected 12 fields"):
        build_dataset("ferplus", root=tmp_path)


README_COUNTS = {
    "train": (25045, [8733, 7284, 3136, 3022, 2098, 116, 536, 120]),
    "valid": (3191, [1180, 862, 411, 348, 289, 25, 60, 16]),
}


@pytest.mark.parametrize("split", ["train", "valid"])
def test_real_ferplus_majority_counts_match_its_readme(ferplus_root, split):
    dataset = build_dataset("ferplus", root=ferplus_root, split=split)
    size, counts = README_COUNTS[split]
    assert len(dataset) == size
    assert dataset.class_counts().tolist() == counts


def test_real_ferplus_single_vote_disagrees_on_about_19_percent(ferplus_root):
    single = build_dataset("ferplus", root=ferplus_root, split="train", labels="single-vote", seed=0)
    majority = build_dataset("ferplus", root=ferplus_root, split="train")
    assert single.samples == majority.samples
    np.testing.assert_array_equal(single.clean_targets, majority.targets)
    rates = [single.noise_rate()] + [
        build_dataset("ferplus", root=ferplus_root, labels="single-vote", seed=s).noise_rate() for s in (1, 2)
    ]
    assert all(0.18 < r < 0.20 for r in rates), rates
    assert rates[0] == pytest.approx(float((single.targets != majority.targets).mean()))


def test_real_ferplus_stats_command_prints_the_readme_numbers(ferplus_root, capsys):
    code = main(["data", "stats", "--dataset", "ferplus", "--root", str(ferplus_root), "--split", "valid",
                 "--labels", "majority", "--json"])
    assert code == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["num_samples"] == 3191
    assert list(stats["class_counts"].values()) == README_COUNTS["valid"][1]
    assert stats["class_names"] == list(stats["class_counts"])
    assert stats["imbalance_ratio"] == pytest.approx(1180 / 16)
    assert stats["noise_rate"] is None
