"""Face boxes: the minimum face size (issue 12, case 2), clipping, empty boxes, non-maximum
suppression and detector scores (case 3). A stand-in classifier and detectors, drawn images."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_nla.errors import InputError
from fer_nla.predict import Box, HaarCascadeDetector, Predictor, Preprocess, ScoredBox, predict_files, write_csv
from fer_nla.predict.detectors import DEFAULT_MIN_FACE_SIZE, NMS_IOU, box_iou, non_max_suppression

IMAGE = np.full((100, 100, 3), 150, np.uint8)


class BrightnessBackend:
    """A stand-in classifier: "bright" when a face's mean level is over half, "dark" otherwise."""

    class_names = ["dark", "bright"]
    preprocess = Preprocess(image_size=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))

    def logits(self, batch: np.ndarray) -> np.ndarray:
        level = batch.mean(axis=(1, 2, 3))
        return np.stack([(0.5 - level) * 10, (level - 0.5) * 10], axis=1)


class FixedDetector:
    """A stand-in detector returning the same boxes (of any accepted form) for every image."""

    def __init__(self, boxes: list[object]) -> None:
        self.boxes = boxes

    def detect(self, image_rgb: np.ndarray) -> list[object]:
        return list(self.boxes)


def _predictor(boxes: list[object] | None = None, **options: object) -> Predictor:
    return Predictor(BrightnessBackend(), detector=FixedDetector(boxes or []), **options)  # type: ignore[arg-type]


def drawn_face(size: int) -> np.ndarray:
    """A cartoon face (skin ellipse, eyes and brows, nose, mouth) that OpenCV's Haar cascade finds."""
    img = np.full((size, size, 3), 90, np.uint8)
    c = size // 2
    cv2.ellipse(img, (c, c), (int(size * .33), int(size * .43)), 0, 0, 360, (200, 180, 170), -1)
    for ex in (c - int(size * .14), c + int(size * .14)):
        cv2.ellipse(img, (ex, c - int(size * .08)), (int(size * .07), int(size * .035)), 0, 0, 360, (30, 30, 30), -1)
        cv2.rectangle(img, (ex - int(size * .09), c - int(size * .17)), (ex + int(size * .09), c - int(size * .15)), (40, 40, 40), -1)
    cv2.ellipse(img, (c, c + int(size * .05)), (int(size * .03), int(size * .08)), 0, 0, 360, (150, 130, 120), -1)
    cv2.ellipse(img, (c, c + int(size * .22)), (int(size * .12), int(size * .03)), 0, 0, 360, (60, 30, 30), -1)
    return cv2.GaussianBlur(img, (5, 5), 0)


# -- case 2: the minimum face size ---------------------------------------------------------------
def test_a_cropped_face_below_the_minimum_size_is_refused() -> None:
    predictor = _predictor()
    assert predictor.min_face_size == DEFAULT_MIN_FACE_SIZE == 16
    with pytest.raises(InputError, match=r"face 1x1 px is smaller than the minimum face size 16 px \(--min-face-size\)"):
        predictor.predict(np.full((1, 1, 3), 200, np.uint8), faces_cropped=True)  # was "anger 0.37"
    with pytest.raises(InputError, match=r"face 40x15 px is smaller than the minimum face size 16 px"):
        predictor.predict(np.zeros((15, 40, 3), np.uint8), faces_cropped=True)
    (faces,) = predictor.predict(np.full((16, 16, 3), 200, np.uint8), faces_cropped=True)
    assert [(tuple(f.box), f.label, f.score) for f in faces] == [((0, 0, 16, 16), "bright", None)]
    (faces,) = _predictor(min_face_size=1).predict(np.full((1, 1, 3), 200, np.uint8), faces_cropped=True)
    assert tuple(faces[0].box) == (0, 0, 1, 1)
    with pytest.raises(InputError, match="min_face_size must be a whole number of pixels"):
        _predictor(min_face_size=0)


def test_predict_files_fails_only_the_too_small_crop(tmp_path: Path) -> None:
    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(tmp_path / "dot.png")
    Image.fromarray(np.full((24, 20, 3), 200, np.uint8)).save(tmp_path / "face.png")
    tiny, face = predict_files(_predictor(), [tmp_path / "dot.png", tmp_path / "face.png"], faces_cropped=True)
    assert tiny.faces == [] and tiny.error is not None
    assert tiny.error.startswith("face 1x1 px is smaller than the minimum face size 16 px (--min-face-size)")
    assert face.error is None and [(tuple(f.box), f.label) for f in face.faces] == [((0, 0, 20, 24), "bright")]


