"""NLA: Noise-aware Adaptive Weighting (NAW) plus flip consistency (Lee et al., AAAI 2025).

Exactly the objective of ``docs/NLA-METHOD.md`` and the authors' reference code::

    L = lam_a * mean_i CE_i + lam_b * mean_i (w_i * CE_i) + lam_c * JS(z, z')

``w_i`` is a bivariate normal density at ``(p_gt, p_nn)``: the "correct" Gaussian (scaled by
``t_lambda``) where the given label holds the top probability (ties count as correct), the
"wrong" Gaussian otherwise. The correct Gaussian's correlation follows the epoch schedule
``eps(e) = 1 - exp(slope * e / E)``. Gradients flow through ``w_i`` as in the reference
unless ``detach_weights=True``. ``JS`` is summed over the batch as in the reference (its weight
then grows with the batch size) unless ``consistency_reduction="mean"``. Measured when
fine-tuning a pretrained network on noisy FERPlus labels (``fer-nla bench regime``, 3 seeds,
``benchmarks/results/pretrained_regime.md``), the mean gave 3.8 (single-vote labels) and 6.6
(30% symmetric noise) points more mean-class accuracy than the reference's sum at batch 32,
and ``detach_weights=True`` 0.5 and 4.3; the defaults stay the reference's. ``prior_tau``
(default 0, the reference) adds ``prior_tau * log pi`` (``pi``: the training labels' class
shares) to both views' logits before everything else: NLA on a logit-adjusted, balanced base
(Menon et al. 2021), whose network logits are balanced by construction.

Soft targets (label distributions ``[B, C]``): the given label is the argmax of the
distribution (the first of tied maxima), so ``p_gt`` is the probability of that class and the
nearest negative the top other class; everything else, the CE terms included, is NLA on that
hard label. NLA with a distribution therefore equals NLA with its argmax label: the rest of the
distribution is not used (the method is defined for one given label per sample).

The functional core (``epoch_scale``, ``gaussian_covariance``, ``naw_weights``,
``js_consistency``, ``nla_loss``) works on plain tensors; :class:`NLALoss` is a thin module
that computes the Gaussians' constants once (and on ``set_epoch``) and holds them as buffers.
The training method that feeds it both views and records its weights is
:class:`fer_nla.methods.nla.NLAMethod`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fer_nla.losses.base import at_least_float32, check_inputs, hard_labels, is_soft

Pair = tuple[float, float]


# -- constants -------------------------------------------------------------------------------
def epoch_scale(epoch: int, epochs: int, *, slope: float = -15.0, schedule: bool = True) -> float:
    """``eps(e) = 1 - exp(slope * e / E)``; 1 when the schedule is off."""
    if not schedule:
        return 1.0
    if epochs <= 0:
        raise ValueError(f"epochs must be positive, got {epochs}")
    return 1.0 - math.exp(slope * epoch / epochs)


def gaussian_covariance(sigma: float, ratio: float, *, off_diagonal_sign: float, scale: float = 1.0) -> Tensor:
    """``[[s^2 + (s/r)^2, c], [c, s^2 + (s/r)^2]]`` with ``c = scale * sign * (s^2 - (s/r)^2)``.

    The "correct" Gaussian uses ``sign = -1`` and ``scale = eps(e)``; the "wrong" Gaussian
    ``sign = +1`` and ``scale = 1``. Returned in float64.
    """
    major, minor = sigma**2, (sigma / ratio) ** 2
    off = scale * off_diagonal_sign * (major - minor)
    cov = torch.tensor([[major + minor, off], [off, major + minor]], dtype=torch.float64)
    if torch.linalg.det(cov) <= 0:
        raise ValueError(f"covariance {cov.tolist()} is not positive definite (sigma={sigma}, ratio={ratio})")
    return cov


@dataclass(frozen=True)
class GaussianConstants:
    """Mean, inverse covariance and normaliser ``1 / (2 pi sqrt(det S))`` of one Gaussian."""

    mean: Tensor  # (2,)
    inv_cov: Tensor  # (2, 2)
    norm: Tensor  # ()

    @classmethod
    def from_covariance(
        cls, mean: Pair, cov: Tensor, *, dtype: torch.dtype = torch.float32, device: torch.device | None = None
    ) -> GaussianConstants:
        cov = cov.to(torch.float64)
        return cls(
            mean=torch.tensor(mean, dtype=dtype, device=device),
            inv_cov=torch.linalg.inv(cov).to(dtype=dtype, device=device),
            norm=(1.0 / (2.0 * math.pi * torch.sqrt(torch.linalg.det(cov)))).to(dtype=dtype, device=device),
        )


def bivariate_normal_density(x: Tensor, y: Tensor, g: GaussianConstants) -> Tensor:
    """Density of the Gaussian ``g`` at points ``(x_i, y_i)``, elementwise over ``x`` and ``y``."""
    dx, dy = x - g.mean[0], y - g.mean[1]
    a, b, c = g.inv_cov[0, 0], g.inv_cov[0, 1], g.inv_cov[1, 1]
    q = a * dx * dx + 2.0 * b * dx * dy + c * dy * dy
    return g.norm * torch.exp(-0.5 * q)


# -- NAW ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NAWSignals:
    """Per-sample NAW quantities of one batch: weight, p_gt, p_nn and the branch taken."""

    weights: Tensor
    p_gt: Tensor
    p_nn: Tensor
    correct: Tensor  # bool: the given label holds the top probability (ties included)

    def detach(self) -> NAWSignals:
        return NAWSignals(self.weights.detach(), self.p_gt.detach(), self.p_nn.detach(), self.correct.detach())


def gt_and_nearest_negative(logits: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(p_gt, p_nn, correct)``: softmax probability of the given label, the largest
    probability among the other classes, and whether the given label is (tied for) the top.

    Computed from the top two probabilities exactly as the reference code does, so that at a
    tie the gradient of ``p_nn`` also goes where the reference sends it.
    """
    probs = torch.softmax(logits, dim=1)
    p_gt = probs.gather(1, targets.unsqueeze(1)).squeeze(1)
    top2 = probs.topk(2, dim=1).values
    correct = top2[:, 0] == p_gt
    p_nn = torch.where(correct, top2[:, 1], top2[:, 0])
    return p_gt, p_nn, correct


