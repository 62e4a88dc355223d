"""Inference: the one path from face crops to probabilities and face records, without PyTorch.

- :mod:`.preprocess`: eval-time preprocessing (:class:`Preprocess`, :func:`preprocess_faces`),
  shared by eval, predict, serve and training's validation;
- :mod:`.classify`: crops -> probabilities -> :class:`FacePrediction` records
  (:func:`crop_probabilities`, :func:`face_predictions`, :func:`loader_probabilities`);
- :mod:`.backends`: which backend runs a model (:func:`load_backend`): onnxruntime
  (:mod:`.onnx_backend`) or PyTorch (:mod:`.torch_backend`, the ``train`` extra);
- :mod:`.faces`: boxes, crops and :class:`FacePrediction`.
"""

from fer_nla.inference.backends import BACKENDS, builtin_backend, load_backend
from fer_nla.inference.classify import Backend, crop_probabilities, face_predictions, loader_probabilities
from fer_nla.inference.faces import Box, FacePrediction, ScoredBox, crop_face
from fer_nla.inference.preprocess import Preprocess, preprocess_faces, softmax, to_rgb_array

__all__ = [
    "BACKENDS",
    "Backend",
    "Box",
    "FacePrediction",
    "Preprocess",
    "ScoredBox",
    "builtin_backend",
    "crop_face",
    "crop_probabilities",
    "face_predictions",
    "load_backend",
    "loader_probabilities",
    "preprocess_faces",
    "softmax",
    "to_rgb_array",
]
