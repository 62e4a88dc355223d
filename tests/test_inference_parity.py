"""One inference path (issue 22): the same real faces get the same probabilities from ``fer-nla
eval`` (PyTorch and ONNX), :class:`Predictor` (both backends) and ``fer-nla serve``.

The faces are those of the real photos in tests/data/photos (faces.json), cropped as predict crops
them and written as PNG (lossless) into a class-folder dataset for eval."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_nla.builtin import builtin_onnx_path, builtin_path
from fer_nla.data import build_dataset
from fer_nla.evaluate import evaluate_checkpoint
from fer_nla.inference.faces import Box, crop_face
from fer_nla.inference.preprocess import to_rgb_array
from fer_nla.predict import Predictor
from fer_nla.predict.inputs import read_image

PHOTOS = Path(__file__).parent / "data" / "photos"
TOLERANCE = 1e-5
CLASS_FOLDERS = ("neutral", "happiness", "surprise")  # labels do not matter here, only the probabilities


@pytest.fixture(scope="module")
def face_folder(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The photos' faces as PNG crops in ``<root>/<class>/``, in the dataset's (sorted) order."""
    root = tmp_path_factory.mktemp("faces")
    count = 0
    for name, entry in json.loads((PHOTOS / "faces.json").read_text()).items():
        rgb = to_rgb_array(read_image(PHOTOS / name))
        for face in entry["faces"]:
            folder = root / CLASS_FOLDERS[count % len(CLASS_FOLDERS)]
            folder.mkdir(exist_ok=True)
            Image.fromarray(crop_face(rgb, Box(*face))).save(folder / f"{Path(name).stem}_{count:02d}.png")
            count += 1
    assert count >= 10
    dataset = build_dataset("folder", root=str(root), split="train", labels="majority", num_classes=8)
    return [Path(sample) for sample in dataset.samples]


def _eval_probs(model: Path, root: Path) -> np.ndarray:
    result = evaluate_checkpoint(str(model), dataset="folder", root=str(root), split="train", device_name="cpu",
                                 with_probabilities=True, batch_size=7)
    return result["probs"]


def test_eval_and_predictor_give_every_face_the_same_probabilities(face_folder: list[Path]) -> None:
    root = face_folder[0].parents[1]
    by_backend = {}
    for backend in ("onnx", "torch"):
        predictor = Predictor.pretrained(backend=backend, device="cpu", batch_size=5)
        found = predictor.predict(face_folder, faces_cropped=True)
        by_backend[backend] = np.array([[faces[0].probs[name] for name in predictor.class_names] for faces in found])
    eval_torch = _eval_probs(builtin_path(), root)
    eval_onnx = _eval_probs(builtin_onnx_path(), root)
    for probs in (by_backend["torch"], eval_torch, eval_onnx):
        np.testing.assert_allclose(probs, by_backend["onnx"], atol=TOLERANCE, rtol=0)
    np.testing.assert_array_equal(eval_onnx, by_backend["onnx"])  # one preprocessing, one backend: equal bits
    assert len({row.tobytes() for row in eval_onnx}) == len(face_folder)  # distinct faces, not one repeated


def test_serve_gives_the_predictor_probabilities_of_a_group_photo(face_folder: list[Path]) -> None:
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from fer_nla.serve import ServeSettings
    from fer_nla.serve.app import create_app

    photo = PHOTOS / "group.jpg"
    expected = {backend: Predictor.pretrained(backend=backend, device="cpu").predict(photo)[0]
                for backend in ("onnx", "torch")}
    with TestClient(create_app(ServeSettings(device="cpu"))) as client:
        answer = client.post("/v1/predict", files={"file": ("group.jpg", photo.read_bytes(), "image/jpeg")})
    assert answer.status_code == 200
    served = answer.json()["faces"]
    assert len(served) == len(expected["onnx"]) == 14
    for backend, faces in expected.items():
        for mine, theirs in zip(served, faces):
            assert mine["box"] == list(theirs.box)
            np.testing.assert_allclose([mine["probs"][k] for k in theirs.probs], list(theirs.probs.values()),
                                       atol=TOLERANCE, rtol=0, err_msg=backend)
