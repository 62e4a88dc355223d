"""One request's work on an inference thread: decode the photo, find and classify its faces,
and its answer: JSON, or the photo with the faces drawn on it."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from fer_nla import __version__
from fer_nla.inference.faces import FacePrediction, crop_face
from fer_nla.predict.annotate import draw_faces
from fer_nla.predict.predictor import Predictor
from fer_nla.predict.records import NO_FACE_NOTE
from fer_nla.serve.model import ModelIdentity
from fer_nla.serve.uploads import DecodedImage, Upload, decode_upload

IMAGE_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg"}
JPEG_QUALITY = 90


def predict_image(predictor: Predictor, rgb: np.ndarray) -> tuple[list[FacePrediction], dict[str, int]]:
    """The faces of the ``HxWx3`` uint8 photo ``rgb`` (box in its pixels, detector score, label,
    probabilities), in reading order, and the detector boxes dropped, by reason (``empty``,
    ``small``: below the predictor's ``min_face_size``, ``duplicate``), so no face found by the
    detector goes unaccounted for."""
    detections = predictor.detect(rgb)
    crops = [crop_face(rgb, face.box, margin=predictor.margin) for face in detections.faces]
    return predictor.classify(detections.faces, crops), dict(detections.dropped)


@dataclass(frozen=True)
class Prediction:
    """A photo's answer: the decoded ``image``, its ``faces``, the ``dropped`` detector boxes and
    ``inference_ms`` (decoding included, waiting for a thread not)."""

    image: DecodedImage
    faces: list[FacePrediction]
    dropped: dict[str, int]
    inference_ms: float


def run_prediction(predictor: Predictor, upload: Upload, *, max_pixels: int) -> Prediction:
    """Decodes ``upload`` (:func:`~fer_nla.serve.uploads.decode_upload`, which raises the 413,
    415 and 422 answers) and predicts its faces. Blocking: run it on an inference thread."""
    start = time.perf_counter()
    image = decode_upload(upload, max_pixels=max_pixels)
    faces, dropped = predict_image(predictor, image.rgb)
    return Prediction(image, faces, dropped, 1000 * (time.perf_counter() - start))


def prediction_json(prediction: Prediction, *, model: ModelIdentity, queued_ms: float) -> dict[str, Any]:
    """The JSON answer: ``faces`` (each ``{"box": [x, y, w, h], "score", "label", "probs"}`` as
    ``fer-nla predict --json`` writes them; ``score`` is the detector's), ``count``, ``dropped``,
    ``note`` (:func:`prediction_note`: ``"no face found"``, an animated image's remark, or ``None``),
    ``image`` (``width``, ``height``, ``format``, ``frames``),
    ``model`` (:class:`ModelIdentity`), ``version`` (fer-nla's) and ``timing_ms``."""
    faces = prediction.faces
    return {
        "faces": [face.to_dict() for face in faces],
        "count": len(faces),
        "dropped": prediction.dropped,
        "note": prediction_note(prediction),
        "image": {"width": prediction.image.width, "height": prediction.image.height,
                  "format": prediction.image.format, "frames": prediction.image.frames},
        "model": model.to_dict(),
        "version": __version__,
        "timing_ms": {"queued": round(queued_ms, 1), "inference": round(prediction.inference_ms, 1)},
    }


def prediction_note(prediction: Prediction) -> str | None:
    """``"no face found"``, the animated-image remark, both (joined by ``"; "``) or ``None``."""
    notes = [] if prediction.faces else [NO_FACE_NOTE]
    if prediction.image.frames > 1:
        notes.append(f"an animated {prediction.image.format} of {prediction.image.frames} frames: its first frame was "
                     "classified (send the other frames as images, or the file to fer-nla predict, which reads "
                     "every frame)")
    return "; ".join(notes) or None


def annotated_image(prediction: Prediction, *, image_format: str | None = None) -> tuple[bytes, str]:
    """The photo with each face's box and label drawn (``"no face found"`` written on a photo
    without one) encoded as ``image_format`` (``png`` or ``jpeg``; ``None``: JPEG for a JPEG
    upload, else PNG), and its media type. Same size as the decoded photo."""
    chosen = image_format or ("jpeg" if prediction.image.format in ("JPEG", "MPO") else "png")
    caption = None if prediction.faces else NO_FACE_NOTE
    drawn = draw_faces(prediction.image.rgb, prediction.faces, caption=caption)
    out = io.BytesIO()
    if chosen == "jpeg":
        Image.fromarray(drawn).save(out, format="JPEG", quality=JPEG_QUALITY)
    else:
        Image.fromarray(drawn).save(out, format="PNG")
    return out.getvalue(), IMAGE_TYPES[chosen]


def warm_up(predictor: Predictor) -> None:
    """Builds the detector and runs the model once on a blank 64x64 photo, so a broken detector
    fails at start-up and the first request pays no loading time."""
    predictor.detector  # noqa: B018 - builds it
    predict_image(predictor, np.full((64, 64, 3), 128, dtype=np.uint8))