def test_the_cli_refuses_a_1x1_cropped_face_and_min_face_size_lowers_the_bar(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fer_nla.cli import main

    Image.fromarray(np.full((1, 1, 3), 200, np.uint8)).save(tmp_path / "dot.png")
    args = ["predict", "--checkpoint", str(checkpoint), str(tmp_path / "dot.png"), "--faces-cropped", "--json"]
    assert main(args) == 1
    (record,) = json.loads(capsys.readouterr().out)
    assert record["faces"] == [] and "face 1x1 px is smaller than the minimum face size 16 px" in record["error"]
    assert main([*args, "--min-face-size", "1"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["error"] is None and [(f["box"], f["score"]) for f in record["faces"]] == [([0, 0, 1, 1], None)]
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--min-face PX haar detector: smallest face side it searches for" in help_text
    assert "--min-face-size PX smallest face classified" in help_text


def test_detector_boxes_below_the_minimum_size_are_dropped_and_counted() -> None:
    predictor = _predictor([Box(0, 0, 10, 10), Box(30, 30, 40, 40), Box(70, 0, 30, 15)])
    found = predictor.detect(IMAGE)
    assert found.faces == [ScoredBox(Box(30, 30, 40, 40), None)]
    assert found.dropped == {"empty": 0, "small": 2, "duplicate": 0}
    assert [len(f) for f in _predictor([Box(0, 0, 10, 10)], min_face_size=8).predict(IMAGE)] == [1]


# -- case 3: clipping, empty boxes, duplicates, scores -------------------------------------------
def test_boxes_are_clipped_and_boxes_outside_the_image_dropped() -> None:
    predictor = _predictor([Box(500, 500, 20, 20), Box(-30, -30, 20, 20), Box(100, 10, 30, 30), Box(-10, -10, 50, 50),
                            Box(80, 60, 40.4, 60.6)])  # type: ignore[arg-type]  # float coordinates, as DNN detectors give
    found = predictor.detect(IMAGE)
    assert [f.box for f in found.faces] == [Box(0, 0, 40, 40), Box(80, 60, 20, 40)]  # before: 1-pixel "faces" too
    assert found.dropped == {"empty": 3, "small": 0, "duplicate": 0}
    assert [[tuple(f.box) for f in faces] for faces in predictor.predict(IMAGE)] == [[(0, 0, 40, 40), (80, 60, 20, 40)]]


def test_the_same_face_boxed_twice_keeps_the_higher_scored_box() -> None:
    assert NMS_IOU == 0.4
    twice = [(Box(10, 10, 50, 50), 0.9), ScoredBox(Box(14, 14, 50, 50), 2.5)]
    assert box_iou(Box(10, 10, 50, 50), Box(14, 14, 50, 50)) == pytest.approx(2116 / 2884)  # 0.73
    (faces,) = _predictor(twice).predict(IMAGE)
    assert [(tuple(f.box), f.score) for f in faces] == [((14, 14, 50, 50), 2.5)]
    assert _predictor(twice).detect(IMAGE).dropped == {"empty": 0, "small": 0, "duplicate": 1}
    assert len(_predictor(twice, nms_iou=0.8).predict(IMAGE)[0]) == 2  # IoU 0.73 is under a stated 0.8
    neighbours = [(Box(0, 0, 40, 40), 1.0), (Box(30, 0, 40, 40), 2.0)]  # IoU 0.14: two faces side by side
    assert [tuple(f.box) for f in _predictor(neighbours).predict(IMAGE)[0]] == [(0, 0, 40, 40), (30, 0, 40, 40)]
    unscored = [Box(10, 10, 40, 40), Box(8, 8, 46, 46)]  # a detector without scores: the larger box stays
    assert [(tuple(f.box), f.score) for f in _predictor(unscored).predict(IMAGE)[0]] == [((8, 8, 46, 46), None)]
    assert non_max_suppression([ScoredBox(Box(0, 0, 9, 9), None), ScoredBox(Box(0, 0, 9, 9), 0.1)]) == [1]
    assert _predictor([(5, 5, 50, 50, 0.7)]).detect(IMAGE).faces == [ScoredBox(Box(5, 5, 50, 50), 0.7)]
    with pytest.raises(TypeError, match=r"FixedDetector\.detect returned 'oops'"):
        _predictor(["oops"]).detect(IMAGE)


def test_haar_faces_carry_their_level_weight_as_score() -> None:
    photo = np.full((200, 400, 3), 90, np.uint8)
    photo[20:180, 20:180] = drawn_face(160)
    photo[30:170, 240:380] = drawn_face(140)
    found = HaarCascadeDetector().detect(photo)
    assert len(found) == 2 and all(isinstance(f, ScoredBox) for f in found)
    assert [f.box.x < 200 for f in found] == [True, False]  # reading order
    assert all(isinstance(f.score, float) and f.score > 1.0 for f in found)  # the last stage's sum, ~8 here
    (faces,) = Predictor(BrightnessBackend(), detector="haar").predict(photo)
    assert [f.score for f in faces] == [f.score for f in found]
    assert [f.to_dict()["score"] for f in faces] == [f.score for f in found]


def test_a_video_frame_boxed_twice_gives_one_face_per_frame_with_its_score(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (96, 96))
    for level in (60, 120, 200):
        writer.write(np.full((96, 96, 3), level, np.uint8))
    writer.release()
    twice = [(Box(20, 20, 50, 50), 3.0), (Box(22, 21, 50, 50), 1.0)]
    (record,) = predict_files(_predictor(twice), [video])
    assert record.error is None
    assert [(f.frame, tuple(f.box), f.score) for f in record.faces] == [(i, (20, 20, 50, 50), 3.0) for i in range(3)]
    out = io.StringIO()
    write_csv([record], out, class_names=["dark", "bright"])
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    header = list(rows[0])
    assert header[header.index("h") + 1] == "score" and [r["score"] for r in rows] == ["3"] * 3


def test_usage_errors_stop_before_any_file_is_read(tmp_path, checkpoint, capsys):
    from fer_nla.cli import main

    image = tmp_path / "a.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(image)
    assert main(["predict", "--checkpoint", str(checkpoint), str(image), "--detector", "nosuch"]) == 2
    assert "unknown face detector 'nosuch'" in capsys.readouterr().err
    (tmp_path / "out").mkdir()
    assert main(["predict", "--checkpoint", str(checkpoint), str(image), "--csv", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "is a folder: name the CSV file" in err and "a.png:" not in err
