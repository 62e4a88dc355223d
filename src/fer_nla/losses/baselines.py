"""Baseline losses, each called as ``loss(logits, targets)`` (:class:`~fer_nla.losses.base.Loss`).

A training method wraps them (:class:`fer_nla.methods.baselines.LossMethod`). Defaults are the published ones: label smoothing 0.1
(Szegedy et al. 2016), focal gamma 2 (Lin et al. 2017), class-balanced beta 0.9999 (Cui et al.
2019), logit adjustment tau 1 (Menon et al. 2021), GCE q 0.7 (Zhang and Sabuncu 2018), SCE
alpha 0.1, beta 1.0, A = log(1e-4) (Wang et al. 2019). Each is a function on tensors plus
a thin module; per-class constants are buffers.

Soft targets (label distributions ``q``, ``[B, C]``, see :mod:`fer_nla.losses.base`) are taken
where the published loss is written for a distribution: cross-entropy ``-sum_k q_k log p_k``
(Barsoum et al. 2016, FERPlus's "cross-entropy loss" scheme), label smoothing of ``q`` (Szegedy
et al. 2016 smooth the given distribution ``q' = (1 - eps) q + eps / C``), logit adjustment
(Menon et al. 2021: the softmax cross-entropy of the adjusted logits, here against ``q``) and
SCE (Wang et al. 2019 define CE and RCE for a label distribution ``q(k|x)``). Focal, GCE and
class-balanced CE are written for one true class ``y`` (``p_t``, ``p_y``, ``n_y``) and have no
published form for a distribution, so they refuse soft targets. With a one-hot ``q`` every soft
form equals the hard one.
"""

from __future__ import annotations

from collections.abc import Sequence

import kornia.losses
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from fer_nla.losses.base import Loss, is_soft


# -- functions ---------------------------------------------------------------------------------
def focal_loss(logits: Tensor, targets: Tensor, *, gamma: float = 2.0) -> Tensor:
    """``mean_i (1 - p_t)^gamma * CE_i`` (Lin et al. 2017; no alpha balancing) of logits ``[B, C]``
    and class indices ``int64 [B]``: a scalar.

    Computed by :func:`kornia.losses.focal_loss` with ``alpha=None`` and ``reduction="sum"``
    divided by ``B``, which equals the formula above in value and gradient (tested). Two kornia
    conventions are avoided on purpose: its ``alpha`` weights class 0 by ``1 - alpha`` as a
    background class (FER has none: class 0 is an emotion), and its ``"mean"`` divides by
    ``B * C``, not ``B``. kornia's form also gives a zero, not a NaN, gradient where ``p_t``
    rounds to 1 with ``gamma < 1``. It takes class indices only; the focal loss has no
    published form for label distributions, so :class:`FocalLoss` refuses them anyway.
    """
    return kornia.losses.focal_loss(logits, targets, alpha=None, gamma=gamma, reduction="sum") / logits.shape[0]


def class_balanced_weights(class_counts: Sequence[int] | np.ndarray | Tensor, *, beta: float = 0.9999) -> Tensor:
    """``(1 - beta) / (1 - beta^n_c)`` per class, normalised to sum to the class count (Cui et al. 2019).

    A class with no sample gets weight 0 before normalisation is applied to the others.
    """
    counts = torch.as_tensor(np.asarray(class_counts, dtype=np.float64))
    if counts.dim() != 1 or (counts < 0).any():
        raise ValueError(f"class_counts must be a 1-D list of non-negative counts, got {counts.tolist()}")
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"beta must lie in [0, 1), got {beta}")
    effective = 1.0 - torch.pow(torch.tensor(beta, dtype=torch.float64), counts)
    weights = torch.where(counts > 0, (1.0 - beta) / effective.clamp_min(1e-300), torch.zeros_like(counts))
    return (weights * len(counts) / weights.sum()).float()


