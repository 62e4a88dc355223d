"""NLA as a training method: two views, NAW weights recorded (Lee et al., AAAI 2025).

The objective is :class:`fer_nla.losses.nla.NLALoss` (``docs/NLA-METHOD.md``); this method
asks the trainer for the logits of each image's horizontal flip (the consistency term), takes
label distributions (their argmax is the given label) and returns each sample's NAW weight
``w_i`` with the loss, for ``signals.npz`` and the label audit.
"""

from __future__ import annotations

from fer_nla.losses.nla import NLALoss
from fer_nla.methods.base import Method, MethodInputs, MethodOutput, Needs

NLA_NEEDS = Needs(flip_view=True, soft_targets=True)


class NLAMethod(Method):
    """``loss``: the built :class:`NLALoss` (its options are the method's options)."""

    def __init__(self, loss: NLALoss, *, name: str = "nla") -> None:
        super().__init__(NLA_NEEDS, name=name, sample_weights=True)
        self.loss = loss

    def set_epoch(self, epoch: int) -> None:
        """Move NAW's "correct" Gaussian to epoch ``epoch`` (0-based) of its schedule."""
        self.loss.set_epoch(epoch)

    def logit_offset(self) -> list[float] | None:
        """The loss's ``prior_tau * log pi`` when it adjusts the logits, else ``None``."""
        return self.loss.logit_offset()

    def forward(self, inputs: MethodInputs) -> MethodOutput:
        """The NLA loss of the two views' logits ``[B, K]``; ``sample_weights``: the detached NAW
        weights ``float32 [B]``. Raises ``ValueError`` without ``logits_flip``."""
        self.require(inputs)
        assert inputs.logits_flip is not None  # for the type checker: require() raised otherwise
        loss, signals = self.loss.loss_and_signals(inputs.logits, inputs.logits_flip, inputs.targets)
        return MethodOutput(loss, sample_weights=signals.weights.detach())
