"""Suite-wide fixtures: decoded-image caches go to a temporary folder, never the user's ~/.cache;
the real FERPlus folder (``ferplus_root``), or a clean skip where it is absent."""

from __future__ import annotations

import importlib.util
import os
import sys
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


@pytest.fixture(scope="session")
def load_benchmark():
    """``load(script, name)``: a script of benchmarks/ as a module named ``name`` (registered in
    ``sys.modules`` while it runs, since its dataclasses look their module up; its folder on
    ``sys.path`` meanwhile, for benchmarks/machine.py, as when it runs as a script)."""
    def load(script: Path, name: str):
        spec = importlib.util.spec_from_file_location(name, script)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        sys.path.insert(0, str(script.parent))
        try:
            spec.loader.exec_module(module)
        finally:
            del sys.modules[spec.name]
            sys.path.remove(str(script.parent))
        return module

    return load
