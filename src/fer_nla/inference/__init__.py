"""Inference: the one path from face crops to probabilities and face records, without PyTorch.

- :mod:`.preprocess`: eval-time preprocessing (:class:`Preprocess`, :func:`preprocess_faces`),
  shared by eval, predict, serve and training's validation;
- :mod:`.classify`: crops -> probabilities -> :class:`FacePrediction` records
  (:func:`crop_probabilities`, :func:`face_predictions`, :func:`loader_logits`);
- :mod:`.scoring`: the model's temperature and class prior, operating points (``train``,
  ``uniform``, given proportions), temperature fitting and the expected calibration error;
- :mod:`.backends`: which backend runs a model (:func:`load_backend`): onnxruntime
  (:mod:`.onnx_backend`) or PyTorch (:mod:`.torch_backend`, the ``train`` extra);
- :mod:`.faces`: boxes, crops and :class:`FacePrediction`.
"""

from fer_nla.inference.backends import BACKENDS, builtin_backend, load_backend
from fer_nla.inference.classify import Backend, crop_probabilities, face_predictions, loader_logits
from fer_nla.inference.faces import Box, FacePrediction, ScoredBox, crop_face
from fer_nla.inference.preprocess import Preprocess, preprocess_faces, to_rgb_array
from fer_nla.inference.scoring import OperatingPoint, Scoring, adjusted_probabilities, operating_point

__all__ = [
    "BACKENDS",
    "Backend",
    "Box",
    "FacePrediction",
    "OperatingPoint",
    "Preprocess",
    "ScoredBox",
    "Scoring",
    "adjusted_probabilities",
    "builtin_backend",
    "crop_face",
    "crop_probabilities",
    "face_predictions",
    "load_backend",
    "loader_logits",
    "operating_point",
    "preprocess_faces",
    "to_rgb_array",
]
