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

from fer_nla.extras import EXTRAS, require_extra
from fer_nla.serve.settings import ServeSettings

DEPENDENCIES: dict[str, tuple[str, ...]] = EXTRAS["serve"]  # distribution -> its import names


def require_dependencies() -> None:
    """Raises :class:`~fer_nla.errors.InputError` naming the missing packages of the ``serve``
    extra and the command that installs them."""
    require_extra("serve", purpose="serving")


__all__ = ["DEPENDENCIES", "ServeSettings", "require_dependencies"]
