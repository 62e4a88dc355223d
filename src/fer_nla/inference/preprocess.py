"""Eval-time preprocessing: the one definition of how a face image becomes model input.

Every path that scores a face goes through :func:`preprocess_faces`: ``fer-nla predict``, the
:class:`~fer_nla.predict.Predictor`, ``fer-nla serve``, ``fer-nla eval`` and the validation of
``fer-nla train`` (``fer_nla.data.transforms.eval_transform`` wraps :class:`Preprocess`), for the
PyTorch and the ONNX backends alike, so they see bit-identical inputs. The steps:

1. RGB ``uint8`` (:func:`to_rgb_array`: PIL images of any mode, arrays of the accepted dtypes);
2. for a model trained on gray faces (``grayscale``), PIL's luma ``L = R*299/1000 + G*587/1000 +
   B*114/1000`` (ITU-R 601-2, ``convert("L")``) replicated to 3 channels;
3. PIL bilinear (antialiased) resize to ``image_size x image_size`` (:func:`resize_face`, what
   ``torchvision.transforms.Resize`` does on PIL images; the training loaders store faces resized
   by it too);
4. ``/255``, ``(x - mean) / std`` per channel, channels first, float32.

Nothing here imports PyTorch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from fer_nla.errors import InputError
from fer_nla.image_files import PixelRangeError, levels_to_uint8, to_rgb8

# Array dtypes :func:`to_rgb_array` reads (uint16 with a stated ``bit_depth``); others are refused.
ACCEPTED_DTYPES: tuple[str, ...] = ("uint8", "float16", "float32", "float64", "uint16")


@dataclass(frozen=True)
class Preprocess:
    """How a face crop becomes model input: the checkpoint's ``preprocess`` entry (or the ONNX
    model's metadata). ``image_size``: side in px; ``mean``/``std``: per RGB channel on 0..1
    values; ``grayscale``: the model was trained on gray faces, so crops are turned to luma
    first (absent in files written before it existed: ``False``)."""

    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    grayscale: bool = False

    @classmethod
    def from_dict(cls, spec: dict, *, source: str = "the model") -> Preprocess:
        """The record of a ``preprocess`` dict; raises :class:`InputError` naming ``source``
        when ``grayscale`` is there but not a boolean."""
        return cls(
            image_size=int(spec["image_size"]),
            mean=tuple(float(v) for v in spec["mean"]),  # type: ignore[arg-type]
            std=tuple(float(v) for v in spec["std"]),  # type: ignore[arg-type]
            grayscale=read_grayscale(spec, source=source),
        )

    def to_dict(self) -> dict:
        return {"image_size": self.image_size, "mean": list(self.mean), "std": list(self.std),
                "grayscale": self.grayscale}

    def __call__(self, face: Image.Image | np.ndarray) -> np.ndarray:
        """One face as model input, ``float32 [3, S, S]`` (:func:`preprocess_faces` of one face).
        A picklable dataset transform (DataLoader workers)."""
        return preprocess_faces([face], preprocess=self)[0]


def read_grayscale(spec: dict, *, source: str) -> bool:
    """The ``grayscale`` entry of a preprocess dict: ``False`` when absent (older files); an
    :class:`InputError` naming ``source`` and the value when it is not ``True``/``False``."""
    value = spec.get("grayscale", False)
    if not isinstance(value, (bool, np.bool_)):
        raise InputError(f"{source}: preprocess 'grayscale' is {value!r} ({type(value).__name__}), not true or false; "
                         "the file is damaged or was not written by fer-nla: write it again with fer-nla")
    return bool(value)


CHANNEL_ORDERS: tuple[str, ...] = ("rgb", "bgr")


def to_rgb_array(image: Image.Image | np.ndarray, *, bit_depth: int | None = None, channels: str = "rgb") -> np.ndarray:
    """An ``HxWx3`` uint8 RGB array from a PIL image or an array.

    ``channels``: the order of an array's colour channels, ``rgb`` (PIL, imageio, matplotlib,
    scikit-image) or ``bgr`` (OpenCV: ``cv2.imread`` and ``cv2.VideoCapture`` frames, BGRA for
    ``HxWx4``). A BGR array passed as RGB is not an error anyone can detect, only a shifted
    result: say ``channels="bgr"`` for OpenCV's arrays. PIL images are always RGB.

    PIL images (any mode) go through :func:`fer_nla.image_files.to_rgb8`, the rules files are
    decoded by (EXIF orientation, 16-bit ``/257`` and float scaling, transparency on white).
    Arrays are ``HxW`` gray, ``HxWx1``, ``HxWx3`` RGB or ``HxWx4`` RGBA (the fourth channel is
    dropped: arrays from screen grabbers often carry alpha 0), at least 1x1, with one of these
    dtypes (:data:`ACCEPTED_DTYPES`):

    - ``uint8``: levels 0..255, used as they are;
    - ``float16`` / ``float32`` / ``float64``: values in [0, 1], ``round(x * 255)``; a value above
      1 (an array of 0..255 levels), below 0 (a normalised tensor), NaN or infinite is refused;
    - ``uint16``: levels of ``bit_depth`` bits (1..16; 12 for a 12-bit camera, 16 for full range),
      ``round(v * 255 / (2**bit_depth - 1))``; refused without ``bit_depth`` (a 16-bit container
      holds 10-, 12- or 16-bit data alike) and for values above ``2**bit_depth - 1``.

    ``bit_depth`` applies to uint16 arrays only. Every other dtype (int32, int64, bool, ...) is
    refused. Raises :class:`InputError` naming the dtype, shape or range found and what to pass."""
    if isinstance(image, Image.Image):
        try:
            return np.asarray(to_rgb8(image))
        except PixelRangeError as err:
            raise InputError(f"{image.mode} image: {err}") from None
    check_channels(channels)
    array = _array_to_uint8(np.asarray(image), bit_depth=check_bit_depth(bit_depth))
    if channels == "bgr" and array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[:, :, [2, 1, 0, 3][:array.shape[2]]]
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    elif array.ndim == 3 and array.shape[2] == 4:
        array = array[:, :, :3]
    if array.ndim != 3 or array.shape[2] != 3:
        raise InputError(f"expected an HxW, HxWx3 or HxWx4 image array, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"the image array of shape {array.shape} has no pixels")
    return np.ascontiguousarray(array)


def check_channels(channels: str) -> str:
    """``channels`` when it is one of :data:`CHANNEL_ORDERS`; :class:`InputError` otherwise."""
    if channels not in CHANNEL_ORDERS:
        raise InputError(f"channels={channels!r}: give 'rgb' or 'bgr' (OpenCV's cv2.imread order)")
    return channels


def check_bit_depth(bit_depth: int | None) -> int | None:
    """``bit_depth`` when it is ``None`` or a whole number of bits in 1..16; :class:`InputError` otherwise."""
    if bit_depth is None:
        return None
    whole = isinstance(bit_depth, (int, np.integer)) and not isinstance(bit_depth, (bool, np.bool_))
    if not whole or not 1 <= bit_depth <= 16:
        raise InputError(
            f"bit_depth must be a whole number of bits in 1..16 (e.g. 12 for a 12-bit camera), got {bit_depth!r}"
        )
    return int(bit_depth)


def _array_to_uint8(array: np.ndarray, *, bit_depth: int | None) -> np.ndarray:
    """``array``'s levels as uint8 by its dtype (the rules of :func:`to_rgb_array`)."""
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "u" and array.dtype.itemsize == 2:
        return _uint16_to_uint8(array, bit_depth=bit_depth)
    if array.dtype.kind == "f" and array.dtype.itemsize in (2, 4, 8):
        return _float_to_uint8(array)
    hint = " (a mask: .astype(np.uint8) * 255)" if array.dtype == np.bool_ else ""
    raise InputError(
        f"image arrays of dtype {array.dtype} are not read (no agreed pixel scale); pass uint8 "
        f"(.astype(np.uint8) if its values are 0..255){hint}, float in [0, 1], or uint16 with bit_depth="
    )


