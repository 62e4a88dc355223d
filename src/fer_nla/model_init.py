"""``model.init``: fine-tune a whole trained network (a built-in model or a fer-nla checkpoint).

``model.init=builtin:NAME`` (a model shipped in the package, :mod:`fer_nla.builtin`) or
``model.init=/path/to/best.pt`` (the best.pt or last.pt of ``fer-nla train``) starts every layer
of the run's network from that checkpoint, backbone and head:

- the architecture is the checkpoint's: ``model.arch`` and ``model.stem`` are set to its own
  (and saved so in the run's ``config.yaml``); a value that differs from both the default and
  the checkpoint's is an :class:`~fer_nla.errors.InputError` naming both;
- the input preparation follows it: its gray input (``preprocess.grayscale``) turns
  ``data.grayscale`` on (a gray-trained model fed colour would see inputs it never saw), and a
  ``data.image_size`` other than the size it was trained at is warned about;
- the head is mapped by class name (:func:`head_rows`): each class of the run's data gets the
  source row (weight and bias) of the class with that name, so 7-class data drops the source's
  contempt output and keeps the other seven, in the data's order; a class the source lacks
  keeps its fresh initialisation.

Checkpoints are read only through :mod:`fer_nla.checkpoint` (``weights_only=True``).
``model.init`` with ``model.backbone_weights`` is refused by :func:`fer_nla.config.validate`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from fer_nla.builtin import BUILTIN_MODELS, BUILTIN_PREFIX, builtin_path, get_builtin, is_builtin_ref
from fer_nla.checkpoint import CheckpointMeta, load_model, read_meta
from fer_nla.config import Config, ModelConfig
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS, index_of
from fer_nla.models import HEAD_PREFIXES


@dataclass(frozen=True)
class InitSource:
    """The checkpoint a run starts from: ``label`` as logs name it (``builtin:NAME`` or the
    path), ``path`` the file, ``meta`` its :class:`~fer_nla.checkpoint.CheckpointMeta`."""

    label: str
    path: Path
    meta: CheckpointMeta


def init_path(ref: str) -> tuple[str, Path]:
    """``(label, file)`` of a ``model.init`` value: ``builtin:NAME`` -> the shipped file, else the
    path itself (``~`` expanded, made absolute). Raises :class:`InputError` for an unknown built-in
    name or a path that does not exist (suggesting ``builtin:NAME`` for a bare built-in name)."""
    ref = ref.strip()
    if is_builtin_ref(ref):
        name = get_builtin(ref).name
        return f"{BUILTIN_PREFIX}{name}", builtin_path(name)
    path = Path(os.path.abspath(os.path.expanduser(ref)))
    if not path.exists():
        hint = (f"; for the built-in model write model.init={BUILTIN_PREFIX}{ref}" if ref in BUILTIN_MODELS
                else f"; give {BUILTIN_PREFIX}NAME (built-in models: {', '.join(BUILTIN_MODELS)}) or the "
                     "best.pt/last.pt of a `fer-nla train` run")
        raise InputError(f"model.init={ref}: {path} does not exist{hint}")
    return str(path), path


def init_source(ref: str) -> InitSource:
    """The :class:`InitSource` of a ``model.init`` value (:func:`init_path`), its metadata read.
    Raises :class:`InputError` (prefixed ``model.init:``) for a file that is not a fer-nla checkpoint."""
    label, path = init_path(ref)
    try:
        meta = read_meta(path)
    except InputError as err:
        raise InputError(f"model.init: {err}") from None
    return InitSource(label, path, meta)


def resolve_init(config: Config, *, log: Callable[[str], None] = print, resumed: CheckpointMeta | None = None) -> None:
    """Make ``config`` follow its ``model.init`` checkpoint (a no-op without one): arch and stem
    taken, ``data.grayscale`` turned on for a gray-trained model, a differing ``data.image_size``
    or a gray run from a colour-trained model warned about; a path value made absolute (saved so).

    ``resumed``: the metadata of the run's own last.pt when resuming; it holds what the
    initialisation fixed, so the ``model.init`` file is not read again (it may be gone).
    Raises :class:`InputError` for a ``model.arch``/``model.stem`` that differs from both its
    default and the checkpoint's, and for an unreadable ``model.init`` (:func:`init_source`).
    """
    if not config.model.init:
        return
    if resumed is not None:  # the saved config holds the label as a fresh run wrote it (paths absolute)
        label = config.model.init.strip()
        label = label if is_builtin_ref(label) else os.path.abspath(os.path.expanduser(label))
        config.model.init = label
        source = InitSource(label, Path(label), resumed)
    else:
        source = init_source(config.model.init)
        config.model.init = source.label
    _take_architecture(config, source, log=log)
    meta, data = source.meta, config.data
    if meta.grayscale and not data.grayscale:
        data.grayscale = True
        log(f"model.init {source.label}: data.grayscale=true, as the model was trained on gray images")
    elif data.grayscale and not meta.grayscale:
        log(f"warning: data.grayscale=true but model.init {source.label} was trained on colour images; "
            "the run trains it on gray ones")
    if data.image_size != meta.image_size:
        log(f"warning: data.image_size={data.image_size} but model.init {source.label} was trained at "
            f"{meta.image_size} px; set data.image_size={meta.image_size} to fine-tune it on the input it knows")


def _take_architecture(config: Config, source: InitSource, *, log: Callable[[str], None]) -> None:
    """``model.arch``/``model.stem`` set to the checkpoint's (logged when that changes them); a
    third value is an InputError. The default cannot be told from the same value set on purpose,
    so the log line says which network the run fine-tunes."""
    defaults, model = ModelConfig(), config.model
    for key, default, theirs in (("arch", defaults.arch, source.meta.arch), ("stem", defaults.stem, source.meta.stem)):
        ours = getattr(model, key)
        if ours not in (default, theirs):
            raise InputError(
                f"model.{key}={ours} but model.init {source.label} has {key} {theirs}: the run fine-tunes that "
                f"network, so drop model.{key} (or set model.{key}={theirs}), or train from scratch without model.init"
            )
        if ours != theirs:
            log(f"model.init {source.label}: model.{key}={theirs}, the checkpoint's (model.{key} follows model.init)")
        setattr(model, key, theirs)


def _name_key(name: str) -> str:
    """A class name as compared across datasets: the canonical emotion (case and aliases such
    as 'happy' ignored), else the name lower-cased and stripped."""
    try:
        return EMOTIONS[index_of(name)]
    except ValueError:
        return name.strip().lower()


def head_rows(source_names: Sequence[str], target_names: Sequence[str]) -> list[int | None]:
    """For each class of ``target_names`` (the run's data, in its order), the index of the
    source class with the same name (:func:`_name_key`: case and emotion aliases ignored), or
    ``None`` when the source lacks it. Raises :class:`InputError` when a name repeats."""
    source = [_name_key(n) for n in source_names]
    for names, which in ((source, "the model.init checkpoint"), ([_name_key(n) for n in target_names], "the data")):
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InputError(f"class name(s) {', '.join(repeated)} appear twice in {which}; the head cannot be "
                             "mapped by class name: give every class its own name")
    return [source.index(_name_key(n)) if _name_key(n) in source else None for n in target_names]


def init_model(model: nn.Module, ref: str, *, class_names: Sequence[str]) -> str:
    """Load the ``model.init`` checkpoint ``ref`` into ``model`` (built for ``class_names`` with
    the checkpoint's arch and stem, see :func:`resolve_init`): every tensor but the head's copied,
    the head's rows (weight ``[C, F]`` and bias ``[C]``: tensors under
    :data:`fer_nla.models.HEAD_PREFIXES` with one row per source class) mapped by class name
    (:func:`head_rows`). Returns the line to log, e.g. ``model.init builtin:ferplus-resnet10s:
    head mapped by class name (7 of 8 source classes; dropped: contempt)``.

    Raises :class:`InputError` when the checkpoint cannot be read or its network does not fit
    ``model`` (another arch or stem than the model was built with)."""
    label, path = init_path(ref)
    try:
        source_model, meta = load_model(path)
    except InputError as err:
        raise InputError(f"model.init: {err}") from None
    source, target = source_model.state_dict(), model.state_dict()
    rows = head_rows(meta.class_names, class_names)
    head = {k for k, v in source.items()
            if k.startswith(HEAD_PREFIXES) and v.dim() >= 1 and v.shape[0] == meta.num_classes}
    wrong = sorted(k for k in target if k not in head and (k not in source or source[k].shape != target[k].shape))
    if wrong or any(k not in target for k in head):
        raise InputError(f"model.init {label} ({meta.arch}, stem {meta.stem}) does not fit the run's network "
                         f"({', '.join(wrong[:4]) or 'head'} differ); leave model.arch and model.stem unset "
                         "with model.init")
    with torch.no_grad():
        for key, value in target.items():
            if key not in head:
                value.copy_(source[key])
                continue
            for row, src in enumerate(rows):
                if src is not None:
                    value[row].copy_(source[key][src])
    return _summary(label, meta.class_names, class_names, rows)


def _summary(label: str, source_names: Sequence[str], target_names: Sequence[str], rows: Sequence[int | None]) -> str:
    kept = {src for src in rows if src is not None}
    dropped = [n for i, n in enumerate(source_names) if i not in kept]
    new = [n for n, src in zip(target_names, rows, strict=True) if src is None]
    parts = [f"{len(kept)} of {len(source_names)} source classes"]
    if dropped:
        parts.append(f"dropped: {', '.join(dropped)}")
    if new:
        parts.append(f"new, freshly initialised: {', '.join(new)}")
    return f"model.init {label}: head mapped by class name ({'; '.join(parts)})"
