"""``Predictor``: find faces, crop them with a margin, classify them in batches.

>>> predictor = Predictor.from_checkpoint("runs/raf/best.pt", device="auto")   # or .from_onnx("model.onnx")
>>> faces = predictor.predict(["group.jpg", pil_image, rgb_array])[0]         # one list per image
>>> faces[0].box, faces[0].label, faces[0].probs["happiness"]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, Union

import numpy as np
from PIL import Image

from fer_nla.errors import InputError
from fer_nla.predict.detectors import DEFAULT_MAX_SIDE, Box, FaceDetector, build_detector, detect_faces
from fer_nla.predict.inputs import read_image
from fer_nla.predict.preprocess import DEFAULT_MARGIN, Preprocess, crop_face, preprocess_faces, softmax, to_rgb_array
from fer_nla.predict.records import FacePrediction

ImageInput = Union[str, Path, Image.Image, np.ndarray]
DEFAULT_BATCH_SIZE = 32
BACKENDS: tuple[str, ...] = ("auto", "torch", "onnx")


class Backend(Protocol):
    """Runs the classifier: logits for a preprocessed ``N x 3 x S x S`` float32 batch."""

    class_names: list[str]
    preprocess: Preprocess

    def logits(self, batch: np.ndarray) -> np.ndarray: ...


class Predictor:
    """Expression predictions for whole photos (faces found by ``detector``) or face crops.

    ``detector`` is a registered name (``"haar"``) or any object with ``detect(image_rgb)``;
    ``detector_options`` go to the registered detector's constructor. ``margin`` widens each box
    on every side by that fraction of its side before cropping; ``max_side`` is the longest side
    images are detected at (larger ones are downsized for detection only).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        detector: str | FaceDetector = "haar",
        detector_options: dict[str, Any] | None = None,
        margin: float = DEFAULT_MARGIN,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_side: int = DEFAULT_MAX_SIDE,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch size must be 1 or more, got {batch_size}")
        if margin < 0:
            raise InputError(f"margin must be 0 or more (a fraction of the face box), got {margin}")
        self.backend = backend
        self.margin = margin
        self.batch_size = batch_size
        self.max_side = max_side
        self._detector_spec = detector
        self._detector_options = dict(detector_options or {})
        self._detector: FaceDetector | None = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str = "auto", **options: Any) -> Predictor:
        """A predictor running a fer-nla checkpoint with PyTorch on ``device``
        (``auto``: CUDA, else MPS, else CPU); ``options`` as for :class:`Predictor`."""
        from fer_nla.predict.torch_backend import TorchBackend

        return cls(TorchBackend.from_checkpoint(path, device=device), **options)

    @classmethod
    def from_onnx(cls, path: str | Path, *, providers: list[str] | None = None, threads: int | None = None,
                  **options: Any) -> Predictor:
        """A predictor running an exported ONNX model with onnxruntime (no PyTorch involved)."""
        from fer_nla.predict.onnx_backend import OnnxBackend

        return cls(OnnxBackend(path, providers=providers, threads=threads), **options)

    @classmethod
    def load(cls, path: str | Path, *, backend: str = "auto", device: str = "auto", **options: Any) -> Predictor:
        """``backend="auto"`` picks onnxruntime for ``.onnx`` files and PyTorch otherwise."""
        if backend not in BACKENDS:
            raise InputError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
        if backend == "onnx" or (backend == "auto" and Path(path).suffix.lower() == ".onnx"):
            return cls.from_onnx(path, **options)
        return cls.from_checkpoint(path, device=device, **options)

    @property
    def class_names(self) -> list[str]:
        return list(self.backend.class_names)

    @property
    def detector(self) -> FaceDetector:
        """The face detector, built on first use (cropped-face runs never build it)."""
        if self._detector is None:
            self._detector = build_detector(self._detector_spec, **self._detector_options)
        return self._detector

    # -- the steps ------------------------------------------------------------------------
    def find_faces(self, image_rgb: np.ndarray) -> list[Box]:
        """Face boxes in ``image_rgb``'s pixel coordinates."""
        return detect_faces(self.detector, image_rgb, max_side=self.max_side)

    def faces_and_crops(self, image_rgb: np.ndarray, *, faces_cropped: bool = False) -> tuple[list[Box], list[np.ndarray]]:
        """The boxes and their margin crops; with ``faces_cropped`` the whole image is one face."""
        if faces_cropped:
            height, width = image_rgb.shape[:2]
            return [Box(0, 0, width, height)], [image_rgb]
        boxes = self.find_faces(image_rgb)
        return boxes, [crop_face(image_rgb, box, margin=self.margin) for box in boxes]

    def probabilities(self, crops: Sequence[Image.Image | np.ndarray]) -> np.ndarray:
        """``N x num_classes`` class probabilities of face crops, in batches of ``batch_size``."""
        out = np.zeros((len(crops), len(self.class_names)), dtype=np.float32)
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start:start + self.batch_size]
            batch = preprocess_faces(chunk, preprocess=self.backend.preprocess)
            out[start:start + len(chunk)] = softmax(self.backend.logits(batch))
        return out

    def predict(self, images: ImageInput | Sequence[ImageInput], *, faces_cropped: bool = False) -> list[list[FacePrediction]]:
        """For each image (a path, a PIL image or an ``HxW[x3]`` array; one or a sequence), the
        faces found in it with their boxes, labels and probabilities, in reading order.
        Unreadable paths raise :class:`InputError`; ``fer_nla.predict.predict_files`` instead
        reports them per file."""
        items = [images] if _is_single(images) else list(images)  # type: ignore[arg-type]
        found: list[tuple[list[Box], list[np.ndarray]]] = []
        for item in items:
            rgb = read_image(item) if isinstance(item, (str, Path)) else to_rgb_array(item)
            found.append(self.faces_and_crops(rgb, faces_cropped=faces_cropped))
        probs = self.probabilities([crop for _, crops in found for crop in crops])
        results, offset = [], 0
        for boxes, _ in found:
            results.append([FacePrediction.from_probs(box, probs[offset + i], class_names=self.class_names)
                            for i, box in enumerate(boxes)])
            offset += len(boxes)
        return results


def _is_single(images: object) -> bool:
    if isinstance(images, (str, Path, Image.Image)):
        return True
    return isinstance(images, np.ndarray) and images.ndim in (2, 3)
