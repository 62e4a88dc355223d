"""The face tracker's rule (fer_nla.predict.tracking): ids kept across frames, crossing faces
not swapped, occlusions bridged, sparse sampling followed, and tracks ended after max_age."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_nla.inference.faces import Box
from fer_nla.predict.tracking import FaceTracker, iou


def test_iou_of_known_boxes():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 10, 10], [0, 0, 0, 0]])
    np.testing.assert_allclose(iou(a, b), [[50 / 150, 0.0, 1.0, 0.0]])


def crossing(*, frames=41, speed=10.0, hide_overlap=False, dy=0):
    """Two 60-px faces crossing head-on along one row: A from x=0 rightwards, B from x=400
    leftwards, ``speed`` px per frame at 25 fps. With ``hide_overlap`` the one behind is not
    detected while their boxes overlap (an occlusion)."""
    for k in range(frames):
        a, b = Box(int(k * speed), 100, 60, 60), Box(int(400 - k * speed), 100 + dy, 60, 60)
        faces = [("A", a), ("B", b)] if k % 2 else [("B", b), ("A", a)]  # the detector's order varies
        if hide_overlap and iou(np.array([a]), np.array([b]))[0, 0] > 0:
            faces = [("A", a)]
        yield k / 25, faces


@pytest.mark.parametrize("hide_overlap", [False, True])
@pytest.mark.parametrize("dy", [0, 12])
def test_two_crossing_faces_keep_their_ids(hide_overlap, dy):
    tracker = FaceTracker()
    seen = {}
    for time, faces in crossing(hide_overlap=hide_overlap, dy=dy):
        ids = tracker.update([box for _, box in faces], time=time)
        for (name, _), track in zip(faces, ids):
            seen.setdefault(track, set()).add(name)
    assert seen == {0: {"A"}, 1: {"B"}} or seen == {0: {"B"}, 1: {"A"}}


def test_a_fast_face_sampled_sparsely_is_followed_by_its_centre():
    tracker = FaceTracker()
    # 0.6 box sides per sample: the boxes overlap by IoU 0.25, under min_iou; matched by the centre
    ids = [tracker.update([Box(24 * k, 50, 40, 40)], time=k * 0.4)[0] for k in range(6)]
    assert ids == [0] * 6


def test_a_track_ends_after_max_age_and_its_id_is_not_reused():
    tracker = FaceTracker(max_age=1.0)
    assert tracker.update([Box(0, 0, 50, 50)], time=0.0) == [0]
    assert tracker.update([], time=0.9) == []
    assert tracker.update([Box(0, 0, 50, 50)], time=0.95) == [0]  # bridged: unseen 0.95 s
    assert tracker.update([], time=2.0) == []
    assert tracker.update([Box(0, 0, 50, 50)], time=2.1) == [1]  # unseen 1.15 s: a new track


def test_a_new_face_gets_a_new_id_and_far_faces_are_not_matched():
    tracker = FaceTracker()
    assert tracker.update([Box(0, 0, 50, 50)], time=0) == [0]
    assert tracker.update([Box(300, 300, 50, 50), Box(2, 0, 50, 50)], time=0.04) == [1, 0]


def test_options_and_time_order_are_checked():
    with pytest.raises(ValueError, match="min_iou"):
        FaceTracker(min_iou=1.5)
    with pytest.raises(ValueError, match="max_age"):
        FaceTracker(max_age=0)
    with pytest.raises(ValueError, match="max_shift"):
        FaceTracker(max_shift=-1)
    tracker = FaceTracker()
    tracker.update([Box(0, 0, 5, 5)], time=1.0)
    with pytest.raises(ValueError, match="time order"):
        tracker.update([Box(0, 0, 5, 5)], time=0.5)


PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"


def face_patch(name: str, side: int = 96) -> np.ndarray:
    """The face of a test photo with some of its surroundings, as a ``side`` x ``side`` RGB patch."""
    boxes = json.loads((PHOTOS / "faces.json").read_text())[name]["faces"]
    x, y, w, h = boxes[0]
    pad = max(w, h) // 3
    image = Image.open(PHOTOS / name).convert("RGB")
    return np.asarray(image.crop((x - pad, y - pad, x + max(w, h) + pad, y + max(w, h) + pad)).resize((side, side)))


def crossing_clip(path: Path, *, frames: int = 24, fps: float = 8.0, flicker: bool = False) -> Path:
    """Two real faces crossing a 480x200 grey frame head-on, the astronaut left to right in front
    of Obama going right to left (hidden behind her while they overlap), as an MJPG AVI. With
    ``flicker`` the left face is Luis Pedro's on odd frames (another expression in the same
    place), so the left track's probabilities change from frame to frame."""
    astronaut, obama = face_patch("frontal_astronaut.jpg"), face_patch("frontal_obama.jpg")
    other = face_patch("frontal_luispedro.jpg")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (480, 200))
    for k in range(frames):
        frame = np.full((200, 480, 3), 128, dtype=np.uint8)
        left = round(10 + k * (480 - 20 - 96) / (frames - 1))
        right = 480 - 96 - left
        frame[50:146, right:right + 96] = obama
        frame[50:146, left:left + 96] = other if flicker and k % 2 else astronaut  # in front
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.mark.slow
def test_two_real_faces_crossing_in_a_video_keep_their_track_ids(tmp_path: Path) -> None:
    from fer_nla.predict import Predictor, predict_files

    (record,) = predict_files(Predictor(), [crossing_clip(tmp_path / "cross.avi")])
    assert record.error is None and len(record.frames) == 24
    start = {f.track_id: f.box.x for f in record.faces if f.frame == 0}
    end = {f.track_id: f.box.x for f in record.faces if f.frame == 23}
    assert sorted(start) == sorted(end) == [0, 1]  # both faces found at both ends, no third track
    assert all((start[t] < 240) == (end[t] > 240) for t in (0, 1))  # each id crossed to the other side
    assert {f.track_id for f in record.faces} == {0, 1}
    rows = list(csv.DictReader(io.StringIO(_csv(record))))
    assert {row["track"] for row in rows} == {"0", "1"}
    assert record.to_dict()["faces"][0]["track_id"] in (0, 1)


