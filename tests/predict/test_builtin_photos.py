"""The shipped model and detector on real photos (tests/data/photos, SOURCES.md), with no
checkpoint given: what a user gets right after install."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from fer_nla.cli import build_parser, main
from fer_nla.predict import Box, Predictor
from fer_nla.predict.detectors import box_iou
from fer_nla.inference.faces import DEFAULT_MARGIN

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"
TRUTH = json.loads((PHOTOS / "faces.json").read_text())
# Faces of group.jpg that smile broadly (the astronaut three times, Obama's 2012 portrait twice):
# indices into faces.json's boxes. The others are neutral or turned away.
GROUP_SMILES = (2, 5, 7, 10, 12)


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    return Predictor()


def test_predict_with_no_checkpoint_finds_every_face_of_the_group_photo_and_its_smiles(capsys) -> None:
    assert main(["predict", str(PHOTOS / "group.jpg"), "--json"]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["error"] is None
    truth = [Box(*b) for b in TRUTH["group.jpg"]["faces"]]
    faces = record["faces"]
    assert len(faces) == len(truth) == 14
    labels = {}
    for face in faces:
        ious = [box_iou(Box(*face["box"]), t) for t in truth]
        best = max(range(len(truth)), key=ious.__getitem__)
        assert ious[best] >= 0.4
        labels[best] = face["label"]
        assert abs(sum(face["probs"].values()) - 1) < 1e-4
    assert sorted(labels) == list(range(14))  # each face once
    assert [labels[i] for i in GROUP_SMILES] == ["happiness"] * len(GROUP_SMILES)
    assert sum(label == "happiness" for label in labels.values()) <= 7  # not every face is called a smile


@pytest.mark.parametrize("name", ["frontal_astronaut.jpg", "frontal_obama.jpg"])
def test_smiling_portraits_are_happiness(predictor: Predictor, name: str) -> None:
    [face] = predictor.predict(PHOTOS / name)[0]
    assert face.label == "happiness" and face.probs["happiness"] > 0.9


@pytest.mark.parametrize("name", ["noface_coffee.jpg", "noface_cat.jpg"])
def test_photos_without_a_person_give_no_face(predictor: Predictor, name: str) -> None:
    assert predictor.predict(PHOTOS / name)[0] == []


def test_the_cli_crops_with_the_library_margin() -> None:
    assert DEFAULT_MARGIN == 0.0  # the detectors' boxes frame faces as FER2013 does (benchmarks/results/crop_margin.md)
    assert build_parser().parse_args(["predict", "x.jpg"]).margin == DEFAULT_MARGIN
    assert inspect.signature(Predictor).parameters["margin"].default == DEFAULT_MARGIN


def test_a_file_that_is_not_an_image_is_named_once_in_its_error(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    assert main(["predict", str(bad)]) == 1
    [line] = [m for m in capsys.readouterr().err.splitlines() if "error" in m]
    assert line.startswith(f"{bad}: error: cannot decode") and line.count(str(bad)) == 1
