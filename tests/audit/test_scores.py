"""Suspicion scores, verdicts and detection metrics on plain arrays."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fer_nla.audit import (
    calibrate,
    detection_quality,
    estimate_noise,
    flag_highest,
    majority_prediction,
    roc_auc,
    suspicion_scores,
    verdicts,
)


def test_score_is_the_mean_margin_deficit_after_warm_up():
    p_gt = np.array([[0.9, 0.1, 0.5], [0.8, 0.2, 0.4], [0.6, 0.1, 0.5]])
    p_nn = np.array([[0.05, 0.8, 0.4], [0.1, 0.7, 0.5], [0.3, 0.9, 0.45]])
    scores = suspicion_scores(p_gt, p_nn, skip_epochs=1)
    assert scores == pytest.approx([((0.1 - 0.8) + (0.3 - 0.6)) / 2, ((0.7 - 0.2) + (0.9 - 0.1)) / 2, ((0.5 - 0.4) + (0.45 - 0.5)) / 2])
    assert suspicion_scores(p_gt[:1], p_nn[:1], skip_epochs=1) == pytest.approx([-0.85, 0.7, -0.1])


def test_unseen_entries_are_left_out():
    p_gt = np.array([[0.9, np.nan], [np.nan, np.nan]])
    p_nn = np.array([[0.1, np.nan], [np.nan, np.nan]])
    scores = suspicion_scores(p_gt, p_nn, skip_epochs=0)
    assert scores[0] == pytest.approx(-0.8)
    assert np.isnan(scores[1])


def test_verdict_bands():
    assert list(verdicts(np.array([0.8, 0.3, 0.1, -0.2, -0.31, -0.9]))) == [
        "likely noisy", "likely noisy", "ambiguous", "ambiguous", "clean", "clean"
    ]
    with pytest.raises(ValueError):
        verdicts(np.zeros(2), noisy_threshold=0.1, ambiguous_band=0.2)


def test_majority_prediction_skips_warm_up_and_unseen():
    preds = np.array([[3, 3, 3], [0, 1, -1], [0, 2, -1], [1, 2, -1]])
    assert majority_prediction(preds, num_classes=4, skip_epochs=1).tolist() == [0, 2, -1]


def test_roc_auc_matches_scikit_learn_with_ties():
    rng = np.random.default_rng(0)
    noisy = rng.random(500) < 0.3
    scores = np.round(rng.normal(size=500) + noisy, 1)  # many ties
    assert roc_auc(noisy, scores) == pytest.approx(roc_auc_score(noisy, scores), abs=1e-12)


def test_detection_quality_on_a_hand_case():
    noisy = np.array([True, False, True, False, False, True])
    scores = np.array([0.9, 0.8, 0.1, 0.0, -0.5, 0.7])
    q = detection_quality(noisy, scores, k=2)
    assert (q.precision_at_k, q.recall_at_k) == (0.5, pytest.approx(1 / 3))
    q = detection_quality(noisy, scores)  # k = number noisy = 3: top-3 = 0.9, 0.8, 0.7
    assert (q.k, q.precision_at_k) == (3, pytest.approx(2 / 3))
    assert q.roc_auc == pytest.approx(roc_auc_score(noisy, scores))


# -- the calibrated verdict: confident learning on the recorded signals ------------------------
def test_noise_estimate_on_a_hand_case():
    # 2 classes: t_0 = mean(.9, .5, .2) = .533, t_1 = mean(.8, .6, .3) = .567
    given = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([0, 0, 1, 1, 1, 0])
    p_gt = np.array([0.9, 0.5, 0.2, 0.8, 0.6, 0.3])
    est = estimate_noise(p_gt, 1 - p_gt, pred, given, num_classes=2)
    assert est.thresholds == pytest.approx([1.6 / 3, 1.7 / 3])
    # row 0: sample 2 confidently class 1 (.8 >= t_1), sample 0 confidently 0, sample 1 under t_0: 3 * 1/2
    # row 1: sample 5 confidently class 0 (.7 >= t_0), samples 3 and 4 confidently 1: 3 * 1/3
    assert est.per_class == pytest.approx([1.5, 1.0])
    assert est.rate == pytest.approx(2.5 / 6) and est.count(12) == 5
    assert (est.seen, est.agreement) == (6, pytest.approx(4 / 6))


def test_noise_estimate_counts_a_runner_up_under_its_threshold_on_the_diagonal():
    # sample 0 predicts class 1 with .5 < t_1 = .8 but holds .45 >= t_0 = .375: diagonal, not a wrong label
    given, pred = np.array([0, 0, 1, 1]), np.array([1, 0, 1, 1])
    p_gt, p_nn = np.array([0.45, 0.3, 0.9, 0.7]), np.array([0.5, 0.2, 0.05, 0.2])
    est = estimate_noise(p_gt, p_nn, pred, given, num_classes=3)
    assert est.per_class == pytest.approx([0.0, 0.0, 0.0]) and est.rate == 0.0
    # unseen samples (NaN, -1) are left out
    est = estimate_noise(np.r_[p_gt, np.nan], np.r_[p_nn, np.nan], np.r_[pred, -1], np.r_[given, 2], num_classes=3)
    assert est.seen == 4


def simulated_epoch(rate: float, *, seed: int, gap: float = 3.0, n: int = 3000, c: int = 7):
    """One epoch's signals of a model that puts logit ``gap`` on each face's true class (about
    93% accurate at gap 3), on labels with exactly ``rate`` symmetric noise."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, c, n)
    moved = rng.choice(n, round(rate * n), replace=False)
    given = true.copy()
    given[moved] = (true[moved] + rng.integers(1, c, moved.size)) % c
    logits = rng.normal(size=(n, c))
    logits[np.arange(n), true] += gap
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    others = probs.copy()
    others[np.arange(n), given] = -1.0
    return probs[np.arange(n), given], others.max(axis=1), probs.argmax(axis=1), given


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.4])
def test_noise_estimate_finds_the_planted_rate_when_the_model_has_learned(rate):
    estimates = [estimate_noise(*simulated_epoch(rate, seed=s), num_classes=7).rate for s in range(3)]
    # measured: 0.050 0.055 | 0.218 0.209 | 0.414 0.414 (seeds 0, 1)
    assert np.abs(np.array(estimates) - rate).max() <= 0.025, estimates


