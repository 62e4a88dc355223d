"""Helpers of the `fer-nla serve` tests (a unique module name, so `from serve_helpers import ...`
never picks up another folder's module): the photos and their faces, a fake backend and detector."""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from fer_nla.labels import EMOTIONS
from fer_nla.inference.preprocess import Preprocess

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"
TRUTH = json.loads((PHOTOS / "faces.json").read_text())
FAKE_LOGITS = np.array([0.0, 3.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0], dtype=np.float32)  # happiness on top


class FakeBackend:
    """8 expression classes; the same logits for every face. While :meth:`hold` is in force,
    ``logits`` waits for ``release`` (set by the test); ``started`` is set on every call;
    ``error``, when set, is raised instead."""

    def __init__(self) -> None:
        self.class_names = list(EMOTIONS)
        self.preprocess = Preprocess(image_size=48, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
        self.started = threading.Event()
        self.release = threading.Event()
        self.release.set()
        self.error: Exception | None = None

    def hold(self) -> None:
        self.started.clear()
        self.release.clear()

    def logits(self, batch: np.ndarray) -> np.ndarray:
        self.started.set()
        self.release.wait(timeout=60)
        if self.error is not None:
            raise self.error
        return np.tile(FAKE_LOGITS, (len(batch), 1))


class CentreDetector:
    """One face: the centre half of the photo, score 0.9."""

    def detect(self, image_rgb: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        height, width = image_rgb.shape[:2]
        return [((width // 4, height // 4, width // 2, height // 2), 0.9)]


def png_bytes(width: int, height: int, *, seed: int = 0) -> bytes:
    """A PNG of random pixels, ``width`` x ``height``."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


@contextlib.contextmanager
def serving(app) -> Iterator[tuple[str, int]]:
    """``app`` on a real uvicorn server in a thread, on a free loopback port: ``(host, port)``."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    instance = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    end = time.monotonic() + 120
    while not instance.started:
        assert thread.is_alive() and time.monotonic() < end, "the server did not start"
        time.sleep(0.05)
    try:
        yield "127.0.0.1", sock.getsockname()[1]
    finally:
        instance.should_exit = True
        thread.join(30)
        sock.close()
