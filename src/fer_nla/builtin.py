"""Built-in expression models: weight files shipped inside the package (``fer_nla/weights/``).

A built-in model is an ordinary fer-nla checkpoint (``weights_only=True``, the same metadata as
``best.pt`` of ``fer-nla train``; what fine-tuning starts from), its ONNX export (what prediction
runs, with onnxruntime and no PyTorch; ``scripts/make_builtin.py`` writes both, and a test keeps
the two equal within 1e-5 on real faces) and a model card. Nothing is downloaded: the files come
with the installed package.

>>> from fer_nla.builtin import builtin_path, DEFAULT_MODEL
>>> builtin_path(DEFAULT_MODEL).name
'ferplus-resnet10s.pt'

Names are referred to as ``NAME`` by ``--model NAME`` and ``Predictor.pretrained(NAME)``, and
as ``builtin:NAME`` where a path is expected too (``model.init=builtin:NAME``).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from fer_nla.errors import InputError

BUILTIN_PREFIX = "builtin:"


@dataclass(frozen=True)
class BuiltinModel:
    """One shipped model: ``name`` (what users type), ``file`` (its checkpoint), ``onnx`` (the
    checkpoint's ONNX export) and ``card`` (file names in ``fer_nla/weights/``) and a one-line
    ``summary`` for ``fer-nla models``."""

    name: str
    file: str
    onnx: str
    card: str
    summary: str


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "ferplus-resnet10s": BuiltinModel(
        name="ferplus-resnet10s",
        file="ferplus-resnet10s.pt",
        onnx="ferplus-resnet10s.onnx",
        card="ferplus-resnet10s.md",
        summary="8 FERPlus expressions, ResNet-10 for 48-px gray faces, trained on FERPlus vote distributions",
    ),
}
DEFAULT_MODEL = "ferplus-resnet10s"


def builtin_models() -> list[BuiltinModel]:
    """The shipped models, the default first."""
    return sorted(BUILTIN_MODELS.values(), key=lambda m: (m.name != DEFAULT_MODEL, m.name))


def get_builtin(name: str) -> BuiltinModel:
    """The :class:`BuiltinModel` called ``name`` (a ``builtin:`` prefix is accepted).
    Raises :class:`~fer_nla.errors.InputError` naming the shipped models for another name."""
    key = name[len(BUILTIN_PREFIX):] if name.startswith(BUILTIN_PREFIX) else name
    if key not in BUILTIN_MODELS:
        raise InputError(f"no built-in model {key!r}; the built-in models are: {', '.join(BUILTIN_MODELS)} "
                         "(list them with `fer-nla models`)")
    return BUILTIN_MODELS[key]


def _weights_dir() -> Path:
    return Path(str(resources.files("fer_nla") / "weights"))


def builtin_path(name: str = DEFAULT_MODEL) -> Path:
    """The checkpoint file of the built-in model ``name`` inside the installed package.
    Raises :class:`~fer_nla.errors.InputError` for an unknown name, or when the file is missing
    (a broken install: reinstall fer-nla)."""
    model = get_builtin(name)
    return _shipped(model, model.file)


def builtin_onnx_path(name: str = DEFAULT_MODEL) -> Path:
    """The ONNX file of the built-in model ``name`` (the export of :func:`builtin_path`);
    errors as :func:`builtin_path`."""
    model = get_builtin(name)
    return _shipped(model, model.onnx)


def _shipped(model: BuiltinModel, file: str) -> Path:
    path = _weights_dir() / file
    if not path.is_file():
        raise InputError(f"the built-in model {model.name} is missing from this install ({path}); reinstall fer-nla")
    return path


def card_path(name: str = DEFAULT_MODEL) -> Path:
    """The model card (Markdown) of the built-in model ``name``."""
    return _weights_dir() / get_builtin(name).card


def is_builtin_ref(value: str) -> bool:
    """Whether ``value`` names a built-in model as ``builtin:NAME``."""
    return isinstance(value, str) and value.startswith(BUILTIN_PREFIX)


@dataclass(frozen=True)
class ChosenModel:
    """The model a command runs: ``path`` (a checkpoint or ONNX file) and, for a built-in model,
    its ``builtin`` name (``None`` for the user's own file)."""

    path: Path
    builtin: str | None = None

    @property
    def label(self) -> str:
        """How commands name it: ``built-in model NAME`` or the path."""
        return f"built-in model {self.builtin}" if self.builtin else str(self.path)


def choose_model(checkpoint: str | None = None, *, model: str | None = None) -> ChosenModel:
    """What ``--checkpoint``/``--model`` select: the user's file, the built-in ``model`` (or a
    ``checkpoint`` spelled ``builtin:NAME``), else the built-in :data:`DEFAULT_MODEL`. Raises
    :class:`~fer_nla.errors.InputError` for both given, or for an unknown built-in name."""
    if checkpoint is not None and model is not None:
        raise InputError(f"give either a checkpoint ({checkpoint}) or a built-in model ({model}), not both")
    if checkpoint is not None and not is_builtin_ref(checkpoint):
        return ChosenModel(Path(checkpoint))
    name = get_builtin(model or checkpoint or DEFAULT_MODEL).name
    return ChosenModel(builtin_path(name), builtin=name)


def describe_builtin(name: str = DEFAULT_MODEL) -> dict:
    """What ``fer-nla models`` shows of the built-in model ``name``, read from its ONNX file's
    metadata (no PyTorch needed): ``name``, ``default`` (bool), ``summary``, ``arch``,
    ``num_classes``, ``class_names``, ``image_size`` (px), ``grayscale`` (bool), ``file`` (the
    checkpoint), ``onnx`` and ``card`` (absolute paths, str), ``card_exists``, ``class_prior``
    (the training class shares, or ``None``), ``default_prior``
    (``train``, ``uniform`` or the class shares, the operating point used when none is named) and
    ``temperature``. Raises
    :class:`~fer_nla.errors.InputError` as :func:`builtin_path`."""
    from fer_nla.inference.onnx_backend import OnnxBackend

    model = get_builtin(name)
    onnx = builtin_onnx_path(model.name)
    backend = OnnxBackend(onnx, name=f"built-in model {model.name}")
    card = card_path(model.name)
    return {"name": model.name, "default": model.name == DEFAULT_MODEL, "summary": model.summary,
            "arch": str(backend.model_spec.get("arch", "")), "num_classes": len(backend.class_names),
            "class_names": list(backend.class_names), "image_size": backend.preprocess.image_size,
            "grayscale": backend.preprocess.grayscale, "file": str(builtin_path(model.name)), "onnx": str(onnx),
            "card": str(card), "card_exists": card.is_file(), "temperature": backend.scoring.temperature,
            "class_prior": None if backend.scoring.class_prior is None else list(backend.scoring.class_prior),
            "default_prior": backend.scoring.default_prior if isinstance(backend.scoring.default_prior, str)
            else list(backend.scoring.default_prior)}
