"""Fixtures for the `fer-nla serve` tests: the built-in model loaded once per session, and a fake
predictor (a real :class:`Predictor` around a fake backend and detector) whose model can be held
until a test releases it, for the timeout and full-queue paths."""

from __future__ import annotations

import pytest
from serve_helpers import CentreDetector, FakeBackend

from fer_nla.predict.predictor import Predictor


@pytest.fixture
def fake_backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def fake_factory(fake_backend: FakeBackend):
    """A ``predictor_factory`` for :func:`create_app` making a predictor around ``fake_backend``."""
    return lambda settings: Predictor(fake_backend, detector=CentreDetector())


@pytest.fixture(scope="session")
def builtin_predictor() -> Predictor:
    """The built-in model with its default detector, loaded once for every test that needs it."""
    return Predictor()
