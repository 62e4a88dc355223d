"""The class prior and the temperature (issue 23, items 1 and 3): operating points against Bayes'
rule, temperature fitting against a brute-force search, the expected calibration error against a
hand count, and the figures that travel with a model (checkpoint and ONNX metadata)."""

from __future__ import annotations

import numpy as np
import pytest

from fer_nla.errors import InputError
from fer_nla.inference.scoring import (
    OperatingPoint,
    Scoring,
    adjusted_probabilities,
    calibration_report,
    class_prior,
    expected_calibration_error,
    fit_temperature,
    operating_point,
    parse_prior,
    prior_power,
)

PRIOR = (0.5, 0.3, 0.15, 0.05)


def test_the_uniform_prior_divides_the_training_prior_out_as_bayes_rule_says():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 4)) * 3
    scoring = Scoring(class_prior=PRIOR, temperature=2.0)
    p_train = adjusted_probabilities(logits, operating_point(scoring, num_classes=4))
    np.testing.assert_allclose(p_train, np.exp(logits / 2) / np.exp(logits / 2).sum(1, keepdims=True), rtol=1e-6)
    p_uniform = adjusted_probabilities(logits, operating_point(scoring, num_classes=4, prior="uniform"))
    expected = p_train / np.asarray(PRIOR)
    np.testing.assert_allclose(p_uniform, expected / expected.sum(1, keepdims=True), rtol=1e-5)
    q = (0.1, 0.2, 0.3, 0.4)
    p_q = adjusted_probabilities(logits, operating_point(scoring, num_classes=4, prior=[v * 10 for v in q]))
    expected = p_train * np.asarray(q) / np.asarray(PRIOR)
    np.testing.assert_allclose(p_q, expected / expected.sum(1, keepdims=True), rtol=1e-5)
    uncalibrated = adjusted_probabilities(logits, operating_point(scoring, num_classes=4, calibrated=False))
    assert (uncalibrated.argmax(1) == p_train.argmax(1)).all() and not np.allclose(uncalibrated, p_train)
    # at any prior, leaving the temperature out changes confidences only, never labels
    for prior in ("uniform", q):
        raw = adjusted_probabilities(logits, operating_point(scoring, num_classes=4, prior=prior, calibrated=False))
        calibrated = adjusted_probabilities(logits, operating_point(scoring, num_classes=4, prior=prior))
        assert (raw.argmax(1) == calibrated.argmax(1)).all() and not np.allclose(raw, calibrated)


def test_a_rare_class_wins_more_often_at_the_uniform_prior():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2000, 4)) + np.log(PRIOR)  # a model that learned the training prior
    scoring = Scoring(class_prior=PRIOR)
    train = adjusted_probabilities(logits, operating_point(scoring, num_classes=4)).argmax(1)
    uniform = adjusted_probabilities(logits, operating_point(scoring, num_classes=4, prior="uniform")).argmax(1)
    assert (train == 3).mean() < 0.02 and 0.2 < (uniform == 3).mean() < 0.3  # the prior, divided out


def test_priors_are_refused_with_what_to_pass():
    with pytest.raises(InputError, match="records no training class prior"):
        operating_point(Scoring(), num_classes=4, prior="uniform")
    with pytest.raises(InputError, match=r"prior: 2 values \(0.5, 0.5\) for 4 classes; .* 4 positive class proportions"):
        operating_point(Scoring(class_prior=PRIOR), num_classes=4, prior=(0.5, 0.5))
    with pytest.raises(InputError, match=r"prior: 4 values \(0.5, 0.5, 0, 0\) for 4 classes.*small share such as 0.001"):
        operating_point(Scoring(class_prior=PRIOR), num_classes=4, prior=(0.5, 0.5, 0.0, 0.0))
    for bad in (None, 0.5, {"neutral": 1.0}):  # a raw TypeError before
        with pytest.raises(InputError, match=rf"prior: {bad!r} for 4 classes"):
            operating_point(Scoring(class_prior=PRIOR), num_classes=4, prior=bad)
    assert operating_point(Scoring(class_prior=PRIOR), num_classes=4, prior=" Uniform ").shift == \
        pytest.approx(operating_point(Scoring(class_prior=PRIOR), num_classes=4, prior="uniform").shift)
    with pytest.raises(InputError, match="prior='balanced' is not a prior"):
        operating_point(Scoring(class_prior=PRIOR), num_classes=4, prior="balanced")
    assert parse_prior(" Uniform ") == "uniform" and parse_prior("0.5,0.25,0.25") == (0.5, 0.25, 0.25)
    with pytest.raises(InputError, match="comma-separated class proportions"):
        parse_prior("mostly happy")
    with pytest.raises(InputError, match="temperature -1.0 is not a positive number"):
        Scoring.from_dict({"temperature": -1}, source="x.onnx")


