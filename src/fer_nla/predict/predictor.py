"""``Predictor``: find faces, crop them with a margin, classify them in batches.

>>> predictor = Predictor()                                  # the built-in model (onnxruntime; no PyTorch)
>>> faces = predictor.predict(["group.jpg", pil_image, rgb_array])[0]         # one list per image
>>> faces[0].box, faces[0].score, faces[0].label, faces[0].probs["happiness"]

The model comes from one of these constructors (each takes the :class:`Predictor` options,
e.g. ``detector=``, ``margin=``, ``batch_size=``):

- ``Predictor()``: the built-in default model, :data:`fer_nla.builtin.DEFAULT_MODEL`, shipped
  inside the package (nothing is downloaded), its ONNX file run by onnxruntime on the CPU;
- ``Predictor.pretrained(name, backend="onnx" | "torch", device="auto")``: a built-in model
  by name (``fer-nla models`` lists them): its ONNX file, or its checkpoint with PyTorch;
- ``Predictor.from_checkpoint("runs/raf/best.pt", device="auto")``: a fer-nla checkpoint (PyTorch);
- ``Predictor.from_onnx("model.onnx")``: a model from ``fer-nla export``, onnxruntime only;
- ``Predictor.load(path_or_builtin_ref, backend="auto")``: any of these
  (:func:`fer_nla.inference.backends.load_backend`);
- ``Predictor(backend)``: any :class:`~fer_nla.inference.classify.Backend` (an object with
  ``class_names``, ``preprocess`` and ``logits(batch)``).

The faces' probabilities and records come from :mod:`fer_nla.inference.classify`, the one path
``predict``, ``serve`` and ``eval`` share.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np
from PIL import Image

from fer_nla.builtin import DEFAULT_MODEL
from fer_nla.errors import InputError
from fer_nla.image_files import frame_count
from fer_nla.inference.backends import builtin_backend, load_backend
from fer_nla.inference.classify import Backend, backend_scoring, crop_probabilities, face_predictions
from fer_nla.inference.faces import DEFAULT_MARGIN, Box, FacePrediction, ScoredBox, crop_face
from fer_nla.inference.preprocess import check_bit_depth, check_channels, to_rgb_array
from fer_nla.inference.scoring import Prior, operating_point
from fer_nla.predict.detectors import (
    DEFAULT_DETECTOR,
    DEFAULT_MAX_SIDE,
    DEFAULT_MIN_FACE_SIZE,
    NMS_IOU,
    Detections,
    FaceDetector,
    build_detector,
    run_detector,
)
from fer_nla.predict.inputs import read_image

ImageInput = Union[str, Path, Image.Image, np.ndarray]
DEFAULT_BATCH_SIZE = 32


class Predictor:
    """Expression predictions for whole photos (faces found by ``detector``) or face crops.

    ``backend`` runs the classifier (:class:`~fer_nla.inference.classify.Backend`); ``None`` (the
    default) is the built-in model :data:`fer_nla.builtin.DEFAULT_MODEL`'s ONNX file on
    onnxruntime (CPU, or CUDA where this onnxruntime has it), loaded after the options are checked.

    ``detector`` is a registered name (default ``"retinaface"``, the RetinaFace CNN shipped in the
    package; ``"haar"``: OpenCV's Haar cascade) or any object with ``detect(image_rgb)``;
    ``detector_options`` go to the registered detector's constructor. ``margin`` widens each box
    on every side by that fraction of its side before cropping; ``max_side`` is the longest side
    images are detected at (larger ones are downsized for detection only).

    ``min_face_size`` is the shortest face side, in pixels, that is classified (default
    :data:`~fer_nla.predict.detectors.DEFAULT_MIN_FACE_SIZE`, 16 px: below it an eye or the mouth
    spans 2-3 pixels and the crop is upscaled more than 3x to the smallest model input, 48 px, so
    a label would be noise): smaller detector boxes are dropped (counted in
    :meth:`detect`'s ``dropped``), and a smaller ``faces_cropped`` input raises
    :class:`InputError`. It is not the Haar detector's ``min_size`` (the smallest face it searches
    for, 48 px). Detector boxes overlapping by an IoU above ``nms_iou`` (default
    :data:`~fer_nla.predict.detectors.NMS_IOU`, 0.4) are one face: the higher-scored box is kept.
    """

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        detector: str | FaceDetector = DEFAULT_DETECTOR,
        detector_options: dict[str, Any] | None = None,
        margin: float = DEFAULT_MARGIN,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_side: int = DEFAULT_MAX_SIDE,
        min_face_size: int = DEFAULT_MIN_FACE_SIZE,
        nms_iou: float = NMS_IOU,
        prior: Prior = "default",
        calibrated: bool = True,
    ) -> None:
        if batch_size < 1:
            raise InputError(f"batch size must be 1 or more, got {batch_size}")
        if margin < 0:
            raise InputError(f"margin must be 0 or more (a fraction of the face box), got {margin}")
        if isinstance(min_face_size, bool) or not isinstance(min_face_size, int) or min_face_size < 1:
            raise InputError(f"min_face_size must be a whole number of pixels, 1 or more, got {min_face_size!r}")
        if not 0 < nms_iou <= 1:
            raise InputError(f"nms_iou must lie in (0, 1] (1 keeps every overlapping box), got {nms_iou}")
        self.backend = backend if backend is not None else builtin_backend()
        self.point = operating_point(backend_scoring(self.backend), num_classes=len(self.backend.class_names),
                                     prior=prior, calibrated=calibrated)
        self.margin = margin
        self.batch_size = batch_size
        self.max_side = max_side
        self.min_face_size = min_face_size
        self.nms_iou = nms_iou
        self._detector_spec = detector
        self._detector_options = dict(detector_options or {})
        self._detector: FaceDetector | None = None

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str = "auto", **options: Any) -> Predictor:
        """A predictor running a fer-nla checkpoint with PyTorch on ``device``
        (``auto``: CUDA, else MPS, else CPU); ``options`` as for :class:`Predictor`."""
        return cls(load_backend(path, backend="torch", device=device), **options)

    @classmethod
    def from_onnx(cls, path: str | Path, *, device: str = "cpu", threads: int | None = None,
                  **options: Any) -> Predictor:
        """A predictor running an exported ONNX model with onnxruntime (no PyTorch involved) on
        ``device`` (``cpu``, ``cuda``, ``cuda:N``, ``auto``); ``threads``: onnxruntime's intra-op threads."""
        return cls(load_backend(path, backend="onnx", device=device, threads=threads), **options)

    @classmethod
    def pretrained(cls, name: str = DEFAULT_MODEL, *, backend: str = "onnx", device: str = "auto",
                   **options: Any) -> Predictor:
        """A predictor running the built-in model ``name``
        (:func:`~fer_nla.inference.backends.builtin_backend`: its ONNX file on onnxruntime, or its
        checkpoint with PyTorch); ``options`` as for :class:`Predictor`."""
        return cls(builtin_backend(name, backend=backend, device=device), **options)

    @classmethod
    def load(cls, path: str | Path, *, backend: str = "auto", device: str = "auto", **options: Any) -> Predictor:
        """The model ``path`` (a checkpoint, an ``.onnx`` file or ``"builtin:NAME"``) on ``backend``
        (``auto``: onnxruntime for ONNX files and built-in models, PyTorch for checkpoints) and
        ``device`` (:func:`~fer_nla.inference.backends.load_backend`, whose errors it raises)."""
        return cls(load_backend(path, backend=backend, device=device), **options)

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
    def detect(self, image: Image.Image | np.ndarray, *, bit_depth: int | None = None) -> Detections:
        """The faces in ``image`` (a PIL image or an array of the dtypes :func:`to_rgb_array`
        accepts) with their detector scores, in its pixel coordinates and reading order, and the
        boxes dropped as empty, small or duplicate (:func:`~fer_nla.predict.detectors.run_detector`)."""
        return run_detector(self.detector, to_rgb_array(image, bit_depth=bit_depth), max_side=self.max_side,
                            min_face_size=self.min_face_size, nms_iou=self.nms_iou)

    def find_faces(self, image: Image.Image | np.ndarray, *, bit_depth: int | None = None) -> list[Box]:
        """Face boxes in ``image``'s pixel coordinates (:meth:`detect` without scores and counts)."""
        return [face.box for face in self.detect(image, bit_depth=bit_depth).faces]

    def faces_and_crops(self, image: Image.Image | np.ndarray, *, faces_cropped: bool = False,
                        bit_depth: int | None = None, channels: str = "rgb") -> tuple[list[ScoredBox], list[np.ndarray]]:
        """The faces (box and detector score) and their ``HxWx3`` uint8 RGB margin crops; with
        ``faces_cropped`` the whole image is one face (score ``None``). ``image`` is a PIL image or
        an array of the dtypes :func:`to_rgb_array` accepts, its channels in ``channels`` order
        (``rgb``; ``bgr`` for OpenCV's arrays). Raises :class:`InputError` for other arrays and, with
        ``faces_cropped``, for an image whose shorter side is below ``min_face_size``."""
        rgb = to_rgb_array(image, bit_depth=bit_depth, channels=channels)
        if faces_cropped:
            height, width = rgb.shape[:2]
            if min(height, width) < self.min_face_size:
                raise InputError(
                    f"face {width}x{height} px is smaller than the minimum face size {self.min_face_size} px "
                    "(--min-face-size); pass a larger face crop, or lower --min-face-size / min_face_size="
                )
            return [ScoredBox(Box(0, 0, width, height))], [rgb]
        faces = self.detect(rgb).faces
        return faces, [crop_face(rgb, face.box, margin=self.margin) for face in faces]

    def probabilities(self, crops: Sequence[Image.Image | np.ndarray], *, bit_depth: int | None = None,
                      channels: str = "rgb") -> np.ndarray:
        """``float32 [N, C]`` class probabilities of face crops (PIL images or arrays of the
        dtypes :func:`to_rgb_array` accepts; arrays in ``channels`` order, ``rgb`` or ``bgr`` for
        OpenCV's), in batches of ``batch_size``, at the predictor's prior and calibration
        (:func:`~fer_nla.inference.classify.crop_probabilities`)."""
        if channels != "rgb":
            crops = [to_rgb_array(c, bit_depth=bit_depth, channels=channels) if isinstance(c, np.ndarray) else c
                     for c in crops]
        return crop_probabilities(self.backend, crops, batch_size=self.batch_size, bit_depth=bit_depth, point=self.point)

    def classify(self, faces: Sequence[Box | ScoredBox], crops: Sequence[Image.Image | np.ndarray]) -> list[FacePrediction]:
        """The prediction of each face from its crop (:func:`~fer_nla.inference.classify.face_predictions`)."""
        return face_predictions(faces, self.probabilities(crops), class_names=self.class_names)

    def predict(self, images: ImageInput | Sequence[ImageInput], *, faces_cropped: bool = False,
                bit_depth: int | None = None, channels: str = "rgb") -> list[list[FacePrediction]]:
        """For each image (one or a sequence), the faces found in it with their boxes, detector
        scores, labels and probabilities, in reading order.

        An image is a path, a PIL image or an ``HxW``/``HxWx3``/``HxWx4`` array of dtype uint8
        (0..255), float16/32/64 in [0, 1], or uint16 with ``bit_depth`` (its bits, 1..16) stated,
        its channels RGB unless ``channels="bgr"`` (OpenCV: ``cv2.imread``, video frames; paths and
        PIL images are decoded as RGB whatever ``channels`` says);
        other dtypes and ranges (a float array of 0..255 levels, an int64 array) raise
        :class:`InputError` saying what to pass (:func:`to_rgb_array`). With ``faces_cropped``
        each image is one face, and one whose shorter side is below ``min_face_size`` raises
        :class:`InputError`. An animated image's path gives its first frame, with a ``UserWarning``
        (``fer-nla predict`` reads every frame). Unreadable paths raise :class:`InputError`;
        ``fer_nla.predict.predict_files`` instead reports them per file."""
        items = [images] if _is_single(images) else list(images)  # type: ignore[arg-type]
        bit_depth, channels = check_bit_depth(bit_depth), check_channels(channels)
        found: list[tuple[list[ScoredBox], list[np.ndarray]]] = []
        for i, item in enumerate(items):
            try:
                rgb = read_image(item) if isinstance(item, (str, Path)) else item
                frames = frame_count(item) if isinstance(item, (str, Path)) else 1
                if frames > 1:
                    warnings.warn(f"{item} is an animated image of {frames} frames: its first frame was "
                                  "classified (fer-nla predict reads every frame, with their times)", stacklevel=2)
                order = channels if isinstance(item, np.ndarray) else "rgb"  # paths and PIL images decode as RGB
                found.append(self.faces_and_crops(rgb, faces_cropped=faces_cropped, bit_depth=bit_depth, channels=order))
            except InputError as err:
                if len(items) == 1:
                    raise
                raise InputError(f"image {i} of the {len(items)} given: {err}") from None
        faces = self.classify([face for boxes, _ in found for face in boxes], [crop for _, crops in found for crop in crops])
        results, offset = [], 0
        for boxes, _ in found:
            results.append(faces[offset:offset + len(boxes)])
            offset += len(boxes)
        return results


def _is_single(images: object) -> bool:
    if isinstance(images, (str, Path, Image.Image)):
        return True
    return isinstance(images, np.ndarray) and images.ndim in (2, 3)