def test_calibrated_count_is_withheld_while_the_model_is_still_learning():
    good = simulated_epoch(0.2, seed=0)
    weak = simulated_epoch(0.2, seed=0, gap=1.0)  # ~40% accurate: counts its own errors as wrong labels
    chance = simulated_epoch(0.2, seed=0, gap=0.0)
    stack = lambda *epochs: [np.stack([e[i] for e in epochs]) for i in range(3)]  # noqa: E731
    given = good[3]
    settled = calibrate(*stack(good, good), given, num_classes=7)
    assert settled.reliable and settled.estimate.rate == pytest.approx(0.218, abs=0.005)
    moving = calibrate(*stack(weak, good), given, num_classes=7)
    assert not moving.reliable and "still moving" in moving.reason and moving.previous.rate > moving.estimate.rate + 0.05
    assert "near chance" in calibrate(*stack(good, chance), given, num_classes=7).reason
    assert "one epoch" in calibrate(*stack(good), given, num_classes=7).reason
    # an epoch that saw no sample (a resumed run's empty row) is skipped
    empty = (np.full(given.size, np.nan), np.full(given.size, np.nan), np.full(given.size, -1))
    assert calibrate(*stack(good, good, empty), given, num_classes=7).reliable


def test_flag_highest_takes_the_count_highest_finite_scores_ties_by_position():
    scores = np.array([0.2, np.nan, 0.9, 0.2, -0.5])
    assert flag_highest(scores, count=2).tolist() == [True, False, True, False, False]
    assert flag_highest(scores, count=0).sum() == 0 and flag_highest(scores, count=9).sum() == 4
    with pytest.raises(ValueError):
        flag_highest(scores, count=-1)


def test_verdicts_with_a_calibrated_flag_and_range_checks():
    scores = np.array([0.05, 0.4, -0.1, -0.6])
    out = verdicts(scores, flagged=np.array([True, False, False, False]), ambiguous_band=0.3)
    assert list(out) == ["likely noisy", "ambiguous", "ambiguous", "clean"]  # a rival ahead but unflagged is never "clean"
    for bad in ({"noisy_threshold": 1.5}, {"ambiguous_band": -0.1}, {"ambiguous_band": 1.2, "flagged": np.zeros(4, bool)}):
        with pytest.raises(ValueError):
            verdicts(scores, **bad)
    with pytest.raises(ValueError):
        suspicion_scores(np.zeros((2, 3)), np.zeros((2, 3)), skip_epochs=-1)
