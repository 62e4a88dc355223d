"""Input enumeration and decoding: folders, hidden files, EXIF rotation, oversized images."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_nla.errors import InputError
from fer_nla.predict.inputs import collect_inputs, iter_frames, read_image


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
        ("shoot/b.png", False, "b.png"),
    ]
    assert [(p.path.name, "no files" in p.error or "does not exist" in p.error) for p in problems] == [
        ("empty", True), ("nope.png", True)]


def test_collect_inputs_skips_windows_and_macos_system_files_and_folders(tmp_path: Path) -> None:
    for rel in ("a.png", "._a.png", "Thumbs.db", "sub/desktop.ini", "sub/b.jpg", "__MACOSX/._b.jpg", ".git/HEAD"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    files, problems = collect_inputs([tmp_path, tmp_path / "Thumbs.db"])
    assert [f.output_name.as_posix() for f in files] == [
        f"{tmp_path.name}/a.png", f"{tmp_path.name}/sub/b.jpg", "Thumbs.db"]  # named on the command line: kept
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
