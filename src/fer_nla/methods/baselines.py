"""The baseline losses as training methods: one view, logits and targets only.

:class:`LossMethod` adapts a plain loss ``loss(logits, targets)``
(:class:`fer_nla.losses.base.Loss`: CE, label smoothing, focal, class-balanced CE, logit
adjustment, GCE, SCE) to the method interface. It needs nothing beyond the image logits, and
label distributions only where the loss declares ``accepts_soft_targets``.
"""

from __future__ import annotations

from fer_nla.losses.base import Loss, is_soft
from fer_nla.methods.base import Method, MethodInputs, MethodOutput, Needs


class LossMethod(Method):
    """A baseline loss as a method. ``loss``: the built loss module; ``refusal``: the message of
    the ``ValueError`` raised when soft targets reach a loss without a soft form (the registry
    writes it, naming the methods that take distributions)."""

    def __init__(self, loss: Loss, *, name: str, refusal: str) -> None:
        super().__init__(Needs(soft_targets=loss.accepts_soft_targets), name=name)
        self.loss = loss
        self.refusal = refusal

    def logit_offset(self) -> list[float] | None:
        """The loss's ``logit_offset`` (a logit-adjusted loss's ``tau * log pi``), else ``None``."""
        offset = getattr(self.loss, "logit_offset", None)
        return None if offset is None else offset()

    def forward(self, inputs: MethodInputs) -> MethodOutput:
        """The loss of the image logits ``[B, K]`` against the targets; the flipped view, features
        and indices are not used (and not computed by the trainer)."""
        if is_soft(inputs.targets) and not self.needs.soft_targets:
            raise ValueError(self.refusal)
        return MethodOutput(self.loss(inputs.logits, inputs.targets))
