"""Faces found in composed photos of real FERPlus faces, large images, pluggable detectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import compose_photo, iou, pil_crop_with_margin, reference_probs
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS
from fer_nla.predict import Box, HaarCascadeDetector, Predictor, available_detectors, build_detector

SIZES = [96, 128, 104, 120, 112, 100]


@pytest.fixture(scope="module")
def predictor(checkpoint: Path) -> Predictor:
    return Predictor.from_checkpoint(checkpoint, device="cpu")


def test_every_face_of_a_composed_photo_is_found_and_classified(
    predictor: Predictor, frontal_faces: list[np.ndarray], tiny_model: torch.nn.Module
) -> None:
    photo, placed = compose_photo(frontal_faces, sizes=SIZES, canvas=(440, 760))
    (faces,) = predictor.predict(photo)
    assert len(faces) == len(placed)
    matched = [max(placed, key=lambda p: iou(tuple(f.box), p)) for f in faces]
    assert matched == placed  # one detection per pasted face, in reading order
    assert min(iou(tuple(f.box), p) for f, p in zip(faces, matched)) > 0.6
    expected = reference_probs(tiny_model, [pil_crop_with_margin(photo, tuple(f.box), predictor.margin) for f in faces])
    got = np.array([[f.probs[name] for name in EMOTIONS] for f in faces])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert [f.label for f in faces] == [EMOTIONS[i] for i in expected.argmax(1)]
    assert all(f.frame is None for f in faces)
    assert all(isinstance(f.score, float) and 0.8 < f.score <= 1 for f in faces)  # RetinaFace's face probability


def test_a_very_large_photo_is_detected_downsized_and_boxes_map_back(
    checkpoint: Path, frontal_faces: list[np.ndarray]
) -> None:
    photo, placed = compose_photo(frontal_faces[:4], sizes=SIZES[:4], canvas=(260, 800))
    scale = 6
    big = np.asarray(Image.fromarray(photo).resize((800 * scale, 260 * scale), Image.BILINEAR))
    seen: list[tuple[int, ...]] = []

    class Recording:
        """A pluggable detector object: records what it is given, delegates to Haar."""

        def __init__(self) -> None:
            self.haar = HaarCascadeDetector()

        def detect(self, image_rgb: np.ndarray) -> list[Box]:
            seen.append(image_rgb.shape)
            return self.haar.detect(image_rgb)

    predictor = Predictor.from_checkpoint(checkpoint, device="cpu", detector=Recording(), max_side=1400)
    (faces,) = predictor.predict(big)
    assert seen == [(455, 1400, 3)]  # 4800x1560 detected at 1400x455
    assert len(faces) == 4
    for face in faces:
        best = max(iou(tuple(face.box), tuple(v * scale for v in p)) for p in placed)
        assert best > 0.6, (face.box, placed)
    assert all(face.box.w > 96 * scale * 0.6 for face in faces)  # original pixels, not detection pixels


def test_no_face_gives_an_empty_list_and_inputs_of_every_kind(predictor: Predictor, tmp_path: Path) -> None:
    noise = np.random.default_rng(1).integers(0, 256, size=(240, 320, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    gray = np.full((200, 200), 128, dtype=np.uint8)
    results = predictor.predict([tmp_path / "noise.png", str(tmp_path / "noise.png"), Image.fromarray(gray), gray])
    assert results == [[], [], [], []]
    with pytest.raises(InputError, match="missing.png"):
        predictor.predict(tmp_path / "missing.png")


def test_faces_cropped_classifies_the_whole_image(predictor: Predictor, tiny_model: torch.nn.Module) -> None:
    crops = [np.random.default_rng(i).integers(0, 256, size=(60, 50, 3), dtype=np.uint8) for i in range(3)]
    results = predictor.predict(crops, faces_cropped=True)
    assert [[tuple(f.box) for f in faces] for faces in results] == [[(0, 0, 50, 60)]] * 3
    got = np.array([[faces[0].probs[n] for n in EMOTIONS] for faces in results])
    np.testing.assert_allclose(got, reference_probs(tiny_model, crops), atol=1e-5)


def test_detectors_are_chosen_by_name() -> None:
    assert {"haar", "retinaface"} <= set(available_detectors())
    detector = build_detector("haar", min_size=64, min_neighbors=3)
    assert isinstance(detector, HaarCascadeDetector) and detector.min_size == 64
    with pytest.raises(InputError, match="choose one of: .*haar, retinaface"):
        build_detector("retinaface-nope")
    with pytest.raises(InputError, match="cannot load the Haar cascade"):
        HaarCascadeDetector(cascade="no_such_cascade.xml")
    with pytest.raises(TypeError, match="detect"):
        build_detector(object())  # type: ignore[arg-type]


def test_reading_order_is_rows_top_to_bottom_then_left_to_right() -> None:
    from fer_nla.predict.detectors import reading_order

    boxes = [Box(519, 230, 131, 131), Box(22, 26, 102, 102), Box(23, 233, 111, 111), Box(526, 28, 107, 107),
             Box(272, 25, 113, 113), Box(271, 230, 116, 116), Box(300, 600, 50, 50)]
    assert reading_order(boxes) == [Box(22, 26, 102, 102), Box(272, 25, 113, 113), Box(526, 28, 107, 107),
                                    Box(23, 233, 111, 111), Box(271, 230, 116, 116), Box(519, 230, 131, 131),
                                    Box(300, 600, 50, 50)]
    assert reading_order([]) == []
