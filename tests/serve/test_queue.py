"""Load paths of `fer-nla serve`: a full queue answers 503 with Retry-After, a request past its
time answers 504 and its running work keeps its place until it ends (memory stays bounded), a
failing model answers 500 without a traceback; and the InferenceQueue itself."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'fer-nla[serve]'")

from fastapi.testclient import TestClient  # noqa: E402
from serve_helpers import png_bytes  # noqa: E402

from fer_nla.serve import ServeSettings  # noqa: E402
from fer_nla.serve.app import create_app  # noqa: E402
from fer_nla.serve.runner import InferenceQueue, InferenceTimeout, QueueFull  # noqa: E402

PHOTO = png_bytes(64, 64)


def wait_until(condition, *, seconds: float = 20.0) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.01)


def test_a_full_queue_answers_503_with_retry_after_and_the_waiting_request_still_succeeds(
        fake_factory, fake_backend) -> None:
    settings = ServeSettings(threads=1, queue=1, retry_after_s=3)
    with TestClient(create_app(settings, predictor_factory=fake_factory)) as client, ThreadPoolExecutor(2) as pool:
        fake_backend.hold()
        running = pool.submit(client.post, "/v1/predict", content=PHOTO)
        assert fake_backend.started.wait(20)
        waiting = pool.submit(client.post, "/v1/predict", content=PHOTO)
        wait_until(lambda: client.get("/healthz").json()["queue"]["waiting"] == 1)
        refused = client.post("/v1/predict", content=PHOTO)
        assert refused.status_code == 503 and refused.headers["retry-after"] == "3"
        assert refused.json()["detail"] == ("the server is busy: 1 request(s) running on 1 thread(s) and 1 waiting, "
                                            "all 2 places taken (fer-nla serve --threads/--queue); try again in 3 s")
        fake_backend.release.set()
        assert running.result(timeout=30).status_code == 200
        assert waiting.result(timeout=30).status_code == 200  # queued, not lost
        assert client.get("/healthz").json()["queue"] == {"running": 0, "waiting": 0, "capacity": 2, "threads": 1}


def test_a_request_past_its_time_answers_504_and_its_work_keeps_its_place_until_it_ends(
        fake_factory, fake_backend) -> None:
    settings = ServeSettings(threads=1, queue=0, timeout_s=0.5)
    with TestClient(create_app(settings, predictor_factory=fake_factory)) as client:
        fake_backend.hold()
        started = time.monotonic()
        late = client.post("/v1/predict", content=PHOTO)
        assert late.status_code == 504 and 0.5 <= time.monotonic() - started < 10
        assert late.json()["detail"].startswith("no answer within 0.5 s (fer-nla serve --timeout)")
        # the model still runs that request: its place is taken, so the next one is refused, not piled up
        assert client.get("/healthz").json()["queue"]["running"] == 1
        assert client.post("/v1/predict", content=PHOTO).status_code == 503
        fake_backend.release.set()
        wait_until(lambda: client.get("/healthz").json()["queue"]["running"] == 0)
        wait_until(lambda: client.get("/healthz").json()["queue"]["waiting"] == 0)
        answer = client.post("/v1/predict", content=PHOTO)
        assert answer.status_code == 200 and answer.json()["faces"][0]["label"] == "happiness"


def test_a_failing_model_answers_500_in_json_without_a_traceback(fake_factory, fake_backend) -> None:
    with TestClient(create_app(ServeSettings(), predictor_factory=fake_factory)) as client:
        fake_backend.error = RuntimeError("CUDA error: device-side assert at /secret/path.py line 3")
        answer = client.post("/v1/predict", content=PHOTO)
        assert answer.status_code == 500
        assert answer.json() == {"detail": "the prediction failed on the server (RuntimeError); "
                                           "the server's log has the details"}
        fake_backend.error = None
        assert client.post("/v1/predict", content=PHOTO).status_code == 200  # the place was given back


def test_the_queue_admits_up_to_its_capacity_and_takes_a_place_back_once() -> None:
    queue = InferenceQueue(threads=1, capacity=2)
    first, second = queue.admit(), queue.admit()
    with pytest.raises(QueueFull):
        queue.admit()
    first.close()
    first.close()  # twice gives back one place only
    third = queue.admit()
    with pytest.raises(QueueFull):
        queue.admit()
    second.close()
    third.close()
    assert queue.stats() == {"running": 0, "waiting": 0, "capacity": 2, "threads": 1}
    queue.shutdown()


def test_work_still_waiting_for_a_thread_is_dropped_on_timeout_and_gives_its_place_back() -> None:
    queue = InferenceQueue(threads=1, capacity=2)
    gate, ran = threading.Event(), []

    async def scenario() -> None:
        busy = asyncio.ensure_future(queue.run(queue.admit(), lambda: gate.wait(20), timeout=30))
        await asyncio.sleep(0.05)
        with pytest.raises(InferenceTimeout):
            await queue.run(queue.admit(), lambda: ran.append(1), timeout=0.1)  # never got the thread
        assert queue.stats()["waiting"] == 0  # its place is back at once
        gate.set()
        assert await busy is True

    asyncio.run(scenario())
    queue.shutdown()
    assert ran == []
    assert queue.stats() == {"running": 0, "waiting": 0, "capacity": 2, "threads": 1}


def test_an_upload_slower_than_the_timeout_answers_408_and_gives_its_place_back(fake_factory) -> None:
    import httpx

    app = create_app(ServeSettings(threads=1, queue=0, upload_timeout_s=0.5, max_uploads=1),
                     predictor_factory=fake_factory)

    async def trickle():
        yield PHOTO[:100]
        await asyncio.sleep(3)  # the rest comes after the request's time is up
        yield PHOTO[100:]

    async def scenario() -> tuple[httpx.Response, dict, httpx.Response]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)  # streams the body to the app as it comes
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                slow = await client.post("/v1/predict", content=trickle())
                queue = (await client.get("/healthz")).json()["queue"]
                return slow, queue, await client.post("/v1/predict", content=PHOTO)

    slow, queue, after = asyncio.run(scenario())
    assert slow.status_code == 408
    assert slow.json()["detail"].startswith("the upload did not arrive within 0.5 s (fer-nla serve --upload-timeout)")
    assert queue["waiting"] == 0 and after.status_code == 200  # the only upload slot was given back