def _csv(record) -> str:  # record: a FileRecord
    from fer_nla.predict import write_csv

    out = io.StringIO()
    write_csv([record], out, class_names=list(record.faces[0].probs))
    return out.getvalue()


def test_records_convert_to_a_dataframe_with_the_csv_columns(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    from fer_nla.inference.faces import FacePrediction
    from fer_nla.predict import Predictions, write_csv
    from fer_nla.predict.records import FileRecord, SampledFrame

    names = ["neutral", "happiness"]
    face = FacePrediction.from_probs(Box(1, 2, 30, 40), np.array([0.25, 0.75]), class_names=names, frame=2,
                                     time=0.08, score=0.9, track_id=3)
    video = FileRecord("clip.mp4", faces=[face], frames=[SampledFrame(0, 0.0), SampledFrame(2, 0.08)])
    records = Predictions([video, FileRecord("cat.jpg", note="no face found"), FileRecord("gone.jpg", error="missing")])
    table = records.to_pandas()
    assert list(table.columns) == ["file", "frame", "time", "face", "track", "x", "y", "w", "h", "score", "label",
                                   "p_neutral", "p_happiness", "error", "note"]
    assert table["file"].tolist() == ["clip.mp4", "clip.mp4", "cat.jpg", "gone.jpg"]
    assert table["frame"].tolist()[:2] == [0, 2] and table["frame"].isna().tolist() == [False, False, True, True]
    row = table.iloc[1]
    assert (row["track"], row["x"], row["h"], row["label"], row["p_happiness"]) == (3, 1, 40, "happiness", 0.75)
    assert str(table["track"].dtype) == "Int64" and table["time"].tolist()[:2] == [0.0, 0.08]
    assert table["error"].tolist()[3] == "missing" and table["note"].tolist()[2] == "no face found"
    write_csv(records, tmp_path / "out.csv", class_names=names)
    read = pd.read_csv(tmp_path / "out.csv")
    assert read.shape == table.shape and list(read.columns) == list(table.columns)
    assert read["p_happiness"].tolist()[1] == 0.75 and read["track"].tolist()[1] == 3


def test_to_pandas_without_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from fer_nla.errors import InputError
    from fer_nla.predict import Predictions

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pandas" else real(name, *a))
    with pytest.raises(InputError, match=r'Predictions.to_pandas\(\) needs pandas.*pip install "fer-nla\[pandas\]"'):
        Predictions([]).to_pandas()