def naw_from_constants(
    logits: Tensor, targets: Tensor, correct_g: GaussianConstants, wrong_g: GaussianConstants, *, t_lambda: float
) -> NAWSignals:
    """NAW weights given the two Gaussians' constants (see :func:`naw_weights`)."""
    p_gt, p_nn, correct = gt_and_nearest_negative(logits, targets)
    w_correct = t_lambda * bivariate_normal_density(p_gt, p_nn, correct_g)
    w_wrong = bivariate_normal_density(p_gt, p_nn, wrong_g)
    return NAWSignals(torch.where(correct, w_correct, w_wrong), p_gt, p_nn, correct)


def naw_weights(
    logits: Tensor,
    targets: Tensor,
    *,
    epoch: int,
    epochs: int,
    slope: float = -15.0,
    schedule: bool = True,
    mu_t: Pair = (0.5, 0.5),
    sigma_t: float = 0.8,
    ratio_t: float = 2.0,
    mu_f: Pair = (0.30, 0.15),
    sigma_f: float = 0.91,
    ratio_f: float = 6.0,
    t_lambda: float = 1.0,
) -> NAWSignals:
    """Per-sample NAW weights (with p_gt, p_nn and branch) of a batch of logits."""
    eps = epoch_scale(epoch, epochs, slope=slope, schedule=schedule)
    like = {"dtype": logits.dtype, "device": logits.device}
    correct_g = GaussianConstants.from_covariance(mu_t, gaussian_covariance(sigma_t, ratio_t, off_diagonal_sign=-1.0, scale=eps), **like)
    wrong_g = GaussianConstants.from_covariance(mu_f, gaussian_covariance(sigma_f, ratio_f, off_diagonal_sign=1.0), **like)
    return naw_from_constants(logits, targets, correct_g, wrong_g, t_lambda=t_lambda)


# -- consistency -------------------------------------------------------------------------------
CONSISTENCY_REDUCTIONS: tuple[str, ...] = ("sum", "mean")


def js_consistency(logits: Tensor, logits_flip: Tensor, *, reduction: str = "sum") -> Tensor:
    """``0.5 * (KL(m || softmax(z)) + KL(m || softmax(z')))`` with ``m = softmax((z + z') / 2)``
    (logits ``[B, C]``, a scalar out), summed over the batch as in the reference
    (``reduction="sum"``) or averaged over it (``"mean"``: the sum divided by ``B``).
    Raises ``ValueError`` for another reduction."""
    if reduction not in CONSISTENCY_REDUCTIONS:
        raise ValueError(f"consistency_reduction must be one of {', '.join(CONSISTENCY_REDUCTIONS)}, got {reduction!r}")
    log_m = F.log_softmax(0.5 * (logits + logits_flip), dim=1)
    m = log_m.exp()
    kl_z = (m * (log_m - F.log_softmax(logits, dim=1))).sum()
    kl_flip = (m * (log_m - F.log_softmax(logits_flip, dim=1))).sum()
    js = 0.5 * (kl_z + kl_flip)
    return js / logits.shape[0] if reduction == "mean" else js


