"""Cropping with a margin and the numpy preprocessing, against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from fer_nla.data.transforms import eval_transform
from fer_nla.errors import InputError
from fer_nla.inference.faces import Box, crop_face, expand_box
from fer_nla.inference.preprocess import Preprocess, preprocess_faces, to_rgb_array
from fer_nla.inference.scoring import OperatingPoint, adjusted_probabilities

MEAN = (0.577, 0.4494, 0.4001)
STD = (0.2628, 0.2395, 0.2383)


@pytest.mark.parametrize("size", [48, 112])
def test_preprocess_equals_the_torchvision_eval_transform(size: int) -> None:
    rng = np.random.default_rng(size)
    images = [rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8) for h, w in ((48, 48), (131, 97), (300, 257))]
    gray = rng.integers(0, 256, size=(64, 80), dtype=np.uint8)
    ours = preprocess_faces([*images, Image.fromarray(gray, mode="L")], preprocess=Preprocess(size, MEAN, STD))
    transform = eval_transform(image_size=size, mean=MEAN, std=STD)
    theirs = torch.stack([transform(Image.fromarray(a)) for a in images] + [transform(Image.fromarray(gray, mode="L"))])
    assert ours.shape == (4, 3, size, size) and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, theirs.numpy())


def test_expand_box_is_square_centred_with_the_margin_on_each_side() -> None:
    assert expand_box(Box(100, 50, 40, 60), margin=0.25) == Box(75, 35, 90, 90)  # side 60 * 1.5, centre (120, 80)
    assert expand_box(Box(10, 10, 20, 20), margin=0.0) == Box(10, 10, 20, 20)


def test_crop_face_inside_the_image_is_a_plain_slice() -> None:
    image = np.arange(200 * 300 * 3, dtype=np.int64).reshape(200, 300, 3).astype(np.uint8)
    crop = crop_face(image, Box(100, 50, 40, 40), margin=0.25)
    np.testing.assert_array_equal(crop, image[40:100, 90:150])


def test_crop_face_at_the_border_repeats_edge_pixels() -> None:
    image = np.random.default_rng(0).integers(0, 256, size=(50, 60, 3), dtype=np.uint8)
    crop = crop_face(image, Box(0, 0, 20, 20), margin=0.5)  # expanded to (-10, -10, 40, 40)
    assert crop.shape == (40, 40, 3)
    np.testing.assert_array_equal(crop[10:, 10:], image[0:30, 0:30])
    np.testing.assert_array_equal(crop[:10, 10:], np.repeat(image[0:1, 0:30], 10, axis=0))
    np.testing.assert_array_equal(crop[:10, :10], np.broadcast_to(image[0, 0], (10, 10, 3)))


def test_to_rgb_array_accepts_gray_rgba_float_and_pil() -> None:
    gray = np.array([[0, 128], [255, 7]], dtype=np.uint8)
    np.testing.assert_array_equal(to_rgb_array(gray)[..., 2], gray)
    rgba = np.zeros((2, 2, 4), dtype=np.uint8)
    rgba[..., 1] = 9
    assert to_rgb_array(rgba).shape == (2, 2, 3) and to_rgb_array(rgba)[0, 0, 1] == 9
    np.testing.assert_array_equal(to_rgb_array(np.full((2, 2, 3), 0.5)), np.full((2, 2, 3), 128, np.uint8))
    np.testing.assert_array_equal(to_rgb_array(Image.fromarray(gray, mode="L")), to_rgb_array(gray))
    with pytest.raises(ValueError, match="shape"):
        to_rgb_array(np.zeros((2, 2, 5)))


def test_to_rgb_array_scales_16_bit_arrays_by_their_stated_depth_and_pil_modes_as_files_are_decoded() -> None:
    sixteen = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    expected = np.repeat(np.array([[0, 1, 128, 255]], np.uint8)[:, :, None], 3, axis=2)
    np.testing.assert_array_equal(to_rgb_array(sixteen, bit_depth=16), expected)  # was wrapped modulo 256
    np.testing.assert_array_equal(to_rgb_array(Image.fromarray(sixteen)), expected)  # PIL I;16 stays /257, as files
    with pytest.raises(InputError, match="bit_depth=16.*bit_depth=12.*bit_depth=10"):
        to_rgb_array(sixteen)  # a uint16 array without its bit depth: 10-, 12- and 16-bit data look alike
    np.testing.assert_array_equal(to_rgb_array(np.array([[0.0, 0.5, 1.0]], np.float32))[..., 0], [[0, 128, 255]])


@pytest.mark.parametrize(("array", "message"), [
    (np.array([[0.0, 100.4, 128.0, 255.0]], np.float32), r"span 0\.\.255, above 1.*divide by 255.*astype\(np\.uint8\)"),
    (np.array([[-0.5, 0.5]], np.float64), r"below 0"),
    (np.array([[np.nan]], np.float32), "NaN"),
    (np.array([[0, 200]], np.int64), r"dtype int64.*\.astype\(np\.uint8\) if its values are 0\.\.255"),
    (np.array([[0, 300]], np.int32), r"dtype int32.*pass uint8"),
    (np.array([[False, True]]), r"dtype bool.*\* 255"),
])
def test_to_rgb_array_refuses_arrays_without_an_agreed_scale(array: np.ndarray, message: str) -> None:
    """Before, float arrays of 0..255 levels, int64 0..255 and bool arrays were read; now only
    uint8, float in [0, 1] and uint16 with a stated bit depth are, the rest refused with the fix."""
    with pytest.raises(InputError, match=message):
        to_rgb_array(array)


def test_preprocess_faces_reads_a_16_bit_pil_face_as_its_gray_level() -> None:
    spec = Preprocess(image_size=4, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    batch = preprocess_faces([Image.fromarray(np.full((6, 6), 32896, np.uint16))], preprocess=spec)
    np.testing.assert_allclose(batch, np.full((1, 3, 4, 4), 128 / 255, np.float32), rtol=1e-6)


def test_softmax_matches_torch_and_survives_huge_logits() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]], dtype=np.float32)
    softmax = lambda z: adjusted_probabilities(z, OperatingPoint.plain(z.shape[1]))  # noqa: E731
    np.testing.assert_allclose(softmax(logits), torch.softmax(torch.from_numpy(logits).double(), 1).numpy(), atol=1e-7)
