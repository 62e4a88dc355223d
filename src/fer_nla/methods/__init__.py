"""Training methods: what a method needs from the trainer, and the methods by name.

:mod:`.base` holds the interface (:class:`Needs`, :class:`MethodInputs`, :class:`MethodOutput`,
:class:`Method`), :mod:`.baselines` the adapter of the plain ``(logits, targets)`` losses,
:mod:`.nla` the two-view NLA method, :mod:`.scn`, :mod:`.rul` and :mod:`.eac` the methods NLA's
paper compares with (SCN, RUL, EAC) and :mod:`.registry` the names (``loss.name``).
"""

from __future__ import annotations

from fer_nla.methods.base import (
    Method,
    MethodInputs,
    MethodOutput,
    Needs,
    required_fields,
)
from fer_nla.methods.baselines import LossMethod
from fer_nla.methods.eac import EACMethod
from fer_nla.methods.nla import NLAMethod
from fer_nla.methods.registry import (
    CONTEXT_KEYS,
    MethodEntry,
    accepts_soft_targets,
    available,
    build_method,
    method_needs,
    method_parameters,
    register_method,
    require_soft_target_support,
    soft_target_methods,
)
from fer_nla.methods.rul import RULMethod
from fer_nla.methods.scn import SCNMethod

__all__ = [
    "CONTEXT_KEYS",
    "EACMethod",
    "LossMethod",
    "Method",
    "MethodEntry",
    "MethodInputs",
    "MethodOutput",
    "NLAMethod",
    "Needs",
    "RULMethod",
    "SCNMethod",
    "accepts_soft_targets",
    "available",
    "build_method",
    "method_needs",
    "method_parameters",
    "register_method",
    "require_soft_target_support",
    "required_fields",
    "soft_target_methods",
]
