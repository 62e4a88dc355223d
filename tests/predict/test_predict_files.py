"""Files, folders and videos: one record per file, failures reported, annotation and CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import compose_photo, iou, reference_probs
from fer_nla.cli import main
from fer_nla.labels import EMOTIONS
from fer_nla.predict import Predictor, predict_files
from fer_nla.predict.annotate import BOX_COLOR


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> Predictor:
    return Predictor.from_checkpoint(checkpoint, device="cpu", batch_size=2)


def _face_folder(root: Path) -> dict[str, np.ndarray]:
    """Crops in a folder tree with a broken PNG, a text file and a hidden file; returns the good ones."""
    rng = np.random.default_rng(7)
    good = {}
    for rel in ("a.png", "b.jpg", "sub/c.png", "sub/deeper/d.bmp"):
        pixels = rng.integers(0, 256, size=(56, 48, 3), dtype=np.uint8)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(root / rel)
        good[str(root / rel)] = np.asarray(Image.open(root / rel).convert("RGB"))  # as decoded (JPEG is lossy)
    (root / "broken.png").write_bytes((root / "a.png").read_bytes()[:60])
    (root / "sub" / "notes.txt").write_text("not an image\n")
    (root / ".DS_Store").write_bytes(b"\x00\x01")
    return good


def test_a_folder_is_reported_file_by_file_and_the_good_files_are_predicted(
    predictor: Predictor, tiny_model: torch.nn.Module, tmp_path: Path
) -> None:
    good = _face_folder(tmp_path)
    records = predict_files(predictor, [tmp_path], faces_cropped=True)
    by_file = {r.file: r for r in records}
    assert sorted(by_file) == sorted([*good, str(tmp_path / "broken.png"), str(tmp_path / "sub" / "notes.txt")])
    assert "truncated or damaged" in by_file[str(tmp_path / "broken.png")].error
    assert "not an image or video" in by_file[str(tmp_path / "sub" / "notes.txt")].error
    assert by_file[str(tmp_path / "broken.png")].faces == []
    expected = reference_probs(tiny_model, list(good.values()))
    for row, (name, pixels) in zip(expected, good.items()):
        record = by_file[name]
        assert record.error is None and len(record.faces) == 1
        assert tuple(record.faces[0].box) == (0, 0, 48, 56)
        np.testing.assert_allclose([record.faces[0].probs[n] for n in EMOTIONS], row, atol=1e-5)


def test_cli_exit_status_json_and_csv_for_a_folder_with_failures(checkpoint: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "faces"
    good = _face_folder(folder)
    table = tmp_path / "out" / "preds.csv"
    drawn = tmp_path / "drawn"
    status = main(["predict", "--checkpoint", str(checkpoint), "--faces-cropped", "--json", "--csv", str(table),
                   "--annotate", str(drawn), str(folder), str(tmp_path / "missing.jpg")])
    captured = capsys.readouterr()
    assert status == 1
    records = json.loads(captured.out)
    assert len(records) == len(good) + 3  # + broken, notes.txt, missing path
    assert [r["file"] for r in records if r["error"] is None] == sorted(good)
    assert {r["file"] for r in records if r["error"]} == {str(folder / "broken.png"), str(folder / "sub/notes.txt"),
                                                        str(tmp_path / "missing.jpg")}
    for r in records:
        assert set(r) == {"file", "faces", "error", "note"}
        for face in r["faces"]:
            assert set(face) == {"box", "score", "label", "probs"} and face["label"] == max(face["probs"], key=face["probs"].get)
    assert "7 inputs, 4 faces, 3 failed" in captured.err
    written = sorted(p.relative_to(drawn).as_posix() for p in drawn.rglob("*") if p.is_file())
    assert written == ["faces/a.png", "faces/b.jpg", "faces/sub/c.png", "faces/sub/deeper/d.bmp"]
    assert Image.open(drawn / "faces/a.png").size == (48, 56)
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 7
    by_file = {row["file"]: row for row in rows}
    for r in records:
        row = by_file[r["file"]]
        assert row["error"] == (r["error"] or "")
        for face in r["faces"]:
            assert [int(row[k]) for k in "xywh"] == face["box"] and row["label"] == face["label"]
            assert all(abs(float(row[f"p_{n}"]) - face["probs"][n]) < 1e-6 for n in EMOTIONS)


def test_empty_folders_and_images_without_faces(checkpoint: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["predict", "--checkpoint", str(checkpoint), "--json", str(tmp_path / "empty")]) == 1
    (record,) = json.loads(capsys.readouterr().out)
    assert record["faces"] == [] and "holds no files" in record["error"]

    Image.fromarray(np.full((240, 320, 3), 200, np.uint8)).save(tmp_path / "wall.png")
    assert main(["predict", "--checkpoint", str(checkpoint), "--json", str(tmp_path / "wall.png")]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record == {"file": str(tmp_path / "wall.png"), "faces": [], "error": None, "note": "no face found"}
    assert main(["predict", "--checkpoint", str(checkpoint), "--json", "--no-face-is-error", str(tmp_path / "wall.png")]) == 1
    assert json.loads(capsys.readouterr().out)[0]["error"] == "no face found"


def test_batches_across_files_give_the_same_probabilities(predictor: Predictor, tmp_path: Path) -> None:
    _face_folder(tmp_path)
    one = predict_files(Predictor(predictor.backend, batch_size=1), [tmp_path], faces_cropped=True)
    many = predict_files(Predictor(predictor.backend, batch_size=3), [tmp_path], faces_cropped=True)
    assert [r.file for r in one] == [r.file for r in many]
    for a, b in zip(one, many):
        assert [f.box for f in a.faces] == [f.box for f in b.faces]
        for fa, fb in zip(a.faces, b.faces):
            assert all(abs(fa.probs[n] - fb.probs[n]) < 1e-5 for n in EMOTIONS)


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> None:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()


def test_video_every_kth_frame_with_frames_in_records_and_annotated_copies(
    predictor: Predictor, frontal_faces: list[np.ndarray], tmp_path: Path
) -> None:
    frames, placements = [], []
    for i in range(10):  # the faces drift by a few pixels per frame
        photo, placed = compose_photo(frontal_faces[:3], sizes=[104, 112, 120], canvas=(280, 680), gap=50 + 3 * i, seed=i)
        frames.append(photo)
        placements.append(placed)
    video = tmp_path / "clip.mp4"
    _write_video(video, frames)
    Image.fromarray(frames[0]).save(tmp_path / "still.png")
    out = tmp_path / "annotated"
    records = predict_files(predictor, [video, tmp_path / "still.png"], every=4, annotate_dir=out)
    clip, still = records
    assert clip.error is None and still.error is None
    assert sorted({f.frame for f in clip.faces}) == [0, 4, 8]
    for frame in (0, 4, 8):
        boxes = [tuple(f.box) for f in clip.faces if f.frame == frame]
        assert len(boxes) == 3
        assert all(max(iou(b, p) for p in placements[frame]) > 0.5 for b in boxes)
    assert len(still.faces) == 3 and all(f.frame is None for f in still.faces)

    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    assert capture.isOpened() and capture.get(cv2.CAP_PROP_FPS) == pytest.approx(2.5)
    written = 0
    while capture.read()[0]:
        written += 1
    assert written == 3
    drawn = np.asarray(Image.open(out / "still.png"))
    assert drawn.shape == frames[0].shape
    x, y, w, h = still.faces[0].box
    np.testing.assert_array_equal(drawn[y + h // 2, x], BOX_COLOR)  # the box's left edge
    np.testing.assert_array_equal(drawn[y + h // 2, x + w // 2], frames[0][y + h // 2, x + w // 2])  # inside untouched


def test_videos_that_cannot_be_opened_are_failed_records(predictor: Predictor, tmp_path: Path) -> None:
    (tmp_path / "bad.mp4").write_bytes(b"garbage" * 20)
    (record,) = predict_files(predictor, [tmp_path / "bad.mp4"])
    assert record.faces == [] and "cannot be opened as a video" in record.error
    with pytest.raises(ValueError, match="every"):
        predict_files(predictor, [tmp_path / "bad.mp4"], every=0)