# -- the objective -----------------------------------------------------------------------------
def combine(
    logits: Tensor, logits_flip: Tensor, targets: Tensor, signals: NAWSignals, *,
    lam_a: float, lam_b: float, lam_c: float, detach_weights: bool, consistency_reduction: str = "sum",
) -> Tensor:
    """``lam_a * mean CE + lam_b * mean(w * CE) + lam_c * JS`` from precomputed NAW signals."""
    ce = F.cross_entropy(logits, targets, reduction="none")
    w = signals.weights.detach() if detach_weights else signals.weights
    js = js_consistency(logits, logits_flip, reduction=consistency_reduction)
    return lam_a * ce.mean() + lam_b * (w * ce).mean() + lam_c * js


def nla_loss(
    logits: Tensor,
    logits_flip: Tensor,
    targets: Tensor,
    *,
    epoch: int,
    epochs: int,
    lam_a: float = 0.5,
    lam_b: float = 0.5,
    lam_c: float = 0.5,
    detach_weights: bool = False,
    consistency_reduction: str = "sum",
    **naw_options: float | bool | Pair,
) -> Tensor:
    """The NLA objective of one batch as a function (see :class:`NLALoss` for the options);
    ``targets`` are class indices ``[B]`` or label distributions ``[B, C]`` (their argmax is used)."""
    check_inputs(logits, logits_flip, targets)
    logits, logits_flip, targets = at_least_float32(logits), at_least_float32(logits_flip), hard_labels(targets)
    signals = naw_weights(logits, targets, epoch=epoch, epochs=epochs, **naw_options)  # type: ignore[arg-type]
    return combine(logits, logits_flip, targets, signals, lam_a=lam_a, lam_b=lam_b, lam_c=lam_c,
                   detach_weights=detach_weights, consistency_reduction=consistency_reduction)


