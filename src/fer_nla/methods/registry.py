"""Training methods by name: ``build_method(name, **options)``, ``available()``, ``register_method``.

The name is the config's ``loss.name`` (and ``fer-nla train --loss``); ``loss.options`` go to
the method's constructor. Context the trainer has is passed uniformly and given only to the
methods whose constructor takes it: ``epochs`` (NLA's schedule), ``class_counts``
(class-balanced and logit-adjusted CE), ``num_samples`` (the training split's size, for
per-sample state: SCN's labels), ``num_features`` (the width of the pooled features the
network's classifier reads, for a method's own layers on them: SCN's attention, RUL's
uncertainty branch) and ``check`` (whether to check inputs every call: the trainer switches it
off); a method that needs one and does not get it is an error.

What each method needs (:class:`~fer_nla.methods.base.Needs`) is known from its entry before it
is built, so a run can refuse a method the data or setup cannot serve before any epoch
(:func:`require_soft_target_support`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fer_nla.errors import InputError
from fer_nla.losses import baselines
from fer_nla.losses.base import Loss, soft_target_refusal
from fer_nla.losses.nla import NLALoss
from fer_nla.methods.base import Method, Needs
from fer_nla.methods.baselines import LossMethod
from fer_nla.methods.eac import EAC_NEEDS, EACMethod
from fer_nla.methods.nla import NLA_NEEDS, NLAMethod
from fer_nla.methods.rul import RUL_NEEDS, RULMethod
from fer_nla.methods.scn import SCN_NEEDS, SCNMethod

CONTEXT_KEYS = ("epochs", "class_counts", "num_samples", "num_features", "check")


@dataclass(frozen=True)
class MethodEntry:
    """A registered method: ``factory(**options) -> Method``; ``options``: the parameters it
    takes (for validation and help); ``needs``: what it will declare once built;
    ``soft_targets_reason``: why it refuses label distributions (unused when it takes them)."""

    factory: Callable[..., Method]
    options: Mapping[str, inspect.Parameter]
    needs: Needs
    soft_targets_reason: str = "it is defined for one class index per sample"


def _loss_entry(name: str, loss_class: type[Loss]) -> MethodEntry:
    def factory(**options: Any) -> Method:
        return LossMethod(loss_class(**options), name=name, refusal=_refusal(name, loss_class.soft_targets_reason))

    return MethodEntry(factory, dict(inspect.signature(loss_class).parameters),
                       Needs(soft_targets=loss_class.accepts_soft_targets), loss_class.soft_targets_reason)


def _nla_entry() -> MethodEntry:
    def factory(**options: Any) -> Method:
        return NLAMethod(NLALoss(**options))

    return MethodEntry(factory, dict(inspect.signature(NLALoss).parameters), NLA_NEEDS)


def _method_entry(method_class: type[Method], needs: Needs, *, official: str) -> MethodEntry:
    """A method class whose keyword-only constructor options are its options (SCN, RUL, EAC);
    ``official``: the method's name in the refusal of label distributions."""
    return MethodEntry(method_class, dict(inspect.signature(method_class).parameters), needs,
                       f"the official {official} code trains on one class index per sample")


_BASELINES: dict[str, type[Loss]] = {
    "ce": baselines.CrossEntropy, "label_smoothing": baselines.LabelSmoothingCE, "focal": baselines.FocalLoss,
    "class_balanced": baselines.ClassBalancedCE, "logit_adjusted": baselines.LogitAdjustedCE,
    "gce": baselines.GeneralizedCE, "sce": baselines.SymmetricCE,
}
REGISTRY: dict[str, MethodEntry] = {
    **{n: _loss_entry(n, c) for n, c in _BASELINES.items()}, "nla": _nla_entry(),
    "scn": _method_entry(SCNMethod, SCN_NEEDS, official="SCN"),
    "rul": _method_entry(RULMethod, RUL_NEEDS, official="RUL"),
    "eac": _method_entry(EACMethod, EAC_NEEDS, official="EAC"),
}


def available() -> list[str]:
    """Names accepted by :func:`build_method` (``loss.name``)."""
    return list(REGISTRY)


def register_method(name: str, factory: Callable[..., Method], *, needs: Needs,
                    soft_targets_reason: str = "it is defined for one class index per sample") -> None:
    """Add a method under ``name``: ``factory(**options)`` builds it (it may take the context
    keys ``epochs``, ``class_counts``, ``num_samples``, ``num_features``, ``check``) and it must
    declare ``needs``.
    Raises ``ValueError`` for a name already taken."""
    if name in REGISTRY:
        raise ValueError(f"a method named {name!r} is already registered")
    REGISTRY[name] = MethodEntry(factory, dict(inspect.signature(factory).parameters), needs, soft_targets_reason)


def method_parameters(name: str) -> dict[str, inspect.Parameter]:
    """The options the method ``name`` takes, by name (context keys included)."""
    return dict(_entry(name).options)


def method_needs(name: str) -> Needs:
    """What the method ``name`` needs from the trainer (known without building it)."""
    return _entry(name).needs


def build_method(name: str, *, epochs: int | None = None, class_counts: Any = None, num_samples: int | None = None,
                 num_features: int | None = None, check: bool | None = None, **options: Any) -> Method:
    """The method ``name`` built with ``options``; ``epochs``, ``class_counts``, ``num_samples``,
    ``num_features`` and ``check`` go only to the methods whose constructor takes them. Raises ``ValueError``
    for an unknown name or option, a missing context value, or a built method whose needs
    differ from its registration."""
    entry = _entry(name)
    params = entry.options
    unknown = sorted(set(options) - set(params) - set(CONTEXT_KEYS))
    if unknown:
        valid = ", ".join(p for p in params if p not in CONTEXT_KEYS) or "none"
        raise ValueError(f"loss {name!r} has no option {', '.join(unknown)}; its options are: {valid}")
    kwargs = dict(options)
    context = {"epochs": epochs, "class_counts": class_counts, "num_samples": num_samples,
               "num_features": num_features, "check": check}
    for key, value in context.items():
        if key not in params:
            continue
        if value is None and params[key].default is inspect.Parameter.empty:
            raise ValueError(f"loss {name!r} needs {key}=...")
        if value is not None:
            kwargs[key] = value
    method = entry.factory(**kwargs)
    if method.needs != entry.needs:
        raise ValueError(f"method {name!r} was registered with {entry.needs} but built with {method.needs}")
    return method


def accepts_soft_targets(name: str) -> bool:
    """Whether the method ``name`` trains on label distributions ``[B, C]`` (its ``Needs``)."""
    return _entry(name).needs.soft_targets


def soft_target_methods() -> list[str]:
    """Names of the registered methods that take label distributions as targets."""
    return [name for name, entry in REGISTRY.items() if entry.needs.soft_targets]


def require_soft_target_support(name: str, *, label_mode: str) -> None:
    """Raise :class:`~fer_nla.errors.InputError` when the method ``name`` cannot train on the soft
    targets that ``data.labels=label_mode`` gives; the message names the method, the label mode,
    why, and the methods and label modes to use instead. Called when a run is built, before any epoch."""
    if not accepts_soft_targets(name):
        raise InputError(_refusal(name, _entry(name).soft_targets_reason, label_mode=label_mode))


def _refusal(name: str, reason: str, *, label_mode: str | None = None) -> str:
    return soft_target_refusal(name, reason, label_mode=label_mode, alternatives=tuple(soft_target_methods()))


def _entry(name: str) -> MethodEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; available: {', '.join(REGISTRY)}") from None
