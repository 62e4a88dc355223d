"""Metrics: hand-computed cases, then random cases against scikit-learn."""

from __future__ import annotations

import json
import warnings

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


# -- the definitions scikit-learn now computes, written out as before (independent references) --
def _reference_confusion(t, p, c):
    return np.bincount(t * c + p, minlength=c * c).reshape(c, c)


def _reference_per_class(t, p, c):
    cm = _reference_confusion(t, p, c)
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def _reference_macro_f1(t, p, c):
    cm = _reference_confusion(t, p, c).astype(np.float64)
    denominator = cm.sum(axis=1) + cm.sum(axis=0)
    present = denominator > 0
    return float((2 * np.diag(cm)[present] / denominator[present]).mean())


def _reference_ap(y, s):
    if not y.any():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    y, s = y[order], s[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tps = np.cumsum(y)[last_of_tie]
    return float(np.sum(np.diff(np.r_[0.0, tps / tps[-1]]) * tps / (last_of_tie + 1)))


@pytest.mark.parametrize("seed", range(4))
def test_scikit_learn_gives_the_former_numbers_with_absent_classes_and_ties(seed):
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(5, 80)), int(rng.integers(2, 9))
    targets = rng.integers(0, c - 1, n)  # class c-1 never a target (and maybe others)
    scores = np.round(rng.random((n, c)), 1)  # many ties
    preds = rng.integers(0, c, n)  # predictions may name the absent classes
    assert confusion_matrix(targets, preds, num_classes=c).tolist() == _reference_confusion(targets, preds, c).tolist()
    per_class = per_class_accuracy(targets, preds, num_classes=c)
    np.testing.assert_array_equal(per_class, _reference_per_class(targets, preds, c))  # nan where absent
    assert np.isnan(per_class[c - 1])
    assert mean_class_accuracy(targets, preds, num_classes=c) == float(np.nanmean(_reference_per_class(targets, preds, c)))
    with warnings.catch_warnings():  # "y_pred contains classes not in y_true": why we do not call it
        warnings.simplefilter("ignore", UserWarning)
        balanced = skm.balanced_accuracy_score(targets, preds)
    assert mean_class_accuracy(targets, preds, num_classes=c) == pytest.approx(balanced)
    assert macro_f1(targets, preds, num_classes=c) == _reference_macro_f1(targets, preds, c)
    aps = [_reference_ap(targets == k, scores[:, k]) for k in range(c)]
    assert mean_average_precision(targets, scores) == pytest.approx(float(np.nanmean(aps)), rel=1e-14, abs=0)
    for k in range(c):  # scikit-learn sums the curve from the other end: equal to a few ulp
        assert average_precision(targets == k, scores[:, k]) == pytest.approx(aps[k], rel=1e-14, abs=0, nan_ok=True)


def test_top_k_breaks_ties_towards_the_lower_index_unlike_scikit_learn():
    scores = np.array([[0.4, 0.4, 0.2], [0.3, 0.3, 0.4]])
    targets = np.array([0, 0])  # top-1: class 0 wins its tie in row 0; row 1's best is class 2
    assert top_k_accuracy(targets, scores, k=1) == 0.5
    assert skm.top_k_accuracy_score(targets, scores, k=1, labels=range(3)) == 0.0  # sklearn ranks class 1 first


def test_invalid_inputs_are_errors_not_silently_dropped_rows():
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 3\)"):
        per_class_accuracy(np.array([0, 3]), np.array([0, 1]), num_classes=3)
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 3\)"):
        macro_f1(np.array([0, 1]), np.array([-1, 1]), num_classes=3)
    with pytest.raises(ValueError, match="no samples"):
        confusion_matrix(np.array([], dtype=int), np.array([], dtype=int), num_classes=3)
    assert confusion_matrix(np.array([0, 0]), np.array([0, 0]), num_classes=1).tolist() == [[2]]


def test_non_finite_scores_have_no_average_precision():
    scores = np.array([[0.9, 0.1], [np.nan, 0.5], [0.2, 0.8]])
    assert np.isnan(average_precision(np.array([1, 0, 1]), scores[:, 0]))
    assert np.isnan(mean_average_precision(np.array([0, 1, 1]), scores))
    assert mean_average_precision(np.array([0, 1, 1]), np.nan_to_num(scores)) == pytest.approx(1.0)


def test_importing_the_metrics_loads_no_scikit_learn():
    import subprocess
    import sys

    code = "import sys, fer_nla.metrics; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
