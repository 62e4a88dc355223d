"""`fer-nla serve` under slow and vanishing clients (issue 24), on a real uvicorn server on a
loopback port: stalled uploads (headers sent, body trickling) hold upload slots, never the
model's places, so a good photo is answered at once; a client that goes away mid-upload is one
log line, not "prediction failed" with a traceback; the busy message counts what runs."""

from __future__ import annotations

import http.client
import logging
import socket
import time

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'fer-nla[serve]'")

from serve_helpers import png_bytes, serving  # noqa: E402

from fer_nla.serve import ServeSettings  # noqa: E402
from fer_nla.serve.app import create_app  # noqa: E402

PHOTO = png_bytes(64, 64)
STALLED_HEAD = (b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: 100000\r\n\r\n")


@pytest.fixture
def server(fake_factory):
    """A real uvicorn server (threads 1, queue 4, as the report) in a thread; (host, port, app)."""
    settings = ServeSettings(threads=1, queue=4, upload_timeout_s=20, max_uploads=8)
    app = create_app(settings, predictor_factory=fake_factory)
    with serving(app) as (host, port):
        yield host, port, app


def post(host: str, port: int, body: bytes) -> tuple[int, str]:
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("POST", "/v1/predict", body=body, headers={"Content-Type": "application/octet-stream"})
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()


def stalled(host: str, port: int) -> socket.socket:
    """A client that sent its headers and 10 bytes of a 100,000-byte body, and waits."""
    client = socket.create_connection((host, port))
    client.sendall(STALLED_HEAD + PHOTO[:10])
    return client


def wait_for(condition, seconds: float = 20.0) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.02)


def test_stalled_uploads_do_not_take_the_models_places(server) -> None:
    host, port, app = server
    clients = [stalled(host, port) for _ in range(5)]  # as many as threads + queue, and more
    try:
        wait_for(lambda: app.state.serve.uploads.taken == 5)
        assert app.state.serve.queue.stats()["waiting"] == 0  # no inference place is held by an upload
        started = time.monotonic()
        status, body = post(host, port, PHOTO)
        assert status == 200 and '"label":"happiness"' in body.replace(" ", "")
        assert time.monotonic() - started < 10  # answered now, not after the stalled clients' timeout
    finally:
        for client in clients:
            client.close()
    wait_for(lambda: app.state.serve.uploads.taken == 0)


def test_a_client_that_vanishes_mid_upload_is_logged_as_such(server, caplog) -> None:
    host, port, app = server
    with caplog.at_level(logging.INFO, logger="fer_nla.serve"):
        stalled(host, port).close()
        wait_for(lambda: any("disconnected during its upload" in r.getMessage() for r in caplog.records))
    wait_for(lambda: app.state.serve.uploads.taken == 0)
    messages = [r.getMessage() for r in caplog.records]
    assert not any("prediction failed" in m for m in messages)
    assert all(r.exc_info is None for r in caplog.records)  # no traceback
    assert post(host, port, PHOTO)[0] == 200


def test_more_stalled_uploads_than_slots_are_refused_with_what_is_full(server) -> None:
    host, port, app = server
    clients = [stalled(host, port) for _ in range(8)]
    try:
        wait_for(lambda: app.state.serve.uploads.taken == 8)
        status, body = post(host, port, PHOTO)
        assert status == 503 and "8 uploads are arriving at once (fer-nla serve --max-uploads)" in body
    finally:
        for client in clients:
            client.close()
