"""Suite-wide fixtures: decoded-image caches go to a temporary folder, never the user's ~/.cache;
the real FERPlus folder (``ferplus_root``), or a clean skip where it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _private_image_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FER_NLA_CACHE", str(tmp_path_factory.getbasetemp() / "fer-nla-cache"))


@pytest.fixture(scope="session")
def ferplus_root() -> Path:
    """The real FERPlus folder (``$FER_NLA_FERPLUS``, else ``../shared/data/ferplus`` beside the
    repository), or a clean skip where its train and valid label files are absent."""
    root = Path(os.environ.get("FER_NLA_FERPLUS", REPO_ROOT.parent / "shared" / "data" / "ferplus"))
    if not (root / "FER2013Train" / "label.csv").is_file() or not (root / "FER2013Valid" / "label.csv").is_file():
        pytest.skip(f"FERPlus data not found at {root} (set FER_NLA_FERPLUS)")
    return root
