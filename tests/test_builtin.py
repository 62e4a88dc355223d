"""The built-in model: shipped in the package, loaded without network, used wherever no
checkpoint is given (predict, eval, export, ``Predictor()``), listed by ``fer-nla models``.

The shipped weights may be a placeholder while the recipe trains: these tests check mechanics,
never accuracy."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from fer_nla.builtin import DEFAULT_MODEL, ChosenModel, builtin_onnx_path, builtin_path, card_path, choose_model
from fer_nla.checkpoint import load_model
from fer_nla.cli import main
from fer_nla.errors import InputError
from fer_nla.predict import Predictor

FERPLUS_CLASSES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """Every attempt to open a network connection fails (and is recorded)."""
    attempts: list[tuple] = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return attempts


def _drawn_face(seed: int = 0) -> np.ndarray:
    """A drawn 72x72 'face': a skin-toned disc, two dark eyes and a mouth arc, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:72, :72]
    face = np.full((72, 72, 3), 40, np.float64)
    face[(yy - 36) ** 2 + (xx - 36) ** 2 < 30 ** 2] = (200, 160, 130)
    for cx in (25, 47):
        face[(yy - 28) ** 2 + (xx - cx) ** 2 < 16] = (30, 20, 20)
    face[((yy - 40) ** 2 + (xx - 36) ** 2 < 14 ** 2) & ((yy - 40) ** 2 + (xx - 36) ** 2 > 11 ** 2) & (yy > 44)] = (120, 40, 40)
    return np.clip(face + rng.normal(0, 6, face.shape), 0, 255).astype(np.uint8)


def test_the_builtin_file_loads_with_weights_only_and_no_network(no_network) -> None:
    path = builtin_path()
    assert path.is_file() and path.parent.name == "weights" and path.stat().st_size < 10 * 2**20
    payload = torch.load(path, weights_only=True, map_location="cpu")
    assert payload["format"] == "fer-nla" and payload["class_names"] == FERPLUS_CLASSES
    model, meta = load_model(path)
    assert meta.num_classes == 8 and meta.image_size == 48
    assert model(torch.zeros(2, 3, 48, 48)).shape == (2, 8)
    probs = Predictor().probabilities([_drawn_face()])
    assert probs.shape == (1, 8) and abs(float(probs.sum()) - 1) < 1e-5
    assert no_network == []  # nothing even tried to connect


def test_predictor_without_arguments_is_the_default_builtin_model() -> None:
    face = _drawn_face(1)
    default = Predictor()
    assert default.class_names == FERPLUS_CLASSES
    expected = Predictor.from_checkpoint(builtin_path(DEFAULT_MODEL), device="cpu").probabilities([face])
    np.testing.assert_allclose(default.probabilities([face]), expected, atol=1e-6)
    np.testing.assert_allclose(Predictor.pretrained().probabilities([face]), expected, atol=1e-6)
    np.testing.assert_allclose(Predictor.load(f"builtin:{DEFAULT_MODEL}").probabilities([face]), expected, atol=1e-6)
    [[found]] = Predictor(margin=0.2).predict(face, faces_cropped=True)
    assert found.label in FERPLUS_CLASSES and found.box == (0, 0, 72, 72)
    assert found.probs[found.label] == max(found.probs.values())


def test_pretrained_onnx_gives_the_torch_probabilities() -> None:
    faces = [_drawn_face(seed) for seed in range(3)] + [np.full((50, 60, 3), 128, np.uint8)]
    torch_probs = Predictor.pretrained(DEFAULT_MODEL, backend="torch", device="cpu").probabilities(faces)
    onnx_predictor = Predictor.pretrained(DEFAULT_MODEL, backend="onnx", device="cpu")
    assert type(onnx_predictor.backend).__name__ == "OnnxBackend"
    assert onnx_predictor.backend.path == builtin_onnx_path(DEFAULT_MODEL)  # the shipped file, no export at run time
    assert onnx_predictor.backend.preprocess == Predictor.pretrained(backend="torch").backend.preprocess  # gray flag too
    np.testing.assert_allclose(onnx_predictor.probabilities(faces), torch_probs, atol=1e-5)


def test_the_shipped_onnx_file_equals_the_shipped_checkpoint_on_real_faces() -> None:
    """The ONNX file prediction runs is the export of the checkpoint fine-tuning starts from:
    the faces of the real photos in tests/data/photos, cropped as predict crops them, get the same
    probabilities from both within 1e-5 (scripts/make_builtin.py writes the ONNX file)."""
    from fer_nla.inference.faces import Box, crop_face
    from fer_nla.inference.preprocess import to_rgb_array
    from fer_nla.predict.inputs import read_image

    photos = Path(__file__).parent / "data" / "photos"
    crops = []
    for name, entry in json.loads((photos / "faces.json").read_text()).items():
        rgb = to_rgb_array(read_image(photos / name))
        crops += [crop_face(rgb, Box(*face)) for face in entry["faces"]]
    assert len(crops) >= 10
    onnx_probs = Predictor.pretrained(backend="onnx", device="cpu").probabilities(crops)
    torch_probs = Predictor.pretrained(backend="torch", device="cpu").probabilities(crops)
    np.testing.assert_allclose(onnx_probs, torch_probs, atol=1e-5, rtol=0)
    assert (onnx_probs.argmax(1) == torch_probs.argmax(1)).all()


