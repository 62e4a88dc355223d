"""FERPlus vote rules on hand-made votes, and on the real data when it is there."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from conftest import write_image

from fer_nla.cli import main
from fer_nla.data import build_dataset, dataset_splits
from fer_nla.data.votes import majority_labels, plurality_labels, single_vote_labels, vote_probabilities
from fer_nla.errors import InputError

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
    soft = build_dataset("ferplus", root=tmp_path, labels="distribution")
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


# --- FERPlus as published: fer2013.csv (pixels) + fer2013new.csv (votes) -----------------------
VOTE_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF\n"


def write_published(root, rows):
    """rows: (usage, image name, votes, gray value); the pixel row i pairs with vote row i."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "fer2013.csv", "w") as pixels, open(root / "fer2013new.csv", "w") as votes:
        pixels.write("emotion,pixels,Usage\n")
        votes.write(VOTE_HEADER)
        for usage, name, counts, value in rows:
            pixels.write(f"0,{' '.join([str(value)] * 2304)},{usage}\n")
            votes.write(f"{usage},{name},{','.join(map(str, counts))}\n")


def write_folders(root, rows):
    """The same rows in the folder layout FERPlus's script writes (no row for an empty name)."""
    folders = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
    for usage, folder in folders.items():
        mine = [r for r in rows if r[0] == usage and r[1]]
        if not mine:
            continue
        (root / folder).mkdir(parents=True)
        lines = [f"{name},\"(0, 0, 48, 48)\",{','.join(map(str, counts))}\n" for _, name, counts, _ in mine]
        (root / folder / "label.csv").write_text("".join(lines))
        for _, name, _, value in mine:
            write_image(root / folder / name, value, size=(48, 48), mode="L", fmt="PNG")


PUBLISHED_ROWS = [
    ("Training", "fer0000000.png", VOTES[0], 10), ("Training", "fer0000001.png", VOTES[1], 20),
    ("Training", "", [0, 0, 0, 0, 0, 0, 0, 0, 0, 10], 0),  # not a face: FERPlus leaves the name empty
    ("Training", "fer0000003.png", VOTES[5], 30), ("Training", "fer0000004.png", [0, 8, 2, 0, 0, 0, 0, 0, 0, 0], 40),
    ("PublicTest", "fer0000005.png", [7, 0, 0, 3, 0, 0, 0, 0, 0, 0], 50),
    ("PublicTest", "", [0, 0, 0, 0, 0, 0, 0, 0, 2, 8], 0),
]


@pytest.mark.parametrize("labels", ["majority", "plurality", "distribution", "single-vote"])
def test_published_csv_pair_reads_like_the_folder_layout(tmp_path, labels):
    write_published(tmp_path / "pub", PUBLISHED_ROWS)
    write_folders(tmp_path / "folders", PUBLISHED_ROWS)
    for split in ("train", "valid"):
        pub = build_dataset("ferplus", root=tmp_path / "pub", split=split, labels=labels)
        ref = build_dataset("ferplus", root=tmp_path / "folders", split=split, labels=labels)
        assert pub.targets.tolist() == ref.targets.tolist() and pub.target_mode == ref.target_mode
        assert pub.info["dropped_no_image_name"] == 1  # counted, never a sample
        assert pub.info["dropped_no_label"] == ref.info["dropped_no_label"]
        for i in range(len(pub)):
            np.testing.assert_array_equal(np.asarray(pub.load_image(i)), np.asarray(ref.load_image(i)))
        if labels == "distribution":
            np.testing.assert_array_equal(pub.soft_targets, ref.soft_targets)
    assert dataset_splits("ferplus", root=tmp_path / "pub") == ("train", "valid")
    assert dataset_splits("ferplus", root=tmp_path / "folders") == ("train", "valid")


def test_published_csv_pair_errors_name_the_file_and_line(tmp_path):
    write_published(tmp_path, PUBLISHED_ROWS)
    (tmp_path / "fer2013.csv").write_text("\n".join((tmp_path / "fer2013.csv").read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(InputError, match="fer2013.csv has 6 data rows but .*fer2013new.csv has 7"):
        build_dataset("ferplus", root=tmp_path)
    (tmp_path / "fer2013.csv").unlink()
    with pytest.raises(InputError, match="put the FER2013 challenge's fer2013.csv beside it"):
        build_dataset("ferplus", root=tmp_path)
    write_published(tmp_path, [("Training", "fer0000000.png", VOTES[1], 300)])
    with pytest.raises(InputError, match=r"fer2013.csv:2: pixel 1 is '300', not an integer in 0..255"):
        build_dataset("ferplus", root=tmp_path)


def test_folder_label_row_without_an_image_name_is_dropped_and_counted(tmp_path, capsys):
    write_folders(tmp_path, [r for r in PUBLISHED_ROWS if r[1]])
    label_file = tmp_path / "FER2013Train" / "label.csv"
    label_file.write_text(label_file.read_text() + ",\"(0, 0, 48, 48)\",0,0,0,0,0,0,0,0,0,10\n")
    train = build_dataset("ferplus", root=tmp_path)  # was: "expected 12 fields ... got 12"
    assert len(train) == 3 and train.info["dropped_no_image_name"] == 1 and train.info["rows"] == 5
    assert main(["data", "stats", "--dataset", "ferplus", "--root", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["info"]["dropped_no_image_name"] == 1
    assert main(["data", "stats", "--dataset", "ferplus", "--root", str(tmp_path)]) == 0
    assert "dropped no image name: 1" in capsys.readouterr().out


def test_published_pair_named_by_one_of_its_files_and_corrupt_refuses_distributions(tmp_path, capsys):
    write_published(tmp_path, PUBLISHED_ROWS)
    by_file = build_dataset("ferplus", root=tmp_path / "fer2013new.csv")  # the file, not its folder
    assert by_file.targets.tolist() == build_dataset("ferplus", root=tmp_path).targets.tolist()
    args = ["data", "corrupt", "--dataset", "ferplus", "--root", str(tmp_path), "--labels", "distribution",
            "--noise", "symmetric", "--rate", "0.2", "--out", str(tmp_path / "m.csv")]
    assert main(args) == 2  # before: written with the soft labels silently dropped
    assert "cannot be written; use --labels plurality" in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()


def test_probability_is_refused_with_what_it_was_renamed_to(tmp_path, capsys):
    write_folders(tmp_path, [r for r in PUBLISHED_ROWS if r[1]])
    with pytest.raises(InputError, match="labels='probability' is now labels='distribution'.*'crossentropy' scheme"):
        build_dataset("ferplus", root=tmp_path, labels="probability")
    assert main(["data", "stats", "--dataset", "ferplus", "--root", str(tmp_path), "--labels", "distribution"]) == 0
    assert main(["data", "stats", "--dataset", "ferplus", "--root", str(tmp_path), "--labels", "probability"]) == 2
    assert "is now --labels distribution" in capsys.readouterr().err
