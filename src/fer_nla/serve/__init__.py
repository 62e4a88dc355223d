"""``fer-nla serve``: an HTTP API and a browser page for an expression model.

- :func:`fer_nla.serve.app.create_app` (``create_app(settings, predictor_factory=...)``): the
  FastAPI app; :func:`fer_nla.serve.app.app_from_env`: the same for the settings in
  ``FER_NLA_SERVE_*`` variables, the factory each uvicorn worker process calls;
- :class:`ServeSettings`: the model and the limits (upload bytes, pixels, timeout, queue);
- endpoints: ``POST /v1/predict`` (``?annotate=1``), ``GET /v1/models``, ``GET /healthz``,
  ``/docs``; the page at ``/`` (``fer_nla/serve/static/``).

The web stack is an optional extra (``pip install "fer-nla[serve]"``): importing this package
needs none of it; :func:`require_dependencies` says what is missing.
"""

from __future__ import annotations

import importlib.util

from fer_nla.errors import InputError
from fer_nla.serve.settings import ServeSettings

# Distribution of the ``serve`` extra -> its import names (python-multipart: the new one, the old one).
DEPENDENCIES: dict[str, tuple[str, ...]] = {"fastapi": ("fastapi",), "uvicorn": ("uvicorn",),
                                            "python-multipart": ("python_multipart", "multipart")}


def require_dependencies() -> None:
    """Raises :class:`InputError` naming the missing packages of the ``serve`` extra and the
    command that installs them."""
    missing = [dist for dist, modules in DEPENDENCIES.items()
               if all(importlib.util.find_spec(module) is None for module in modules)]
    if missing:
        raise InputError(f"serving needs {', '.join(missing)}, not installed here; "
                         "install them with: pip install \"fer-nla[serve]\"")


__all__ = ["DEPENDENCIES", "ServeSettings", "require_dependencies"]
