"""A test-only training method that asks for everything the interface offers (feature maps,
pooled features, sample indices) and has a head of its own; it records what it received."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from fer_nla.methods import Method, MethodInputs, MethodOutput, Needs

PROBE_NEEDS = Needs(feature_maps=True, features=True, sample_index=True)


@dataclass
class Received:
    """What the probe saw, one entry per step."""

    maps: list[tuple[int, ...]] = field(default_factory=list)
    features: list[tuple[int, ...]] = field(default_factory=list)
    indices: list[list[int]] = field(default_factory=list)
    aux_loss: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    methods: list[ProbeMethod] = field(default_factory=list)


class ProbeMethod(Method):
    """CE of the logits + CE of an auxiliary linear head on the pooled features + a small penalty
    on the feature maps; counts how often each training sample was visited (per-sample state)."""

    def __init__(self, num_samples: int, *, channels: int, num_classes: int, received: Received) -> None:
        super().__init__(PROBE_NEEDS, name="probe")
        self.aux = nn.Linear(channels, num_classes)
        self.initial_aux_weight = self.aux.weight.detach().clone()  # a plain attribute: not in the state dict
        self.register_buffer("visits", torch.zeros(num_samples, dtype=torch.int64))
        self.received, self.epoch = received, 0
        received.methods.append(self)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def forward(self, inputs: MethodInputs) -> MethodOutput:
        self.require(inputs)
        assert inputs.feature_maps is not None and inputs.features is not None and inputs.indices is not None
        self.visits.index_add_(0, inputs.indices, torch.ones_like(inputs.indices))
        aux = F.cross_entropy(self.aux(inputs.features.float()), inputs.targets)
        penalty = inputs.feature_maps.float().pow(2).mean()
        r = self.received
        r.maps.append(tuple(inputs.feature_maps.shape))
        r.features.append(tuple(inputs.features.shape))
        r.indices.append(inputs.indices.tolist())
        r.aux_loss.append(float(aux.detach()))
        r.epochs.append(self.epoch)
        return MethodOutput(F.cross_entropy(inputs.logits, inputs.targets) + aux + 1e-3 * penalty)
