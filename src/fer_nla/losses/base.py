"""What the losses in fer-nla share: input checks, the soft-target rule, the baselines' base class.

A baseline loss is called as ``loss(logits, targets)`` (:class:`Loss`); NLA's loss also takes
the logits of the flipped view (:class:`fer_nla.losses.nla.NLALoss`). What a training method
needs beyond that (two views, features, per-sample state) is declared by the method
(:mod:`fer_nla.methods`), not by the loss.

Targets are either class indices (``[B]``, integer) or label distributions (``[B, C]``,
float, each row non-negative and summing to 1: "soft targets", e.g. FERPlus's vote
distributions). A loss that has a meaning for distributions says so with the class attribute
``accepts_soft_targets = True``; every other loss refuses them with a message naming the loss,
why, and what to use instead (:func:`soft_target_refusal`).
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

SOFT_TARGET_TOLERANCE = 1e-3  # largest accepted |row sum - 1| of a label distribution


def is_soft(targets: Tensor) -> bool:
    """Whether ``targets`` are label distributions ``[B, C]`` (floating point, 2-D) rather than
    class indices ``[B]``. A check of shape and dtype only: no device synchronisation."""
    return targets.dim() == 2 and targets.dtype.is_floating_point


def hard_labels(targets: Tensor) -> Tensor:
    """The given label of each sample, ``[B]`` int64: ``targets`` themselves when they are class
    indices, else the argmax of each distribution (the first of tied maxima)."""
    return targets.argmax(dim=1) if is_soft(targets) else targets


def check_inputs(logits: Tensor, logits_flip: Tensor | None, targets: Tensor) -> None:
    """Raise ``ValueError`` naming what is wrong with a batch of logits ``[B, C]`` and targets
    (class indices ``[B]`` or label distributions ``[B, C]``, see :func:`is_soft`).

    Shapes are checked for free; the value checks (targets in range or valid distributions,
    finite logits) are fused into one reduction so that they cost a single device synchronisation.
    """
    _check_logit_shapes(logits, logits_flip)
    batch, num_classes = logits.shape
    soft = is_soft(targets)
    if soft:
        if targets.shape != (batch, num_classes):
            raise ValueError(
                f"soft targets must have shape ({batch}, {num_classes}) to match logits, got {tuple(targets.shape)}"
            )
        bad_rows = _bad_distribution_rows(targets)
    else:
        if targets.dim() != 1 or targets.shape[0] != batch:
            raise ValueError(
                f"targets must have shape ({batch},) (class indices) or ({batch}, {num_classes}) (float "
                f"probabilities) to match logits, got shape {tuple(targets.shape)} ({targets.dtype})"
            )
        if targets.dtype.is_floating_point or targets.dtype == torch.bool:
            raise ValueError(
                f"targets of shape ({batch},) must be integer class indices, got dtype {targets.dtype}; "
                f"give probabilities as a float ({batch}, {num_classes}) tensor"
            )
        bad_rows = (targets < 0) | (targets >= num_classes)
    finite = torch.isfinite(logits).all()
    if logits_flip is not None:
        finite = finite & torch.isfinite(logits_flip).all()
    flags = torch.stack([bad_rows.any(), ~finite]).cpu()
    if flags[0] and soft:
        rows = bad_rows.nonzero().flatten()[:5].tolist()
        sums = [round(float(s), 6) for s in targets[rows].double().sum(dim=1)]
        raise ValueError(
            f"soft targets must be probabilities (each row >= 0, finite, summing to 1 within "
            f"{SOFT_TARGET_TOLERANCE}); rows {rows} are not (row sums {sums}); normalise each row"
        )
    if flags[0]:
        bad = targets[bad_rows][:5].tolist()
        raise ValueError(f"targets out of range [0, {num_classes}): found {bad}; check the class count of the model")
    if flags[1]:
        raise ValueError("non-finite logits (nan or inf): the model diverged; lower the learning rate or check the inputs")


def _check_logit_shapes(logits: Tensor, logits_flip: Tensor | None) -> None:
    if logits.dim() != 2:
        raise ValueError(f"logits must be 2-D (batch, classes), got shape {tuple(logits.shape)}")
    batch, num_classes = logits.shape
    if batch == 0:
        raise ValueError("empty batch: logits has 0 rows")
    if num_classes < 2:
        raise ValueError(f"logits must have at least 2 classes, got {num_classes}")
    if logits_flip is not None and logits_flip.shape != logits.shape:
        raise ValueError(
            f"logits_flip has shape {tuple(logits_flip.shape)} but logits has {tuple(logits.shape)}; "
            "pass the logits of the flipped copies of the same images"
        )


def _bad_distribution_rows(targets: Tensor) -> Tensor:
    """``[B]`` bool: rows with a negative or non-finite entry, or a sum off 1 by more than the tolerance."""
    t = targets.double()
    broken = ~torch.isfinite(t).all(dim=1) | (t < 0).any(dim=1)
    return broken | ((t.sum(dim=1) - 1.0).abs() > SOFT_TARGET_TOLERANCE)


def at_least_float32(x: Tensor) -> Tensor:
    """``x`` in float32 when it is in a half type; float32 and float64 pass unchanged."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def soft_target_refusal(name: str, reason: str, *, label_mode: str | None = None,
                        alternatives: tuple[str, ...] = ()) -> str:
    """Why the loss ``name`` refuses label distributions (``reason``) and what to use instead: the
    ``alternatives`` (names of losses that take them, when the caller knows them) or hard labels."""
    given = f"data.labels={label_mode!r} gives" if label_mode else "the targets are"
    takes = f" (loss.name={' | '.join(alternatives)})" if alternatives else ""
    return (
        f"loss {name!r} cannot train on soft targets ({given} label distributions [B, C]): {reason}. "
        f"Use a loss that takes distributions{takes} or hard labels (data.labels=plurality or majority)"
    )


class Loss(nn.Module):
    """Base of the baseline losses: ``forward(logits [B, C], targets) -> scalar``.

    ``targets`` are class indices ``int64 [B]`` or label distributions ``float [B, C]``.
    Subclasses implement ``compute``; inputs are checked first (``check=False`` skips the check
    and its device synchronisation) and the loss itself is computed in float32 even under
    autocast. Soft targets reach ``compute`` (in the logits' dtype) only when the class sets
    ``accepts_soft_targets = True``; otherwise ``forward`` raises ``ValueError``
    (:func:`soft_target_refusal`), whatever ``check`` says (the test costs no synchronisation).
    A training method wraps a loss (:class:`fer_nla.methods.baselines.LossMethod`).
    """

    loss_name: ClassVar[str] = "loss"  # the registry name, for messages
    accepts_soft_targets: ClassVar[bool] = False
    soft_targets_reason: ClassVar[str] = "it is defined for one class index per sample"

    def __init__(self, *, check: bool = True) -> None:
        super().__init__()
        self.check = check

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        soft = is_soft(targets)
        if soft and not self.accepts_soft_targets:
            raise ValueError(soft_target_refusal(self.loss_name, self.soft_targets_reason))
        if self.check:
            check_inputs(logits, None, targets)
        with torch.autocast(device_type=logits.device.type, enabled=False):
            logits = at_least_float32(logits)
            return self.compute(logits, targets.to(logits.dtype) if soft else targets)

    def compute(self, logits: Tensor, targets: Tensor) -> Tensor:
        raise NotImplementedError
