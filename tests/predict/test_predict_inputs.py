"""Input enumeration and decoding: folders, hidden files, EXIF rotation, oversized images."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_nla.errors import InputError
from fer_nla.predict.inputs import collect_inputs, iter_frames, open_video, read_image


def test_collect_inputs_walks_folders_in_order_and_reports_missing_and_empty(tmp_path: Path) -> None:
    root = tmp_path / "shoot"
    for rel in ("b.png", "a/z.jpg", "a/clip.MP4", ".hidden/x.png", "a/.DS_Store"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    files, problems = collect_inputs([root, tmp_path / "empty", tmp_path / "nope.png", root / "b.png"])
    assert [(f.path.relative_to(tmp_path).as_posix(), f.is_video, f.output_name.as_posix()) for f in files] == [
        ("shoot/a/clip.MP4", True, "shoot/a/clip.MP4"),
        ("shoot/a/z.jpg", False, "shoot/a/z.jpg"),
        ("shoot/b.png", False, "shoot/b.png"),
        ("shoot/b.png", False, "shoot/b.png"),  # the same file named twice: the same output name
    ]
    assert [(p.path.name, "no files" in p.error or "does not exist" in p.error) for p in problems] == [
        ("empty", True), ("nope.png", True)]


def test_collect_inputs_skips_windows_and_macos_system_files_and_folders(tmp_path: Path) -> None:
    for rel in ("a.png", "._a.png", "Thumbs.db", "sub/desktop.ini", "sub/b.jpg", "__MACOSX/._b.jpg", ".git/HEAD"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    files, problems = collect_inputs([tmp_path, tmp_path / "Thumbs.db"])
    assert [f.output_name.as_posix() for f in files] == [
        f"{tmp_path.name}/a.png", f"{tmp_path.name}/sub/b.jpg", f"{tmp_path.name}/Thumbs.db"]  # named: kept
    assert problems == []


def test_the_image_decoder_predict_shares_with_the_readers_imports_no_torch(tmp_path: Path) -> None:
    Image.fromarray(np.full((2, 2), 32896, np.uint16)).save(tmp_path / "gray16.png")
    code = (
        "import sys\n"
        "from fer_nla.predict.inputs import read_image\n"
        f"assert read_image({str(tmp_path / 'gray16.png')!r}).max() == 128\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_read_image_applies_exif_orientation(tmp_path: Path) -> None:
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :10] = 255  # white on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(pixels).save(tmp_path / "phone.jpg", exif=exif, quality=100)
    shown = read_image(tmp_path / "phone.jpg")
    assert shown.shape == (40, 20, 3)
    assert shown[:10].mean() > 200 and shown[30:].mean() < 50  # the white band is now at the top


def test_images_over_the_decompression_limit_are_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(np.zeros((100, 100, 3), np.uint8)).save(tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 10,000 px is over twice the limit
    with pytest.raises(InputError, match="huge.png is too large to decode safely"):
        read_image(tmp_path / "huge.png")


def test_iter_frames_takes_every_kth_frame() -> None:
    class FakeCapture:
        """Five frames, each filled with its index (BGR), as cv2.VideoCapture returns them."""

        def __init__(self) -> None:
            self.position = 0

        def grab(self) -> bool:
            self.position += 1
            return self.position <= 5

        def read(self) -> tuple[bool, np.ndarray | None]:
            self.position += 1
            ok = self.position <= 5
            return ok, np.full((2, 2, 3), self.position - 1, np.uint8) if ok else None

    got = [(index, int(frame[0, 0, 0])) for index, frame in iter_frames(FakeCapture(), every=2)]  # type: ignore[arg-type]
    assert got == [(0, 0), (2, 2), (4, 4)]
    with pytest.raises(InputError, match="every"):
        list(iter_frames(FakeCapture(), every=0))  # type: ignore[arg-type]


def _touch(root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")


def test_same_named_inputs_from_different_folders_get_different_output_names(tmp_path: Path) -> None:
    _touch(tmp_path, "a/x.jpg", "b/x.jpg", "p1/photos/y.png", "p2/photos/y.png")
    files, _ = collect_inputs([tmp_path / "a/x.jpg", tmp_path / "b/x.jpg"])
    assert [f.output_name.as_posix() for f in files] == ["a/x.jpg", "b/x.jpg"]
    files, _ = collect_inputs([tmp_path / "p1/photos", tmp_path / "p2/photos"])
    assert [f.output_name.as_posix() for f in files] == ["p1/photos/y.png", "p2/photos/y.png"]
    files, _ = collect_inputs([tmp_path / "p1/photos"])  # one folder: named after itself, as before
    assert [f.output_name.as_posix() for f in files] == ["photos/y.png"]


def test_excluded_folders_and_files_are_never_walked_compared_by_resolved_path(tmp_path: Path) -> None:
    _touch(tmp_path, "photos/a.jpg", "photos/out/photos/a.jpg", "photos/out/deeper/b.jpg", "photos/preds.csv")
    exclude = [tmp_path / "photos" / ".." / "photos" / "out", tmp_path / "photos" / "preds.csv"]
    files, problems = collect_inputs([tmp_path / "photos"], exclude=exclude)
    assert [f.path.relative_to(tmp_path).as_posix() for f in files] == ["photos/a.jpg"] and problems == []


class _FakeCapture:
    """``decodable`` frames of a ``stated``-frame video, each filled with its index (BGR)."""

    def __init__(self, decodable: int) -> None:
        self.position, self.decodable = 0, decodable

    def grab(self) -> bool:
        self.position += 1
        return self.position <= self.decodable

    def read(self) -> tuple[bool, np.ndarray | None]:
        ok = self.grab()
        return ok, np.full((2, 2, 3), self.position - 1, np.uint8) if ok else None


def test_frames_read_are_compared_with_the_frames_the_container_states() -> None:
    frames = iter_frames(_FakeCapture(3), every=1)  # type: ignore[arg-type]
    assert [i for i, _ in frames] == [0, 1, 2] and (frames.decoded, frames.sampled) == (3, 3)
    assert frames.shortfall(10).startswith("read 3 of 10 frames; the rest could not be decoded")
    assert frames.shortfall(3) is None and frames.shortfall(0) is None  # complete; count unknown
    frames = iter_frames(_FakeCapture(7), every=3)  # type: ignore[arg-type]
    assert [i for i, _ in frames] == [0, 3, 6]
    assert frames.shortfall(10).startswith("read 7 of 10 frames (3 of 4 sampled frames, every 3)")
    frames = iter_frames(_FakeCapture(9), every=4)  # type: ignore[arg-type]
    assert [i for i, _ in frames] == [0, 4, 8]  # every sampled frame read, frame 9 missing: still noted
    assert frames.shortfall(10).startswith("read 9 of 10 frames (3 of 3 sampled frames, every 4)")


def truncated_avi(path: Path, *, frames: int = 10, keep: float = 0.35, fps: float = 10.0,
                  paint=None) -> Path:  # noqa: ANN001 - paint(i) -> HxWx3 RGB frame
    """A ``frames``-frame MJPG AVI cut to ``keep`` of its bytes (so its header still states all frames)."""
    rng = np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (64, 48))
    assert writer.isOpened()
    for i in range(frames):
        frame = paint(i) if paint else rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_a_truncated_video_reads_fewer_frames_than_its_container_states(tmp_path: Path) -> None:
    capture, info = open_video(truncated_avi(tmp_path / "cut.avi"))
    frames = iter_frames(capture, every=1)
    read = [index for index, _ in frames]
    capture.release()
    assert info.frame_count == 10 and 0 < len(read) < 10 and read == list(range(len(read)))
    assert frames.shortfall(info.frame_count).startswith(f"read {len(read)} of 10 frames")
    assert info.time_of(3) == 0.3 and info.fps_stated


def test_ffmpeg_decoder_messages_about_a_damaged_video_stay_off_stderr(tmp_path: Path) -> None:
    video = truncated_avi(tmp_path / "cut.avi")
    code = (
        "from fer_nla.predict.inputs import iter_frames, open_video, quiet_video_decoder_logs\n"
        "{quiet}"
        f"capture, info = open_video({str(video)!r})\n"
        "print(len(list(iter_frames(capture))))\n"
    )
    runs = [subprocess.run([sys.executable, "-c", code.format(quiet=q)], capture_output=True, text=True, timeout=120,
                           env={k: v for k, v in os.environ.items() if k != "OPENCV_FFMPEG_LOGLEVEL"})
            for q in ("", "quiet_video_decoder_logs()\n")]
    assert all(r.returncode == 0 for r in runs), runs
    assert runs[0].stdout == runs[1].stdout
    assert runs[1].stderr == ""
    if "@ 0x" not in runs[0].stderr:
        pytest.skip("this OpenCV build's FFmpeg says nothing about the cut video even when not quietened")
