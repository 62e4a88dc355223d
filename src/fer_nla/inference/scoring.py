"""How logits become the probabilities a user sees: the calibration temperature and the class
prior, both recorded with the model (a checkpoint's ``scoring`` entry, an ONNX file's metadata).

A classifier trained on data whose classes have the prior ``pi`` (FERPlus train's vote
distributions: neutral 33%, disgust 0.9%) learns ``p(y | x)`` under that prior. Its probabilities at another prior ``q`` follow from
Bayes' rule (Saerens et al. 2002, "Adjusting the outputs of a classifier to new a priori
probabilities"; the logit adjustment of Menon et al. 2021, ICLR):

    p_q(y | x) = softmax(z / T + log q - log pi)_y

``T`` is the temperature fitted on validation data (Guo et al. 2017, "On calibration of modern
neural networks"), ``z`` the logits at the training prior. A network trained with a
logit-adjusted loss (Menon et al. 2021; balanced softmax, Ren et al. 2020, is ``tau = 1``)
learns logits ``z_net`` whose softmax is balanced by construction: its loss added
``offset = tau * log pi`` before the softmax, so ``z = z_net + offset`` (``logit_offset``,
recorded with the model; zeros for every other loss). The operating points:

- ``train``: ``q = pi``, the data the model was trained on (the prior term is zero);
- ``uniform``: ``q`` uniform, every class equally likely a priori (balanced decisions: the
  largest mean-class accuracy a prior shift gives);
- given proportions ``q`` (one per class, normalised): the prior where the model is used;
- ``default``: the one the model records as its default (``default_prior``: one of the above;
  ``train`` where it records none), what predict, eval and serve use when no prior is named.

Nothing here imports PyTorch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from fer_nla.errors import InputError

PRIOR_NAMES: tuple[str, ...] = ("default", "train", "uniform")
Prior = Union[str, Sequence[float]]
ECE_BINS = 15  # Guo et al. 2017's bin count


@dataclass(frozen=True)
class Scoring:
    """What a model records about its outputs: ``class_prior`` (``[C]``, the training targets'
    class shares, summing to 1; ``None`` in files written before it existed),
    ``temperature`` (> 0; 1.0: uncalibrated), ``logit_offset`` (``[C]``, what the training loss
    added to the network's logits before its softmax, ``tau * log pi`` for a logit-adjusted loss;
    ``None``: zeros) and ``default_prior`` (``train``, ``uniform`` or ``C`` proportions: the
    operating point used when none is named)."""

    class_prior: tuple[float, ...] | None = None
    temperature: float = 1.0
    logit_offset: tuple[float, ...] | None = None
    default_prior: str | tuple[float, ...] = "train"

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any] | None, *, source: str = "the model") -> Scoring:
        """The record of a ``scoring`` dict (absent or empty: no prior, temperature 1); raises
        :class:`InputError` naming ``source`` for a damaged entry."""
        spec = dict(spec or {})
        try:
            prior, offset = spec.get("class_prior"), spec.get("logit_offset")
            default = spec.get("default_prior", "train")
            scoring = cls(class_prior=None if prior is None else tuple(float(p) for p in prior),
                          temperature=float(spec.get("temperature", 1.0)),
                          logit_offset=None if offset is None else tuple(float(v) for v in offset),
                          default_prior=default if isinstance(default, str) else tuple(float(v) for v in default))
        except (TypeError, ValueError):
            raise InputError(f"{source}: its scoring entry {spec!r} is damaged; write the model again with fer-nla") from None
        scoring.check(source)
        if not (np.isfinite(scoring.temperature) and scoring.temperature > 0):
            raise InputError(f"{source}: temperature {scoring.temperature!r} is not a positive number; "
                             "write the model again with fer-nla")
        return scoring

    def check(self, source: str) -> None:
        """Raise :class:`InputError` naming ``source`` for entries that disagree: a default prior
        that is not ``train``/``uniform``/proportions, offsets or proportions whose count is not
        the class prior's, non-finite offsets, or a non-train default without a class prior."""
        fix = "write the model again with fer-nla"
        default, size = self.default_prior, None if self.class_prior is None else len(self.class_prior)
        if isinstance(default, str) and default not in ("train", "uniform"):
            raise InputError(f"{source}: its default prior {default!r} is not train, uniform or proportions; {fix}")
        if default != "train" and size is None:
            raise InputError(f"{source}: its default prior {default!r} needs the training class prior, which it lacks; {fix}")
        if not isinstance(default, str) and (len(default) != size or not all(v > 0 for v in default)):
            raise InputError(f"{source}: its default prior has {len(default)} proportions for {size} classes, or one "
                             f"not positive; {fix}")
        if self.logit_offset is not None and (not np.all(np.isfinite(self.logit_offset))
                                              or (size is not None and len(self.logit_offset) != size)):
            raise InputError(f"{source}: its logit offset {list(self.logit_offset)} is not {size} finite numbers; {fix}")

    def to_dict(self) -> dict[str, Any]:
        return {"class_prior": None if self.class_prior is None else list(self.class_prior),
                "temperature": self.temperature,
                "logit_offset": None if self.logit_offset is None else list(self.logit_offset),
                "default_prior": self.default_prior if isinstance(self.default_prior, str) else list(self.default_prior)}


