"""The FastAPI application of ``fer-nla serve``: :func:`create_app` and :func:`app_from_env`.

>>> app = create_app(ServeSettings(max_upload_bytes=5_000_000))          # the built-in model
>>> app = create_app(settings, predictor_factory=lambda s: Predictor(my_backend))   # tests

The model is loaded once per worker process, when the app starts (its lifespan), and held with
the rest of the worker's state in ``app.state.serve`` (:class:`~fer_nla.serve.routes.ServeState`).
Every error answer is JSON ``{"detail": "..."}`` with a message meant for a person; an
unexpected failure is logged on the server and answered 500 without a traceback.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from fer_nla import __version__
from fer_nla.predict.predictor import Predictor
from fer_nla.serve.docs import add_local_docs, local_swagger_ui
from fer_nla.serve.inference import warm_up
from fer_nla.serve.live import LiveTracks
from fer_nla.serve.model import identify_model, load_predictor
from fer_nla.serve.routes import ServeState, router
from fer_nla.serve.runner import InferenceQueue, Places
from fer_nla.serve.settings import ServeSettings
from fer_nla.serve.uploads import HOW_TO_SEND, PAGE_CLIENT_HEADER, PAGE_HOW_TO_SEND

LOG = logging.getLogger("fer_nla.serve")
PAGE_HEADERS = {  # the page loads nothing from elsewhere; photos are drawn from blob: URLs
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                               "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}
DESCRIPTION = (
    "Facial expressions of the faces in a photo. `POST /v1/predict` takes a photo as the multipart "
    "field `file` or as the raw body and answers JSON (`?annotate=1`: the photo with the faces drawn). "
    "Errors are JSON `{\"detail\": \"...\"}`. The page at `/` does the same in a browser."
)


def create_app(settings: ServeSettings | None = None, *,
               predictor_factory: Callable[[ServeSettings], Predictor] | None = None) -> FastAPI:
    """The app serving ``settings`` (default :class:`ServeSettings`: the built-in model).

    ``predictor_factory(settings)`` makes the predictor when the app starts (default
    :func:`~fer_nla.serve.model.load_predictor`); it runs once per worker process, then the
    detector is built and the model run once on a blank photo (:func:`warm_up`). Start-up fails
    with the factory's :class:`~fer_nla.errors.InputError` for a model that cannot be loaded."""
    settings = settings or ServeSettings()
    factory = predictor_factory or load_predictor

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        predictor = factory(settings)
        warm_up(predictor)
        model = identify_model(settings, predictor)
        queue = InferenceQueue(threads=settings.threads, capacity=settings.capacity)
        app.state.serve = ServeState(settings=settings, predictor=predictor, model=model, queue=queue,
                                     uploads=Places(settings.max_uploads), live=LiveTracks())
        LOG.info("fer-nla %s serving %s (%s) in process %d", __version__, model.name, model.version, os.getpid())
        try:
            yield
        finally:
            queue.shutdown()

    docs_folder = local_swagger_ui()  # /docs from the installed Swagger UI, else FastAPI's CDN page
    app = FastAPI(title="fer-nla", version=__version__, description=DESCRIPTION, lifespan=lifespan,
                  docs_url=None if docs_folder else "/docs", redoc_url=None)  # ReDoc loads from a CDN: /docs only
    if docs_folder is not None:
        add_local_docs(app, docs_folder)
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)
    app.mount("/static", StaticFiles(packages=[("fer_nla.serve", "static")]), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(static_path("index.html"), media_type="text/html", headers=PAGE_HEADERS)

    return app


def static_path(name: str) -> str:
    """The path of the page file ``name`` shipped in ``fer_nla/serve/static/``."""
    return str(resources.files("fer_nla.serve") / "static" / name)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """A bad query parameter as one readable line (``annotate: Input should be a valid boolean
    (got 'maybe')``) instead of FastAPI's list of error objects."""
    problems = []
    for error in exc.errors():  # type: ignore[attr-defined]
        where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("query", "body"))
        got = f" (got {error['input']!r})" if "input" in error and error["input"] is not None else ""
        problems.append(f"{where}: {error.get('msg', 'invalid')}{got}")
    return JSONResponse({"detail": "; ".join(problems) or "invalid request"}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's answer, with the advice on how to send a photo worded for the page (which marks
    its requests with :data:`~fer_nla.serve.uploads.PAGE_CLIENT_HEADER`) instead of for curl."""
    assert isinstance(exc, StarletteHTTPException)
    if request.headers.get(PAGE_CLIENT_HEADER) == "page" and isinstance(exc.detail, str) and HOW_TO_SEND in exc.detail:
        exc = StarletteHTTPException(exc.status_code, exc.detail.replace(HOW_TO_SEND, PAGE_HOW_TO_SEND),
                                     headers=exc.headers)
    return await http_exception_handler(request, exc)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    LOG.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": f"internal server error ({type(exc).__name__}); the server's log has the details"},
                        status_code=500)


def app_from_env() -> FastAPI:
    """The app for the settings in this process's ``FER_NLA_SERVE_*`` environment variables
    (:meth:`ServeSettings.from_env`): the factory uvicorn calls in each worker process
    (``uvicorn fer_nla.serve.app:app_from_env --factory``)."""
    return create_app(ServeSettings.from_env(os.environ))
