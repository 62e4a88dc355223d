"""Live input: an MJPEG stream served from 127.0.0.1 read through the same path as video files
(records, tracks, CSV), --fps and --duration sampling, Ctrl-C ending a run cleanly with its CSV
written, and clear errors for a missing camera, an unreachable stream and --show without a GUI."""

from __future__ import annotations

import csv
import http.server
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from fer_nla.cli import main
from fer_nla.predict.inputs import camera_source, collect_inputs, is_stream, live_input
from test_tracking import crossing_clip


def clip_frames(path: Path) -> list[bytes]:
    """The JPEG bytes of every frame of a video file."""
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(cv2.imencode(".jpg", frame)[1].tobytes())


class MJPEGServer:
    """Serves ``frames`` as multipart/x-mixed-replace (what IP cameras send) at ``fps``, then
    ends the stream; ``stall`` keeps the connection open after the last frame instead."""

    def __init__(self, frames: list[bytes], *, fps: float = 20.0, stall: float = 0.0) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    for jpeg in frames:
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(b"Content-Length: %d\r\n\r\n" % len(jpeg) + jpeg + b"\r\n")
                        time.sleep(1.0 / fps)
                    time.sleep(stall)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                outer.served += 1

            def log_message(self, *args: object) -> None:
                pass

        self.served = 0
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/stream.mjpg"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    return clip_frames(crossing_clip(tmp_path_factory.mktemp("clip") / "cross.avi"))


@pytest.fixture
def stream(frames: list[bytes]) -> Iterator[MJPEGServer]:
    server = MJPEGServer(frames)
    yield server
    server.close()


def test_stream_urls_and_cameras_are_live_inputs(tmp_path: Path) -> None:
    assert is_stream("rtsp://cam/1") and is_stream("HTTP://x/y.mjpg") and not is_stream("clip.mp4")
    assert not is_stream(Path("rtsp://cam/1"))  # a Path lost its '//': never taken for a URL
    files, problems = collect_inputs(["http://10.0.0.2:8080/video?x=1", live_input(camera_source("0")),
                                      "rtsp://admin:secret@10.0.0.3/live?ch=1", "rtsp://admin:secret@10.0.0.3/live?ch=2"])
    assert problems == [] and [f.label for f in files] == ["http://10.0.0.2:8080/video?x=1", "camera 0",
                                                           "rtsp://10.0.0.3/live?ch=1", "rtsp://10.0.0.3/live?ch=2"]
    names = [f.output_name.name for f in files]
    assert names[0].startswith("stream-10.0.0.2_8080_video-") and names[1] == "camera-0.mp4"
    assert names[2] != names[3] and not any("secret" in n for n in names)  # one copy per URL; no password
    assert all(f.live and f.is_video for f in files)
    assert camera_source("/dev/video2") == "/dev/video2" and camera_source(" 1 ") == 1


