"""Helpers for the data tests: tiny images written to temporary folders, and the real FERPlus path."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[2]


def write_image(
    path: Path, value: int, *, size: tuple[int, int] = (12, 10), mode: str = "RGB", fmt: str | None = None
) -> Path:
    """A flat image whose pixel value encodes which sample it is (``fmt="PNG"`` keeps it
    lossless whatever the file name says; PIL reads files by content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    pixels = np.full((size[1], size[0], channels), value, dtype=np.uint8).squeeze()
    Image.fromarray(pixels, mode=mode).save(path, format=fmt)
    return path


def ferplus_path() -> Path:
    return Path(os.environ.get("FER_NLA_FERPLUS", REPO_ROOT.parent / "shared" / "data" / "ferplus"))


@pytest.fixture
def ferplus_root() -> Path:
    """The real FERPlus folder, or a clean skip where it is absent."""
    root = ferplus_path()
    if not (root / "FER2013Train" / "label.csv").is_file() or not (root / "FER2013Valid" / "label.csv").is_file():
        pytest.skip(f"FERPlus data not found at {root} (set FER_NLA_FERPLUS)")
    return root
