"""Metrics: hand-computed cases, then random cases against scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from fer_nla.metrics import (
    average_precision,
    classification_report,
    confusion_matrix,
    format_report,
    macro_f1,
    mean_average_precision,
    mean_class_accuracy,
    overall_accuracy,
    per_class_accuracy,
    top_k_accuracy,
)

# 3 classes; true 0,0,0,1,1,2 ; predicted 0,1,0,1,2,2
TARGETS = np.array([0, 0, 0, 1, 1, 2])
PREDS = np.array([0, 1, 0, 1, 2, 2])


def test_hand_computed_accuracy_family():
    assert confusion_matrix(TARGETS, PREDS, num_classes=3).tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert overall_accuracy(TARGETS, PREDS) == pytest.approx(4 / 6)
    np.testing.assert_allclose(per_class_accuracy(TARGETS, PREDS, num_classes=3), [2 / 3, 1 / 2, 1.0])
    assert mean_class_accuracy(TARGETS, PREDS, num_classes=3) == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    # F1: class 0 p=1 r=2/3 -> 0.8; class 1 p=1/2 r=1/2 -> 0.5; class 2 p=1/2 r=1 -> 2/3
    assert macro_f1(TARGETS, PREDS, num_classes=3) == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)


def test_absent_class_is_left_out_of_the_means():
    acc = per_class_accuracy(np.array([0, 0, 1]), np.array([0, 1, 1]), num_classes=4)
    assert acc[:2].tolist() == [0.5, 1.0] and np.isnan(acc[2:]).all()
    assert mean_class_accuracy(np.array([0, 0, 1]), np.array([0, 1, 1]), num_classes=4) == pytest.approx(0.75)


def test_top2_hand_computed():
    scores = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    targets = np.array([1, 0, 1, 2])  # ranks: 2nd, 3rd, 2nd, 3rd
    assert top_k_accuracy(targets, scores, k=2) == pytest.approx(0.5)
    assert top_k_accuracy(targets, scores, k=1) == 0.0
    assert top_k_accuracy(targets, scores, k=3) == 1.0


def test_average_precision_hand_computed():
    # sorted by score: +, -, +, -  -> precision at the positives 1, 2/3 -> AP = 0.5 * 1 + 0.5 * 2/3
    assert average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == pytest.approx(5 / 6)
    # a tie of one positive and one negative at the top counts as one threshold: P = 1/2
    assert average_precision(np.array([1, 0, 0]), np.array([0.5, 0.5, 0.1])) == pytest.approx(0.5)
    assert np.isnan(average_precision(np.array([0, 0]), np.array([0.2, 0.1])))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n, c = 300, 7
    targets = rng.integers(0, c, n)
    scores = rng.random((n, c)) + 0.8 * np.eye(c)[targets] * rng.random((n, 1))
    scores = np.round(scores, 2)  # create ties, which AP must handle like scikit-learn
    preds = scores.argmax(1)
    assert confusion_matrix(targets, preds, num_classes=c).tolist() == skm.confusion_matrix(targets, preds, labels=range(c)).tolist()
    assert overall_accuracy(targets, preds) == pytest.approx(skm.accuracy_score(targets, preds))
    assert mean_class_accuracy(targets, preds, num_classes=c) == pytest.approx(skm.balanced_accuracy_score(targets, preds))
    assert macro_f1(targets, preds, num_classes=c) == pytest.approx(skm.f1_score(targets, preds, average="macro"))
    onehot = np.eye(c)[targets]
    assert mean_average_precision(targets, scores) == pytest.approx(skm.average_precision_score(onehot, scores, average="macro"))
    untied = rng.random((n, c))
    assert top_k_accuracy(targets, untied, k=2) == pytest.approx(skm.top_k_accuracy_score(targets, untied, k=2, labels=range(c)))


def test_macro_f1_counts_predicted_only_classes_like_scikit_learn():
    targets, preds = np.array([0, 0, 1, 1]), np.array([0, 2, 1, 1])
    assert macro_f1(targets, preds, num_classes=4) == pytest.approx(skm.f1_score(targets, preds, average="macro", zero_division=0))


def test_report_is_json_ready_and_formats():
    scores = np.eye(3)[PREDS] * 0.9 + 0.05
    report = classification_report(TARGETS, scores, class_names=["neutral", "happiness", "surprise"])
    assert report["overall_acc"] == pytest.approx(4 / 6)
    assert report["per_class_acc"] == pytest.approx({"neutral": 2 / 3, "happiness": 0.5, "surprise": 1.0})
    assert report["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    assert json.loads(json.dumps(report)) == report
    text = format_report(report)
    assert "66.67%" in text and "surprise" in text
    with pytest.raises(ValueError, match="3 class names"):
        classification_report(TARGETS, scores[:, :2], class_names=["a", "b", "c"])