def test_the_fitted_temperature_minimises_the_negative_log_likelihood():
    rng = np.random.default_rng(2)
    targets = rng.integers(0, 5, size=3000)
    logits = rng.normal(size=(3000, 5))
    logits[np.arange(3000), targets] += 2.0
    overconfident = logits * 3.0  # the same model 3x as sure of itself: its temperature is 3x as large
    t = fit_temperature(overconfident, targets)

    def nll(temperature: float) -> float:
        p = adjusted_probabilities(overconfident, OperatingPoint(temperature, np.zeros(5))).astype(np.float64)
        return float(-np.log(p[np.arange(3000), targets]).mean())

    grid = np.linspace(0.5, 6, 1101)
    best = grid[np.argmin([nll(g) for g in grid])]
    assert abs(t - best) < 0.01
    assert t == pytest.approx(3 * fit_temperature(logits, targets), rel=1e-3)
    log_probs = np.log(adjusted_probabilities(overconfident, OperatingPoint.plain(5)).astype(np.float64))
    assert fit_temperature(log_probs, targets) == pytest.approx(t, rel=1e-3)  # logits or log-probabilities alike


def test_expected_calibration_error_counts_bins_by_hand():
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.6, 0.4], [0.3, 0.7]])
    targets = np.array([0, 1, 0, 1])
    # bin of 0.95: 2 samples, accuracy 0.5, confidence 0.95; bin of 0.6: 1, 1.0 vs 0.6; bin of 0.7: 1, 1.0 vs 0.7
    expected = 0.5 * 0.45 + 0.25 * 0.4 + 0.25 * 0.3
    assert expected_calibration_error(probs, targets) == pytest.approx(expected)
    assert np.isnan(expected_calibration_error(np.zeros((0, 2)), np.zeros(0, dtype=int)))


def test_calibration_lowers_the_error_of_an_overconfident_model():
    rng = np.random.default_rng(3)
    targets = rng.integers(0, 4, size=4000)
    logits = rng.normal(size=(4000, 4))
    logits[np.arange(4000), targets] += 1.5
    probs = adjusted_probabilities(logits * 4, OperatingPoint.plain(4))
    report = calibration_report(probs, targets)
    assert report["ece"] > 0.15 and report["ece_calibrated"] < 0.03 and report["temperature"] > 2


def test_the_class_prior_of_indices_and_of_distributions():
    assert class_prior(np.array([0, 0, 1, 3]), num_classes=4) == (0.5, 0.25, 0.0, 0.25)
    soft = np.array([[0.5, 0.5, 0, 0], [0, 0, 0.2, 0.8]])
    assert class_prior(soft, num_classes=4) == pytest.approx((0.25, 0.25, 0.1, 0.4))


def test_a_logit_adjusted_model_gets_its_training_prior_back_at_the_train_point():
    rng = np.random.default_rng(2)
    balanced = rng.normal(size=(8, 4)) * 2  # a balanced-softmax network's logits (tau = 1)
    offset = tuple(np.log(PRIOR))
    adjusted = Scoring(class_prior=PRIOR, temperature=1.5, logit_offset=offset)
    plain = Scoring(class_prior=PRIOR, temperature=1.5)
    at = {prior: adjusted_probabilities(balanced, operating_point(adjusted, num_classes=4, prior=prior))
          for prior in ("train", "uniform")}
    # train: the logits plus log pi, as the loss saw them; uniform: those moved by Bayes' rule
    np.testing.assert_allclose(at["train"], adjusted_probabilities(balanced + np.log(PRIOR), operating_point(plain, num_classes=4)),
                               rtol=1e-6)
    np.testing.assert_allclose(at["uniform"], adjusted_probabilities(
        balanced + np.log(PRIOR), operating_point(plain, num_classes=4, prior="uniform")), rtol=1e-6)
    with pytest.raises(InputError, match="3 logit offsets for 4 classes"):
        operating_point(Scoring(class_prior=PRIOR, logit_offset=offset[:3]), num_classes=4)


