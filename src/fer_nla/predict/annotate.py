"""Boxes and labels drawn on images and video frames, and writing them to files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from fer_nla.predict.records import FacePrediction

BOX_COLOR = (0, 200, 255)  # RGB
TEXT_COLOR = (0, 0, 0)
# Suffixes an annotated image keeps; anything else is written as PNG.
IMAGE_WRITE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
VIDEO_CODEC = "mp4v"


def draw_faces(image_rgb: np.ndarray, faces: Sequence[FacePrediction]) -> np.ndarray:
    """A copy of ``image_rgb`` with each face's box and ``label probability`` drawn on it;
    line and text sizes grow with the image."""
    out = np.ascontiguousarray(image_rgb.copy())
    height, width = out.shape[:2]
    thickness = max(1, round(max(height, width) / 400))
    font_scale = max(0.4, max(height, width) / 1200)
    for face in faces:
        x, y, w, h = face.box
        cv2.rectangle(out, (x, y), (x + w - 1, y + h - 1), BOX_COLOR, thickness)
        text = f"{face.label} {face.probs[face.label]:.2f}"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        top = y - th - base - 2 if y - th - base - 2 >= 0 else min(y + h, height - th - base - 2)
        cv2.rectangle(out, (x, top), (x + tw + 2, top + th + base + 2), BOX_COLOR, cv2.FILLED)
        cv2.putText(out, text, (x + 1, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, font_scale, TEXT_COLOR, thickness, cv2.LINE_AA)
    return out


def annotated_image_path(directory: Path, name: Path) -> Path:
    """Where the annotated copy of input ``name`` goes under ``directory``."""
    target = directory / name
    return target if target.suffix.lower() in IMAGE_WRITE_SUFFIXES else target.with_name(target.name + ".png")


def save_image(image_rgb: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image_rgb).save(path)
    return path


class AnnotatedVideo:
    """Writes annotated RGB frames to an MP4 (``mp4v``) file at ``fps`` frames per second."""

    def __init__(self, path: Path, *, fps: float, width: int, height: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.size = (width, height)
        self._writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*VIDEO_CODEC), fps, self.size)
        if not self._writer.isOpened():
            raise OSError(f"OpenCV cannot write the video {path} with codec {VIDEO_CODEC}")

    def write(self, frame_rgb: np.ndarray) -> None:
        if (frame_rgb.shape[1], frame_rgb.shape[0]) != self.size:
            frame_rgb = cv2.resize(frame_rgb, self.size)
        self._writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()


def annotated_video_path(directory: Path, name: Path) -> Path:
    """Where the annotated copy of video ``name`` goes (always ``.mp4``)."""
    return (directory / name).with_suffix(".mp4")
