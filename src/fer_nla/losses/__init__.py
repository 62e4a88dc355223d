"""Loss functions on tensors, each with a thin module: the baselines ``loss(logits, targets)``
and NLA's ``loss(logits, logits_flip, targets)``.

Targets are class indices ``int64 [B]`` or label distributions ``float [B, C]`` ("soft
targets"); a loss takes the latter only where it declares ``accepts_soft_targets = True``.
Choosing a loss by name, and what it needs from the trainer, is the job of
:mod:`fer_nla.methods` (``build_method``), which wraps these losses as training methods.
"""

from __future__ import annotations

from fer_nla.losses.base import Loss, check_inputs, hard_labels, is_soft, soft_target_refusal
from fer_nla.losses.baselines import (
    ClassBalancedCE,
    CrossEntropy,
    FocalLoss,
    GeneralizedCE,
    LabelSmoothingCE,
    LogitAdjustedCE,
    SymmetricCE,
)
from fer_nla.losses.nla import NAWSignals, NLALoss, epoch_scale, js_consistency, naw_weights, nla_loss

__all__ = [
    "ClassBalancedCE",
    "CrossEntropy",
    "FocalLoss",
    "GeneralizedCE",
    "LabelSmoothingCE",
    "LogitAdjustedCE",
    "Loss",
    "NAWSignals",
    "NLALoss",
    "SymmetricCE",
    "check_inputs",
    "epoch_scale",
    "hard_labels",
    "is_soft",
    "js_consistency",
    "naw_weights",
    "nla_loss",
    "soft_target_refusal",
]
