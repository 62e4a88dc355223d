"""The base of fer-nla's own networks: feature maps, global average pooling, a linear head.

:class:`PooledClassifier` is what ``resnet10s``, the small CNNs (:mod:`fer_nla.models`) and dlib's
face-recognition ResNet (:mod:`fer_nla.dlib_resnet`) share: the :class:`~fer_nla.models.FeatureNetwork`
split (``forward_features`` / ``forward_head``) and the declared stages that
:mod:`fer_nla.freeze` freezes and caches.
"""

from __future__ import annotations

from torch import Tensor, nn


class PooledClassifier(nn.Module):
    """``features`` -> global average pooling -> linear head ``fc``; convolutions Kaiming-initialised;
    a :class:`FeatureNetwork`.

    ``stage_ends``: for each stage (the stem first), the index in ``features`` where it ends
    (:mod:`fer_nla.freeze` freezes whole stages by it); ``frozen_end``: the first ``frozen_end``
    modules of ``features`` are frozen, and :meth:`train` keeps them in eval mode (BatchNorm uses
    its running statistics, as the pretrained network did)."""

    stage_ends: tuple[int, ...] = ()
    frozen_end: int = 0

    def train(self, mode: bool = True) -> PooledClassifier:
        super().train(mode)
        for module in list(self.features)[:self.frozen_end]:
            module.eval()
        return self

    def _finish(self, layers: list[nn.Module], *, channels: int, num_classes: int) -> None:
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward_features(self, x: Tensor) -> Tensor:
        """Images ``[B, 3, H, W]`` -> the last feature maps ``[B, C, h, w]``."""
        return self.features(x)

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Feature maps -> logits ``[B, num_classes]`` (pooled features ``[B, C]`` with ``pre_logits``)."""
        pooled = self.pool(x).flatten(1)
        return pooled if pre_logits else self.fc(pooled)

    def forward(self, x: Tensor) -> Tensor:
        return self.forward_head(self.forward_features(x))