@pytest.mark.slow
def test_an_mjpeg_stream_is_read_tracked_and_written_like_a_video(stream: MJPEGServer, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "live.csv"
    assert main(["predict", stream.url, "--csv", str(out), "--summary"]) == 0  # the stream's end ends the run
    captured = capsys.readouterr()
    rows = list(csv.DictReader(out.open()))
    assert {row["file"] for row in rows} == {stream.url}
    frames = sorted({int(row["frame"]) for row in rows})
    assert len(frames) >= 20 and frames[0] == 0  # FFmpeg may keep the last frame or two back at the stream's end
    times = [float(row["time"]) for row in rows]
    assert 0.5 < max(times) < 10  # the clock from opening: 24 frames sent at 20 per second
    assert {row["track"] for row in rows if row["track"]} == {"0", "1"}
    assert f"{stream.url}: 2 tracks" in captured.out and "1 input, " in captured.err


@pytest.mark.slow
def test_fps_and_duration_sample_a_live_stream_by_its_clock(frames: list[bytes]) -> None:
    from fer_nla.predict import Predictor, predict_files

    server = MJPEGServer(frames * 3, fps=20)  # 3.6 s of stream
    try:
        (record,) = predict_files(Predictor(), [server.url], fps=4, duration=1.5)
    finally:
        server.close()
    times = [f.time for f in record.frames]
    assert record.error is None and times == sorted(times) and max(times) <= 1.5
    assert 3 <= len(times) <= 8  # about 4 per second over 1.5 s (the first one at the stream's start)
    assert all(b - a >= 0.2 for a, b in zip(times, times[1:]))  # never faster than 4 per second (with slack)


@pytest.mark.slow
def test_ctrl_c_ends_a_stream_cleanly_and_the_csv_is_still_written(frames: list[bytes], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture) -> None:
    from fer_nla.predict import files

    real, calls = files._queue_frame, []

    def interrupt_at_the_tenth_frame(*args, **kwargs):  # noqa: ANN002, ANN003 - _queue_frame's own
        calls.append(1)
        if len(calls) == 10:
            raise KeyboardInterrupt  # what Ctrl-C raises between two frames
        return real(*args, **kwargs)

    monkeypatch.setattr(files, "_queue_frame", interrupt_at_the_tenth_frame)
    server = MJPEGServer(frames, stall=30)  # a live source that would go on
    out = tmp_path / "live.csv"
    try:
        status = main(["predict", server.url, "--csv", str(out)])
    finally:
        server.close()
    err = capsys.readouterr().err
    assert status == 0  # Ctrl-C is how a live run ends
    rows = list(csv.DictReader(out.open()))
    assert sorted({int(r["frame"]) for r in rows}) == list(range(9))  # the 9 frames before it, all kept
    assert "ended by Ctrl-C after" in rows[0]["note"] and "(9 frames classified)" in rows[0]["note"]
    assert "ended by Ctrl-C (what was read by then is kept)" in err


@pytest.mark.slow
def test_ctrl_c_during_a_file_run_keeps_what_was_done_and_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture) -> None:
    from fer_nla.predict import files

    photos = Path(__file__).resolve().parents[1] / "data" / "photos"
    real = files._queue_image

    def interrupt_on_the_group(queue, item, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if item.path.name == "group.jpg":
            raise KeyboardInterrupt
        return real(queue, item, *args, **kwargs)

    monkeypatch.setattr(files, "_queue_image", interrupt_on_the_group)
    out = tmp_path / "p.csv"
    status = main(["predict", str(photos / "frontal_astronaut.jpg"), str(photos / "group.jpg"),
                   str(photos / "noface_cat.jpg"), "--csv", str(out)])
    assert status == 130
    rows = list(csv.DictReader(out.open()))
    assert [Path(r["file"]).name for r in rows] == ["frontal_astronaut.jpg", "group.jpg"]  # the cat never reached
    assert rows[0]["label"] == "happiness" and rows[1]["note"] == "ended by Ctrl-C"


def test_usage_errors_for_live_input(capsys: pytest.CaptureFixture) -> None:
    assert main(["predict"]) == 2
    assert "nothing to predict on: give image or video files, folders, stream URLs, or --camera N" in capsys.readouterr().err
    assert main(["predict", "x.mp4", "--fps", "5", "--every", "3"]) == 2
    assert "give --every K (every K-th frame) or --fps RATE (frames per second), not both" in capsys.readouterr().err
    assert main(["predict", "x.mp4", "--duration", "0"]) == 2
    assert "--duration 0: give a positive number" in capsys.readouterr().err


def test_show_without_a_window_system_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    from fer_nla.predict import display

    monkeypatch.setattr(display, "gui_backend", lambda: "NONE")
    assert main(["predict", "--show", "x.mp4"]) == 2
    assert "pip install opencv-python" in capsys.readouterr().err
    monkeypatch.setattr(display, "gui_backend", lambda: "GTK3")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(display.sys, "platform", "linux")
    assert main(["predict", "--show", "x.mp4"]) == 2
    assert "--show needs a display, and none is set here" in capsys.readouterr().err


def test_a_camera_that_is_not_there_is_one_failed_record(capfd: pytest.CaptureFixture) -> None:
    assert main(["predict", "--camera", "97", "--duration", "1"]) == 1
    err = capfd.readouterr().err  # capfd: OpenCV writes its warnings to the process's stderr itself
    assert "camera 97 cannot be opened: no such camera, or another program holds it" in err
    assert "WARN" not in err  # OpenCV's own capture warnings stay off stderr


def test_a_ctrl_c_no_command_catches_is_one_line_and_status_130(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    from fer_nla.commands import predict as command

    def interrupted(args):  # noqa: ANN001 - the command's namespace
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "run", interrupted)  # the parser is built in main(), after this
    assert main(["predict", "x.jpg"]) == 130
    assert capsys.readouterr().err == "fer-nla predict: stopped by Ctrl-C\n"


@pytest.mark.slow
def test_follow_reads_a_recording_while_it_is_being_written(frames: list[bytes], tmp_path: Path) -> None:
    from fer_nla.predict import Predictor, predict_files

    recording = tmp_path / "recording.mjpeg"
    recording.write_bytes(frames[0])

    def record() -> None:  # a recorder appending one JPEG frame every 50 ms
        with recording.open("ab") as out:
            for jpeg in frames[1:]:
                time.sleep(0.05)
                out.write(jpeg)
                out.flush()

    writer = threading.Thread(target=record)
    writer.start()
    try:
        (followed,) = predict_files(Predictor(), [recording], follow=1.0)
    finally:
        writer.join()
    (once,) = predict_files(Predictor(), [recording])  # the finished file, read in one pass
    assert len(followed.frames) == len(once.frames) == len(frames) == 24
    assert [f.frame for f in followed.frames] == list(range(24)) and followed.note is None
    assert {f.track_id for f in followed.faces} == {0, 1}


@pytest.mark.slow
def test_duration_cuts_a_file_without_calling_it_damaged_and_the_copy_keeps_real_time(tmp_path: Path) -> None:
    from fer_nla.predict import Predictor, predict_files

    clip = crossing_clip(tmp_path / "cross.avi")  # 24 frames at 8 fps: 3 s
    (record,) = predict_files(Predictor(), [clip], duration=1.0, strict=True, fps=4, annotate_dir=tmp_path / "out")
    assert record.error is None and record.note is None  # not "read 9 of 24 frames; ... damaged"
    assert [f.frame for f in record.frames] == [0, 2, 4, 6, 8] and max(f.time for f in record.frames) <= 1.0
    copy = cv2.VideoCapture(str(tmp_path / "out" / "cross.mp4"))
    assert copy.get(cv2.CAP_PROP_FPS) == pytest.approx(4.0) and copy.get(cv2.CAP_PROP_FRAME_COUNT) == 5


def test_a_camera_with_annotate_is_a_failed_record_not_a_crash(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["predict", "--camera", "97", "--annotate", str(tmp_path / "out"), "--csv", str(tmp_path / "c.csv")]) == 1
    assert "camera 97 cannot be opened" in capsys.readouterr().err
    assert "camera 97" in (tmp_path / "c.csv").read_text()


def test_closing_a_window_that_never_opened_is_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from fer_nla.predict.display import Window

    def no_window(title: str) -> None:
        raise cv2.error("no window")

    monkeypatch.setattr(cv2, "destroyWindow", no_window)
    window = Window()
    window.close()  # no frame was shown: nothing to close
    window.opened = True
    window.close()  # the user closed it already: OpenCV's error is not ours
    assert not window.opened
