"""Shared fixtures for the predict tests: a tiny checkpoint, its ONNX export, real FERPlus faces."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fer_nla.checkpoint import CheckpointMeta, save_checkpoint
from fer_nla.labels import EMOTIONS
from fer_nla.models import build_model

IMAGE_SIZE = 48
MEAN = [0.577, 0.4494, 0.4001]
STD = [0.2628, 0.2395, 0.2383]
# FERPlus validation faces the Haar cascade finds alone on a noisy background at every size
# from 96 to 128 px (screened once; frontal, varied expressions: neutral, happiness, surprise,
# sadness, anger, contempt).
FRONTAL_FACES = ("fer0028645.png", "fer0028642.png", "fer0028654.png", "fer0028644.png", "fer0028649.png", "fer0028675.png")


def ferplus_root() -> Path:
    env = os.environ.get("FER_NLA_FERPLUS")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "ferplus"


@pytest.fixture(scope="session")
def frontal_faces() -> list[np.ndarray]:
    """The 48x48 FERPlus faces of :data:`FRONTAL_FACES` as RGB arrays (skip when absent)."""
    folder = ferplus_root() / "FER2013Valid"
    paths = [folder / name for name in FRONTAL_FACES]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"FERPlus validation faces not found under {folder} (set FER_NLA_FERPLUS)")
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


def compose_photo(faces: list[np.ndarray], *, sizes: list[int], canvas: tuple[int, int], seed: int = 0,
                  gap: int = 60) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Faces upscaled to ``sizes`` and pasted left to right, row by row, with ``gap`` pixels of
    noisy grey background between them; returns the photo and where each face went."""
    rng = np.random.default_rng(seed)
    height, width = canvas
    photo = np.clip(rng.normal(128, 12, size=(height, width, 3)), 0, 255).astype(np.uint8)
    x, y, row_height, placed = gap, gap, 0, []
    for face, size in zip(faces, sizes):
        if x + size + gap > width:
            x, y, row_height = gap, y + row_height + gap, 0
        assert y + size + gap <= height, "canvas too small for the faces"
        photo[y:y + size, x:x + size] = np.asarray(Image.fromarray(face).resize((size, size), Image.BICUBIC))
        placed.append((x, y, size, size))
        x, row_height = x + size + gap, max(row_height, size)
    return photo, placed


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.fixture(scope="session")
def tiny_model() -> torch.nn.Module:
    """A ResNet-18 (small stem) with seeded random weights, BN statistics from a few random
    batches and a sharpened head, so class probabilities differ clearly between faces."""
    torch.manual_seed(0)
    model = build_model("resnet18", num_classes=8, stem="small")
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, IMAGE_SIZE, IMAGE_SIZE))
        model.fc.weight.mul_(40.0)
    return model.eval()


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_model: torch.nn.Module) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    meta = CheckpointMeta(arch="resnet18", num_classes=8, stem="small", class_names=tuple(EMOTIONS),
                          image_size=IMAGE_SIZE, mean=tuple(MEAN), std=tuple(STD), epoch=0)
    save_checkpoint(path, meta, state_dict=tiny_model.state_dict())
    return path


@pytest.fixture(scope="session")
def exported(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path) -> tuple[Path, int, str]:
    """The checkpoint exported by ``fer-nla export`` (which also verifies it): path, exit status, output."""
    from fer_nla.cli import main

    target = tmp_path_factory.mktemp("onnx") / "nested" / "model.onnx"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["export", "--checkpoint", str(checkpoint), "--onnx", str(target)])
    return target, status, out.getvalue()


@pytest.fixture(scope="session")
def onnx_model(exported: tuple[Path, int, str]) -> Path:
    return exported[0]


def reference_probs(model: torch.nn.Module, crops: list[np.ndarray]) -> np.ndarray:
    """Class probabilities computed independently of fer_nla.predict: torchvision's eval
    transform and the model's forward pass."""
    from fer_nla.data.transforms import eval_transform

    transform = eval_transform(image_size=IMAGE_SIZE, mean=MEAN, std=STD)
    with torch.no_grad():
        batch = torch.stack([transform(Image.fromarray(c)) for c in crops])
        return torch.softmax(model(batch).double(), dim=1).numpy()


def pil_crop_with_margin(photo: np.ndarray, box: tuple[int, int, int, int], margin: float) -> np.ndarray:
    """The square margin crop of an interior box, by PIL (an independent formula)."""
    x, y, w, h = box
    side = round(max(w, h) * (1 + 2 * margin))
    left, top = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    return np.asarray(Image.fromarray(photo).crop((left, top, left + side, top + side)))
