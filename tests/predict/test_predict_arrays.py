"""Image arrays given to the Predictor: the dtypes and ranges read, the rest refused (issue 12, case 1)."""

from __future__ import annotations

import numpy as np
import pytest

from fer_nla.errors import InputError
from fer_nla.predict import Box, Predictor, Preprocess
from fer_nla.inference.preprocess import preprocess_faces, to_rgb_array


class BrightnessBackend:
    """A stand-in classifier: "bright" when a face's mean level is over half, "dark" otherwise,
    sharper the further from half; so a wrongly scaled image changes the label."""

    class_names = ["dark", "bright"]
    preprocess = Preprocess(image_size=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))

    def logits(self, batch: np.ndarray) -> np.ndarray:
        level = batch.mean(axis=(1, 2, 3))
        return np.stack([(0.5 - level) * 10, (level - 0.5) * 10], axis=1)


class CentreDetector:
    """A stand-in detector: one box in the middle of any image."""

    def detect(self, image_rgb: np.ndarray) -> list[Box]:
        assert image_rgb.dtype == np.uint8 and image_rgb.ndim == 3  # the detector always sees uint8 RGB
        height, width = image_rgb.shape[:2]
        return [Box(width // 4, height // 4, width // 2, height // 2)]


@pytest.fixture
def predictor() -> Predictor:
    return Predictor(BrightnessBackend(), detector=CentreDetector())


def _probs(predictor: Predictor, image: np.ndarray, **options: object) -> list[float]:
    (faces,) = predictor.predict(image, **options)  # type: ignore[arg-type]
    assert len(faces) == 1
    return [faces[0].probs[name] for name in predictor.class_names]


def test_a_float_array_of_0_255_levels_is_refused_with_the_fix(predictor: Predictor) -> None:
    levels = np.full((64, 64, 3), 200.0, np.float32)
    with pytest.raises(InputError, match=r"float pixels span 200\.\.200, above 1.*divide by 255.*astype\(np\.uint8\)"):
        predictor.predict(levels)
    # the two fixes the message names give the uint8 image's answer
    expected = _probs(predictor, np.full((64, 64, 3), 200, np.uint8))
    assert expected[1] > 0.9  # "bright"
    np.testing.assert_allclose(_probs(predictor, levels / 255), expected, rtol=1e-6)
    np.testing.assert_allclose(_probs(predictor, levels.astype(np.uint8)), expected, rtol=1e-6)


def test_a_12_bit_uint16_array_is_scaled_by_its_stated_depth(predictor: Predictor) -> None:
    twelve = np.full((64, 64, 3), 3276, np.uint16)  # 0.8 of 4095: bright; /257 would read it as level 13, dark
    with pytest.raises(InputError, match="bit_depth=16.*bit_depth=12.*bit_depth=10"):
        predictor.predict(twelve)
    assert round(3276 * 255 / 4095) == 204
    np.testing.assert_allclose(_probs(predictor, twelve, bit_depth=12), _probs(predictor, np.full((64, 64, 3), 204, np.uint8)),
                               rtol=1e-6)
    np.testing.assert_array_equal(to_rgb_array(np.array([[0, 1, 2047, 2048, 4095]], np.uint16), bit_depth=12)[..., 0],
                                  [[0, 0, 127, 128, 255]])  # v * 255 / 4095 rounded
    np.testing.assert_array_equal(to_rgb_array(np.array([[0, 1023]], np.uint16), bit_depth=10)[..., 1], [[0, 255]])
    with pytest.raises(InputError, match=r"reach 4096, above 4095.*bit_depth=12"):
        predictor.predict(np.full((8, 8), 4096, np.uint16), bit_depth=12)
    with pytest.raises(InputError, match=r"bit_depth must be a whole number of bits in 1\.\.16"):
        predictor.predict(twelve, bit_depth=17)


def test_every_array_entry_point_applies_the_same_rules(predictor: Predictor) -> None:
    bad = np.full((32, 32, 3), 120, np.int64)
    for call in (lambda: predictor.faces_and_crops(bad), lambda: predictor.find_faces(bad),
                 lambda: predictor.probabilities([bad]), lambda: predictor.predict(bad, faces_cropped=True)):
        with pytest.raises(InputError, match=r"dtype int64.*\.astype\(np\.uint8\)"):
            call()
    with pytest.raises(InputError, match=r"face crop 1 of 2: float pixels span"):
        preprocess_faces([np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 9.0)], preprocess=BrightnessBackend.preprocess)
    twelve = np.full((20, 20, 3), 4095, np.uint16)
    np.testing.assert_allclose(predictor.probabilities([twelve], bit_depth=12),
                               predictor.probabilities([np.full((20, 20, 3), 255, np.uint8)]), rtol=1e-6)
    with pytest.raises(InputError, match=r"image 1 of the 2 given: float pixels span"):
        predictor.predict([np.zeros((40, 40, 3), np.uint8), np.full((40, 40, 3), 7.0)])
    with pytest.raises(InputError, match="has no pixels"):
        predictor.predict(np.zeros((0, 5, 3), np.uint8))


# --- issue 24: OpenCV's BGR arrays, when said so, give what the same photo's path gives ---------------------------
class RedBackend(BrightnessBackend):
    """"red" when a face's red channel outweighs its blue one: BGR read as RGB flips it."""

    class_names = ["blue", "red"]

    def logits(self, batch: np.ndarray) -> np.ndarray:
        red, blue = batch[:, 0].mean(axis=(1, 2)), batch[:, 2].mean(axis=(1, 2))
        return np.stack([(blue - red) * 10, (red - blue) * 10], axis=1)


def test_bgr_arrays_from_opencv_are_read_right_when_told(tmp_path) -> None:
    import cv2
    from PIL import Image

    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 40  # a reddish photo
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    bgr = cv2.imread(str(tmp_path / "photo.png"))
    predictor = Predictor(RedBackend(), detector=CentreDetector())
    (from_path,) = predictor.predict(tmp_path / "photo.png")
    (told,) = predictor.predict(bgr, channels="bgr")
    (untold,) = predictor.predict(bgr)
    assert from_path[0].label == told[0].label == "red" and untold[0].label == "blue"
    assert told[0].probs == from_path[0].probs
    bgra = np.dstack([bgr, np.full((64, 64), 255, np.uint8)])
    assert predictor.predict(bgra, channels="bgr")[0][0].label == "red"
    crop = predictor.probabilities([bgr], channels="bgr")
    np.testing.assert_allclose(crop, predictor.probabilities([rgb]))
    assert predictor.predict([tmp_path / "photo.png"], channels="bgr")[0][0].label == "red"  # paths decode as RGB
    with pytest.raises(InputError, match="channels='BGR ': give 'rgb' or 'bgr'"):
        predictor.predict(bgr, channels="BGR ")