def test_unknown_names_and_backends_are_refused_with_the_list() -> None:
    with pytest.raises(InputError, match=f"no built-in model 'nope'; the built-in models are: {DEFAULT_MODEL}"):
        Predictor.pretrained("nope")
    with pytest.raises(InputError, match="choose one of: torch, onnx"):
        Predictor.pretrained(backend="tensorflow")


def test_choose_model_reads_checkpoint_model_and_builtin_refs(tmp_path: Path) -> None:
    assert choose_model() == ChosenModel(builtin_path(), builtin=DEFAULT_MODEL)
    assert choose_model(model=DEFAULT_MODEL).label == f"built-in model {DEFAULT_MODEL}"
    assert choose_model(f"builtin:{DEFAULT_MODEL}").builtin == DEFAULT_MODEL
    mine = choose_model(str(tmp_path / "best.pt"))
    assert mine == ChosenModel(tmp_path / "best.pt") and mine.label == str(tmp_path / "best.pt")
    with pytest.raises(InputError, match="not both"):
        choose_model("best.pt", model=DEFAULT_MODEL)


def test_models_lists_the_builtin_models(capsys) -> None:
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "DEFAULT", "CLASSES", "INPUT", "SUMMARY"]
    assert lines[1].split()[:4] == [DEFAULT_MODEL, "*", "8", "48x48"]
    assert lines[2] == f"  classes: {', '.join(FERPLUS_CLASSES)}"
    assert lines[3] == f"  weights: {builtin_path()}"
    assert lines[4] == f"  onnx:    {builtin_onnx_path()}"
    assert lines[5].startswith(f"  card:    {card_path()}")
    assert main(["models", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["name"] == DEFAULT_MODEL and row["default"] is True and row["num_classes"] == 8
    assert row["class_names"] == FERPLUS_CLASSES and row["image_size"] == 48 and isinstance(row["grayscale"], bool)
    assert Path(row["file"]) == builtin_path() and Path(row["card"]) == card_path()
    assert Path(row["onnx"]) == builtin_onnx_path() and row["arch"] == "resnet10s"


def test_predict_without_a_checkpoint_uses_the_builtin_model(tmp_path: Path, capsys) -> None:
    image = tmp_path / "face.png"
    Image.fromarray(_drawn_face(2)).save(image)
    assert main(["predict", str(image), "--faces-cropped"]) == 0
    out = capsys.readouterr()
    file, rest = out.out.strip().split(": ", 1)
    assert file == str(image) and rest.split()[0] in FERPLUS_CLASSES and rest.endswith("box [0, 0, 72, 72]")
    assert f"model: built-in model {DEFAULT_MODEL}; prior default, calibrated\n" in out.err
    assert main(["predict", "--model", DEFAULT_MODEL, str(image), "--faces-cropped", "--json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["faces"][0]["label"] == rest.split()[0]  # the same model by name


def test_predict_with_an_unknown_model_fails_with_the_list(tmp_path: Path, capsys) -> None:
    assert main(["predict", "--model", "nope", str(tmp_path / "x.png")]) == 2
    out = capsys.readouterr()
    assert out.err == (f"fer-nla predict: error: no built-in model 'nope'; the built-in models are: {DEFAULT_MODEL} "
                       "(list them with `fer-nla models`)\n") and out.out == ""
    with pytest.raises(SystemExit):
        main(["predict", "--model", DEFAULT_MODEL, "--checkpoint", "best.pt", "x.png"])
    assert "argument --checkpoint: not allowed with argument --model" in capsys.readouterr().err


def test_eval_without_a_checkpoint_scores_the_builtin_model_and_saves_here(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "--dataset", "synthetic", "-o", "num_samples=16", "--split", "test"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"built-in model {DEFAULT_MODEL} on synthetic test\n")
    saved = tmp_path / f"eval_{DEFAULT_MODEL}_synthetic_test.json"
    assert f"saved {saved.name}" in out and json.loads(saved.read_text())["num_samples"] == 16
    assert not list(builtin_path().parent.glob("eval_*"))  # nothing written into the package


def test_export_a_builtin_model_by_name(tmp_path: Path, capsys) -> None:
    target = tmp_path / "builtin.onnx"
    assert main(["export", "--model", DEFAULT_MODEL, "--onnx", str(target)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {target} (model: built-in model {DEFAULT_MODEL})" in out and "verified" in out
    meta = {p.key: p.value for p in onnx.load(str(target)).metadata_props}
    assert json.loads(meta["class_names"]) == FERPLUS_CLASSES and "grayscale" in meta
