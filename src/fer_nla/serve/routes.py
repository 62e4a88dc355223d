"""The HTTP API: ``POST /v1/predict``, ``GET /v1/models``, ``GET /healthz``.

Each handler finds the worker's state (:class:`ServeState`) in ``request.app.state.serve``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect

from fer_nla import __version__
from fer_nla.builtin import builtin_models, describe_builtin
from fer_nla.predict.predictor import Predictor
from fer_nla.serve.inference import (
    IMAGE_TYPES,
    Prediction,
    annotated_image,
    prediction_json,
    run_prediction,
)
from fer_nla.serve.live import LiveTracks, check_stream_id
from fer_nla.serve.model import ModelIdentity
from fer_nla.serve.runner import InferenceQueue, InferenceTimeout, Places, QueueFull
from fer_nla.serve.settings import ServeSettings
from fer_nla.serve.uploads import ACCEPTED_TEXT, FIELD, Upload, read_upload

LOG = logging.getLogger("fer_nla.serve")
T = TypeVar("T")
PUBLIC_MODEL_KEYS = ("name", "default", "summary", "arch", "num_classes", "class_names", "image_size", "grayscale")
FORMAT_ALIASES = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg"}
IMAGE_SCHEMA = {"type": "string", "format": "binary"}
PREDICT_BODY = {  # the body is read by hand (to count its bytes), so its schema is stated here for /docs
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": [FIELD],
                                           "properties": {FIELD: {**IMAGE_SCHEMA, "description": ACCEPTED_TEXT}}}},
        "application/octet-stream": {"schema": IMAGE_SCHEMA},
        "image/*": {"schema": IMAGE_SCHEMA},
    }},
}
ERROR_ANSWERS: dict[int | str, dict[str, Any]] = {
    400: {"description": "empty body, malformed form"},
    408: {"description": "the upload did not arrive within the request timeout"},
    413: {"description": "body over --max-upload-mb, or image over --max-pixels"},
    415: {"description": "not an accepted image, or a truncated or damaged one"},
    422: {"description": "no form field 'file', or a bad query parameter"},
    503: {"description": "every place in the queue is taken (Retry-After says when to try again)"},
    504: {"description": "no answer within the request timeout"},
}

router = APIRouter()


@dataclass
class ServeState:
    """What one worker process holds: its ``settings``, the ``predictor`` (loaded once), the
    served ``model``'s identity, the bounded inference ``queue``, the ``uploads`` being read and
    the face tracks of ``live`` streams (the page's camera mode)."""

    settings: ServeSettings
    predictor: Predictor
    model: ModelIdentity
    queue: InferenceQueue
    uploads: Places
    live: LiveTracks = field(default_factory=LiveTracks)


def _state(request: Request) -> ServeState:
    return request.app.state.serve


async def _before(deadline: float, work: Awaitable[T], *, late: str) -> T:
    """``work``'s result, or a 408 saying ``late`` when the loop clock passes ``deadline`` first."""
    try:
        return await asyncio.wait_for(work, timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
    except asyncio.TimeoutError:
        raise HTTPException(408, late) from None


@router.post("/v1/predict", openapi_extra=PREDICT_BODY, responses=ERROR_ANSWERS,
             summary="Find the faces in a photo and their expressions")
async def predict(
    request: Request,
    annotate: bool = Query(False, description="answer with the photo, faces drawn on it, instead of JSON"),
    image_format: str | None = Query(None, alias="format", description="annotated image: png or jpeg "
                                     "(default: jpeg for a JPEG upload, else png)"),
    stream: str | None = Query(None, description="a live client's stream id (letters, digits, - and _): the photo "
                               "is the stream's next frame, and each face gets a track_id kept from frame to frame"),
    t: float | None = Query(None, ge=0, le=1e7, description="with stream: the frame's time in seconds (default: "
                            "the server's clock since the stream began)"),
) -> Response:
    """The faces in the photo (the multipart field ``file``, or the raw body) with their boxes
    ``[x, y, w, h]`` in its pixels, detector scores, labels and class probabilities, the model's
    name and version, and the photo's size; with ``annotate=1`` the photo with the faces drawn.
    With ``stream=ID`` the photo is a live stream's next frame: each face also gets ``frame``,
    ``time`` and ``track_id`` (:class:`~fer_nla.serve.live.LiveTracks`)."""
    state = _state(request)
    settings = state.settings
    chosen = _image_format(image_format)  # checked also without annotate: a typo is never ignored
    if stream is not None and (problem := check_stream_id(stream)):
        raise HTTPException(422, problem)
    loop = asyncio.get_running_loop()
    upload = await _receive(request, state)
    queued_from = loop.time()
    deadline = queued_from + settings.timeout_s
    try:
        ticket = state.queue.admit()
    except QueueFull:
        raise HTTPException(503, _busy(state), headers={"Retry-After": str(settings.retry_after_s)}) from None
    try:
        def work() -> tuple[Prediction, tuple[bytes, str] | None, float]:
            started = loop.time()  # read-only use of the loop's monotonic clock from the thread
            prediction = run_prediction(state.predictor, upload, max_pixels=settings.max_pixels)
            if stream is not None:
                state.live.follow(stream, prediction.faces, t=t)
            return prediction, annotated_image(prediction, image_format=chosen) if annotate else None, started

        prediction, picture, started = await state.queue.run(ticket, work, timeout=deadline - loop.time())
    except InferenceTimeout:
        raise HTTPException(504, f"no answer within {settings.timeout_s:g} s (fer-nla serve --timeout): the server "
                                 "is busy or the photo is very large; try again later, send a smaller photo, or "
                                 "raise --timeout") from None
    except HTTPException:
        raise
    except Exception as err:  # a bug or a broken model: logged here, never a traceback to the client
        LOG.exception("prediction failed")
        raise HTTPException(500, f"the prediction failed on the server ({type(err).__name__}); "
                                 "the server's log has the details") from None
    finally:
        ticket.close()
    if picture is not None:
        return Response(picture[0], media_type=picture[1],
                        headers={"X-Faces": str(len(prediction.faces)), "Cache-Control": "no-store"})
    return JSONResponse(prediction_json(prediction, model=state.model, queued_ms=1000 * (started - queued_from)))


async def _receive(request: Request, state: ServeState) -> Upload:
    """The request's upload, read before it takes an inference place, within ``--upload-timeout``
    (408 past it) and holding one of ``--max-uploads`` slots (503 when all are taken). A client that
    goes away mid-upload is logged as such (one line, no traceback) and answered 400, which it
    never reads."""
    settings = state.settings
    try:
        slot = state.uploads.take()
    except QueueFull:
        raise HTTPException(503, f"the server is busy: {state.uploads.limit} uploads are arriving at once (fer-nla "
                                 f"serve --max-uploads); try again in {settings.retry_after_s} s",
                            headers={"Retry-After": str(settings.retry_after_s)}) from None
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        return await _before(started + settings.upload_timeout_s,
                             read_upload(request, max_bytes=settings.max_upload_bytes),
                             late=f"the upload did not arrive within {settings.upload_timeout_s:g} s (fer-nla serve "
                                  "--upload-timeout); send it again over a faster connection")
    except ClientDisconnect:
        client = f"{request.client.host}:{request.client.port}" if request.client else "a client"
        LOG.info("%s disconnected during its upload, after %.1f s; nothing was predicted", client,
                 loop.time() - started)
        raise HTTPException(400, "the client disconnected before its upload arrived") from None
    finally:
        slot.close()


def _busy(state: ServeState) -> str:
    """The 503 message, counting what runs and waits now (not the configured sizes)."""
    settings, stats = state.settings, state.queue.stats()
    return (f"the server is busy: {stats['running']} request(s) running on {settings.threads} thread(s) and "
            f"{stats['waiting']} waiting, all {settings.capacity} places taken (fer-nla serve --threads/--queue); "
            f"try again in {settings.retry_after_s} s")


def _image_format(value: str | None) -> str | None:
    """``png``/``jpeg`` from the ``format`` query parameter (``jpg`` accepted); 422 for others."""
    if value is None:
        return None
    chosen = FORMAT_ALIASES.get(value.lower())
    if chosen is None:
        raise HTTPException(422, f"format={value!r} is not an annotated image format; use one of: "
                                 f"{', '.join(IMAGE_TYPES)} (or leave it out)")
    return chosen


@router.get("/v1/models", summary="The served model and the built-in models")
async def models(request: Request) -> dict[str, Any]:
    """``serving``: the model this server runs (name, source, version, classes, backend, input);
    ``builtin``: the models shipped in fer-nla (``fer-nla models``), any of which
    ``fer-nla serve --model NAME`` serves."""
    rows = [describe_builtin(model.name) for model in builtin_models()]
    return {"serving": _state(request).model.to_dict(),
            "builtin": [{key: row[key] for key in PUBLIC_MODEL_KEYS} for row in rows], "version": __version__}


@router.get("/healthz", summary="Liveness and load")
async def healthz(request: Request) -> dict[str, Any]:
    """``status: ok`` once the model is loaded, the model's name and version, fer-nla's version,
    the limits, and the queue: requests ``running``, ``waiting``, and the ``capacity``."""
    state = _state(request)
    settings = state.settings
    return {"status": "ok", "model": state.model.name, "model_version": state.model.version, "version": __version__,
            "limits": {"max_upload_bytes": settings.max_upload_bytes, "max_pixels": settings.max_pixels,
                       "timeout_s": settings.timeout_s, "upload_timeout_s": settings.upload_timeout_s,
                       "max_uploads": settings.max_uploads},
            "queue": state.queue.stats(), "uploads": state.uploads.taken}
