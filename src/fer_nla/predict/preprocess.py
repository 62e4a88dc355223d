"""Face crops with a margin, and the numpy preprocessing both inference backends share.

:func:`preprocess_faces` reproduces ``fer_nla.data.transforms.eval_transform`` without torch:
RGB, PIL bilinear resize to ``image_size x image_size`` (what ``torchvision.transforms.Resize``
does on PIL images), ``/255``, ``(x - mean) / std``, channels first. The PyTorch and the ONNX
backends both call it, so they see bit-identical inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from fer_nla.image_files import float_to_uint8, sixteen_to_uint8, to_rgb8
from fer_nla.predict.detectors import Box

DEFAULT_MARGIN = 0.1  # added on each side, as a fraction of the box side


@dataclass(frozen=True)
class Preprocess:
    """How a face crop becomes model input: the checkpoint's ``preprocess`` entry."""

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_dict(cls, spec: dict) -> Preprocess:
        return cls(
            image_size=int(spec["image_size"]),
            mean=tuple(float(v) for v in spec["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in spec["std"]),  # type: ignore[arg-type]
        )

    def to_dict(self) -> dict:
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std)}


def to_rgb_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """An ``HxWx3`` uint8 RGB array from a PIL image or an array.

    PIL images (any mode) go through :func:`fer_nla.image_files.to_rgb8`, the rules files are
    decoded by (EXIF orientation, 16-bit and float scaling, transparency on white). Arrays are
    ``HxW`` gray, ``HxWx1``, ``HxWx3`` RGB or ``HxWx4`` RGBA (the fourth channel is dropped: arrays
    from screen grabbers often carry alpha 0); their dtype sets the scale: uint8 as is, bool
    0/255, uint16 ``round(v / 257)``, other integers must lie in 0..255, floats in [0, 1] are
    ``x * 255`` and in [0, 255] as is. Raises ``ValueError`` for other shapes or out-of-range values."""
    if isinstance(image, Image.Image):
        return np.asarray(to_rgb8(image))
    array = _array_to_uint8(np.asarray(image))
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image array, got shape {array.shape}")
    return np.ascontiguousarray(array)


def _array_to_uint8(array: np.ndarray) -> np.ndarray:
    """``array``'s levels as uint8 by its dtype (the rules of :func:`to_rgb_array`)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * np.uint8(255)
    if array.dtype.kind == "u" and array.dtype.itemsize == 2:
        return sixteen_to_uint8(array)
    if np.issubdtype(array.dtype, np.floating):
        return float_to_uint8(array)
    if np.issubdtype(array.dtype, np.integer):
        low, high = (int(array.min()), int(array.max())) if array.size else (0, 0)
        if low < 0 or high > 255:
            raise ValueError(f"{array.dtype} pixels span {low}..{high}; pass uint8 (0..255) or uint16 (0..65535)")
        return array.astype(np.uint8)
    raise ValueError(f"expected an integer, float or bool image array, got dtype {array.dtype}")


def expand_box(box: Box, *, margin: float = DEFAULT_MARGIN) -> Box:
    """The square box centred on ``box`` whose side is its longer side plus ``margin`` of it on
    each side (it may reach outside the image; :func:`crop_face` pads such parts)."""
    side = max(box.w, box.h) * (1.0 + 2.0 * margin)
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    size = max(1, round(side))
    return Box(round(cx - size / 2.0), round(cy - size / 2.0), size, size)


def crop_face(image_rgb: np.ndarray, box: Box, *, margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The square crop around ``box`` with ``margin``; parts outside the image repeat its edge
    pixels, so a face at the border keeps its proportions."""
    height, width = image_rgb.shape[:2]
    x, y, w, h = expand_box(box, margin=margin)
    left, top, right, bottom = max(0, x), max(0, y), min(width, x + w), min(height, y + h)
    if right <= left or bottom <= top:
        raise ValueError(f"box {tuple(box)} lies outside the {width}x{height} image")
    crop = image_rgb[top:bottom, left:right]
    pad = ((top - y, y + h - bottom), (left - x, x + w - right), (0, 0))
    if any(p for pair in pad for p in pair):
        crop = np.pad(crop, pad, mode="edge")
    return crop


def preprocess_faces(faces: Sequence[Image.Image | np.ndarray], *, preprocess: Preprocess) -> np.ndarray:
    """``N x 3 x S x S`` float32 model input from face crops (PIL images or arrays)."""
    size = preprocess.image_size
    batch = np.empty((len(faces), 3, size, size), dtype=np.float32)
    mean = np.asarray(preprocess.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(preprocess.std, dtype=np.float32).reshape(3, 1, 1)
    for i, face in enumerate(faces):
        pil = Image.fromarray(to_rgb_array(face))
        resized = pil.resize((size, size), Image.BILINEAR)
        chw = np.asarray(resized, dtype=np.float32).transpose(2, 0, 1) / np.float32(255.0)
        batch[i] = (chw - mean) / std
    return batch


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable), returned as float32."""
    z = logits.astype(np.float64)
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)