@dataclass(frozen=True)
class OperatingPoint:
    """How :func:`adjusted_probabilities` turns the network's logits into probabilities: divide
    by ``temperature``, add ``shift`` (``float64 [C]``, ``offset / T + log q - log pi``; zeros at
    the training prior of a model without a logit offset)."""

    temperature: float
    shift: np.ndarray

    @classmethod
    def plain(cls, num_classes: int) -> OperatingPoint:
        """Softmax of the logits as they are (temperature 1, no prior shift)."""
        return cls(1.0, np.zeros(num_classes))


def operating_point(scoring: Scoring, *, num_classes: int, prior: Prior = "default",
                    calibrated: bool = True) -> OperatingPoint:
    """The :class:`OperatingPoint` of ``prior`` (``default``, ``train``, ``uniform`` or ``C``
    proportions; names in any case) with the recorded temperature (``calibrated``) or none.
    Uncalibrated, the prior shift is scaled by the temperature (``softmax(z + T * shift)``), so
    the labels are those of the calibrated point and only the confidences differ. Raises
    :class:`InputError` for an unknown prior name or type, proportions of the wrong count or not
    positive, a logit offset of the wrong count, and ``uniform`` or proportions for a model that
    records no training prior."""
    temperature = scoring.temperature
    offset = np.zeros(num_classes) if scoring.logit_offset is None else np.asarray(scoring.logit_offset, dtype=np.float64)
    if offset.shape != (num_classes,):
        raise InputError(f"the model records {offset.size} logit offsets for {num_classes} classes; "
                         "write the model again with fer-nla")
    if isinstance(prior, str):
        prior = prior.strip().lower()
    if isinstance(prior, str) and prior == "default":
        prior = scoring.default_prior
    if isinstance(prior, str) and prior == "train":
        shift = offset / temperature
    else:
        target = _target_prior(prior, num_classes=num_classes)
        if scoring.class_prior is None:
            raise InputError("the model records no training class prior, so its outputs cannot be moved to another "
                             "prior: use prior='train', or a model trained or written by this fer-nla")
        trained = np.asarray(scoring.class_prior, dtype=np.float64)
        # a class the model never saw (share 0) keeps its logit: dividing by ~0 would make it win everywhere
        moved = np.where(trained > 0, np.log(target) - np.log(np.maximum(trained, 1e-300)), 0.0)
        shift = offset / temperature + moved
    return OperatingPoint(temperature, shift) if calibrated else OperatingPoint(1.0, temperature * shift)


def prior_power(class_prior: Sequence[float], tau: float) -> tuple[float, ...]:
    """The proportions ``q`` proportional to ``pi ** (1 - tau)`` (``[C]``, summing to 1): the
    prior whose operating point subtracts ``tau * log pi`` from the training prior's logits
    (``tau = 0``: ``train``; ``tau = 1``: ``uniform``; between: a compromise, Menon et al. 2021's
    post-hoc adjustment with strength ``tau``)."""
    pi = np.maximum(np.asarray(class_prior, dtype=np.float64), 1e-12)
    q = pi ** (1.0 - float(tau))
    return tuple(float(v) for v in q / q.sum())


def parse_prior(text: str) -> Prior:
    """A prior as the command line and serve's settings spell it: ``default``, ``train``,
    ``uniform``, or comma-separated proportions (``0.35,0.3,...``, one per class). Raises :class:`InputError` for
    text that is none of these."""
    word = str(text).strip().lower()
    if word in PRIOR_NAMES:
        return word
    try:
        return tuple(float(part) for part in word.split(","))
    except ValueError:
        raise InputError(f"prior={text!r} is not a prior fer-nla knows; use prior='default', prior='train', "
                         "prior='uniform' or comma-separated class proportions such as 0.3,0.2,...") from None


