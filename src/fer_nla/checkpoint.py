"""fer-nla checkpoints: atomic save, ``weights_only`` load of sniffed files, compatibility checks.

A checkpoint is a dict of tensors and plain Python types only, so it loads with
``torch.load(..., weights_only=True)`` (no code runs from the file)::

    {"format": "fer-nla", "format_version": 1,
     "model": {"arch", "num_classes", "stem"}, "class_names": [...],
     "preprocess": {"image_size", "mean", "std", "grayscale"}, "state_dict": {...},
     "config": {...}, "epoch": int, "metrics": {...},
     "resume": {optimizer, scheduler, scaler, RNG and method states}}   # last.pt; training only

Everything but the weights and the resume states is one typed record, :class:`CheckpointMeta`,
written by :func:`save_checkpoint` and read by :func:`read_meta` / :func:`load_model` only here:
eval, predict, export and the audit use its fields, never the payload's string keys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from fer_nla.atomic import atomic_write
from fer_nla.errors import InputError
from fer_nla.file_kinds import CHECKPOINT_TARGET, checkpoint_fix, read_torch_file
from fer_nla.models import build_model

FORMAT = "fer-nla"
FORMAT_VERSION = 1
MODEL_KEYS = ("arch", "num_classes", "stem")
REQUIRED_KEYS = ("model", "class_names", "preprocess", "state_dict")


@dataclass(frozen=True)
class CheckpointMeta:
    """What a fer-nla checkpoint says about its model, besides the weights.

    ``arch``/``num_classes``/``stem``: the network (:func:`fer_nla.models.build_model`);
    ``class_names``: the output order; ``image_size`` (px), ``mean``/``std`` (per RGB channel,
    on 0..1 values), ``grayscale`` (trained on gray faces: inference turns crops to luma first;
    ``False`` where a file lacks it): the preprocessing inference repeats; ``config``: the run's resolved config
    (``Config.to_dict()``, empty for files made elsewhere); ``epoch``: epochs trained (1-based);
    ``metrics``: the epoch's train and validation figures; ``data_fingerprint``: what identifies
    the training data (:func:`fer_nla.train.run_folder.data_fingerprint`), checked on resume;
    ``class_prior`` (``[C]``, the training targets' class shares; ``None`` in older files) and
    ``temperature`` (fitted on the validation split; 1.0: none), ``logit_offset`` (``[C]``, what a
    logit-adjusted loss added to the logits; ``None``: zeros) and ``default_prior`` (the operating
    point used when none is named): how logits become probabilities at each prior
    (:mod:`fer_nla.inference.scoring`), saved as ``scoring``.
    """

    arch: str
    num_classes: int
    stem: str
    class_names: tuple[str, ...]
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    config: dict[str, Any] = field(default_factory=dict)
    epoch: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: dict[str, Any] | None = None
    grayscale: bool = False
    class_prior: tuple[float, ...] | None = None
    temperature: float = 1.0
    logit_offset: tuple[float, ...] | None = None
    default_prior: str | tuple[float, ...] = "train"

    @property
    def model_spec(self) -> dict[str, Any]:
        return {"arch": self.arch, "num_classes": self.num_classes, "stem": self.stem}

    @property
    def preprocess(self) -> dict[str, Any]:
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std),
                "grayscale": self.grayscale}

    @property
    def scoring(self) -> dict[str, Any]:
        """The ``scoring`` entry (:meth:`scoring_record` as a dict)."""
        return self.scoring_record().to_dict()

    def scoring_record(self) -> Any:
        """The :class:`fer_nla.inference.scoring.Scoring` of this model."""
        from fer_nla.inference.scoring import Scoring

        return Scoring(class_prior=self.class_prior, temperature=self.temperature, logit_offset=self.logit_offset,
                       default_prior=self.default_prior)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> CheckpointMeta:
        """The record of a validated payload (see :func:`load_checkpoint`)."""
        from fer_nla.inference.scoring import Scoring

        spec, pre = payload["model"], payload["preprocess"]
        scoring = Scoring.from_dict(payload.get("scoring"), source="the checkpoint")
        epoch = payload.get("epoch")
        return cls(arch=str(spec["arch"]), num_classes=int(spec["num_classes"]), stem=str(spec["stem"]),
                   class_names=tuple(payload["class_names"]), image_size=int(pre["image_size"]),
                   mean=tuple(float(v) for v in pre["mean"]), std=tuple(float(v) for v in pre["std"]),
                   config=dict(payload.get("config") or {}), epoch=None if epoch is None else int(epoch),
                   metrics=dict(payload.get("metrics") or {}), data_fingerprint=payload.get("data_fingerprint"),
                   grayscale=bool(pre.get("grayscale", False)), class_prior=scoring.class_prior,
                   temperature=scoring.temperature, logit_offset=scoring.logit_offset,
                   default_prior=scoring.default_prior)

    def to_payload(self) -> dict[str, Any]:
        """The checkpoint entries of this record (plain types: ``weights_only``-safe)."""
        return {"model": self.model_spec, "class_names": list(self.class_names), "preprocess": self.preprocess,
                "config": self.config, "epoch": self.epoch, "metrics": self.metrics,
                "data_fingerprint": self.data_fingerprint, "scoring": self.scoring}

    def with_epoch(self, epoch: int, metrics: Mapping[str, Any]) -> CheckpointMeta:
        """This record for another epoch and its metrics."""
        return replace(self, epoch=int(epoch), metrics=dict(metrics))


def save_checkpoint(path: str | Path, meta: CheckpointMeta, *, state_dict: Mapping[str, Any],
                    resume: Mapping[str, Any] | None = None) -> Path:
    """Write ``meta``, the model's ``state_dict`` and (last.pt) the ``resume`` states to
    ``path`` atomically (:func:`fer_nla.atomic.atomic_write`): a crash leaves either the old
    file or the new one."""
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta.to_payload(), "state_dict": dict(state_dict)}
    if resume is not None:
        data["resume"] = dict(resume)
    with atomic_write(path) as handle:
        torch.save(data, handle)
    return Path(path)


def read_meta(path: str | Path, *, onnx_hint: str | None = None) -> CheckpointMeta:
    """The :class:`CheckpointMeta` of the checkpoint at ``path`` (errors as :func:`load_checkpoint`)."""
    return CheckpointMeta.from_payload(load_checkpoint(path, onnx_hint=onnx_hint))


def load_checkpoint(path: str | Path, *, map_location: str | torch.device = "cpu",
                    onnx_hint: str | None = None) -> dict[str, Any]:
    """The payload of a fer-nla checkpoint, loaded with ``weights_only=True`` through
    :func:`fer_nla.file_kinds.read_torch_file` (the file's kind is sniffed first).

    Raises :class:`InputError` for a missing file or a folder (naming its best.pt when it is a
    run folder), a foreign file (one message per kind: ONNX, with ``onnx_hint`` as the advice;
    Keras/HDF5, TorchScript, a pickled model, safetensors, empty, random bytes...), and a
    PyTorch file that is not a fer-nla checkpoint (for example a bare backbone weight file),
    and for a ``preprocess.grayscale`` entry that is not a boolean.
    """
    path = Path(path)
    payload = read_torch_file(path, target=CHECKPOINT_TARGET, fix=checkpoint_fix(path), onnx_hint=onnx_hint,
                              map_location=map_location)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        hint = " It looks like a bare weight file: use it as model.backbone_weights for training." if isinstance(payload, dict) else ""
        raise InputError(f"{path} is not a fer-nla checkpoint (no 'format': 'fer-nla' entry).{hint}")
    version = payload.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise InputError(
            f"{path} has checkpoint format version {version!r}; this fer-nla reads versions up to "
            f"{FORMAT_VERSION}: upgrade fer-nla"
        )
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    missing += [f"model.{k}" for k in MODEL_KEYS if k not in payload.get("model", {})]
    if missing:
        raise InputError(f"{path} is an incomplete fer-nla checkpoint: it lacks {', '.join(missing)}")
    grayscale = payload["preprocess"].get("grayscale", False) if isinstance(payload["preprocess"], dict) else False
    if not isinstance(grayscale, bool):  # absent in checkpoints written before it existed: False
        raise InputError(f"{path}: preprocess 'grayscale' is {grayscale!r} ({type(grayscale).__name__}), not True or "
                         "False (the file is damaged or not written by fer-nla); save the checkpoint again with fer-nla")
    return payload


def check_compatible(
    meta: CheckpointMeta,
    *,
    path: str | Path,
    arch: str | None = None,
    num_classes: int | None = None,
    stem: str | None = None,
    class_names: Sequence[str] | None = None,
) -> None:
    """Raise :class:`InputError` naming every way the checkpoint differs from what is expected."""
    spec = meta.model_spec
    problems = []
    for key, want in (("arch", arch), ("num_classes", num_classes), ("stem", stem)):
        if want is not None and spec[key] != want:
            problems.append(f"model.{key} is {spec[key]!r} in the checkpoint but {want!r} is expected")
    if class_names is not None and list(meta.class_names) != list(class_names):
        problems.append(f"class names {list(meta.class_names)} differ from the data's {list(class_names)}")
    if problems:
        raise InputError(
            f"{path} does not fit: " + "; ".join(problems)
            + ". Use a checkpoint trained for this setting, or change the setting to match it"
        )


def load_state_into(model: nn.Module, payload: Mapping[str, Any], *, path: str | Path) -> None:
    """Load the weights of a checkpoint's payload (:func:`load_checkpoint`) into ``model``
    strictly; a mismatch is an :class:`InputError`."""
    state = payload["state_dict"]
    target = model.state_dict()
    wrong = [k for k, v in state.items() if k in target and tuple(v.shape) != tuple(target[k].shape)]
    missing = [k for k in target if k not in state]
    unexpected = [k for k in state if k not in target]
    if wrong or missing or unexpected:
        detail = "; ".join(
            f"{label}: {', '.join(keys[:4])}{' ...' if len(keys) > 4 else ''}"
            for label, keys in (("other shape", wrong), ("missing", missing), ("unexpected", unexpected))
            if keys
        )
        raise InputError(f"the weights in {path} do not fit the model {CheckpointMeta.from_payload(payload).model_spec} ({detail})")
    model.load_state_dict(state)


def load_model(
    path: str | Path,
    *,
    map_location: str | torch.device = "cpu",
    arch: str | None = None,
    num_classes: int | None = None,
    onnx_hint: str | None = None,
) -> tuple[nn.Module, CheckpointMeta]:
    """The checkpoint's model in eval mode on ``map_location``, and its :class:`CheckpointMeta`.

    ``arch``/``num_classes``, when given, must match the checkpoint (else :class:`InputError`);
    ``onnx_hint`` is the advice when ``path`` is an ONNX model (see :func:`load_checkpoint`).
    """
    payload = load_checkpoint(path, map_location=map_location, onnx_hint=onnx_hint)
    meta = CheckpointMeta.from_payload(payload)
    check_compatible(meta, path=path, arch=arch, num_classes=num_classes)
    model = build_model(meta.arch, num_classes=meta.num_classes, stem=meta.stem)
    load_state_into(model, payload, path=path)
    model.to(map_location).eval()
    return model, meta
