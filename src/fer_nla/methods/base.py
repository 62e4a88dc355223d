"""The interface between the trainer and a training method: what it needs, what it gets, what it gives.

A training method (a baseline loss, NLA, SCN, RUL or EAC) is an ``nn.Module`` that declares in
:class:`Needs` what it needs from a batch beyond the logits and targets: the flipped view (NLA's
consistency term, EAC's flipped attention maps), the network's feature maps or pooled features
(SCN weighs samples by them, RUL mixes them, EAC compares class activation maps), the network's
classifier (RUL classifies mixed features with it, EAC weighs the maps by its weights), the
samples' indices in the training split (SCN relabels samples: state across epochs) and whether
it trains on label distributions. The trainer
(:mod:`fer_nla.train.step`) reads that declaration once, gives the method exactly that in a
:class:`MethodInputs` record every step and gets a :class:`MethodOutput` back (the loss and,
where the method has them, per-sample weights for the signals and the label audit).

A method's own trainable parameters (an extra head, learned per-sample weights) are its
``nn.Module`` parameters: the trainer gives every parameter of the method that requires a
gradient to the optimizer (:meth:`Method.own_parameters`) and saves the method's state dict
(parameters and buffers, per-sample state included) with the resume state of ``last.pt``.
Per-sample state is kept in buffers of length ``num_samples`` (a build option the trainer
passes: the size of the training split), indexed by :attr:`MethodInputs.indices`; a method
whose own layers read the pooled features takes their width as the build option
``num_features`` (the trainer passes the network classifier's ``in_features``).

Epochs: the trainer calls :meth:`Method.set_epoch` (0-based) before each epoch's first step.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from torch import Tensor, nn


@dataclass(frozen=True)
class Needs:
    """What a method needs from each batch beyond the image logits and the targets.

    flip_view: the logits (and, with ``feature_maps``/``features``, the features) of each
        image's horizontal flip, computed with the same weights in the same step.
    feature_maps: the network's last feature maps before pooling, ``[B, C, h, w]``.
    features: the pooled features the classifier reads, ``[B, C]``.
    sample_index: each sample's position in the training split (stable across epochs).
    soft_targets: the method trains on label distributions ``[B, K]`` as well as on indices.
    classifier: the network's final linear layer (``nn.Linear``, pooled features ``[B, C]`` ->
        logits ``[B, K]``: ``fc`` of the built-in and torchvision networks, timm's
        ``get_classifier()``), the very module that trains (calling it back-propagates into it).
    """

    flip_view: bool = False
    feature_maps: bool = False
    features: bool = False
    sample_index: bool = False
    soft_targets: bool = False
    classifier: bool = False

    @property
    def network_features(self) -> bool:
        """Whether the forward must go through the network's feature interface
        (:class:`fer_nla.models.FeatureNetwork`) instead of its plain ``forward``."""
        return self.feature_maps or self.features

    def asked(self) -> list[str]:
        """The names of the needs that are on, in declaration order (for messages)."""
        return [f.name for f in fields(self) if getattr(self, f.name)]


@dataclass(frozen=True)
class MethodInputs:
    """One batch as the trainer gives it to a method; a field is ``None`` unless the method's
    :class:`Needs` asked for it.

    logits: ``float32 [B, K]`` of the images. targets: class indices ``int64 [B]`` or label
    distributions ``float [B, K]`` (the latter only to methods with ``soft_targets``).
    logits_flip: ``float32 [B, K]`` of the flipped images (``flip_view``).
    feature_maps / feature_maps_flip: ``[B, C, h, w]`` of the images / their flips
    (``feature_maps``; ``_flip`` also needs ``flip_view``), in the forward's dtype (bfloat16 or
    float16 under autocast), with the graph to the backbone.
    features / features_flip: pooled ``[B, C]``, likewise (``features``).
    indices: ``int64 [B]``, on the logits' device: each sample's position in the training split,
    ``0 <= i < num_samples`` (``sample_index``).
    classifier: the network's final ``nn.Linear`` (``classifier``); its ``in_features`` is the
    width ``C`` of ``features``.
    """

    logits: Tensor
    targets: Tensor
    logits_flip: Tensor | None = None
    feature_maps: Tensor | None = None
    feature_maps_flip: Tensor | None = None
    features: Tensor | None = None
    features_flip: Tensor | None = None
    indices: Tensor | None = None
    classifier: nn.Linear | None = None


@dataclass(frozen=True)
class MethodOutput:
    """What a method gives back for one batch.

    loss: the scalar to minimise (float32, with its graph).
    sample_weights: ``float [B]``, detached, the weight the method gave each sample (NLA's NAW
    weights ``w_i``; ``None`` for methods without per-sample weights). Recorded per epoch in
    ``signals.npz`` as ``weights`` when the method declares ``sample_weights=True``.
    """

    loss: Tensor
    sample_weights: Tensor | None = None


def required_fields(needs: Needs) -> list[str]:
    """The :class:`MethodInputs` fields that ``needs`` makes the trainer fill."""
    wanted = ["logits", "targets"]
    if needs.flip_view:
        wanted.append("logits_flip")
    for name in ("feature_maps", "features"):
        if getattr(needs, name):
            wanted += [name, f"{name}_flip"] if needs.flip_view else [name]
    if needs.sample_index:
        wanted.append("indices")
    if needs.classifier:
        wanted.append("classifier")
    return wanted


class Method(nn.Module):
    """Base of every training method: ``method(MethodInputs) -> MethodOutput``.

    ``needs``: the method's :class:`Needs`; ``name``: its registry name (``loss.name``), for
    messages; ``sample_weights``: whether its outputs carry ``sample_weights``. Subclasses
    implement ``forward`` and, where the method has an epoch schedule or per-epoch state,
    :meth:`set_epoch`.
    """

    def __init__(self, needs: Needs, *, name: str, sample_weights: bool = False) -> None:
        super().__init__()
        self.needs = needs
        self.name = name
        self.sample_weights = sample_weights

    def set_epoch(self, epoch: int) -> None:  # noqa: B027 - a no-op by design
        """Tell the method the current 0-based epoch; nothing to do for most methods."""

    def logit_offset(self) -> list[float] | None:
        """``[C]``: what the method adds to the network's logits before its softmax (``tau * log
        pi`` for a logit-adjusted loss), so that the logits at the training prior are the network's
        plus this; ``None`` for the methods that add nothing. Recorded with every checkpoint
        (:mod:`fer_nla.inference.scoring`)."""
        return None

    def own_parameters(self) -> list[nn.Parameter]:
        """The method's trainable parameters (an extra head, ...): the trainer optimises them."""
        return [p for p in self.parameters() if p.requires_grad]

    def class_indices(self, targets: Tensor) -> Tensor:
        """``targets`` as class indices ``int64 [B]``. Raises ``ValueError`` for label
        distributions ``[B, K]`` (this method's ``needs.soft_targets`` is off)."""
        if targets.dim() != 1 or targets.is_floating_point():
            raise ValueError(f"method {self.name!r} trains on class indices int64 [B], got {targets.dtype} "
                             f"{tuple(targets.shape)}; set data.labels=plurality or majority for it")
        return targets

    def require(self, inputs: MethodInputs) -> None:
        """Raise ``ValueError`` naming every field ``needs`` asks for that ``inputs`` lacks
        (a method called outside the trainer without what it declared)."""
        missing = [name for name in required_fields(self.needs) if getattr(inputs, name) is None]
        if missing:
            raise ValueError(f"method {self.name!r} needs {', '.join(missing)} in its MethodInputs "
                             f"(it declares {', '.join(self.needs.asked())})")

    def forward(self, inputs: MethodInputs) -> MethodOutput:
        raise NotImplementedError
