"""The grid's label settings on plain arrays: exact noise rates, exact imbalance, one budget."""

from __future__ import annotations

import numpy as np
import pytest

from fer_nla.bench.settings import setting_split

RNG = np.random.default_rng(0)
# A FERPlus-like pool: 8 classes, imbalanced, one annotator's vote differing on ~20%.
MAJORITY = np.repeat(np.arange(8), [3000, 2500, 1100, 1000, 700, 60, 200, 60])
VOTES = np.where(RNG.random(MAJORITY.size) < 0.2, RNG.integers(0, 8, MAJORITY.size), MAJORITY)


def split(setting: str, seed: int = 0, train_size: int | None = 4000):
    return setting_split(setting, majority=MAJORITY, single_vote=VOTES, num_classes=8, seed=seed,
                         val_fraction=0.1, train_size=train_size)


@pytest.mark.parametrize("setting", ["single_vote", "symmetric_10", "symmetric_30", "imbalance_50", "clean"])
def test_train_and_validation_are_disjoint_and_labels_are_as_given(setting):
    s = split(setting)
    assert not set(s.train_index) & set(s.val_index)
    assert abs(s.val_index.size - 0.1 * MAJORITY.size) <= 8  # per-class rounding
    assert (s.train_clean == MAJORITY[s.train_index]).all()
    if setting == "single_vote":
        assert (s.train_labels == VOTES[s.train_index]).all() and (s.val_labels == VOTES[s.val_index]).all()
    if setting in ("clean", "imbalance_50"):
        assert s.noise_rate == 0.0 and (s.val_labels == MAJORITY[s.val_index]).all()


def test_symmetric_noise_moves_the_stated_share_of_the_pool():
    for rate in (10, 20, 30):
        s = split(f"symmetric_{rate}", train_size=None)
        given = np.empty_like(MAJORITY)
        given[s.train_index], given[s.val_index] = s.train_labels, s.val_labels
        assert np.mean(given != MAJORITY) == pytest.approx(rate / 100, abs=1e-3)
        assert s.noise_rate == pytest.approx(rate / 100, abs=0.01)


def test_noise_settings_share_one_training_budget_and_imbalance_is_exact():
    assert {split(name).train_index.size for name in ("single_vote", "symmetric_20", "clean")} == {4000}
    for factor in (50, 100):
        s = split(f"imbalance_{factor}")
        counts = np.bincount(s.train_labels, minlength=8)
        assert counts.max() / counts.min() == pytest.approx(factor, rel=0.05)
        assert (np.diff(np.sort(counts)[::-1]) <= 0).all()


def test_seeds_give_other_draws_and_the_same_seed_the_same():
    a, b, c = split("symmetric_20", 0), split("symmetric_20", 0), split("symmetric_20", 1)
    assert (a.train_index == b.train_index).all() and (a.train_labels == b.train_labels).all()
    assert not np.array_equal(a.train_index, c.train_index)


def test_unknown_setting_is_an_error():
    with pytest.raises(ValueError, match="unknown setting"):
        split("pairwise_20")


@pytest.mark.parametrize("factor", [50, 100])
def test_a_budgeted_imbalance_keeps_its_exact_profile_within_the_budget(factor):
    free = split(f"imbalance_{factor}", train_size=None)
    held = setting_split(f"imbalance_{factor}", majority=MAJORITY, single_vote=VOTES, num_classes=8, seed=0,
                         val_fraction=0.1, train_size=1000, imbalance_budget=True)
    assert free.train_index.size > 1000 >= held.train_index.size > 750  # rounding the smallest class costs a few
    assert abs(held.imbalance_ratio / factor - 1) <= 0.05 and held.noise_rate == 0.0
    counts = np.bincount(held.train_labels, minlength=8)
    assert list(np.argsort(-counts, kind="stable")) == list(np.argsort(-np.bincount(free.train_labels, minlength=8),
                                                                     kind="stable"))
    assert not set(held.train_index) & set(held.val_index) and (held.val_index == free.val_index).all()
    # without the option, or without a budget, the profile is as large as the pool allows (as before)
    assert (split(f"imbalance_{factor}", train_size=1000).train_index == free.train_index).all()
