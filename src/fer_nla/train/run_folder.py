"""The files a training run leaves in its folder, and reading them back."""

from __future__ import annotations

import hashlib

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.atomic import write_text_atomic
from fer_nla.errors import InputError


@dataclass(frozen=True)
class RunFolder:
    """``config.yaml``, ``metrics.jsonl``, ``best.pt``, ``last.pt``, ``signals.npz``,
    ``report.md`` with ``plots/``, and TensorBoard event files under ``tensorboard/``."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def best(self) -> Path:
        return self.root / "best.pt"

    @property
    def last(self) -> Path:
        return self.root / "last.pt"

    @property
    def signals(self) -> Path:
        return self.root / "signals.npz"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    def prepare(self, *, resume: bool) -> None:
        """Create the folder; refuse to overwrite a previous run unless resuming it."""
        if resume and not self.last.is_file():
            raise InputError(f"resume=True: {self.last} does not exist; start the run without resume=True")
        if not resume and self.last.is_file():
            raise InputError(
                f"{self.root} already holds a run ({self.last.name}); pass resume=True to continue it "
                "or choose another out=..."
            )
        self.root.mkdir(parents=True, exist_ok=True)

    def read_metrics(self) -> list[dict[str, Any]]:
        """The lines of ``metrics.jsonl`` (one per finished epoch)."""
        if not self.metrics.is_file():
            return []
        lines = []
        for number, text in enumerate(self.metrics.read_text().splitlines(), start=1):
            if not text.strip():
                continue
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                raise InputError(f"{self.metrics}:{number}: not a JSON line; the file is damaged") from None
        return lines

    def write_metrics(self, lines: list[dict[str, Any]]) -> None:
        """Replace ``metrics.jsonl`` atomically (used on resume to drop epochs not in last.pt)."""
        write_text_atomic(self.metrics, "".join(json.dumps(line) + "\n" for line in lines))

    def append_metrics(self, line: dict[str, Any]) -> None:
        with self.metrics.open("a") as handle:
            handle.write(json.dumps(line) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


# Settings a resumed run must keep: they fix the samples and their order (data, seed), the
# classes and image size, the network, and the loss and optimizer whose state last.pt and
# signals.npz hold. Every other key (epochs, batch size, device, workers, ...) may change.
RESUME_FIXED: tuple[str, ...] = ("data.", "model.arch", "model.stem", "model.init", "loss.name", "optim.name",
                                 "optim.scheduler", "train.seed")
RESUME_FREE: tuple[str, ...] = ("data.num_workers", "data.cache_dir")


def _leaves(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested mapping (free mappings such as ``data.options`` included)."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _fixed(key: str) -> bool:
    return key not in RESUME_FREE and any(key == k or (k.endswith(".") and key.startswith(k)) for k in RESUME_FIXED)


def _as_override(value: Any) -> str:
    """``value`` as it is written after ``key=`` on the command line (YAML)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def resume_mismatches(saved: Mapping[str, Any], now: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(dotted key, saved value, value now)`` for each key of :data:`RESUME_FIXED` that
    differs between two configs as dicts (``Config.to_dict()``); an entry of a free mapping
    present on one side only counts (its other value is ``None``); a key an older saved config
    lacks does not."""
    before, after = _leaves(saved), _leaves(now)
    keys = [k for k in after if _fixed(k) and (k in before or k.startswith("data.options."))]
    keys += [k for k in before if k.startswith("data.options.") and k not in after]
    return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]


def check_resume_config(saved: Mapping[str, Any] | None, now: Mapping[str, Any], *, run: RunFolder) -> None:
    """Raise :class:`InputError` when resuming ``run`` with config ``now`` would change a key
    the saved run fixed (:func:`resume_mismatches`): the message names every such key with its
    saved value and its value now, and the fix (the saved values, or another run folder)."""
    changed = resume_mismatches(saved or {}, now)
    if not changed:
        return
    listed = "; ".join(f"{key}: saved {old!r}, now {new!r}" for key, old, new in changed)
    back = " ".join(f"{key}={_as_override(old)}" for key, old, _new in changed)
    raise InputError(
        f"{run.root}: resume=True would continue the run with other data or another model than it was "
        f"trained with (saved in {run.config} and {run.last.name}): {listed}. Resume with the saved values "
        f"(drop the overrides that change them, or pass {back}), or start a new run with another out=..."
    )


def data_fingerprint(train: Any, val: Any = None) -> dict[str, Any]:
    """What identifies a run's data: the training and validation sample counts and a SHA-1 over
    both splits' sample ids and targets (image contents are not read), saved in checkpoints to
    check a resume."""
    digest = hashlib.sha1()
    for dataset in (train, val):
        if dataset is None:
            continue
        for sample in dataset.samples:
            digest.update(sample.encode("utf-8", "surrogateescape") + b"\n")
        digest.update(np.ascontiguousarray(dataset.targets, dtype=np.int64).tobytes() + b"|")
    found = {"num_samples": len(train.samples), "sha1": digest.hexdigest()}
    if val is not None:
        found["num_val_samples"] = len(val.samples)
    return found


def check_same_data(saved: Mapping[str, Any] | None, now: Mapping[str, Any], *, run: RunFolder) -> None:
    """Raise :class:`InputError` when the data under the same config changed since the run saved
    ``saved`` (files added or removed, labels edited, in training or validation): resuming would
    mix two datasets, and the per-sample signals would no longer line up. A checkpoint without a
    fingerprint is not checked."""
    if not saved or dict(saved) == dict(now):
        return
    changes = [f"{what}: {saved.get(key)} samples then, {now.get(key)} now"
               for key, what in (("num_samples", "training"), ("num_val_samples", "validation"))
               if saved.get(key) != now.get(key)]
    count = "; ".join(changes) or "the same sample counts, but other files or labels"
    raise InputError(
        f"{run.root}: the data changed since this run was saved ({count}); resuming would train one "
        f"run on two datasets. Restore the data it was trained on, or start a new run with another out=..."
    )
