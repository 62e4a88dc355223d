"""Values as their declared type: the one converter behind the run config (:mod:`fer_nla.config`,
YAML and ``key=value`` overrides), a dataset reader's options (:mod:`fer_nla.data.registry`,
``-o KEY=VALUE`` and ``data.options``), the bench grid (:mod:`fer_nla.bench.config`) and the
server's environment variables (:mod:`fer_nla.serve.settings`).

:func:`convert` reads a value given as text (command line, environment) or already parsed
(YAML) as a real type annotation, as ``typing.get_type_hints`` returns it for a dataclass field
or a function parameter. It imports nothing beyond the standard library, so the prediction
side (the command line, the server) uses it without PyTorch or PyYAML.
"""

from __future__ import annotations

import numbers
import types
import typing
from collections.abc import Collection, Mapping
from pathlib import Path, PurePath
from typing import Any, Literal

from fer_nla.errors import InputError

NONE_WORDS: tuple[str, ...] = ("null", "none", "~")  # YAML's spellings of nothing (any case)
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})
FALSE_WORDS = frozenset({"false", "no", "off", "0"})


class ConversionError(InputError):
    """A value that is not of its declared type. ``name`` (the key, option or variable),
    ``value`` (as given) and ``expected`` (``"an integer"``, ``"one of a, b"``, ...) let a
    caller word its own message; the default is ``"{name} must be {expected}; got {value!r}"``."""

    def __init__(self, name: str, value: Any, expected: str) -> None:
        self.name, self.value, self.expected = name, value, expected
        super().__init__(f"{name} must be {expected}; got {value!r}")


def describe(annotation: Any) -> str:
    """A short spelling of ``annotation``: ``int``, ``str | None``, ``list[int]``."""
    if annotation is type(None):
        return "None"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return " | ".join(describe(arg) for arg in typing.get_args(annotation))
    return str(annotation).replace("typing.", "")


def convert(value: Any, annotation: Any, *, name: str, none_words: Collection[str] = NONE_WORDS) -> Any:
    """``value`` as the type ``annotation`` declares.

    - ``bool``: a bool, or one of ``true/yes/on/1`` and ``false/no/off/0`` (any case, spaces
      around ignored; also the integers 1 and 0);
    - ``int``: an int, a float or text with an integral value (``"3"``, ``3.0``, ``"1e3"``),
      never a bool; ``float``: a number or number text (``"1e-4"``), never a bool;
    - ``str``: any scalar as text, never a mapping, a list or None; ``Path`` (``PurePath``):
      text or a path;
    - ``X | None`` / ``Optional[X]``: ``None`` for ``None`` or text in ``none_words`` (lower
      case; ``("",)`` reads an empty variable as unset), else the first of the union's types
      that takes the value;
    - ``Literal[...]``: one of its values; text and bools are compared in lower case, a bool as
      ``on``/``off`` (YAML reads those words as booleans);
    - ``list[X]`` / ``tuple[X, ...]``: a list or tuple, or text split at commas (empty items
      dropped), each item converted to ``X``;
    - ``dict``/``Mapping`` (any parameters): a mapping, copied as it is;
    - ``Any``: the value unchanged.

    Raises:
        ConversionError: (an :class:`InputError`) naming ``name``, the value and what it must be.
        TypeError: an annotation this function does not handle (a programming error).
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _union(value, args, name=name, none_words=none_words)
    if origin is Literal:
        return _literal(value, args, name=name)
    if origin in (list, tuple):
        return _sequence(value, annotation, name=name)
    if annotation in (dict, Mapping) or origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise ConversionError(name, value, "a mapping (key: value)")
        return dict(value)
    scalar = _SCALARS.get(annotation)
    if scalar is None:
        raise TypeError(f"{name}: no conversion to {annotation!r}")
    return scalar(value, name)


def _union(value: Any, args: tuple[Any, ...], *, name: str, none_words: Collection[str]) -> Any:
    if type(None) in args and (value is None or (isinstance(value, str) and value.lower() in none_words)):
        return None
    errors: list[ConversionError] = []
    for arg in (a for a in args if a is not type(None)):
        try:
            return convert(value, arg, name=name, none_words=none_words)
        except ConversionError as err:
            errors.append(err)
    raise errors[0] if errors else ConversionError(name, value, "null")


def _literal(value: Any, choices: tuple[Any, ...], *, name: str) -> Any:
    if isinstance(value, bool):
        text: Any = "on" if value else "off"  # YAML reads on/off as booleans
    else:
        text = value.lower() if isinstance(value, str) else value
    if text not in choices:
        raise ConversionError(name, value, f"one of {', '.join(map(str, choices))}")
    return text


def _sequence(value: Any, annotation: Any, *, name: str) -> Any:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
        raise TypeError(f"{name}: no conversion to {annotation!r} (only tuple[X, ...])")
    item = args[0] if args else Any
    if isinstance(value, str):
        items: list[Any] = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = list(value)
    elif isinstance(value, (numbers.Real, PurePath)):
        items = [value]
    else:
        raise ConversionError(name, value, f"a list of {describe(item)}s")
    try:
        converted = [convert(v.strip() if isinstance(v, str) else v, item, name=name) for v in items if str(v).strip()]
    except ConversionError:
        raise ConversionError(name, value, f"a list of {describe(item)}s") from None
    return converted if origin is list else tuple(converted)


def _to_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower() if isinstance(value, (str, int)) else None
    if word in TRUE_WORDS or word in FALSE_WORDS:
        return word in TRUE_WORDS
    raise ConversionError(name, value, "true or false")


def _to_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise ConversionError(name, value, "an integer")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)  # exact for long digit strings, where a float would round
        except ValueError:
            pass  # "3.0", "1e3": read as a number below
    try:
        number = float(value)
    except ValueError:
        raise ConversionError(name, value, "an integer") from None
    if not number.is_integer():
        raise ConversionError(name, value, "an integer")
    return int(number)


def _to_float(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise ConversionError(name, value, "a number")
    try:
        return float(value)  # also "1e-4", which YAML 1.1 reads as a string
    except (TypeError, ValueError):
        raise ConversionError(name, value, "a number") from None


def _to_str(value: Any, name: str) -> str:
    if value is None or isinstance(value, (Mapping, list, tuple, set)):
        raise ConversionError(name, value, "a string")
    return str(value)


def _to_path(value: Any, name: str) -> Path:
    if not isinstance(value, (str, PurePath)):
        raise ConversionError(name, value, "a path")
    return Path(value)


_SCALARS: Mapping[Any, Any] = types.MappingProxyType(
    {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str, Path: _to_path, PurePath: _to_path})