def _target_prior(prior: Prior, *, num_classes: int) -> np.ndarray:
    if isinstance(prior, str):
        if prior not in PRIOR_NAMES:
            raise InputError(f"prior={prior!r} is not a prior fer-nla knows; use prior='default', prior='train', "
                             f"prior='uniform' or {num_classes} class proportions")
        return np.full(num_classes, 1.0 / num_classes)
    values = None
    if prior is not None and not isinstance(prior, (Mapping, bool, int, float)):
        try:
            values = np.asarray(prior, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            values = None
    if values is None or values.size != num_classes or not np.all(np.isfinite(values)) or np.any(values <= 0):
        given = repr(prior) if values is None else f"{values.size} values ({', '.join(f'{v:g}' for v in values)})"
        raise InputError(f"prior: {given} for {num_classes} classes; give 'default', 'train', 'uniform' or "
                         f"{num_classes} positive class proportions, one per class in the model's order (they are "
                         "normalised; a class you never expect still needs a small share such as 0.001)")
    return values / values.sum()


def adjusted_probabilities(logits: np.ndarray, point: OperatingPoint) -> np.ndarray:
    """``float32 [N, C]``: ``softmax(logits / T + shift)`` row-wise, in float64 (stable)."""
    z = np.asarray(logits, dtype=np.float64) / point.temperature + point.shift
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


def class_prior(targets: np.ndarray, *, num_classes: int) -> tuple[float, ...]:
    """The class shares of training targets: class indices ``[N]`` (their counts / N) or label
    distributions ``[N, C]`` (their mean). Raises ``ValueError`` for no targets."""
    t = np.asarray(targets)
    if t.shape[0] == 0:
        raise ValueError("no training targets to take a class prior from")
    shares = t.astype(np.float64).mean(axis=0) if t.ndim == 2 else np.bincount(t, minlength=num_classes) / t.shape[0]
    return tuple(float(s) for s in shares / shares.sum())


def fit_temperature(log_probs: np.ndarray, targets: np.ndarray, *, low: float = 0.05, high: float = 20.0) -> float:
    """The temperature ``T`` minimising the mean negative log-likelihood of
    ``softmax(log_probs / T)`` against class indices ``targets`` ``[N]`` (Guo et al. 2017).
    ``log_probs``: ``[N, C]`` logits or log-probabilities (the same ``T`` either way: a constant per
    row cancels in the softmax). A golden-section search on ``log T`` in ``[low, high]`` (the NLL
    is unimodal in ``T``), to a relative precision of 1e-4. Raises ``ValueError`` for no samples."""
    z = np.asarray(log_probs, dtype=np.float64)
    y = np.asarray(targets, dtype=np.int64)
    if z.shape[0] == 0:
        raise ValueError("no samples to fit a temperature on")
    z = np.maximum(z, np.log(np.finfo(np.float32).tiny))  # log(0) of a saturated softmax stays finite

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        s = s - s.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(s).sum(axis=1)) - s[np.arange(len(y)), y]))

    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5.0) - 1.0) / 2.0
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    while b - a > 1e-4:
        if nll(c) < nll(d):
            b, d = d, c
            c = b - ratio * (b - a)
        else:
            a, c = c, d
            d = a + ratio * (b - a)
    return float(np.exp((a + b) / 2.0))


def expected_calibration_error(probs: np.ndarray, targets: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """Expected calibration error (Guo et al. 2017; Naeini et al. 2015) of ``[N, C]``
    probabilities against class indices ``[N]``: the confidences (max probability) in ``bins``
    equal-width bins over (0, 1]; the sum over bins of ``|accuracy - mean confidence|`` weighted
    by the bin's share of samples. In [0, 1]; ``nan`` for no samples."""
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(targets, dtype=np.int64)
    if p.shape[0] == 0:
        return float("nan")
    confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for k in range(bins):
        inside = which == k
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(total)


def calibration_report(probs: np.ndarray, targets: np.ndarray, *,
                       logit_offset: Sequence[float] | None = None) -> dict[str, float]:
    """The temperature fitted on ``[N, C]`` probabilities against class indices ``[N]``
    (:func:`fit_temperature` on their logarithms plus ``logit_offset``, the training prior's
    logits of a logit-adjusted model: ``temperature``) and the expected calibration error at the
    training prior before (``ece``) and after it (``ece_calibrated``): what ``fer-nla train``
    records for each epoch's validation split and saves with best.pt."""
    with np.errstate(divide="ignore"):
        log_probs = np.log(np.asarray(probs, dtype=np.float64))
    if logit_offset is not None:
        log_probs = log_probs + np.asarray(logit_offset, dtype=np.float64)
    temperature = fit_temperature(log_probs, targets)
    before = adjusted_probabilities(log_probs, OperatingPoint.plain(log_probs.shape[1]))
    calibrated = adjusted_probabilities(log_probs, OperatingPoint(temperature, np.zeros(log_probs.shape[1])))
    return {"temperature": temperature, "ece": expected_calibration_error(before, targets),
            "ece_calibrated": expected_calibration_error(calibrated, targets)}
