"""Seeded label corruption: exact counts, reproducibility, the imbalance profile, manifests."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from fer_nla.cli import main
from fer_nla.data import build_dataset
from fer_nla.data.corrupt import (
    IMBALANCE_TOLERANCE,
    class_order,
    corrupt_dataset,
    imbalance_indices,
    imbalance_profile,
    noise_allocation,
    pair_partners,
    pairwise_noise,
    reachable_factors,
    symmetric_noise,
)
from fer_nla.errors import InputError
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
    # a standard CSV: the header first (pandas and csv.DictReader read it as it is), provenance beside it
    assert lines[0] == "path,label,clean_label,is_noisy,split,source"
    with (tmp_path / "a.csv").open(newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 300
    sidecar = json.loads((tmp_path / "a.source.json").read_text())
    assert sidecar["dataset"] == "synthetic" and sidecar["options"] == {"num_samples": 300, "image_size": 16}
    rows = [line.split(",") for line in lines[1:]]
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


def test_imbalance_on_a_set_too_small_is_an_error_naming_the_largest_reachable_factor():
    counts = np.array([7, 12, 7, 12, 7, 8, 7])  # largest 12: no profile reaches 100, or 10
    with pytest.raises(InputError, match=r"factor=100 .*keeps 12 of the largest class and 0 of the smallest.*"
                                         r"largest ratio this set reaches is factor=12\b"):
        imbalance_profile(counts, factor=100)
    with pytest.raises(InputError, match=r"a ratio of 12, not 10 within 5%"):
        imbalance_profile(counts, factor=10)  # the smallest class rounds to 1 sample: ratio 12
    assert reachable_factors(counts)[1] == 12.0
    keep = imbalance_profile(counts, factor=12)  # what the message offers works
    assert keep.max() / keep[keep > 0].min() == 12


@pytest.mark.parametrize("fit", ["exact", "clip"])
def test_every_accepted_profile_keeps_the_asked_ratio_within_the_tolerance(fit):
    rng = np.random.default_rng(3)
    for _ in range(200):
        counts = rng.integers(1, 60, size=7)
        factor = float(np.round(rng.uniform(1, 80), 1))
        try:
            keep = imbalance_profile(counts, factor=factor, fit=fit)
        except InputError:
            continue
        target_ratio = _profile_ratio(counts, factor, fit)
        assert abs(target_ratio / factor - 1) <= IMBALANCE_TOLERANCE
        if fit == "exact":  # nothing clipped: the kept counts are the profile
            assert abs(keep.max() / keep[keep > 0].min() / factor - 1) <= IMBALANCE_TOLERANCE


def _profile_ratio(counts, factor, fit):
    ranked = np.sort(counts)[::-1].astype(float)
    shares = factor ** (-np.arange(7) / 6)
    n_max = np.min(ranked / shares) if fit == "exact" else ranked[0]
    target = np.round(n_max * shares)
    return target[0] / target[-1]


def test_corrupt_command_refuses_an_imbalance_the_set_cannot_reach(tmp_path, capsys):
    out = tmp_path / "m.csv"
    args = ["data", "corrupt", "--dataset", "synthetic", "-o", "num_samples=60", "-o", "image_size=16",
            "--out", str(out)]
    assert main([*args, "--imbalance", "100"]) == 2
    err = capsys.readouterr().err
    assert "--imbalance 100 (largest/smallest class) cannot be reached with --fit exact" in err
    assert "largest ratio this set reaches is --imbalance 12" in err and "Traceback" not in err
    assert not out.exists()
    assert main([*args, "--imbalance", "12", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["imbalance_ratio"] == 12.0
