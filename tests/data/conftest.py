"""Helpers for the data tests: tiny images written to temporary folders (the real FERPlus folder
is the suite-wide ``ferplus_root`` fixture of tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image



def write_image(
    path: Path, value: int, *, size: tuple[int, int] = (24, 20), mode: str = "RGB", fmt: str | None = None
) -> Path:
    """A flat image whose pixel value encodes which sample it is (``fmt="PNG"`` keeps it
    lossless whatever the file name says; PIL reads files by content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = 3 if mode == "RGB" else 1
    pixels = np.full((size[1], size[0], channels), value, dtype=np.uint8).squeeze()
    Image.fromarray(pixels, mode=mode).save(path, format=fmt)
    return path
