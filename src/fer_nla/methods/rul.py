r"""RUL, Relative Uncertainty Learning (Zhang et al., NeurIPS 2021), as a training method.

*Relative Uncertainty Learning for Facial Expression Recognition*, Yuhang Zhang, Chengrui Wang,
Weihong Deng, NeurIPS 2021. Official code: github.com/zyh-uaiaaaa/Relative-Uncertainty-Learning
at commit ``63b73f29da4c0f2e3c7776ac5141ff0a44b6120f``: ``src/rul.py`` (the uncertainty branch
``log_var``), ``src/utils.py`` (``mixup_data``, ``mixup_criterion``) and ``src/main.py`` (the
loss); ``tests/methods/test_rul.py`` compares this module with them on fixed tensors.

For pooled features ``f [B, C]`` (what the network's classifier ``g`` reads), labels ``y [B]``
and a random pairing ``j = perm(i)`` (``torch.randperm(B)``, as the official ``mixup_data``):

.. code-block:: text

    s_i   = mean_d exp(u(f_i)_d)                      # uncertainty, u: the branch below, [B]
    l_i   = s_i / (s_i + s_j)                         # the mixing weights, l_i + l'_i = 1
    m_i   = l_i * f_i + (s_j / (s_i + s_j)) * f_j     # uncertainty-weighted mix of the pair
    L     = 0.5 * CE(g(m), y) + 0.5 * CE(g(m), y[perm])   # the add-up loss (means over the batch)

``u`` (``uncertainty``) is the official ``log_var`` branch: ``BatchNorm(C, eps=2e-5, affine=False)
-> Dropout(0.4) -> Linear(C, 64) -> BatchNorm1d(64, eps=2e-5)``; its parameters are the
method's own (the trainer optimises them and saves them in ``last.pt``). The official code has
no other term: the loss above is all of ``main.py``'s training objective. The network's own
logits of the unmixed images are not in the loss; only the mixed features are classified, by
the network's classifier (``Needs(classifier=True)``), which is how its head trains.

Defaults, from the official code: ``out_dim=64`` (``main.py --out_dimension`` and
``res18feature(out_dim=64)``), ``drop_rate=0.4`` (``res18feature``). Not followed, and why:
the official network ends in a branch ``mu`` of the same shape as ``log_var`` that maps the
flattened ``512 x 7 x 7`` maps to a 64-d embedding, and a separate ``fc`` (64 -> 7) with ten
times the backbone's learning rate; fer-nla's networks end in global average pooling and their
own linear head, so the pooled features play ``mu``'s part (the embedding the classifier reads)
and the branch reads them too (the official branch on ``1 x 1`` maps is exactly this one: the
test checks), with one learning rate (the run's ``optim``). A batch of one sample is its own
pair (``l = 1/2``, ``m = f``): the loss is then the CE of ``g(f)``, without the branch (its
BatchNorm needs two samples).

Prediction: inference runs the network alone, ``g(f)`` on the unmixed features, which is the
official test-time output ``fc(mu(x))``.

Needs: pooled features and the network's classifier; class indices only; one process (the
branch is a parameter of its own).

Example:
    >>> import torch
    >>> from torch import nn
    >>> from fer_nla.methods import MethodInputs
    >>> head = nn.Linear(8, 7)
    >>> features = torch.randn(4, 8)
    >>> out = RULMethod(num_features=8)(MethodInputs(head(features), torch.tensor([0, 1, 2, 3]),
    ...                                              features=features, classifier=head))
    >>> out.loss.shape
    torch.Size([])
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fer_nla.methods.base import Method, MethodInputs, MethodOutput, Needs

RUL_NEEDS = Needs(features=True, classifier=True)


def relative_mix(features: Tensor, uncertainty: Tensor, perm: Tensor) -> tuple[Tensor, Tensor]:
    """RUL's mix of each sample with its partner ``perm[i]``: ``(mixed [B, C], weights [B])``,
    ``mixed_i = w_i * features_i + (1 - w_i) * features_perm[i]`` with ``w_i = s_i / (s_i +
    s_perm[i])`` for uncertainties ``s`` ``[B]`` (> 0). ``features``: ``[B, C]``; ``perm``: ``int64
    [B]``, a permutation. The partner's weight is computed as ``s_perm / (s + s_perm)``, as the
    official ``mixup_data`` does (equal to ``1 - w`` up to rounding)."""
    partner = uncertainty[perm]
    total = uncertainty + partner
    weights = uncertainty / total
    mixed = weights.unsqueeze(1) * features + (partner / total).unsqueeze(1) * features[perm]
    return mixed, weights


def add_up_loss(logits: Tensor, targets: Tensor, perm: Tensor) -> Tensor:
    """RUL's add-up loss: ``0.5 * CE(logits, targets) + 0.5 * CE(logits, targets[perm])`` of the
    mixed features' logits ``[B, K]`` (means over the batch; the official ``mixup_criterion``)."""
    return 0.5 * F.cross_entropy(logits, targets) + 0.5 * F.cross_entropy(logits, targets[perm])


class RULMethod(Method):
    """RUL (see the module docstring). ``num_features``: the pooled features' width ``C``;
    ``out_dim``: the uncertainty branch's width; ``drop_rate``: its dropout. Raises
    ``ValueError`` for ``out_dim < 1`` or ``drop_rate`` outside [0, 1)."""

    def __init__(self, *, num_features: int, out_dim: int = 64, drop_rate: float = 0.4) -> None:
        super().__init__(RUL_NEEDS, name="rul")
        if out_dim < 1:
            raise ValueError(f"out_dim={out_dim}: the uncertainty branch needs a width >= 1 (official 64)")
        if not 0.0 <= drop_rate < 1.0:
            raise ValueError(f"drop_rate={drop_rate}: the branch's dropout must lie in [0, 1) (official 0.4)")
        self.uncertainty = nn.Sequential(
            nn.BatchNorm1d(num_features, eps=2e-5, affine=False), nn.Dropout(p=drop_rate),
            nn.Linear(num_features, out_dim), nn.BatchNorm1d(out_dim, eps=2e-5))

    def sample_uncertainty(self, features: Tensor) -> Tensor:
        """``s = mean_d exp(u(features))``: ``[B]``, > 0, for pooled features ``[B, C]`` (B >= 2)."""
        return self.uncertainty(features).exp().mean(dim=1)

    def forward(self, inputs: MethodInputs) -> MethodOutput:
        """RUL's add-up loss of one batch (the pairing drawn from torch's generator on the
        features' device). Raises ``ValueError`` without features or the classifier, or for
        label distributions."""
        self.require(inputs)
        assert inputs.features is not None and inputs.classifier is not None  # require() raised otherwise
        targets = self.class_indices(inputs.targets)
        features = inputs.features.to(inputs.logits.dtype)
        if features.shape[0] < 2:  # its own pair: the mix is the sample itself
            return MethodOutput(F.cross_entropy(inputs.classifier(features), targets))
        uncertainty = self.sample_uncertainty(features)  # before the pairing: the official order of random draws
        perm = torch.randperm(features.shape[0], device=features.device)
        mixed, _ = relative_mix(features, uncertainty, perm)
        return MethodOutput(add_up_loss(inputs.classifier(mixed), targets, perm))
