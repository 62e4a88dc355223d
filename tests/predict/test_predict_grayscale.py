"""Gray preprocessing: a model trained on gray faces sees PIL's luma of colour crops, in the
checkpoint, both backends, the ONNX metadata and eval's transform."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from fer_nla.checkpoint import CheckpointMeta, read_meta, save_checkpoint
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS
from fer_nla.inference.onnx_backend import OnnxBackend
from fer_nla.predict.predictor import Predictor
from fer_nla.inference.preprocess import Preprocess, preprocess_faces
from fer_nla.inference.torch_backend import TorchBackend

from conftest import IMAGE_SIZE, MEAN, STD


def _colour_and_gray(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A drawn colour face-sized crop (red, green and blue blocks, a yellow bar, noise) and its
    gray version: PIL's ``convert("L")`` on all 3 channels."""
    rng = np.random.default_rng(seed)
    crop = np.zeros((70, 64, 3), np.uint8)
    crop[:35, :32] = (220, 30, 40)
    crop[:35, 32:] = (20, 200, 60)
    crop[35:, :32] = (30, 60, 230)
    crop[50:60] = (240, 230, 20)
    crop = np.clip(crop.astype(int) + rng.integers(-20, 21, crop.shape), 0, 255).astype(np.uint8)
    return crop, np.asarray(Image.fromarray(crop).convert("L").convert("RGB"))


def _gray_meta(grayscale: bool) -> CheckpointMeta:
    return CheckpointMeta(arch="resnet18", num_classes=8, stem="small", class_names=tuple(EMOTIONS),
                          image_size=IMAGE_SIZE, mean=tuple(MEAN), std=tuple(STD), epoch=0, grayscale=grayscale)


def test_the_gray_version_is_itu_r_601_2_luma_on_every_channel() -> None:
    crop, gray = _colour_and_gray()
    c = crop.astype(np.int64)
    luma = (c[..., 0] * 299 + c[..., 1] * 587 + c[..., 2] * 114) / 1000  # PIL: fixed point, within one level
    for channel in range(3):
        assert np.abs(gray[..., channel] - luma).max() <= 0.5 + 1e-3
    assert gray[0, 0, 0] == round(0.299 * c[0, 0, 0] + 0.587 * c[0, 0, 1] + 0.114 * c[0, 0, 2])


def test_a_colour_crop_and_its_gray_version_agree_only_when_grayscale_is_on(tiny_model) -> None:
    crop, gray = _colour_and_gray()
    probs = {}
    for grayscale in (True, False):
        backend = TorchBackend(tiny_model, class_names=list(EMOTIONS),
                               preprocess=Preprocess(IMAGE_SIZE, tuple(MEAN), tuple(STD), grayscale=grayscale))
        probs[grayscale] = Predictor(backend).probabilities([crop, gray])
    np.testing.assert_array_equal(probs[True][0], probs[True][1])  # on: the model sees the same gray face
    assert np.abs(probs[False][0] - probs[False][1]).max() > 1e-3  # off: the colours reach the model
    np.testing.assert_array_equal(probs[True][1], probs[False][1])  # a gray crop is unchanged by the flag


def test_the_gray_input_is_replicated_luma_before_resizing() -> None:
    crop, gray = _colour_and_gray(1)
    on = preprocess_faces([crop], preprocess=Preprocess(IMAGE_SIZE, tuple(MEAN), tuple(STD), grayscale=True))
    off = preprocess_faces([gray], preprocess=Preprocess(IMAGE_SIZE, tuple(MEAN), tuple(STD)))
    np.testing.assert_array_equal(on, off)
    raw = on[0] * np.asarray(STD, np.float32).reshape(3, 1, 1) + np.asarray(MEAN, np.float32).reshape(3, 1, 1)
    np.testing.assert_allclose(raw[0], raw[1], atol=1e-6)  # the three channels carry one gray image
    np.testing.assert_allclose(raw[1], raw[2], atol=1e-6)


