"""Losses by name: ``build_loss(name, **options)`` and ``available()``.

Every loss is an ``nn.Module`` called as ``loss(logits, logits_flip, targets)`` with
``set_epoch(e)``. Context a method may need is passed uniformly and given only to the
methods that take it: ``epochs`` (NLA's schedule) and ``class_counts`` (class-balanced and
logit-adjusted CE); a method that needs one and does not get it is an error.

Targets are class indices ``[B]`` or label distributions ``[B, C]`` ("soft targets"); a loss
takes the latter only where it declares ``accepts_soft_targets = True``
(:func:`soft_target_losses` lists them, :func:`require_soft_target_support` refuses the others
before training starts).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from fer_nla.errors import InputError
from fer_nla.losses.base import PairLoss, check_inputs, hard_labels, is_soft
from fer_nla.losses.baselines import (
    ClassBalancedCE,
    CrossEntropy,
    FocalLoss,
    GeneralizedCE,
    LabelSmoothingCE,
    LogitAdjustedCE,
    SymmetricCE,
)
from fer_nla.losses.nla import NAWSignals, NLALoss, epoch_scale, js_consistency, naw_weights, nla_loss

_REGISTRY: dict[str, Callable[..., PairLoss]] = {
    "ce": CrossEntropy,
    "label_smoothing": LabelSmoothingCE,
    "focal": FocalLoss,
    "class_balanced": ClassBalancedCE,
    "logit_adjusted": LogitAdjustedCE,
    "gce": GeneralizedCE,
    "sce": SymmetricCE,
    "nla": NLALoss,
}

CONTEXT_KEYS = ("epochs", "class_counts")


def available() -> list[str]:
    """Names accepted by :func:`build_loss`."""
    return list(_REGISTRY)


def register_loss(name: str, factory: Callable[..., PairLoss]) -> None:
    """Add a loss under ``name`` (its call must be ``(logits, logits_flip, targets)``)."""
    if name in _REGISTRY:
        raise ValueError(f"a loss named {name!r} is already registered")
    _REGISTRY[name] = factory


def loss_parameters(name: str) -> dict[str, inspect.Parameter]:
    """The options a loss takes, by name (for config validation and help)."""
    return dict(inspect.signature(_factory(name)).parameters)


def build_loss(name: str, *, epochs: int | None = None, class_counts: Any = None, **options: Any) -> PairLoss:
    """The loss ``name`` built with ``options``; ``epochs`` and ``class_counts`` go only to
    the losses whose constructor takes them."""
    params = loss_parameters(name)
    unknown = sorted(set(options) - set(params) - set(CONTEXT_KEYS))
    if unknown:
        valid = ", ".join(p for p in params if p not in CONTEXT_KEYS) or "none"
        raise ValueError(f"loss {name!r} has no option {', '.join(unknown)}; its options are: {valid}")
    kwargs = dict(options)
    for key, value in (("epochs", epochs), ("class_counts", class_counts)):
        if key not in params:
            continue
        if value is None and params[key].default is inspect.Parameter.empty:
            raise ValueError(f"loss {name!r} needs {key}=...")
        if value is not None:
            kwargs[key] = value
    return _factory(name)(**kwargs)


def accepts_soft_targets(name: str) -> bool:
    """Whether the loss ``name`` takes label distributions ``[B, C]`` as targets (its factory's
    ``accepts_soft_targets`` attribute; ``False`` when it has none)."""
    return bool(getattr(_factory(name), "accepts_soft_targets", False))


def soft_target_losses() -> list[str]:
    """Names of the registered losses that take label distributions as targets."""
    return [name for name in _REGISTRY if accepts_soft_targets(name)]


def require_soft_target_support(name: str, *, label_mode: str) -> None:
    """Raise :class:`~fer_nla.errors.InputError` when the loss ``name`` cannot train on the soft
    targets that ``data.labels=label_mode`` gives; the message names the loss, the label mode,
    why, and the losses and label modes to use instead. Called when a run is built, before any epoch."""
    if accepts_soft_targets(name):
        return
    factory = _factory(name)
    refusal = getattr(factory, "soft_target_refusal", None)
    if refusal is not None:
        raise InputError(refusal(label_mode=label_mode))
    raise InputError(
        f"loss {name!r} cannot train on soft targets (data.labels={label_mode!r} gives label distributions): "
        f"it does not declare accepts_soft_targets. Use loss.name={' | '.join(soft_target_losses())} "
        "or hard labels (data.labels=plurality or majority)"
    )


def _factory(name: str) -> Callable[..., PairLoss]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(_REGISTRY)}") from None


__all__ = [
    "CONTEXT_KEYS",
    "ClassBalancedCE",
    "CrossEntropy",
    "FocalLoss",
    "GeneralizedCE",
    "LabelSmoothingCE",
    "LogitAdjustedCE",
    "NAWSignals",
    "NLALoss",
    "PairLoss",
    "SymmetricCE",
    "accepts_soft_targets",
    "available",
    "build_loss",
    "check_inputs",
    "epoch_scale",
    "hard_labels",
    "is_soft",
    "js_consistency",
    "loss_parameters",
    "naw_weights",
    "nla_loss",
    "register_loss",
    "require_soft_target_support",
    "soft_target_losses",
]
