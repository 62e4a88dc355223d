r"""EAC, Erasing Attention Consistency (Zhang et al., ECCV 2022), as a training method.

*Learn From All: Erasing Attention Consistency for Noisy Label Facial Expression Recognition*,
Yuhang Zhang, Chengrui Wang, Xu Ling, Weihong Deng, ECCV 2022 (arXiv:2207.10299); NLA's
reference code builds on it. Official code: github.com/zyh-uaiaaaa/Erasing-Attention-Consistency
at commit ``61efdfd373b6d2fe7c6d31712427aa263f72900d``: ``src/model.py`` (the attention maps),
``src/loss.py`` (``ACLoss``), ``src/utils.py`` (``generate_flip_grid``) and ``src/main.py`` (the
loss); ``tests/methods/test_eac.py`` compares this module with them on fixed tensors.

For the feature maps ``F [B, C, h, w]`` of the images and ``F' `` of their horizontal flips, the
classifier's weights ``W [K, C]`` (detached: the official ``params[-2].data``), logits ``z`` and
labels ``y``:

.. code-block:: text

    M   = sum_c W[k, c] * F[b, c]          # class activation maps [B, K, h, w] (no bias)
    M'  = the same of F'
    L   = CE(z, y) + lam * mean((M - flip_w(M'))^2)     # MSE over all B*K*h*w entries

``flip_w`` mirrors the maps left to right: the official ``F.grid_sample`` with the flip grid of
``generate_flip_grid`` (bilinear, ``align_corners=True``) samples exactly the mirrored
positions, so this module flips with ``Tensor.flip(3)`` (the test checks the two agree; the
official grid is built for ``--w 7 --h 7``, here the maps' own size). The consistency gradient
reaches the backbone through both views' maps and never the classifier; the flip's logits are
not in the loss. Default ``lam=5`` (``main.py --lam``, also in ``src/train.sh``).

Random erasing: EAC's other half is an input augmentation, ``transforms.RandomErasing(scale=(0.02,
0.25))`` in the official data pipeline. fer-nla's ``data.erasing`` (on by default; scale 0.02-0.3,
:mod:`fer_nla.data.batch_augment` in the memory loader, :func:`fer_nla.data.transforms.train_transform`
per image) erases the training images before the step, and the step
makes the flipped view by flipping the erased image (:func:`fer_nla.train.step.horizontal_flip`),
so both views share the erased rectangle, as in the official dataset's clean-label branch
(``RandomHorizontalFlip(p=1)`` of the transformed image). Its noisy-label branch transforms the
flipped image separately (an independent erasing; and the Gaussian noise only on the first
view); fer-nla does not reproduce that. The cached frozen path (``train.cache_frozen``) has no
input augmentation at all (no erasing): there EAC is the flip consistency of the attention
maps alone.

Not followed: the official runs the two views as two forward calls (per-view BatchNorm
statistics); fer-nla's default ``train.two_view_forward=batched`` runs them as one batch, and
``separate`` gives the official behaviour. The optimizer (Adam, lr 1e-4, weight decay 1e-4,
ExponentialLR 0.9) is the run's ``optim`` config.

Prediction: inference runs the network alone; the official test predicts the arg-max of the
same logits ``z``.

Needs: the flipped view, the feature maps (of both views) and the network's classifier; class
indices only; one process.

Example:
    >>> import torch
    >>> from torch import nn
    >>> from fer_nla.methods import MethodInputs
    >>> head, maps = nn.Linear(8, 7), torch.randn(2, 8, 3, 3)
    >>> logits = head(maps.mean(dim=(2, 3)))
    >>> out = EACMethod()(MethodInputs(logits, torch.tensor([0, 1]), logits_flip=logits, feature_maps=maps,
    ...                                feature_maps_flip=maps.flip(3), classifier=head))
    >>> round(out.loss.item() - nn.functional.cross_entropy(logits, torch.tensor([0, 1])).item(), 6)
    0.0
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from fer_nla.methods.base import Method, MethodInputs, MethodOutput, Needs

EAC_NEEDS = Needs(flip_view=True, feature_maps=True, classifier=True)


def class_activation_maps(maps: Tensor, weight: Tensor) -> Tensor:
    """``[B, K, h, w]``: ``sum_c weight[k, c] * maps[b, c]`` for feature maps ``[B, C, h, w]`` and
    classifier weights ``[K, C]`` (the official ``model.py``'s ``hm``, without the bias)."""
    return torch.einsum("bchw,kc->bkhw", maps, weight)


def flip_attention_consistency(cam: Tensor, cam_flip: Tensor) -> Tensor:
    """EAC's consistency: ``mean((cam - cam_flip mirrored left to right)^2)`` of two maps ``[B, K,
    h, w]`` (the official ``ACLoss``; its grid_sample flip is this exact mirror)."""
    return F.mse_loss(cam, cam_flip.flip(3))


class EACMethod(Method):
    """EAC (see the module docstring). ``lam``: the consistency term's weight. Raises
    ``ValueError`` for a negative ``lam``."""

    def __init__(self, *, lam: float = 5.0) -> None:
        super().__init__(EAC_NEEDS, name="eac")
        if lam < 0:
            raise ValueError(f"lam={lam}: the consistency weight must be >= 0 (official 5; 0 is plain CE)")
        self.lam = float(lam)

    def forward(self, inputs: MethodInputs) -> MethodOutput:
        """CE of the image logits plus ``lam`` times the flip consistency of the two views'
        attention maps. Raises ``ValueError`` without the flip's maps or the classifier, or for
        label distributions."""
        self.require(inputs)
        maps, maps_flip, head = inputs.feature_maps, inputs.feature_maps_flip, inputs.classifier
        assert maps is not None and maps_flip is not None and head is not None  # require() raised otherwise
        targets = self.class_indices(inputs.targets)
        dtype = inputs.logits.dtype
        weight = head.weight.detach().to(dtype)
        consistency = flip_attention_consistency(class_activation_maps(maps.to(dtype), weight),
                                                 class_activation_maps(maps_flip.to(dtype), weight))
        return MethodOutput(F.cross_entropy(inputs.logits, targets) + self.lam * consistency)
