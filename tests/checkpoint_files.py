"""Test helper: write a checkpoint from a payload dict through the one writer (CheckpointMeta)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fer_nla.checkpoint import CheckpointMeta, save_checkpoint


def save_payload(path: str | Path, payload: dict[str, Any]) -> Path:
    """``payload`` as ``fer-nla train`` would write it: meta, weights and optional resume states."""
    return save_checkpoint(path, CheckpointMeta.from_payload(payload), state_dict=payload["state_dict"],
                           resume=payload.get("resume"))
