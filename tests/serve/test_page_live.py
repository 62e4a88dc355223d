"""The page's camera mode in a real browser: headless Chromium with its fake camera
(``--use-fake-device-for-media-stream --use-fake-ui-for-media-stream``) playing a Y4M clip of
two real faces crossing, against a real uvicorn server. The page sends frames one at a time,
draws a box per face and keeps a card per face track; the server tracks them (stream=ID). Also
the ``stream``/``t`` query parameters of POST /v1/predict on their own. Skipped, saying why,
where Chromium or its driver is absent."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'fer-nla[serve]'")
pytest.importorskip("selenium", reason="selenium is not installed: pip install -e '.[dev]'")

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402
from test_page_browser import server, start_chromium  # noqa: E402, F401 - server: the page's uvicorn fixture


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "predict"))
from test_tracking import crossing_clip  # noqa: E402


def write_y4m(video: Path, target: Path) -> Path:
    """The frames of ``video`` as a Y4M file (4:2:0), what Chromium's fake camera plays in a loop."""
    capture, frames = cv2.VideoCapture(str(video)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    height, width = frames[0].shape[:2]
    with target.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F8:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            out.write(b"FRAME\n" + cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes())
    return target


@pytest.fixture(scope="module")
def camera_browser(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("camera")
    clip = write_y4m(crossing_clip(folder / "cross.avi"), folder / "cross.y4m")
    chrome = start_chromium("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                            f"--use-file-for-fake-video-capture={clip}")
    yield chrome
    chrome.quit()


@pytest.mark.slow
def test_the_camera_mode_draws_each_face_with_its_track_and_keeps_a_card_per_track(camera_browser, server) -> None:
    camera_browser.get(f"{server}/")
    canvas = camera_browser.find_element(By.ID, "photo")
    button = camera_browser.find_element(By.ID, "camera-button")
    assert button.text == "Use camera"
    button.click()
    WebDriverWait(camera_browser, 90).until(lambda b: canvas.get_attribute("data-state") in ("error", "stopped") or (
        canvas.get_attribute("data-state") == "live" and int(canvas.get_attribute("data-frames") or 0) >= 12))
    assert canvas.get_attribute("data-state") == "live", camera_browser.find_element(By.ID, "error").text
    assert button.text == "Stop camera"
    boxes = [int(canvas.get_attribute("data-boxes"))]
    WebDriverWait(camera_browser, 30).until(lambda b: int(canvas.get_attribute("data-boxes")) == 2)
    cards = camera_browser.execute_script(  # read at once: the page redraws the cards with each frame
        "return [...document.querySelectorAll('#faces li.face.live')].map((card) => "
        "[card.dataset.track, [...card.querySelectorAll('.history span')].map((cell) => cell.title)]);")
    assert len(cards) >= 2 and all(track.isdigit() for track, _ in cards)
    history = cards[0][1]
    assert 1 <= len(history) <= 24 and history[0] in ("happiness", "neutral", "surprise")
    assert camera_browser.find_element(By.ID, "status").text.startswith("Live: ")
    assert canvas.get_attribute("width") == "480" and boxes[0] in (0, 1, 2)
    button.click()
    assert canvas.get_attribute("data-state") == "stopped" and button.text == "Use camera"
    assert camera_browser.find_element(By.ID, "status").text == "Camera stopped."


def test_a_stream_id_gives_each_face_its_track_frame_and_time(server) -> None:
    import httpx

    photos = Path(__file__).resolve().parents[1] / "data" / "photos"
    photo = (photos / "frontal_astronaut.jpg").read_bytes()
    answers = []
    for t in (2.0, 2.1, 2.2):
        reply = httpx.post(f"{server}/v1/predict", params={"stream": "test-1", "t": t}, files={"file": photo},
                           timeout=60)
        assert reply.status_code == 200
        answers.append(reply.json()["faces"])
    assert [(f[0]["track_id"], f[0]["frame"], f[0]["time"]) for f in answers] == [(0, 0, 2.0), (0, 1, 2.1), (0, 2, 2.2)]
    restarted = httpx.post(f"{server}/v1/predict", params={"stream": "test-1", "t": 0.05}, files={"file": photo},
                           timeout=60).json()["faces"][0]
    assert (restarted["track_id"], restarted["frame"]) == (0, 0)  # over 1 s earlier: the stream began again
    plain = httpx.post(f"{server}/v1/predict", files={"file": photo}, timeout=60).json()["faces"][0]
    assert "track_id" not in plain and "frame" not in plain
    bad = httpx.post(f"{server}/v1/predict", params={"stream": "a b"}, files={"file": photo}, timeout=60)
    assert bad.status_code == 422 and "a stream id is 1 to 64 letters" in bad.json()["detail"]


def test_a_frame_finishing_after_a_later_one_keeps_the_stream_and_an_earlier_start_restarts_it():
    from fer_nla.inference.faces import Box, FacePrediction
    from fer_nla.serve.live import LiveTracks

    def faces():
        return [FacePrediction(Box(10, 10, 50, 50), "neutral", {"neutral": 1.0})]

    live = LiveTracks()
    first, later, late, restart = faces(), faces(), faces(), faces()
    live.follow("s", first, t=1.0)
    live.follow("s", later, t=1.2)
    live.follow("s", late, t=1.1)  # two threads finished out of order: tracked at 1.2, same stream
    live.follow("s", restart, t=0.05)  # the camera started again
    assert [(f[0].track_id, f[0].frame, f[0].time) for f in (first, later, late, restart)] == [
        (0, 0, 1.0), (0, 1, 1.2), (0, 2, 1.2), (0, 0, 0.05)]
    assert len(live) == 1
