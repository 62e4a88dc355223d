"""Seeded label corruption: exact counts, reproducibility, the imbalance profile, manifests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_nla.cli import main
from fer_nla.data import build_dataset
from fer_nla.data.corrupt import (
    class_order,
    corrupt_dataset,
    imbalance_indices,
    imbalance_profile,
    noise_allocation,
    pair_partners,
    pairwise_noise,
    symmetric_noise,
)
from fer_nla.labels import EMOTIONS


@pytest.mark.parametrize("rate", [0.1, 0.2, 0.3, 0.45])
def test_symmetric_noise_moves_exactly_round_r_n_labels_to_other_classes_uniformly(rate):
    labels = np.random.default_rng(0).integers(0, 7, size=9001)
    noisy = symmetric_noise(labels, num_classes=7, rate=rate, seed=5)
    moved = noisy != labels
    assert moved.sum() == round(rate * labels.size)
    # every class loses floor or ceil of rate * n_k
    lost = np.bincount(labels[moved], minlength=7)
    exact = rate * np.bincount(labels, minlength=7)
    assert np.all((lost == np.floor(exact)) | (lost == np.ceil(exact)))
    # the new class is uniform over the six others: offsets 1..6 mod 7 equally often
    offsets = (noisy[moved] - labels[moved]) % 7
    shares = np.bincount(offsets, minlength=7)[1:] / moved.sum()
    assert np.abs(shares - 1 / 6).max() < 0.03
    assert np.array_equal(noisy, symmetric_noise(labels, num_classes=7, rate=rate, seed=5))
    assert not np.array_equal(noisy, symmetric_noise(labels, num_classes=7, rate=rate, seed=6))


def test_noise_allocation_is_largest_remainder():
    assert noise_allocation(np.array([10, 10, 5]), rate=0.3).tolist() == [3, 3, 2]  # 3, 3, 1.5 -> total 8 (round 7.5)
    assert noise_allocation(np.array([3, 3, 3]), rate=0.5).tolist() == [2, 1, 1]  # 1.5 each; round(4.5) = 4
    assert noise_allocation(np.array([7, 0]), rate=1.0).tolist() == [7, 0]


def test_pairwise_noise_sends_each_class_to_its_partner():
    labels = np.repeat(np.arange(8), 50)
    noisy = pairwise_noise(labels, num_classes=8, rate=0.2, seed=0)
    moved = noisy != labels
    assert moved.sum() == 80 and np.bincount(labels[moved]).tolist() == [10] * 8
    assert np.array_equal(noisy[moved], (labels[moved] + 1) % 8)
    confusable = pair_partners(8, scheme="confusable")
    assert EMOTIONS[confusable[EMOTIONS.index("fear")]] == "surprise"
    assert EMOTIONS[confusable[EMOTIONS.index("disgust")]] == "anger"
    noisy = pairwise_noise(labels, num_classes=8, rate=0.2, seed=0, partners=confusable)
    assert np.array_equal(noisy[noisy != labels], confusable[labels[noisy != labels]])
    with pytest.raises(ValueError, match="another class"):
        pairwise_noise(labels, num_classes=8, rate=0.2, seed=0, partners=np.arange(8))


def test_imbalance_follows_the_exponential_profile():
    labels = np.repeat(np.arange(7), [500, 520, 480, 510, 505, 495, 490])
    keep = imbalance_indices(labels, num_classes=7, factor=10, seed=0)
    counts = np.bincount(labels[keep], minlength=7)
    order = [1, 3, 4, 0, 5, 6, 2]  # by descending frequency
    assert class_order(np.bincount(labels)).tolist() == order
    n_max = min(np.bincount(labels)[k] / 10 ** (-r / 6) for r, k in enumerate(order))  # 480 * 10 = 4800 > 520
    expected = [round(n_max * 10 ** (-r / 6)) for r in range(7)]
    assert counts[order].tolist() == expected and expected[0] == 520 and expected[-1] == 52
    assert counts.max() / counts.min() == pytest.approx(10)
    assert np.array_equal(keep, imbalance_indices(labels, num_classes=7, factor=10, seed=0))
    assert np.unique(keep).size == keep.size


def test_imbalance_fit_modes_on_skewed_counts():
    counts = np.array([1000, 300, 50])
    exact = imbalance_profile(counts, factor=100)  # 50 * 100 = 5000 > 1000: n_max = 1000
    assert exact.tolist() == [1000, 100, 10]
    exact = imbalance_profile(counts, factor=4)  # n_max bounded by 300 / 4**-0.5 = 600 and 50 * 4 = 200
    assert exact.tolist() == [200, 100, 50]
    assert imbalance_profile(counts, factor=4, fit="clip").tolist() == [1000, 300, 50]  # 1000, 500, 250 clipped


def test_corrupt_dataset_keeps_clean_labels_and_subsets_the_images():
    dataset = build_dataset("synthetic", num_samples=700, mix_share=0.0, image_size=16)
    result = corrupt_dataset(dataset, seed=1, noise="symmetric", rate=0.2, imbalance=5.0)
    assert result.info["corruption"]["moved"] == round(0.2 * len(result))
    assert result.noise_rate() == pytest.approx(round(0.2 * len(result)) / len(result))
    before_noise = np.bincount(result.clean_targets, minlength=7)  # imbalance acts before the noise
    assert before_noise.max() / before_noise.min() == pytest.approx(5.0, rel=0.02)
    for index in (0, len(result) - 1):
        source_index = dataset.samples.index(result.samples[index])
        assert result.clean_targets[index] == dataset.targets[source_index]
        np.testing.assert_array_equal(np.asarray(result.load_image(index)), np.asarray(dataset.load_image(source_index)))


def test_corrupt_command_writes_a_manifest_that_reads_back(tmp_path, capsys):
    args = ["data", "corrupt", "--dataset", "synthetic", "-o", "num_samples=300", "-o", "image_size=16",
            "--noise", "symmetric", "--rate", "0.3", "--seed", "4"]
    assert main([*args, "--out", str(tmp_path / "a.csv")]) == 0
    assert main([*args, "--out", str(tmp_path / "b.csv"), "--json"]) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    lines = (tmp_path / "a.csv").read_text().splitlines()
    assert lines[0].startswith("# fer-nla source: ") and lines[1] == "path,label,clean_label,is_noisy,split"
    rows = [line.split(",") for line in lines[2:]]
    assert len(rows) == 300 and summary["num_samples"] == 300
    assert sum(r[1] != r[2] for r in rows) == sum(r[3] == "1" for r in rows) == summary["noisy"]
    source = build_dataset("synthetic", num_samples=300, image_size=16, seed=4)
    manifest = build_dataset("manifest", root=tmp_path / "a.csv")
    assert manifest.class_names == source.class_names and manifest.samples == source.samples
    assert [manifest.class_names[t] for t in manifest.targets] == [r[1] for r in rows]
    np.testing.assert_array_equal(manifest.clean_targets, source.clean_targets)
    np.testing.assert_array_equal(np.asarray(manifest.load_image(7)), np.asarray(source.load_image(7)))
    # 30% moved on top of the synthetic set's own drawn-label noise
    moved = int((manifest.targets != source.targets).sum())
    assert moved == 90


def test_corrupt_command_errors(tmp_path, capsys):
    base = ["data", "corrupt", "--out", str(tmp_path / "m.csv"), "-o", "num_samples=20"]
    assert main(base) == 2
    assert "needs --noise" in capsys.readouterr().err
    assert main([*base, "--noise", "pairwise"]) == 2
    assert "needs --rate" in capsys.readouterr().err
    assert main([*base, "--imbalance", "0.5"]) == 2
    assert "must be >= 1" in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists()
