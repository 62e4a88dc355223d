"""One decoder for the dataset readers and predict: every Pillow mode, 16-bit, float, transparency,
EXIF orientation, first frame; and system files (AppleDouble, .DS_Store, __MACOSX) skipped alike."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fer_nla.data import build_dataset
from fer_nla.data.images import decode_image, is_system_file, to_rgb8
from fer_nla.errors import InputError
from fer_nla.predict.inputs import collect_inputs, read_image
from fer_nla.inference.preprocess import to_rgb_array

WHITE, RED, BLUE = (255, 255, 255), (255, 0, 0), (0, 0, 255)


def _gray(values: list[int]) -> np.ndarray:
    """The 1 x N x 3 RGB array of gray levels ``values``."""
    return np.repeat(np.array([values], dtype=np.uint8)[:, :, None], 3, axis=2)


def _decoded_alike(path: Path) -> np.ndarray:
    """The pixels of ``path`` through the readers' decoder, checked equal to predict's."""
    readers = np.asarray(decode_image(str(path)))
    assert readers.dtype == np.uint8 and readers.ndim == 3 and readers.shape[2] == 3
    np.testing.assert_array_equal(read_image(path), readers)
    return readers


# --- files: (name, writer, expected 1 x N x 3 pixels) -----------------------------------------
def _png16_pillow(path: Path) -> None:
    Image.fromarray(np.array([[0, 257, 32896, 65535]], dtype=np.uint16)).save(path)  # mode I;16


def _png16_cv2(path: Path) -> None:
    cv2.imwrite(str(path), np.array([[0, 257, 32896, 65535]], dtype=np.uint16))


def _png16_rgb_cv2(path: Path) -> None:
    bgr = np.array([[[65535, 32896, 2570], [0, 257, 65535]]], dtype=np.uint16)  # cv2 writes BGR
    cv2.imwrite(str(path), bgr)


def _png16_rgba_cv2(path: Path) -> None:
    bgra = np.array([[[2570, 32896, 65535, 65535], [2570, 32896, 65535, 0], [2570, 32896, 65535, 32896]]],
                    dtype=np.uint16)
    cv2.imwrite(str(path), bgra)


def _tiff16_big_endian(path: Path) -> None:
    Image.fromarray(np.array([[0, 257, 32896, 65535]], dtype=">u2")).save(path)  # mode I;16B


def _tiff_int32(path: Path) -> None:
    Image.fromarray(np.array([[0, 257, 32896, 65535]], dtype=np.int32)).save(path)  # mode I


def _tiff_float_unit(path: Path) -> None:
    Image.fromarray(np.array([[0.0, 0.2, 0.5, 1.0]], dtype=np.float32)).save(path)  # mode F in [0, 1]


def _tiff_float_levels(path: Path) -> None:
    Image.fromarray(np.array([[0.0, 100.4, 128.0, 255.0]], dtype=np.float32)).save(path)  # F in [0, 255]


def _png_bilevel(path: Path) -> None:
    Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).convert("1").save(path)


def _png_gray_alpha(path: Path) -> None:
    Image.fromarray(np.array([[[40, 255], [40, 0], [40, 51]]], dtype=np.uint8), mode="LA").save(path)


def _png_gray_key(path: Path) -> None:
    Image.fromarray(np.array([[10, 200]], dtype=np.uint8)).save(path, transparency=10)  # tRNS gray key


def _png16_gray_key(path: Path) -> None:
    Image.fromarray(np.array([[1000, 32896]], dtype=np.uint16)).save(path, transparency=1000)


def _png_rgba(path: Path) -> None:
    Image.fromarray(np.array([[[200, 100, 0, 255], [200, 100, 0, 0], [200, 100, 0, 128]]], dtype=np.uint8)).save(path)


def _png_palette_transparent(path: Path) -> None:
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putdata([0, 1])
    image.save(path, transparency=1)  # index 1 (blue) is transparent


def _tiff_cmyk(path: Path) -> None:
    Image.fromarray(np.array([[[255, 0, 0, 0], [0, 0, 0, 255]]], dtype=np.uint8), mode="CMYK").save(path)


def _gif_animated(path: Path) -> None:
    frames = [Image.new("RGB", (2, 1), colour) for colour in (RED, BLUE)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


FILES = [
    ("gray16_pillow.png", _png16_pillow, _gray([0, 1, 128, 255])),
    ("gray16_cv2.png", _png16_cv2, _gray([0, 1, 128, 255])),
    # Pillow opens 16-bit colour as RGB keeping the high byte: exact for multiples of 257
    ("rgb16_cv2.png", _png16_rgb_cv2, np.array([[[10, 128, 255], [255, 1, 0]]], dtype=np.uint8)),
    ("rgba16_cv2.png", _png16_rgba_cv2, np.array([[[255, 128, 10], WHITE, [255, 191, 132]]], dtype=np.uint8)),
    ("gray16_big_endian.tif", _tiff16_big_endian, _gray([0, 1, 128, 255])),
    ("int32.tif", _tiff_int32, _gray([0, 1, 128, 255])),
    ("float_unit.tif", _tiff_float_unit, _gray([0, 51, 128, 255])),
    ("float_levels.tif", _tiff_float_levels, _gray([0, 100, 128, 255])),
    ("bilevel.png", _png_bilevel, _gray([0, 255])),
    ("gray_alpha.png", _png_gray_alpha, _gray([40, 255, 212])),  # 40*51/255 + 255*204/255 = 8 + 204
    ("gray_key.png", _png_gray_key, _gray([255, 200])),
    ("gray16_key.png", _png16_gray_key, _gray([255, 128])),
    ("rgba.png", _png_rgba, np.array([[[200, 100, 0], WHITE, [227, 177, 127]]], dtype=np.uint8)),
    ("palette_transparent.png", _png_palette_transparent, np.array([[RED, WHITE]], dtype=np.uint8)),
    ("cmyk.tif", _tiff_cmyk, np.array([[[0, 255, 255], [0, 0, 0]]], dtype=np.uint8)),
    ("animated.gif", _gif_animated, np.array([[RED, RED]], dtype=np.uint8)),  # the first frame
]


@pytest.mark.parametrize(("name", "write", "expected"), FILES, ids=[name for name, _, _ in FILES])
def test_readers_and_predict_decode_every_kind_of_file_to_the_same_exact_pixels(tmp_path, name, write, expected):
    path = tmp_path / name
    write(path)
    np.testing.assert_array_equal(_decoded_alike(path), expected)


def test_a_mid_grey_16_bit_png_is_mid_grey_not_white(tmp_path):
    path = tmp_path / "scan.png"
    Image.fromarray(np.full((8, 8), 32896, dtype=np.uint16)).save(path)
    assert Image.open(path).convert("RGB").getpixel((0, 0)) == WHITE  # the old decoding's result
    assert _decoded_alike(path).mean() == 128.0


def test_exif_orientation_is_applied_by_readers_and_predict_alike(tmp_path):
    pixels = np.zeros((2, 4, 3), dtype=np.uint8)
    pixels[:, 0] = RED  # red on the left column
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(pixels).save(tmp_path / "phone.png", exif=exif)
    shown = _decoded_alike(tmp_path / "phone.png")
    assert shown.shape == (4, 2, 3)
    np.testing.assert_array_equal(shown[0], [RED, RED])  # the red column is now the top row
    assert shown[1:].max() == 0


@pytest.mark.parametrize(("values", "message"), [
    (np.array([[0, 70000]], dtype=np.int32), r"32-bit integer pixels span 0\.\.70000, outside 0\.\.65535"),
    (np.array([[0.0, np.nan]], dtype=np.float32), "float pixels include NaN or infinite"),
    (np.array([[0.0, 300.0]], dtype=np.float32), r"float pixels span 0\.\.300"),
], ids=["int32_over_16_bit", "float_nan", "float_over_255"])
def test_pixel_values_without_an_8_bit_scale_are_named_errors(tmp_path, values, message):
    path = tmp_path / "odd.tif"
    Image.fromarray(values).save(path)
    for decode in (decode_image, read_image):
        with pytest.raises(InputError, match=f"odd.tif: {message}"):
            decode(path)


@pytest.mark.parametrize(("mode", "expected"), [
    ("I;16", [0, 1, 128, 255]), ("I;16B", [0, 1, 128, 255]), ("I;16L", [0, 1, 128, 255]), ("I;16N", [0, 1, 128, 255]),
])
def test_every_16_bit_mode_in_memory_scales_by_257(mode, expected):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16)
    image = Image.frombytes(mode, (4, 1), values.astype(">u2" if mode == "I;16B" else "<u2").tobytes())
    np.testing.assert_array_equal(np.asarray(to_rgb8(image)), _gray(expected))
    np.testing.assert_array_equal(to_rgb_array(image), _gray(expected))  # predict's entry for PIL images


def test_every_8_bit_mode_in_memory_decodes_as_pillow_converts_it_with_alpha_on_white():
    rgb = Image.fromarray(np.array([[[200, 100, 50], [10, 20, 30]]], dtype=np.uint8))
    for mode in ("L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        image = rgb.convert(mode)
        np.testing.assert_array_equal(np.asarray(to_rgb8(image)), np.asarray(image.convert("RGB")), err_msg=mode)
    half = Image.fromarray(np.array([[[200, 100, 50, 128], [10, 20, 30, 0]]], dtype=np.uint8))  # RGBA
    expected = np.array([[[227, 177, 152], WHITE]], dtype=np.uint8)
    for mode in ("RGBA", "RGBa", "PA"):
        image = half if mode == "RGBA" else half.convert(mode)
        np.testing.assert_array_equal(np.asarray(to_rgb8(image)), expected, err_msg=mode)
    premultiplied = Image.frombytes("La", (2, 1), bytes([20, 40, 0, 0]))  # gray 20 at alpha 40, then clear
    np.testing.assert_array_equal(np.asarray(to_rgb8(premultiplied)), _gray([235, 255]))


def test_a_folder_dataset_decodes_16_bit_and_rotated_images_as_predict_does(tmp_path):
    happy = tmp_path / "happy"
    happy.mkdir()
    levels = np.array([0, 257, 32896, 65535] * 4, dtype=np.uint16)  # 16 px: the smallest sample side
    Image.fromarray(np.repeat(levels[None], 16, axis=0)).save(happy / "a.png")  # mode I;16
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90 degrees counter-clockwise to display"
    Image.fromarray(np.full((16, 24), 77, dtype=np.uint8)).save(happy / "b.png", exif=exif)
    dataset = build_dataset("folder", root=tmp_path)
    assert len(dataset) == 2
    for index, name in enumerate(("a.png", "b.png")):
        got = np.asarray(dataset.load_image(index))
        np.testing.assert_array_equal(got, read_image(happy / name))
    np.testing.assert_array_equal(np.asarray(dataset.load_image(0))[:1], _gray([0, 1, 128, 255] * 4))
    assert np.asarray(dataset.load_image(1)).shape == (24, 16, 3)


def test_skip_bad_images_drops_what_decoding_rejects(tmp_path):
    write_to = tmp_path / "happy"
    write_to.mkdir()
    Image.fromarray(np.zeros((16, 16), dtype=np.uint8)).save(write_to / "good.png")
    Image.fromarray(np.full((16, 16), np.nan, dtype=np.float32)).save(write_to / "nan.tif")
    Image.fromarray(np.zeros((1, 1), dtype=np.uint8)).save(write_to / "dot.png")  # no face fits in 1x1
    Image.fromarray(np.zeros((1, 3000), dtype=np.uint8)).save(write_to / "strip.png")  # nor in a 3000x1 strip
    dataset = build_dataset("folder", root=tmp_path, skip_bad_images=True)
    assert len(dataset) == 1 and dataset.info["bad_images_dropped"] == 3


# --- system files -------------------------------------------------------------------------------
def _dataset_with_system_files(root: Path) -> None:
    """Two happy and one sad image among the files macOS, Windows and git leave in folders."""
    for rel in ("happy/a.png", "happy/b.png", "sad/c.png"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((16, 16), 9, dtype=np.uint8)).save(root / rel)
    (root / "happy" / "._a.png").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")  # AppleDouble
    (root / "happy" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (root / "sad" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (root / "sad" / "desktop.ini").write_text("[.ShellClassInfo]\n")
    (root / "__MACOSX" / "happy").mkdir(parents=True)
    (root / "__MACOSX" / "happy" / "._a.png").write_bytes(b"\x00\x05\x16\x07")
    (root / ".git").mkdir()


def test_system_names_are_recognised():
    for name in ("._a.jpg", ".DS_Store", ".git", "__MACOSX", "Thumbs.db", "THUMBS.DB", "desktop.ini", "$RECYCLE.BIN"):
        assert is_system_file(name), name
    for name in ("a.jpg", "happy", "thumbs.jpg", "MACOSX", "x.DS_Store"):
        assert not is_system_file(name), name


def test_folder_reader_and_predict_skip_the_same_system_files(tmp_path):
    _dataset_with_system_files(tmp_path)
    dataset = build_dataset("folder", root=tmp_path)
    assert sorted(Path(p).name for p in dataset.samples) == ["a.png", "b.png", "c.png"]
    assert dataset.class_counts().tolist() == [0, 2, 0, 1, 0, 0, 0]
    # ._a.png, .DS_Store, Thumbs.db, desktop.ini in class folders; __MACOSX and .git beside them
    assert dataset.info["skipped_system_files"] == 6
    assert all(dataset.load_image(i).size == (16, 16) for i in range(len(dataset)))  # nothing left to fail
    files, problems = collect_inputs([tmp_path])
    assert sorted(f.path.relative_to(tmp_path).as_posix() for f in files) == ["happy/a.png", "happy/b.png", "sad/c.png"]
    assert problems == []


# --- issue 24: an image that cannot hold a face is not trained on in silence ---------------------------------
@pytest.mark.parametrize(("size", "why"), [((1, 1), "a 1x1 image is under 16 px on a side, too small to hold a face"),
                                           ((3000, 1), "a 3000x1 image is under 16 px on a side"),
                                           ((400, 20), "a 400x20 image is more than 4 times as long as it is wide")])
def test_an_image_that_cannot_hold_a_face_is_named_with_the_fix(tmp_path, size, why):
    (tmp_path / "happy").mkdir()
    Image.fromarray(np.zeros((24, 24), dtype=np.uint8)).save(tmp_path / "happy" / "face.png")
    Image.fromarray(np.zeros(size[::-1], dtype=np.uint8)).save(tmp_path / "happy" / "odd.png")
    dataset = build_dataset("folder", root=tmp_path)
    assert dataset.load_image(0).size == (24, 24)
    with pytest.raises(InputError, match=rf"happy/odd.png: {why}.*pass skip_bad_images=True to drop such images"):
        dataset.load_image(1)
    kept = build_dataset("folder", root=tmp_path, skip_bad_images=True)
    assert len(kept) == 1 and kept.info["bad_images_dropped"] == 1 and kept.info["bad_images"][0].endswith("odd.png")


def test_skip_bad_images_drops_face_boxes_that_crop_to_no_face(tmp_path):
    """A box cut by the image's edge to a 10x100 strip, or one under 16 px: no face to train on."""
    from test_reader_kinds import make

    rows = [(key, "happiness", "train") for key in "abc"]
    boxes = {"a": (0, 0, 24, 20), "b": (14, 0, 20, 20), "c": (2, 2, 8, 8)}  # b: clamped to 10x20, c: 8x8
    name, root = make("affectnet", tmp_path, rows, boxes=boxes)
    kept = build_dataset(name, root=root, skip_bad_images=True)
    assert len(kept) == 1 and kept.info["bad_images_dropped"] == 2 and kept.load_image(0).size == (24, 20)
    every = build_dataset(name, root=root)
    with pytest.raises(InputError, match=r"b.png \(cropped to its face box\): a 10x20 image is under 16 px"):
        every.load_image(1)
