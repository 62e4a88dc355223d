"""Videos: truncated files noted (and failed under --strict), every sampled frame in the records,
times in seconds beside the frame numbers in JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from fer_nla.cli import main
from fer_nla.predict import Predictor, predict_files, write_csv
from fer_nla.predict.detectors import Box
from fer_nla.predict.records import SampledFrame
from test_predict_inputs import truncated_avi


class BrightSquareDetector:
    """A stand-in face detector: the bounding box of the near-white pixels, when there are 100 or more."""

    def detect(self, image_rgb: np.ndarray) -> list[Box]:
        ys, xs = np.nonzero((image_rgb > 200).all(axis=2))
        if len(xs) < 100:
            return []
        return [Box(int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))]


def square_on_even_frames(i: int) -> np.ndarray:
    """A dark noisy 64x48 frame with a white 24x24 square ("a face") on even frames."""
    frame = np.random.default_rng(i).integers(0, 100, (48, 64, 3), dtype=np.uint8)
    if i % 2 == 0:
        frame[12:36, 20:44] = 240
    return frame


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> Predictor:
    return Predictor.from_checkpoint(checkpoint, device="cpu", batch_size=2, detector=BrightSquareDetector())


def test_a_truncated_video_gets_a_note_its_frames_and_times_and_fails_only_when_strict(
    predictor: Predictor, tmp_path: Path
) -> None:
    video = truncated_avi(tmp_path / "cut.avi", keep=0.55, paint=square_on_even_frames)
    (record,) = predict_files(predictor, [video])
    read = len(record.frames)
    assert 3 <= read < 10
    assert record.error is None and record.note.startswith(f"read {read} of 10 frames; the rest could not be decoded")
    assert record.frames == [SampledFrame(i, round(i / 10, 3)) for i in range(read)]
    whole = range(read - 1)  # the last frame read may be decoded from a cut-off JPEG
    assert [f.frame for f in record.faces if f.frame in whole] == [i for i in whole if i % 2 == 0]
    assert all(f.time == round(f.frame / 10, 3) for f in record.faces)
    entries = record.to_dict()["frames"]
    assert [(e["frame"], e["time"]) for e in entries] == [(i, i / 10) for i in range(read)]
    assert [e["faces"] for e in entries][: read - 1] == [1 - i % 2 for i in whole]  # faceless frames: 0

    (strict,) = predict_files(predictor, [video], strict=True)
    assert strict.failed and strict.error == record.note and len(strict.faces) == len(record.faces)

    (sampled,) = predict_files(predictor, [video], every=2)
    assert [f.frame for f in sampled.frames] == list(range(0, read, 2))
    expected = f"read {read} of 10 frames ({len(sampled.frames)} of 5 sampled frames, every 2)"
    assert sampled.note.startswith(expected)


def test_every_sampled_frame_gets_a_csv_row_with_its_time(predictor: Predictor, tmp_path: Path) -> None:
    video = truncated_avi(tmp_path / "whole.avi", frames=6, keep=1.0, fps=4.0, paint=square_on_even_frames)
    (record,) = predict_files(predictor, [video], every=1)
    assert record.note is None and record.error is None  # nothing missing: no note
    out = io.StringIO()
    write_csv([record], out, class_names=predictor.class_names)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [(r["frame"], r["time"], r["face"], r["label"] != "") for r in rows] == [
        ("0", "0.000", "0", True), ("1", "0.250", "", False), ("2", "0.500", "0", True),
        ("3", "0.750", "", False), ("4", "1.000", "0", True), ("5", "1.250", "", False)]
    assert [r["x"] for r in rows if r["face"]] == ["20", "20", "20"]


def test_cli_notes_a_truncated_video_and_exits_nonzero_only_with_strict(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    video = truncated_avi(tmp_path / "cut.avi", keep=0.35)  # noise: the Haar cascade finds no face
    table = tmp_path / "rows.csv"
    args = ["predict", "--checkpoint", str(checkpoint), str(video)]
    assert main([*args, "--json", "--csv", str(table)]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    read = len(record["frames"])
    assert 0 < read < 10 and record["faces"] == [] and record["error"] is None
    assert f"read {read} of 10 frames" in record["note"] and "no face found" in record["note"]
    assert record["frames"] == [{"frame": i, "time": round(i / 10, 3), "faces": 0} for i in range(read)]
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["frame"], r["time"], r["face"]) for r in rows] == [(str(i), f"{i / 10:.3f}", "") for i in range(read)]

    assert main(args) == 0
    captured = capsys.readouterr()
    assert f"cut.avi: no face found in {read} frame" in captured.out and f"read {read} of 10 frames" in captured.out
    assert main([*args, "--strict"]) == 1
    captured = capsys.readouterr()
    assert f"cut.avi: error: read {read} of 10 frames" in captured.err and "1 failed" in captured.err


# --- issue 24: an animated GIF/WebP is read as a short video, not answered from its first frame in silence ----
@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_an_animated_image_is_read_as_a_video_with_frames_times_and_a_note(predictor: Predictor, tmp_path: Path,
                                                                            suffix: str) -> None:
    from PIL import Image

    frames = [Image.fromarray(square_on_even_frames(i)) for i in range(6)]
    clip = tmp_path / f"clip{suffix}"
    frames[0].save(clip, save_all=True, append_images=frames[1:], duration=100, loop=0, **(
        {"lossless": True} if suffix == ".webp" else {}))
    (record,) = predict_files(predictor, [clip], annotate_dir=tmp_path / "drawn")
    assert record.error is None
    assert record.frames == [SampledFrame(i, round(i / 10, 3)) for i in range(6)]
    assert [f.frame for f in record.faces] == [0, 2, 4]
    assert record.note == "an animated image of 6 frames, read as a video (6 frames classified)"
    (copy,) = (tmp_path / "drawn").iterdir()  # an animation too (APNG where GIF is not written)
    with Image.open(copy) as drawn:
        assert drawn.n_frames == 6
    (sampled,) = predict_files(predictor, [clip], every=2)
    assert [f.frame for f in sampled.frames] == [0, 2, 4]
    with pytest.warns(UserWarning, match=r"clip.* is an animated image of 6 frames: its first frame was classified"):
        (faces,) = predictor.predict(clip)
    assert len(faces) == 1


def test_a_cut_animation_and_a_cameras_mpo_jpeg_are_read_as_photos(predictor: Predictor, tmp_path: Path) -> None:
    """A GIF cut short may not let its frames be counted: its first frame is still read, no crash.
    A camera JPEG with a preview frame (MPO) is a photo, not an animation."""
    from PIL import Image

    from fer_nla.image_files import frame_count

    frames = [Image.fromarray(square_on_even_frames(i)) for i in range(4)]
    whole = tmp_path / "whole.gif"
    frames[0].save(whole, save_all=True, append_images=frames[1:], duration=100)
    data = whole.read_bytes()
    uncountable = []
    for cut in range(len(data) // 3, len(data) - 1):
        (tmp_path / f"cut{cut}.gif").write_bytes(data[:cut])
        assert frame_count(tmp_path / f"cut{cut}.gif") >= 1  # never raises
        try:
            with Image.open(tmp_path / f"cut{cut}.gif") as opened:
                opened.n_frames
        except Exception:  # noqa: BLE001 - what Pillow raises counting a cut GIF's frames
            uncountable.append(tmp_path / f"cut{cut}.gif")
    assert uncountable  # the kind exists: Pillow cannot count these
    for path in uncountable[::max(1, len(uncountable) // 3)]:
        (record,) = predict_files(predictor, [path])  # a record, never an exception
        assert record.error is None and record.frames is None  # read as a photo: its first frame
    mpo = tmp_path / "camera.jpg"
    frames[0].convert("RGB").save(mpo, format="MPO", save_all=True, append_images=[frames[1].convert("RGB")])
    with Image.open(mpo) as opened:
        assert opened.format == "MPO" and opened.is_animated
    assert frame_count(mpo) == 1
    (record,) = predict_files(predictor, [mpo])
    assert record.frames is None and [f.frame for f in record.faces] == [None]
