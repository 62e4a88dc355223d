"""Predictions on people's own photos, folders and videos, and the ONNX backend.

``Predictor()`` runs the built-in model shipped in the package (``fer-nla models`` lists the
built-in models; ``Predictor.pretrained(NAME, backend="onnx")`` runs one with onnxruntime).

Importing this package does not import torch: the onnxruntime path
(``Predictor.from_onnx``) runs without it. ``fer_nla.predict.onnx_export`` (which needs torch)
writes the ONNX files.
"""

from fer_nla.predict.detectors import (
    Box,
    Detections,
    FaceDetector,
    HaarCascadeDetector,
    ScoredBox,
    available_detectors,
    build_detector,
    detect_faces,
    run_detector,
)
from fer_nla.predict.files import predict_files
from fer_nla.predict.predictor import Predictor
from fer_nla.predict.preprocess import Preprocess, crop_face, preprocess_faces
from fer_nla.predict.records import FacePrediction, FileRecord, records_to_json, write_csv

__all__ = [
    "Box",
    "Detections",
    "FaceDetector",
    "FacePrediction",
    "FileRecord",
    "HaarCascadeDetector",
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