def _uint16_to_uint8(array: np.ndarray, *, bit_depth: int | None) -> np.ndarray:
    """uint16 levels of ``bit_depth`` bits as uint8, ``round(v * 255 / (2**bit_depth - 1))`` (halves up)."""
    if bit_depth is None:
        raise InputError(
            "a uint16 image array needs its bit depth: pass bit_depth=16 for full-range 16-bit data, "
            "bit_depth=12 or bit_depth=10 for a 12- or 10-bit camera or scanner stored in 16 bits"
        )
    top = (1 << bit_depth) - 1
    high = int(array.max()) if array.size else 0
    if high > top:
        raise InputError(
            f"uint16 pixels reach {high}, above {top}, the largest {bit_depth}-bit level (bit_depth={bit_depth}); "
            "pass the bit depth the data was recorded with (bit_depth=16 for the full 0..65535 range)"
        )
    return levels_to_uint8(array, bits=bit_depth)


def _float_to_uint8(array: np.ndarray) -> np.ndarray:
    """Float values in [0, 1] as uint8, ``round(x * 255)``; anything else refused."""
    if array.size and not np.isfinite(array).all():
        raise InputError("float pixels include NaN or infinite values; pass finite values in [0, 1], or uint8 levels")
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if high > 1:
        raise InputError(
            f"float pixels span {low:g}..{high:g}, above 1; fer-nla reads float image arrays as [0, 1]: divide "
            "by 255 (array / 255) if they are 0..255 levels, or pass array.astype(np.uint8)"
        )
    if low < 0:
        raise InputError(
            f"float pixels span {low:g}..{high:g}, below 0 (a normalised tensor?); fer-nla reads float image arrays "
            "as [0, 1] and normalises them itself: undo the normalisation, or pass uint8 levels"
        )
    return np.rint(array.astype(np.float64) * 255.0).astype(np.uint8)


