"""The RetinaFace detector shipped in the package: real photos, scores, defaults, Haar by name."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_nla.errors import InputError
from fer_nla.predict import Box, HaarCascadeDetector, Predictor, available_detectors, build_detector, run_detector
from fer_nla.predict import detectors
from fer_nla.predict.cnn_detectors import NMS_IOU, RetinaFaceDetector, decode, priors, shipped_retinaface

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"
TRUTH = json.loads((PHOTOS / "faces.json").read_text())


def photo(name: str) -> np.ndarray:
    with Image.open(PHOTOS / name) as image:
        return np.asarray(image.convert("RGB"))


def best_iou(box: Box, truth: list[list[int]]) -> float:
    return max((detectors.box_iou(box, Box(*t)) for t in truth), default=0.0)


@pytest.fixture(scope="module")
def retinaface() -> RetinaFaceDetector:
    return build_detector("retinaface", threads=1)  # type: ignore[return-value]


@pytest.mark.parametrize("name", ["group.jpg", "turned_camera.jpg", "sunglasses_biden.jpg", "frontal_luispedro.jpg"])
def test_every_face_of_the_photos_is_found_once_with_its_box(retinaface: RetinaFaceDetector, name: str) -> None:
    truth = TRUTH[name]["faces"]
    faces = run_detector(retinaface, photo(name)).faces
    assert len(faces) == len(truth)  # 14 in the group photo: 30 to 128 px, turned, sunglasses
    assert all(best_iou(face.box, truth) > 0.6 for face in faces), [(f.box, best_iou(f.box, truth)) for f in faces]
    matched = {max(range(len(truth)), key=lambda i: detectors.box_iou(f.box, Box(*truth[i]))) for f in faces}
    assert len(matched) == len(truth)  # one box per face


@pytest.mark.parametrize("name", ["noface_coffee.jpg", "noface_cat.jpg"])
def test_photos_without_a_face_give_no_box(retinaface: RetinaFaceDetector, name: str) -> None:
    assert TRUTH[name]["faces"] == []
    assert retinaface.detect(photo(name)) == []


def test_rows_hold_float_boxes_and_face_probabilities_highest_first(retinaface: RetinaFaceDetector) -> None:
    rows = retinaface.detect(photo("group.jpg"))
    assert len(rows) == 14 and all(len(row) == 5 and all(isinstance(v, float) for v in row) for row in rows)
    scores = [row[4] for row in rows]
    assert all(0.8 < s <= 1.0 for s in scores) and scores == sorted(scores, reverse=True)
    faces = run_detector(retinaface, photo("group.jpg")).faces
    assert all(isinstance(f.score, float) and 0.0 <= f.score <= 1.0 for f in faces)
    strict = RetinaFaceDetector(score_threshold=0.999, threads=1).detect(photo("group.jpg"))
    assert 0 < len(strict) < len(rows) and all(row[4] > 0.999 for row in strict)


def test_large_images_are_detected_at_detect_side_and_boxes_map_back(retinaface: RetinaFaceDetector) -> None:
    image = photo("frontal_astronaut.jpg")
    big = np.asarray(Image.fromarray(image).resize((2048, 2048), Image.BICUBIC))
    small = RetinaFaceDetector(threads=1, detect_side=256)
    (row,) = small.detect(big)
    expected = Box(*(v * 4 for v in TRUTH["frontal_astronaut.jpg"]["faces"][0]))
    assert detectors.box_iou(Box(*(round(v) for v in row[:4])), expected) > 0.7


def test_retinaface_is_the_default_and_haar_stays_selectable_by_name() -> None:
    from fer_nla.cli import build_parser

    assert detectors.DEFAULT_DETECTOR == "retinaface"
    assert {"haar", "retinaface"} <= set(available_detectors())
    assert isinstance(build_detector(), RetinaFaceDetector)
    assert inspect.signature(Predictor).parameters["detector"].default == "retinaface"
    args = build_parser().parse_args(["predict", "x.jpg"])
    assert args.detector == detectors.DEFAULT_DETECTOR
    assert build_parser().parse_args(["predict", "x.jpg", "--detector", "haar"]).detector == "haar"
    haar = build_detector("haar")
    assert isinstance(haar, HaarCascadeDetector)
    (face,) = run_detector(haar, photo("frontal_astronaut.jpg")).faces
    assert best_iou(face.box, TRUTH["frontal_astronaut.jpg"]["faces"]) > 0.6


def test_predictor_with_the_default_detector_classifies_every_face(checkpoint: Path) -> None:
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu", detector_options={"threads": 1})
    assert isinstance(predictor.detector, RetinaFaceDetector)
    (faces,) = predictor.predict(PHOTOS / "group.jpg")
    assert len(faces) == 14
    assert all(abs(sum(f.probs.values()) - 1) < 1e-4 and 0 < f.score <= 1 for f in faces)


def test_wrong_options_and_files_raise_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"score_threshold must lie in \[0, 1\].*1.5"):
        RetinaFaceDetector(score_threshold=1.5)
    with pytest.raises(InputError, match="detect_side must be 32 px or more.*8"):
        RetinaFaceDetector(detect_side=8)
    with pytest.raises(InputError, match="threads must be 1 or more.*0"):
        RetinaFaceDetector(threads=0)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not an onnx file")
    with pytest.raises(InputError, match="cannot load the RetinaFace model .*broken.onnx.*--detector haar"):
        RetinaFaceDetector(model=broken)
    assert shipped_retinaface().stat().st_size == 1_736_694  # the shipped file, not a download


def test_priors_and_decoding_follow_the_retinaface_layout() -> None:
    anchors = priors(480, 640)
    assert anchors.shape == ((60 * 80 + 30 * 40 + 15 * 20) * 2, 4)
    np.testing.assert_allclose(anchors[:3], [[4 / 640, 4 / 480, 16 / 640, 16 / 480],
                                             [4 / 640, 4 / 480, 32 / 640, 32 / 480],
                                             [12 / 640, 4 / 480, 16 / 640, 16 / 480]], rtol=1e-6)
    loc = np.zeros((len(anchors), 4), dtype=np.float32)
    loc[1] = [1.0, -1.0, np.log(2) / 0.2, 0.0]  # centre moved by 0.1 prior sides, width doubled
    scores = np.zeros(len(anchors), dtype=np.float32)
    scores[[0, 1]] = [0.9, 0.95]
    boxes, kept = decode(loc, scores, height=480, width=640, score_threshold=0.5)
    np.testing.assert_allclose(boxes, [[-4, -4, 16, 16], [4 + 3.2 - 32, 4 - 3.2 - 16, 64, 32]], atol=1e-4)
    np.testing.assert_allclose(kept, [0.9, 0.95])
    with pytest.raises(ValueError, match="expected 12600"):
        decode(loc[:-2], scores[:-2], height=480, width=640, score_threshold=0.5)
    assert NMS_IOU == detectors.NMS_IOU


# --- issue 24: a small face in a large photo is found by default; --max-side sets the finest pass ---------------
def small_face_in_a_large_photo(face_width: int) -> tuple[np.ndarray, Box]:
    """An 8000x6000 grey photo holding one real face (frontal_obama.jpg's) ``face_width`` px wide;
    the face's expected box."""
    image = photo("frontal_obama.jpg")
    x, y, w, h = TRUTH["frontal_obama.jpg"]["faces"][0]
    m = w // 2
    crop = Image.fromarray(image[y - m // 2:y + h + m, x - m:x + w + m])
    k = face_width / w
    small = np.asarray(crop.resize((round(crop.width * k), round(crop.height * k)), Image.LANCZOS))
    canvas = np.full((6000, 8000, 3), 128, np.uint8)
    canvas[3000:3000 + small.shape[0], 5000:5000 + small.shape[1]] = small
    return canvas, Box(round(5000 + m * k), round(3000 + m // 2 * k), round(w * k), round(h * k))


def test_a_120px_face_in_an_8000x6000_photo_is_found_by_default(retinaface: RetinaFaceDetector) -> None:
    canvas, expected = small_face_in_a_large_photo(120)
    (face,) = run_detector(retinaface, canvas).faces  # max_side 1600: the fine pass sees it at 24 px
    assert detectors.box_iou(face.box, expected) > 0.6, (face.box, expected)
    assert run_detector(retinaface, canvas, max_side=960).faces == []  # one coarse pass: 14 px, under its priors
    (again,) = Predictor(detector=retinaface).detect(canvas).faces
    assert again.box == face.box


def test_the_fine_pass_runs_only_on_images_well_over_detect_side(retinaface: RetinaFaceDetector,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[tuple[int, int]] = []
    original = RetinaFaceDetector._pass

    def counted(self, image, scale):
        sizes.append((round(image.shape[1] / scale), round(image.shape[0] / scale)))
        return original(self, image, scale)

    monkeypatch.setattr(RetinaFaceDetector, "_pass", counted)
    for width in (960, 1400, 1600):
        retinaface.detect(np.full((width * 3 // 4, width, 3), 128, np.uint8))
    assert sizes == [(960, 720), (960, 720), (960, 720), (1600, 1200)]


# --- issue 24: face crops (FER2013's 48-px faces, tight aligned crops) are found, or the note says what to pass ---
def test_a_48px_gray_face_crop_is_found_as_a_face(retinaface: RetinaFaceDetector) -> None:
    image = photo("frontal_obama.jpg")
    x, y, w, h = TRUTH["frontal_obama.jpg"]["faces"][0]
    tight = Image.fromarray(image[y:y + h, x:x + w]).convert("L")  # the face fills it: no context
    crop48 = np.asarray(tight.resize((48, 48), Image.BILINEAR).convert("RGB"))
    assert retinaface.detect(crop48) == []  # as the detector sees it: nothing
    (face,) = run_detector(retinaface, crop48).faces  # tried again enlarged and framed
    assert face.box.w >= 36 and face.box.h >= 36 and face.box.x + face.box.w <= 48 and face.box.y + face.box.h <= 48
    aligned = np.asarray(Image.fromarray(image[y:y + h, x:x + w]).resize((224, 224), Image.BILINEAR))
    assert len(run_detector(retinaface, aligned).faces) == 1


def test_a_small_image_without_a_face_names_faces_cropped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fer_nla.cli import main

    Image.fromarray(np.full((48, 48), 128, np.uint8)).save(tmp_path / "blank.png")
    assert main(["predict", str(tmp_path / "blank.png"), "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["note"] == ("no face found; if this 48x48 image is a face crop, pass --faces-cropped to classify "
                              "it whole")
