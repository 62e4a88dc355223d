"""Predictions on people's own photos, folders and videos: detectors, :class:`Predictor`,
media input, annotation, records and ONNX export.

``Predictor()`` runs the built-in model shipped in the package with onnxruntime (``fer-nla
models`` lists the built-in models). Importing this package does not import PyTorch and
prediction never needs it; only ``fer_nla.predict.onnx_export`` (which writes ONNX files) and
the PyTorch backend do. Crops become probabilities in :mod:`fer_nla.inference`, the path
``predict``, ``serve`` and ``eval`` share.
"""

from fer_nla.inference.faces import Box, FacePrediction, ScoredBox, crop_face
from fer_nla.inference.preprocess import Preprocess, preprocess_faces
from fer_nla.predict.detectors import (
    Detections,
    FaceDetector,
    HaarCascadeDetector,
    available_detectors,
    build_detector,
    detect_faces,
    run_detector,
)
from fer_nla.predict.files import predict_files
from fer_nla.predict.predictor import Predictor
from fer_nla.predict.records import FileRecord, Predictions, records_to_json, write_csv

__all__ = [
    "Box",
    "Detections",
    "FaceDetector",
    "FacePrediction",
    "FileRecord",
    "HaarCascadeDetector",
    "Predictions",
    "Predictor",
    "Preprocess",
    "ScoredBox",
    "available_detectors",
    "build_detector",
    "crop_face",
    "detect_faces",
    "predict_files",
    "preprocess_faces",
    "records_to_json",
    "run_detector",
    "write_csv",
]