def resize_face(rgb: np.ndarray, *, size: int, grayscale: bool = False) -> np.ndarray:
    """``uint8 [size, size, 3]``: the ``HxWx3`` uint8 RGB face ``rgb`` made gray first when
    ``grayscale`` (PIL's ``convert("L")`` on all 3 channels), then resized with PIL's bilinear
    filter (antialiased when shrinking), as ``torchvision.transforms.Resize`` does on PIL images."""
    pil = Image.fromarray(rgb)
    if grayscale:
        pil = pil.convert("L").convert("RGB")
    return np.array(pil.resize((size, size), Image.BILINEAR))  # writable: torch.from_numpy takes it as it is


def preprocess_faces(faces: Sequence[Image.Image | np.ndarray], *, preprocess: Preprocess,
                     bit_depth: int | None = None) -> np.ndarray:
    """``float32 [N, 3, S, S]`` model input from face crops (the module's steps): PIL images or
    arrays of the dtypes :func:`to_rgb_array` accepts (``bit_depth`` for uint16 arrays). Raises
    :class:`InputError` for other inputs, naming the crop's position."""
    size = preprocess.image_size
    batch = np.empty((len(faces), 3, size, size), dtype=np.float32)
    mean = np.asarray(preprocess.mean, dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(preprocess.std, dtype=np.float32).reshape(3, 1, 1)
    for i, face in enumerate(faces):
        try:
            rgb = to_rgb_array(face, bit_depth=bit_depth)
        except InputError as err:
            raise InputError(f"face crop {i} of {len(faces)}: {err}") from None
        resized = resize_face(rgb, size=size, grayscale=preprocess.grayscale)
        chw = resized.astype(np.float32).transpose(2, 0, 1) / np.float32(255.0)
        batch[i] = (chw - mean) / std
    return batch