def test_the_default_prior_is_what_the_model_records():
    logits = np.random.default_rng(3).normal(size=(5, 4))
    q = prior_power(PRIOR, 0.5)
    expected = np.sqrt(PRIOR) / np.sqrt(PRIOR).sum()
    assert q == pytest.approx(tuple(expected)) and prior_power(PRIOR, 0.0) == pytest.approx(PRIOR)
    assert prior_power(PRIOR, 1.0) == pytest.approx((0.25,) * 4)
    scoring = Scoring(class_prior=PRIOR, default_prior=q)
    default = adjusted_probabilities(logits, operating_point(scoring, num_classes=4))
    named = adjusted_probabilities(logits, operating_point(scoring, num_classes=4, prior=q))
    np.testing.assert_array_equal(default, named)
    # the shift is -0.5 log pi: half-way between train and uniform
    np.testing.assert_allclose(operating_point(scoring, num_classes=4).shift,
                               np.log(q) - np.log(PRIOR), rtol=1e-9)
    assert operating_point(Scoring(class_prior=PRIOR), num_classes=4, prior="default").shift == pytest.approx(np.zeros(4))
    assert parse_prior("default") == "default"


def test_the_scoring_entry_round_trips_and_refuses_a_damaged_default():
    scoring = Scoring(class_prior=PRIOR, temperature=0.8, logit_offset=tuple(np.log(PRIOR)), default_prior=(0.4, 0.3, 0.2, 0.1))
    assert Scoring.from_dict(scoring.to_dict()) == scoring
    assert Scoring.from_dict({"class_prior": list(PRIOR)}).default_prior == "train"  # files written before it
    with pytest.raises(InputError, match="default prior 'sideways'"):
        Scoring.from_dict({"default_prior": "sideways"}, source="m.onnx")


def test_calibration_at_the_training_prior_of_a_logit_adjusted_model():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 4, size=400)
    train_logits = rng.normal(size=(400, 4)) + 3 * np.eye(4)[y]
    offset = np.log(PRIOR)
    probs = adjusted_probabilities(train_logits - offset, OperatingPoint.plain(4))  # what the network outputs
    report = calibration_report(probs, y, logit_offset=offset)
    assert report["temperature"] == pytest.approx(calibration_report(
        adjusted_probabilities(train_logits, OperatingPoint.plain(4)), y)["temperature"], rel=1e-3)


def test_a_class_the_model_never_saw_keeps_its_logit_at_every_prior():
    prior = (0.6, 0.4, 0.0)  # an 8-class head trained on data without contempt, say
    point = operating_point(Scoring(class_prior=prior), num_classes=3, prior="uniform")
    assert point.shift[2] == 0.0 and point.shift[:2] == pytest.approx(np.log(1 / 3) - np.log(prior[:2]))


def test_damaged_scoring_entries_are_refused_naming_the_file():
    for spec, message in [
        ({"default_prior": "uniform"}, "needs the training class prior"),
        ({"class_prior": [0.5, 0.5], "default_prior": [0.2, 0.3, 0.5]}, "3 proportions for 2 classes"),
        ({"class_prior": [0.5, 0.5], "logit_offset": [1.0, float("nan")]}, "is not 2 finite numbers"),
        ({"class_prior": [0.5, 0.5], "logit_offset": [1.0]}, "is not 2 finite numbers"),
    ]:
        with pytest.raises(InputError, match=rf"m\.onnx: .*{message}"):
            Scoring.from_dict(spec, source="m.onnx")
