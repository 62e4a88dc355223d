"""The forward a training method asks for: one or two views, logits and, where declared, features.

What a method needs is its :class:`~fer_nla.methods.Needs`; this module turns it into network
calls. The two views of NLA (an image and its horizontal flip) go through the network as ONE
batch of ``2B`` images by default (``two_view_forward="batched"``): one forward and one backward
instead of two, so the convolutions run on larger batches. BatchNorm then normalises each layer
with statistics over both views together; ``"separate"`` keeps the reference code's two forward
calls (and its per-view BatchNorm statistics) for exact reproduction. A method that needs
features is run through the network's :class:`~fer_nla.models.FeatureNetwork` split
(``forward_features`` then ``forward_head``), which computes the same logits as ``forward``. A
method that needs the classifier gets the network's final linear layer
(:func:`network_classifier`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from fer_nla.errors import InputError
from fer_nla.freeze import TrailingPart
from fer_nla.methods import Method, Needs
from fer_nla.models import FeatureNetwork

TWO_VIEW_FORWARDS = ("batched", "separate")


@dataclass(frozen=True)
class ViewOutputs:
    """The network's outputs for one batch; each ``_flip`` field is ``None`` without
    ``needs.flip_view``, each feature field ``None`` unless asked for. ``logits`` ``[B, K]`` and
    maps ``[B, C, h, w]`` / pooled features ``[B, C]`` in the forward's dtype."""

    logits: Tensor
    logits_flip: Tensor | None = None
    feature_maps: Tensor | None = None
    feature_maps_flip: Tensor | None = None
    features: Tensor | None = None
    features_flip: Tensor | None = None


def _one_forward(network: nn.Module, x: Tensor, needs: Needs) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``(logits, maps, pooled)`` of ``x``; maps and pooled only when ``needs`` asks for them."""
    if not needs.network_features:
        return network(x), None, None
    assert isinstance(network, FeatureNetwork)  # check_method_fits refused other networks
    maps = network.forward_features(x)
    if maps.dim() != 4:
        raise InputError(f"the method needs feature maps [B, C, h, w] but the network's forward_features gives "
                         f"shape {tuple(maps.shape)}; use a convolutional model.arch (resnet18, resnet10s, ...)")
    pooled = network.forward_head(maps, pre_logits=True) if needs.features else None
    return network.forward_head(maps), maps if needs.feature_maps else None, pooled


def forward_views(network: nn.Module, images: Tensor, *, needs: Needs, flip: Callable[[Tensor], Tensor],
                  two_view_forward: str = "batched") -> ViewOutputs:
    """The outputs ``needs`` asks for of ``images`` (and of ``flip(images)`` with ``flip_view``).
    Raises ``ValueError`` for a ``two_view_forward`` other than ``batched`` or ``separate``."""
    if not needs.flip_view:
        logits, maps, pooled = _one_forward(network, images, needs)
        return ViewOutputs(logits, None, maps, None, pooled, None)
    flipped = flip(images)
    if two_view_forward == "batched":
        both = _one_forward(network, torch.cat([images, flipped]), needs)
        (logits, logits_flip), (maps, maps_flip), (pooled, pooled_flip) = (
            t.chunk(2) if t is not None else (None, None) for t in both)
    elif two_view_forward == "separate":
        (logits, maps, pooled), (logits_flip, maps_flip, pooled_flip) = (
            _one_forward(network, images, needs), _one_forward(network, flipped, needs))
    else:
        raise ValueError(f"two_view_forward must be one of {', '.join(TWO_VIEW_FORWARDS)}, got {two_view_forward!r}")
    return ViewOutputs(logits, logits_flip, maps, maps_flip, pooled, pooled_flip)


def network_classifier(network: nn.Module, *, arch: str = "") -> nn.Linear:
    """The final linear layer of ``network`` (pooled features ``[B, C]`` -> logits ``[B, K]``):
    timm's ``get_classifier()`` where the network has it, else its ``fc`` (the built-in networks,
    torchvision's ResNets); a DDP wrapper (``.module``) or a cached
    :class:`~fer_nla.freeze.TrailingPart` (``.model``) is looked through. Raises
    :class:`InputError` when that is not an ``nn.Linear``."""
    inner = network
    while isinstance(inner, (TrailingPart, nn.parallel.DistributedDataParallel)):
        inner = inner.model if isinstance(inner, TrailingPart) else inner.module
    get = getattr(inner, "get_classifier", None)
    head = get() if callable(get) else getattr(inner, "fc", None)
    if not isinstance(head, nn.Linear):
        raise InputError(f"the method needs the network's final linear classifier, but model.arch="
                         f"{arch or type(inner).__name__} has {type(head).__name__ if head is not None else 'none'} "
                         "(neither get_classifier() nor .fc is an nn.Linear); use resnet18, resnet50, resnet10s, "
                         "cnn_small or a timm model with a linear head")
    return head


def check_method_fits(method: Method, network: nn.Module, *, distributed: bool, arch: str = "") -> None:
    """Raise :class:`InputError`, before any epoch, when the run cannot give ``method`` what it
    needs: features from a network without the :class:`~fer_nla.models.FeatureNetwork` split, the
    classifier from a network without a final linear layer (:func:`network_classifier`), or,
    under several processes (DDP), features or the classifier (DDP synchronises gradients only
    through the wrapped ``forward``), per-sample state (each process sees other samples) or
    parameters of the method's own (DDP does not reduce their gradients)."""
    needs = method.needs
    if needs.network_features and not distributed and not isinstance(network, FeatureNetwork):
        raise InputError(f"loss {method.name!r} needs the network's features, but model.arch={arch or type(network).__name__} "
                         "has no forward_features/forward_head; use resnet18, resnet50, resnet10s, cnn_small or a timm model")
    if needs.classifier and not distributed:
        try:
            network_classifier(network, arch=arch)
        except InputError as err:
            raise InputError(f"loss {method.name!r}: {err}") from None
    if distributed:
        unsupported = [name for name, on in (("features", needs.network_features), ("the network's classifier", needs.classifier),
                                             ("per-sample state", needs.sample_index),
                                             ("parameters of its own", bool(method.own_parameters()))) if on]
        if unsupported:
            raise InputError(f"loss {method.name!r} needs {' and '.join(unsupported)}, which multi-process (DDP) "
                             "training does not give yet: run it in one process")
