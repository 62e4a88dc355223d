"""Image files read one way everywhere: which names are system files, and decoding to 8-bit RGB.

The dataset readers (:mod:`fer_nla.data.images`) and ``fer-nla predict``
(:mod:`fer_nla.predict.inputs`) both decode with :func:`decode_image`, so a file gives the same
pixels in training and in prediction, and both skip the names :func:`is_system_file` picks.
This module imports no torch: the ONNX predict path runs without it.

How :func:`to_rgb8` turns an image into ``H x W x 3`` uint8 RGB:

- **Orientation**: the EXIF orientation is applied (``ImageOps.exif_transpose``), as a photo
  viewer shows the image.
- **Frames**: animated GIF / APNG / WebP and multi-page TIFF give their first frame.
- **8-bit modes** ``1``, ``L``, ``P``, ``RGB``, ``RGBX``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``:
  Pillow's ``convert("RGB")``.
- **Transparency** (``LA``, ``PA``, ``RGBA``, premultiplied ``La``/``RGBa``, and a palette, gray or
  colour key in ``info["transparency"]``): composited on white,
  ``round((c * a + 255 * (255 - a)) / 255)``, so a cut-out face on a transparent background reads
  as it shows in a browser, not with whatever colour the transparent pixels happen to store.
- **16-bit gray** ``I;16``, ``I;16B``, ``I;16L``, ``I;16N``: ``round(v / 257)``
  (65535 -> 255, 32896 -> 128). Before, ``convert("RGB")`` clipped every value over 255 to 255,
  so a 16-bit gray PNG decoded all white.
- **32-bit integer** ``I``: values within 0..65535 are 16-bit content (how some Pillow versions and
  TIFF writers report 16-bit gray) and are scaled as above; an image with any value outside
  0..65535 has no agreed scale and raises :class:`PixelRangeError`.
- **Float** ``F``: all values in [0, 1] -> ``round(x * 255)``; otherwise all in [0, 255] ->
  ``round(x)``; a negative, NaN or infinite value, or one over 255, raises :class:`PixelRangeError`.
- **16-bit colour** PNG / TIFF: Pillow 13 opens them as ``RGB`` / ``RGBA`` keeping each value's high
  byte (``v >> 8``): within one level of ``round(v / 257)`` and equal to it for ``v = 257 * k``.
  They are used as Pillow gives them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError

from fer_nla.errors import InputError

SYSTEM_NAMES = frozenset({
    "thumbs.db", "ehthumbs.db", "ehthumbs_vista.db", "desktop.ini",  # Windows Explorer
    "__macosx", "icon\r",  # macOS archives (zip), folder icons
    "$recycle.bin", "system volume information",  # Windows drive roots
})
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")
HIGH_DEPTH_MODES = (*SIXTEEN_BIT_MODES, "I", "F")
ALPHA_MODES = ("LA", "PA", "RGBA")
PREMULTIPLIED_MODES = ("La", "RGBa")
READER_FIX = (
    "replace the file, or pass skip_bad_images=True to drop undecodable images "
    "when the index is built"
)


class PixelRangeError(ValueError):
    """Pixel values with no agreed 8-bit scale (32-bit integers outside 0..65535, floats outside
    [0, 255] or not finite); the message gives the range found and the fix."""


def is_system_file(name: str) -> bool:
    """Whether a file or folder ``name`` (one path part, not a path) is one operating systems and
    archivers add beside real files, never a sample: dot names (``.DS_Store``, macOS AppleDouble
    ``._photo.jpg``, ``.git``), ``__MACOSX``, ``Thumbs.db``, ``desktop.ini`` (case-insensitive)."""
    return name.startswith(".") or name.lower() in SYSTEM_NAMES


def decode_image(path: str | os.PathLike[str], *, fix: str = READER_FIX) -> Image.Image:
    """The first frame of the image file at ``path`` as an 8-bit RGB ``PIL.Image``, by the rules of
    :func:`to_rgb8` (EXIF orientation applied).

    Raises :class:`InputError` naming the file when it is missing, is not an image, is damaged, is
    over Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) or holds pixel values with
    no 8-bit scale; ``fix`` ends the undecodable-file messages (the caller's remedy)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # big photos are fine
            with Image.open(path) as handle:
                handle.load()
                return to_rgb8(handle)
    except FileNotFoundError:
        raise InputError(
            f"{path}: image file is missing (it was there when it was listed); {_missing_fix(fix)}"
        ) from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: cannot decode: not an image format Pillow can read; {fix}") from None
    except Image.DecompressionBombError as err:
        raise InputError(f"{path} is too large to decode safely ({err}); downscale it first") from None
    except PixelRangeError as err:
        raise InputError(f"{path}: {err}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(f"{path}: cannot decode the image ({err}); {fix}") from None


ANIMATION_FORMATS = ("GIF", "PNG", "WEBP")  # not MPO: a camera JPEG's second frame is a preview, not motion


def animation_frames(handle: Image.Image) -> int:
    """How many frames an opened image shows in time: more than 1 for an animated GIF, APNG or
    WebP; 1 for every other image, a camera's MPO JPEG (its extra frame is a preview) or a
    damaged animation whose frames cannot be counted (its first frame is still read)."""
    if handle.format not in ANIMATION_FORMATS or not getattr(handle, "is_animated", False):
        return 1
    try:
        return max(1, int(handle.n_frames))
    except Exception:  # noqa: BLE001 - a cut GIF raises IndexError/struct.error while counting
        return 1


def frame_count(path: str | os.PathLike[str]) -> int:
    """:func:`animation_frames` of the image file at ``path`` (1 for a file Pillow cannot open:
    decoding says why)."""
    try:
        with Image.open(path) as handle:
            return animation_frames(handle)
    except Exception:  # noqa: BLE001 - an unreadable file is named by decode_image, not here
        return 1


def iter_image_frames(path: str | os.PathLike[str], *, every: int = 1) -> Iterator[tuple[int, float | None, Image.Image]]:
    """``(index, time in seconds or None, 8-bit RGB frame)`` of every ``every``-th frame of an
    animated image (GIF, APNG, WebP: :func:`animation_frames`), decoded by :func:`to_rgb8`'s rules; the time
    is the sum of the earlier frames' stated durations (``None`` once a frame states none).
    Raises :class:`InputError` naming the file when a frame cannot be decoded."""
    elapsed: float | None = 0.0
    try:
        with Image.open(path) as handle:
            for index, frame in enumerate(ImageSequence.Iterator(handle)):
                if index % every == 0:
                    yield index, elapsed, to_rgb8(frame)
                duration = frame.info.get("duration")
                elapsed = elapsed + float(duration) / 1000.0 if elapsed is not None and duration else None
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise InputError(f"{path}: cannot decode a frame of the animated image ({err}); re-save it, or leave it "
                         "out") from None


def _missing_fix(fix: str) -> str:
    """The remedy for a file gone since it was listed: for the dataset readers (``fix`` is
    :data:`READER_FIX`) it names ``skip_bad_images=True``, which decodes every image when the index
    is built, so a file that is gone or damaged is found then, before any training step."""
    again = "restore it (for a link, the file it points to) or list the files again"
    if fix != READER_FIX:
        return again
    return (f"{again}; pass skip_bad_images=True to decode every image when the index is built, so a file "
            "that is gone or damaged is found then rather than mid-run")


def to_rgb8(image: Image.Image) -> Image.Image:
    """A new 8-bit RGB image from ``image`` of any Pillow mode: EXIF orientation applied,
    transparency composited on white, 16-bit, 32-bit and float gray scaled to 0..255 (the rules in
    this module's docstring). Raises :class:`PixelRangeError` for values with no 8-bit scale."""
    image = ImageOps.exif_transpose(image)  # always a new image
    if image.mode in HIGH_DEPTH_MODES:
        values = np.asarray(image)
        rgb = np.repeat(high_depth_to_uint8(values, mode=image.mode)[:, :, None], 3, axis=2)
        key = image.info.get("transparency")
        if isinstance(key, int):  # a gray key: those pixels are fully transparent, so white
            rgb[values == key] = 255
        return Image.fromarray(rgb, mode="RGB")
    if image.mode in PREMULTIPLIED_MODES:  # colour already multiplied by alpha: c + (255 - a) is "over white"
        array = np.asarray(image).astype(np.int32)
        over = np.clip(array[:, :, :-1] + 255 - array[:, :, -1:], 0, 255).astype(np.uint8)
        return Image.fromarray(np.repeat(over, 3, axis=2) if over.shape[2] == 1 else over, mode="RGB")
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        return composite_on_white(image.convert("RGBA"))
    return image.convert("RGB")


def composite_on_white(rgba: Image.Image) -> Image.Image:
    """An ``RGBA`` image over a white background, ``round((c * a + 255 * (255 - a)) / 255)`` per
    channel, as an RGB image."""
    array = np.asarray(rgba, dtype=np.uint32)
    colour, alpha = array[:, :, :3], array[:, :, 3:]
    over = (colour * alpha + 255 * (255 - alpha) + 127) // 255
    return Image.fromarray(over.astype(np.uint8), mode="RGB")


def high_depth_to_uint8(values: np.ndarray, *, mode: str) -> np.ndarray:
    """``values`` of a 16-bit (``I;16*``), 32-bit integer (``I``) or float (``F``) gray image as
    uint8 levels of the same shape; :class:`PixelRangeError` where the mode's rule has no scale."""
    if mode in SIXTEEN_BIT_MODES:
        return sixteen_to_uint8(values)
    if mode == "I":
        low, high = (int(values.min()), int(values.max())) if values.size else (0, 0)
        if low < 0 or high > 65535:
            raise PixelRangeError(
                f"32-bit integer pixels span {low}..{high}, outside 0..65535 (16-bit); there is no agreed "
                "8-bit scale for them: save the image as 8- or 16-bit"
            )
        return sixteen_to_uint8(values)
    if mode == "F":
        return float_to_uint8(values)
    raise ValueError(f"mode {mode!r} is not a 16-bit, 32-bit integer or float mode")


def levels_to_uint8(values: np.ndarray, *, bits: int) -> np.ndarray:
    """Integer levels ``0..2**bits - 1`` as 8-bit, ``round(v * 255 / (2**bits - 1))`` (halves up),
    in exact integer arithmetic; the caller checks the range."""
    top = (1 << bits) - 1
    return ((values.astype(np.uint64) * 510 + top) // (2 * top)).astype(np.uint8)


def sixteen_to_uint8(values: np.ndarray) -> np.ndarray:
    """16-bit levels 0..65535 as 8-bit, ``round(v / 257)``: 65535 -> 255, 32896 -> 128, 0 -> 0."""
    return levels_to_uint8(values, bits=16)


def float_to_uint8(values: np.ndarray) -> np.ndarray:
    """Float levels as 8-bit: all in [0, 1] -> ``round(x * 255)``; else all in [0, 255] -> ``round(x)``.
    Raises :class:`PixelRangeError` for NaN, infinite, negative or over-255 values."""
    if values.size and not np.isfinite(values).all():
        raise PixelRangeError("float pixels include NaN or infinite values; save the image with finite values")
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if low < 0 or high > 255:
        raise PixelRangeError(
            f"float pixels span {low:g}..{high:g}; fer-nla reads float images as [0, 1] or [0, 255]: "
            "rescale the image to one of them, or save it as 8-bit"
        )
    scale = 255.0 if high <= 1.0 else 1.0
    return np.rint(values.astype(np.float64) * scale).astype(np.uint8)