class NLALoss(nn.Module):
    """The NLA objective as a module: build once with the run's epoch count, call
    ``set_epoch(e)`` (0-based) at the start of every epoch, then ``loss(z, z_flip, y)`` (logits
    ``[B, C]`` of the images and of their horizontal flips, targets ``[B]`` or ``[B, C]``) for
    the scalar loss, or :meth:`loss_and_signals` for the loss and the batch's
    :class:`NAWSignals` (weights, p_gt, p_nn, correct) from the same computation.

    Soft targets ``[B, C]`` are accepted: the given label is their argmax (module docstring).
    Inputs are checked unless ``check=False`` (``ValueError`` naming what is wrong).
    """

    loss_name = "nla"

    def __init__(
        self,
        epochs: int,
        *,
        lam_a: float = 0.5,
        lam_b: float = 0.5,
        lam_c: float = 0.5,
        slope: float = -15.0,
        schedule: bool = True,
        mu_t: Pair = (0.5, 0.5),
        sigma_t: float = 0.8,
        ratio_t: float = 2.0,
        mu_f: Pair = (0.30, 0.15),
        sigma_f: float = 0.91,
        ratio_f: float = 6.0,
        t_lambda: float = 1.0,
        detach_weights: bool = False,
        consistency_reduction: str = "sum",
        prior_tau: float = 0.0,
        class_counts: Sequence[int] | np.ndarray | Tensor | None = None,
        check: bool = True,
    ) -> None:
        super().__init__()
        self.check = check
        self.prior_tau = float(prior_tau)
        if self.prior_tau and class_counts is None:
            raise ValueError("prior_tau needs class_counts (the training labels' class counts)")
        counts = np.ones(1) if class_counts is None else np.asarray(class_counts, dtype=np.float64)
        # rebuilt from class_counts, not saved: checkpoints written before it existed still load
        self.register_buffer("log_priors", torch.as_tensor(counts / counts.sum()).clamp_min(1e-12).log().float(),
                             persistent=False)
        if epochs <= 0:
            raise ValueError(f"epochs must be positive, got {epochs}")
        if consistency_reduction not in CONSISTENCY_REDUCTIONS:
            raise ValueError(f"consistency_reduction must be one of {', '.join(CONSISTENCY_REDUCTIONS)}, "
                             f"got {consistency_reduction!r}")
        self.consistency_reduction = consistency_reduction
        self.epochs = int(epochs)
        self.lam_a, self.lam_b, self.lam_c = float(lam_a), float(lam_b), float(lam_c)
        self.slope, self.schedule = float(slope), bool(schedule)
        self.mu_t, self.sigma_t, self.ratio_t = (float(mu_t[0]), float(mu_t[1])), float(sigma_t), float(ratio_t)
        self.t_lambda, self.detach_weights = float(t_lambda), bool(detach_weights)
        wrong = GaussianConstants.from_covariance(mu_f, gaussian_covariance(sigma_f, ratio_f, off_diagonal_sign=1.0))
        self.register_buffer("mean_f", wrong.mean)
        self.register_buffer("inv_cov_f", wrong.inv_cov)
        self.register_buffer("norm_f", wrong.norm)
        self.register_buffer("mean_t", torch.tensor(self.mu_t, dtype=torch.float32))
        self.register_buffer("inv_cov_t", torch.zeros(2, 2))
        self.register_buffer("norm_t", torch.zeros(()))
        self.epoch = 0
        self.set_epoch(0)

    @property
    def epoch_scale(self) -> float:
        """``eps(e)`` of the current epoch."""
        return epoch_scale(self.epoch, self.epochs, slope=self.slope, schedule=self.schedule)

    def set_epoch(self, epoch: int) -> None:
        """Move the "correct" Gaussian to epoch ``epoch`` (0-based) of the schedule."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)
        cov = gaussian_covariance(self.sigma_t, self.ratio_t, off_diagonal_sign=-1.0, scale=self.epoch_scale)
        g = GaussianConstants.from_covariance(self.mu_t, cov)
        self.inv_cov_t.copy_(g.inv_cov)
        self.norm_t.copy_(g.norm)

    def forward(self, logits: Tensor, logits_flip: Tensor, targets: Tensor) -> Tensor:
        """The scalar loss (float32, even under autocast) of one batch."""
        return self.loss_and_signals(logits, logits_flip, targets)[0]

    def loss_and_signals(self, logits: Tensor, logits_flip: Tensor, targets: Tensor) -> tuple[Tensor, NAWSignals]:
        """The scalar loss (float32) and the batch's :class:`NAWSignals` (its weights keep their
        graph: call ``.detach()`` to record them). Raises ``ValueError`` for a missing flipped
        view, and (with ``check``) for logits or targets of the wrong shape, type or range."""
        if logits_flip is None:
            raise ValueError("NLALoss needs logits_flip: the logits of the horizontally flipped images")
        if self.check:
            check_inputs(logits, logits_flip, targets)
        with torch.autocast(device_type=logits.device.type, enabled=False):
            logits, logits_flip = at_least_float32(logits), at_least_float32(logits_flip)
            if self.prior_tau:  # logit adjustment (Menon et al. 2021): NLA on the training prior's logits
                offset = self.prior_tau * self.log_priors.to(logits.dtype)
                logits, logits_flip = logits + offset, logits_flip + offset
            targets = hard_labels(targets.to(logits.dtype)) if is_soft(targets) else targets  # as the baselines cast them
            dtype = logits.dtype
            correct_g = GaussianConstants(self.mean_t.to(dtype), self.inv_cov_t.to(dtype), self.norm_t.to(dtype))
            wrong_g = GaussianConstants(self.mean_f.to(dtype), self.inv_cov_f.to(dtype), self.norm_f.to(dtype))
            signals = naw_from_constants(logits, targets, correct_g, wrong_g, t_lambda=self.t_lambda)
            loss = combine(
                logits, logits_flip, targets, signals,
                lam_a=self.lam_a, lam_b=self.lam_b, lam_c=self.lam_c, detach_weights=self.detach_weights,
                consistency_reduction=self.consistency_reduction,
            )
        return loss, signals

    def logit_offset(self) -> list[float] | None:
        """``[C]``, ``prior_tau * log pi`` when the loss adjusts the logits (``prior_tau != 0``),
        else ``None``: see :meth:`fer_nla.methods.base.Method.logit_offset`."""
        return [float(v) for v in (self.prior_tau * self.log_priors).tolist()] if self.prior_tau else None

    def extra_repr(self) -> str:
        return (
            f"epochs={self.epochs}, lam=({self.lam_a}, {self.lam_b}, {self.lam_c}), slope={self.slope}, "
            f"schedule={self.schedule}, t_lambda={self.t_lambda}, detach_weights={self.detach_weights}, "
            f"consistency_reduction={self.consistency_reduction!r}, prior_tau={self.prior_tau}"
        )
