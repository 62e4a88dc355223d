"""Suspicion scores, verdicts and detection metrics on plain arrays."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from fer_nla.audit import detection_quality, majority_prediction, roc_auc, suspicion_scores, verdicts


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