def class_balanced_ce(logits: Tensor, targets: Tensor, *, class_weights: Tensor) -> Tensor:
    """``mean_i w_{y_i} * CE_i`` with effective-number class weights ``[C]``; with a label
    distribution ``targets`` ``[B, C]``, ``mean_i sum_k w_k q_ik (-log p_ik)`` (each class's term
    weighted by its own class weight; equal to the hard form for one-hot rows)."""
    weights = class_weights.to(logits.dtype)
    if targets.dim() == 2:
        return -(weights * targets.to(logits.dtype) * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    ce = F.cross_entropy(logits, targets, reduction="none")
    return (weights[targets] * ce).mean()


def class_priors(class_counts: Sequence[int] | np.ndarray | Tensor) -> Tensor:
    counts = torch.as_tensor(np.asarray(class_counts, dtype=np.float64))
    if counts.dim() != 1 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(f"class_counts must be non-negative with a positive sum, got {counts.tolist()}")
    return (counts / counts.sum()).float()


def logit_adjusted_ce(logits: Tensor, targets: Tensor, *, log_priors: Tensor, tau: float = 1.0) -> Tensor:
    """``CE(z + tau * log pi, y)`` (Menon et al. 2021, the logit-adjusted loss); with a label
    distribution ``targets`` ``[B, C]``, the soft CE ``-sum_k q_k log softmax(z + tau log pi)_k``."""
    return F.cross_entropy(logits + tau * log_priors.to(logits.dtype), targets)


def generalized_ce(logits: Tensor, targets: Tensor, *, q: float = 0.7) -> Tensor:
    """``mean_i (1 - p_y^q) / q`` (Zhang and Sabuncu 2018)."""
    p_y = torch.softmax(logits, dim=1).gather(1, targets.unsqueeze(1)).squeeze(1)
    return ((1.0 - p_y.clamp_min(1e-12) ** q) / q).mean()


def symmetric_ce(
    logits: Tensor, targets: Tensor, *, alpha: float = 0.1, beta: float = 1.0, log_clip: float = 1e-4
) -> Tensor:
    """``alpha * H(q, p) + beta * H(p, q)`` (Wang et al. 2019, eqs. 2-5): ``CE = -sum_k q_k log p_k``
    and ``RCE = -sum_k p_k log(clip(q_k, log_clip, 1))``, p clamped to ``[1e-7, 1]`` as in the
    authors' code. ``q`` is the one-hot of class indices ``targets`` ``[B]`` or the given label
    distribution ``targets`` ``[B, C]`` (the paper writes both terms for a distribution ``q(k|x)``)."""
    ce = F.cross_entropy(logits, targets)
    probs = torch.softmax(logits, dim=1).clamp(1e-7, 1.0)
    q = targets if is_soft(targets) else F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    rce = -(probs * q.clamp(log_clip, 1.0).log()).sum(dim=1).mean()
    return alpha * ce + beta * rce


# -- modules -----------------------------------------------------------------------------------
class CrossEntropy(Loss):
    """Plain cross-entropy, batch mean; with soft targets ``q`` ``[B, C]``, ``mean_i -sum_k q_ik log p_ik``
    (the "cross-entropy loss" scheme of Barsoum et al. 2016 for FERPlus's vote distributions)."""

    loss_name = "ce"
    accepts_soft_targets = True

    def compute(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits, targets)


class LabelSmoothingCE(Loss):
    """Cross-entropy against ``(1 - eps) q + eps / C`` where ``q`` is the one-hot label or the
    given label distribution (soft targets are smoothed the same way)."""

    loss_name = "label_smoothing"
    accepts_soft_targets = True

    def __init__(self, *, smoothing: float = 0.1, check: bool = True) -> None:
        super().__init__(check=check)
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing must lie in [0, 1), got {smoothing}")
        self.smoothing = float(smoothing)

    def compute(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits, targets, label_smoothing=self.smoothing)


class FocalLoss(Loss):
    """The focal loss (:func:`focal_loss`), batch mean."""

    loss_name = "focal"
    soft_targets_reason = (
        "focal loss -(1 - p_t)^gamma log p_t (Lin et al. 2017) is defined for the probability p_t of one "
        "true class and has no standard form for a label distribution"
    )

    def __init__(self, *, gamma: float = 2.0, check: bool = True) -> None:
        super().__init__(check=check)
        self.gamma = float(gamma)

    def compute(self, logits: Tensor, targets: Tensor) -> Tensor:
        return focal_loss(logits, targets, gamma=self.gamma)


class ClassBalancedCE(Loss):
    """CE weighted by the effective number of samples of each class (:func:`class_balanced_ce`)."""

    loss_name = "class_balanced"
    accepts_soft_targets = True  # a distribution weights each class's term by its class weight

    def __init__(self, class_counts: Sequence[int] | np.ndarray | Tensor, *, beta: float = 0.9999, check: bool = True) -> None:
        super().__init__(check=check)
        self.register_buffer("class_weights", class_balanced_weights(class_counts, beta=beta))

    def logit_offset(self) -> list[float]:
        """``[C]``, ``-log w``: the minimiser of a loss that weights class ``k`` by ``w_k`` is the
        softmax at the prior ``pi_k w_k`` (normalised), so the logits at the training prior are
        the network's minus ``log w`` (the equivalence of re-weighting and logit adjustment,
        Menon et al. 2021, Sec. 4). A class with weight 0 (no samples) gets offset 0: the loss never
        moved its logit."""
        w = self.class_weights.double()
        return [float(v) for v in torch.where(w > 0, -w.clamp_min(1e-300).log(), torch.zeros_like(w)).tolist()]

    def compute(self, logits: Tensor, targets: Tensor) -> Tensor:
        _check_class_count(logits, self.class_weights)
        return class_balanced_ce(logits, targets, class_weights=self.class_weights)


class LogitAdjustedCE(Loss):
    """CE of the logits plus ``tau * log pi`` (priors from ``class_counts``, the hard labels'
    counts in training); soft targets give the soft CE of the adjusted logits."""

    loss_name = "logit_adjusted"
    accepts_soft_targets = True

    def __init__(self, class_counts: Sequence[int] | np.ndarray | Tensor, *, tau: float = 1.0, check: bool = True) -> None:
        super().__init__(check=check)
        self.tau = float(tau)
        # log(0) for an empty class would make its logit -inf; a tiny prior keeps it finite.
        self.register_buffer("log_priors", class_priors(class_counts).clamp_min(1e-12).log())

    def logit_offset(self) -> list[float]:
        """``[C]``, ``tau * log pi``: added to the logits before the softmax, so the network's own
        logits are balanced (``tau = 1``) and the training prior's are these plus the offset."""
        return [float(v) for v in (self.tau * self.log_priors).tolist()]

    def compute(self, logits: Tensor, targets: Tensor) -> Tensor:
        _check_class_count(logits, self.log_priors)
        return logit_adjusted_ce(logits, targets, log_priors=self.log_priors, tau=self.tau)


class GeneralizedCE(Loss):
    """GCE (:func:`generalized_ce`), batch mean."""

    loss_name = "gce"
    soft_targets_reason = (
        "GCE (1 - p_y^q) / q (Zhang and Sabuncu 2018) is defined for the probability p_y of one given "
        "class and has no standard form for a label distribution"
    )

    def __init__(self, *, q: float = 0.7, check: bool = True) -> None:
        super().__init__(check=check)
        if not 0.0 < q <= 1.0:
            raise ValueError(f"q must lie in (0, 1], got {q}")
        self.q = float(q)

    def compute(self, logits: Tensor, targets: Tensor) -> Tensor:
        return generalized_ce(logits, targets, q=self.q)


class SymmetricCE(Loss):
    """SCE; soft targets ``q`` enter both terms as Wang et al. 2019 write them (see :func:`symmetric_ce`)."""

    loss_name = "sce"
    accepts_soft_targets = True

    def __init__(self, *, alpha: float = 0.1, beta: float = 1.0, check: bool = True) -> None:
        super().__init__(check=check)
        self.alpha, self.beta = float(alpha), float(beta)

    def compute(self, logits: Tensor, targets: Tensor) -> Tensor:
        return symmetric_ce(logits, targets, alpha=self.alpha, beta=self.beta)


def _check_class_count(logits: Tensor, per_class: Tensor) -> None:
    if logits.shape[1] != per_class.shape[0]:
        raise ValueError(
            f"the loss was built with {per_class.shape[0]} class counts but logits have {logits.shape[1]} classes"
        )
