r"""SCN, the Self-Cure Network (Wang et al., CVPR 2020), as a training method.

*Suppressing Uncertainties for Large-Scale Facial Expression Recognition*, Kai Wang, Xiaojiang
Peng, Jianfei Yang, Shijian Lu, Yu Qiao, CVPR 2020 (arXiv:2002.10392). Official code:
github.com/kaiwang960112/Self-Cure-Network, ``src/train.py`` at commit
``9f4c3ad80ff29c7eaaac3d1b283a456d3f23a587``; this module computes what its training loop
computes (``tests/methods/test_scn.py`` compares the two on fixed tensors).

For pooled features ``f [B, C]`` (what the network's classifier reads), the network's logits
``z [B, K]``, the given labels ``y [B]`` and each sample's current label ``y~`` (``y`` until SCN
relabels it):

.. code-block:: text

    alpha_i = sigmoid(a . f_i + b)                              # self-attention importance, [B]
    L       = CE(alpha_i * z_i, y~_i)  (mean over the batch)
            + max(0, margin_1 - (mean_H alpha - mean_L alpha))   # rank regularisation (RR-loss)

``H``: the ``int(beta * B)`` samples of largest ``alpha``, ``L``: the others (the RR term is 0
when either group is empty, as the official ``diff > 0`` test on a nan mean makes it). From
epoch ``relabel_epoch`` on (1-based, the official ``for i in range(1, epochs + 1)`` and
``if i >= relabel_epoch``: fer-nla's 0-based epoch ``relabel_epoch - 1``) every sample of the
batch whose softmax of ``alpha_i * z_i`` gives ``p_max - p[y~_i] > margin_2`` gets the arg-max
class as its label, AFTER the batch's loss; the new label holds for the following epochs (a
buffer ``labels`` of length ``num_samples``, saved with the resume state). The official code
relabels every sample of the batch past the margin, not only those of the low-importance group
as the paper's text says; this module follows the code.

``a, b`` (``attention``: ``nn.Linear(C, 1)`` + sigmoid, PyTorch's default initialisation as in
the official ``Res18Feature.alpha``) are the method's own parameters: the trainer optimises them
with the network and saves them in ``last.pt``. Each output carries the batch's ``alpha`` as
``sample_weights``; the method does not declare them for ``signals.npz`` (``sample_weights=False``),
since the run report plots the recorded weights as NLA's NAW weights.

Defaults, from the official ``src/train.py`` argument parser: ``beta=0.7``, ``margin_1=0.15``
(the paper's value, for its batch of 1024; the official README runs ``--margin_1=0.07`` with
the default batch of 64), ``margin_2=0.2``, ``relabel_epoch=10``. Not followed: the official
``drop_rate`` (default 0, so no dropout) would apply dropout to the features before both the
attention and the classifier, and fer-nla's classifier runs inside the network; and the
official Adam at lr 1e-3 with weight decay 1e-4 is the run's ``optim`` config here.

Prediction: inference runs the network alone, giving ``z`` without ``alpha``. The official
test also predicts the arg-max of ``alpha_i * z_i``, and ``alpha_i > 0`` leaves the arg-max
unchanged, so the predicted class is the same; the probabilities are those of ``z`` (a
temperature ``1 / alpha_i`` away from the trained softmax).

Needs: pooled features, sample indices; class indices only (no label distributions); one
process (per-sample state).

Example:
    >>> import torch
    >>> from fer_nla.methods import MethodInputs
    >>> method = SCNMethod(num_samples=100, num_features=8)
    >>> out = method(MethodInputs(torch.randn(4, 7), torch.tensor([0, 1, 2, 3]),
    ...                           features=torch.randn(4, 8), indices=torch.tensor([5, 6, 7, 8])))
    >>> out.loss.shape, out.sample_weights.shape
    (torch.Size([]), torch.Size([4]))
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fer_nla.methods.base import Method, MethodInputs, MethodOutput, Needs

SCN_NEEDS = Needs(features=True, sample_index=True)


def rank_regularization(alpha: Tensor, *, beta: float, margin: float) -> Tensor:
    """SCN's RR-loss of importance weights ``alpha`` ``float [B]``: ``max(0, margin - (mean of the
    int(beta * B) largest - mean of the rest))``, a scalar with its graph; 0 (with a zero
    gradient) when either group is empty."""
    batch = alpha.shape[0]
    tops = int(batch * beta)
    if tops == 0 or tops == batch:
        return alpha.sum() * 0.0
    ranked = alpha.sort(descending=True).values
    return F.relu(ranked[tops:].mean() - ranked[:tops].mean() + margin)


def relabel(weighted_logits: Tensor, labels: Tensor, *, margin: float) -> Tensor:
    """SCN's relabelling: ``int64 [B]``, the arg-max class of ``softmax(weighted_logits)``
    (``[B, K]``, ``alpha_i * z_i``) where its probability exceeds that of ``labels`` (``int64
    [B]``) by more than ``margin``, else ``labels``. No graph."""
    with torch.no_grad():
        p = weighted_logits.softmax(dim=1)
        p_max, predicted = p.max(dim=1)
        p_label = p.gather(1, labels.unsqueeze(1)).squeeze(1)
        return torch.where(p_max - p_label > margin, predicted, labels)


class SCNMethod(Method):
    """SCN (see the module docstring). ``num_samples``: the training split's size (the labels
    buffer); ``num_features``: the pooled features' width ``C`` (the attention layer's input).
    Raises ``ValueError`` for ``beta`` outside (0, 1), a negative margin or ``relabel_epoch < 1``."""

    def __init__(self, *, num_samples: int, num_features: int, beta: float = 0.7, margin_1: float = 0.15,
                 margin_2: float = 0.2, relabel_epoch: int = 10) -> None:
        super().__init__(SCN_NEEDS, name="scn")
        if not 0.0 < beta < 1.0:
            raise ValueError(f"beta={beta}: the share of the high-importance group must lie in (0, 1) (official 0.7)")
        if margin_1 < 0 or margin_2 < 0:
            raise ValueError(f"margin_1={margin_1}, margin_2={margin_2}: the margins must be >= 0 (official 0.15, 0.2)")
        if relabel_epoch < 1:
            raise ValueError(f"relabel_epoch={relabel_epoch}: the first (1-based) epoch that relabels must be >= 1; "
                             "1 relabels from the first epoch, a value above train.epochs never relabels")
        self.beta, self.margin_1, self.margin_2, self.relabel_epoch = float(beta), float(margin_1), float(margin_2), int(relabel_epoch)
        self.attention = nn.Sequential(nn.Linear(num_features, 1), nn.Sigmoid())
        self.register_buffer("labels", torch.full((num_samples,), -1, dtype=torch.int64))  # -1: the given label
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The 0-based epoch; relabelling runs from epoch ``relabel_epoch - 1`` on."""
        self.epoch = int(epoch)

    def relabelling(self) -> bool:
        """Whether this epoch relabels (the official ``i >= relabel_epoch``, ``i = epoch + 1``)."""
        return self.epoch + 1 >= self.relabel_epoch

    def current_labels(self, indices: Tensor, targets: Tensor) -> Tensor:
        """``int64 [B]``: the label SCN trains sample ``indices`` on (its relabelled class, else ``targets``)."""
        stored = self.labels[indices]
        return torch.where(stored >= 0, stored, targets)

    def forward(self, inputs: MethodInputs) -> MethodOutput:
        """SCN's loss of one batch; ``sample_weights``: ``alpha`` ``[B]`` detached. Updates the
        labels of the batch's samples (relabelled ones from ``relabel_epoch`` on). Raises
        ``ValueError`` without features or indices, or for label distributions."""
        self.require(inputs)
        assert inputs.features is not None and inputs.indices is not None  # require() raised otherwise
        targets = self.class_indices(inputs.targets)
        features = inputs.features.to(inputs.logits.dtype)
        alpha = self.attention(features).squeeze(1)
        labels = self.current_labels(inputs.indices, targets)
        weighted = alpha.unsqueeze(1) * inputs.logits
        loss = F.cross_entropy(weighted, labels) + rank_regularization(alpha, beta=self.beta, margin=self.margin_1)
        if self.relabelling():
            labels = relabel(weighted.detach(), labels, margin=self.margin_2)
        self.labels[inputs.indices] = labels
        return MethodOutput(loss, sample_weights=alpha.detach())
