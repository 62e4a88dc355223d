"""What every loss in fer-nla shares: one call signature and one set of input checks.

Every loss is called as ``loss(logits, logits_flip, targets)`` so a training loop can switch
method by name alone; methods with no use for the flipped view ignore it. Every loss has
``set_epoch(epoch)`` (0-based), a no-op for methods without an epoch schedule.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def check_inputs(logits: Tensor, logits_flip: Tensor | None, targets: Tensor) -> None:
    """Raise ``ValueError`` naming what is wrong with a batch of logits and targets.

    Shapes are checked for free; the value checks (targets in range, finite logits) are
    fused into one reduction so that they cost a single device synchronisation.
    """
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
    if targets.dim() != 1 or targets.shape[0] != batch:
        raise ValueError(f"targets must have shape ({batch},) to match logits, got {tuple(targets.shape)}")
    if targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer class indices, got dtype {targets.dtype}")
    out_of_range = (targets < 0) | (targets >= num_classes)
    finite = torch.isfinite(logits).all()
    if logits_flip is not None:
        finite = finite & torch.isfinite(logits_flip).all()
    flags = torch.stack([out_of_range.any(), ~finite]).cpu()
    if flags[0]:
        bad = targets[out_of_range][:5].tolist()
        raise ValueError(f"targets out of range [0, {num_classes}): found {bad}; check the class count of the model")
    if flags[1]:
        raise ValueError("non-finite logits (nan or inf): the model diverged; lower the learning rate or check the inputs")


def at_least_float32(x: Tensor) -> Tensor:
    """``x`` in float32 when it is in a half type; float32 and float64 pass unchanged."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


class PairLoss(nn.Module):
    """Base of the registry's losses: ``forward(logits, logits_flip, targets) -> scalar``.

    Subclasses implement ``compute``; inputs are checked first (``check=False`` skips the
    check and its device synchronisation) and the loss itself is computed in float32 even
    under autocast.
    """

    def __init__(self, *, check: bool = True) -> None:
        super().__init__()
        self.check = check

    def set_epoch(self, epoch: int) -> None:  # noqa: B027 - a no-op by design
        """Tell the loss the current 0-based epoch; nothing to do for most methods."""

    def forward(self, logits: Tensor, logits_flip: Tensor | None, targets: Tensor) -> Tensor:
        if self.check:
            check_inputs(logits, logits_flip, targets)
        with torch.autocast(device_type=logits.device.type, enabled=False):
            flip = None if logits_flip is None else at_least_float32(logits_flip)
            return self.compute(at_least_float32(logits), flip, targets)

    def compute(self, logits: Tensor, logits_flip: Tensor | None, targets: Tensor) -> Tensor:
        raise NotImplementedError
