"""Suite-wide fixtures: decoded-image caches go to a temporary folder, never the user's ~/.cache."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _private_image_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("FER_NLA_CACHE", str(tmp_path_factory.getbasetemp() / "fer-nla-cache"))
