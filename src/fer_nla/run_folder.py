"""The files a training run leaves in its folder, and reading them back."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
            raise InputError(f"--resume: {self.last} does not exist; start the run without --resume")
        if not resume and self.last.is_file():
            raise InputError(
                f"{self.root} already holds a run ({self.last.name}); pass --resume to continue it "
                "or choose another --out"
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


def write_text_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