def test_the_checkpoint_records_grayscale_and_old_files_read_as_colour(tmp_path: Path, tiny_model) -> None:
    gray_path = save_checkpoint(tmp_path / "gray.pt", _gray_meta(True), state_dict=tiny_model.state_dict())
    payload = torch.load(gray_path, weights_only=True)
    assert payload["preprocess"]["grayscale"] is True
    assert read_meta(gray_path).grayscale is True
    assert Predictor.from_checkpoint(gray_path, device="cpu").backend.preprocess.grayscale is True
    del payload["preprocess"]["grayscale"]  # a checkpoint written before the key existed
    torch.save(payload, tmp_path / "old.pt")
    assert read_meta(tmp_path / "old.pt").grayscale is False
    assert Predictor.from_checkpoint(tmp_path / "old.pt", device="cpu").backend.preprocess.grayscale is False


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_a_grayscale_entry_that_is_not_a_boolean_is_refused_naming_the_file(tmp_path: Path, tiny_model, value) -> None:
    path = save_checkpoint(tmp_path / "best.pt", _gray_meta(True), state_dict=tiny_model.state_dict())
    payload = torch.load(path, weights_only=True)
    payload["preprocess"]["grayscale"] = value
    torch.save(payload, path)
    with pytest.raises(InputError) as caught:
        read_meta(path)
    assert str(caught.value).startswith(f"{path}: preprocess 'grayscale' is {value!r} ")
    with pytest.raises(InputError, match="not true or false"):
        Preprocess.from_dict({"image_size": 48, "mean": MEAN, "std": STD, "grayscale": value}, source="m.onnx")


def _with_metadata(source: Path, target: Path, **changes: str | None) -> Path:
    """A copy of the ONNX model ``source`` with metadata entries set (or removed for ``None``)."""
    proto = onnx.load(str(source))
    props = {p.key: p.value for p in proto.metadata_props}
    props.update({k: v for k, v in changes.items() if v is not None})
    for key in [k for k, v in changes.items() if v is None]:
        props.pop(key, None)
    del proto.metadata_props[:]
    for key, value in props.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(target))
    return target


def test_the_onnx_export_carries_grayscale_and_onnxruntime_applies_it(tmp_path: Path, onnx_model: Path,
                                                                     tiny_model) -> None:
    meta = {p.key: p.value for p in onnx.load(str(onnx_model)).metadata_props}
    assert json.loads(meta["grayscale"]) is False  # the export writes the flag (the fixture's model: colour)
    gray_onnx = _with_metadata(onnx_model, tmp_path / "gray.onnx", grayscale="true")
    old_onnx = _with_metadata(onnx_model, tmp_path / "old.onnx", grayscale=None)
    assert OnnxBackend(gray_onnx).preprocess.grayscale is True
    assert OnnxBackend(old_onnx).preprocess.grayscale is False  # exported before the key existed
    crop, gray = _colour_and_gray(2)
    onnx_probs = Predictor.from_onnx(gray_onnx).probabilities([crop, gray])
    np.testing.assert_array_equal(onnx_probs[0], onnx_probs[1])
    torch_backend = TorchBackend(tiny_model, class_names=list(EMOTIONS),
                                 preprocess=replace(OnnxBackend(old_onnx).preprocess, grayscale=True))
    np.testing.assert_allclose(onnx_probs, Predictor(torch_backend).probabilities([crop, gray]), atol=1e-4)
    with pytest.raises(InputError, match=r"gray.onnx: preprocess 'grayscale' is 'yes'"):
        OnnxBackend(_with_metadata(onnx_model, tmp_path / "gray.onnx", grayscale='"yes"'))


def test_eval_shows_a_gray_model_the_luma_of_colour_images() -> None:
    from fer_nla.data.transforms import eval_transform

    crop, gray = _colour_and_gray(3)
    on = Preprocess(IMAGE_SIZE, tuple(MEAN), tuple(STD), grayscale=True)  # eval's transform for a gray model
    off = Preprocess(IMAGE_SIZE, tuple(MEAN), tuple(STD), grayscale=False)
    np.testing.assert_array_equal(on(Image.fromarray(crop)), off(Image.fromarray(gray)))
    assert not np.array_equal(off(Image.fromarray(crop)), off(Image.fromarray(gray)))
    theirs = preprocess_faces([crop], preprocess=on)
    np.testing.assert_array_equal(on(Image.fromarray(crop)), theirs[0])  # eval and predict agree
    validation = eval_transform(image_size=IMAGE_SIZE, mean=MEAN, std=STD, grayscale=True)  # fer-nla train's
    np.testing.assert_array_equal(validation(Image.fromarray(crop)).numpy(), theirs[0])