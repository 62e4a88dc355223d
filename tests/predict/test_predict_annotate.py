"""Annotated copies: labels that never overlap, a caption on photos without a face, output paths
that never collide, never replace an input and are never read back as inputs."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_nla.cli import main
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS
from fer_nla.predict import Predictor, predict_files
from fer_nla.predict.annotate import BOX_COLOR, Rect, draw_faces, place_labels, plan_annotated_paths, rects_overlap
from fer_nla.predict.detectors import Box
from fer_nla.predict.inputs import InputFile
from fer_nla.inference.faces import FacePrediction


class NoFaceDetector:
    def detect(self, image_rgb: np.ndarray) -> list[Box]:
        return []


def _inside(rect: Rect, width: int, height: int) -> bool:
    return rect.x >= 0 and rect.y >= 0 and rect.x + rect.w <= width and rect.y + rect.h <= height


def test_labels_of_adjacent_faces_do_not_overlap_and_stay_inside_the_image() -> None:
    # two faces side by side, 10 px apart, labels wider than the faces
    boxes = [Box(20, 40, 60, 60), Box(90, 40, 60, 60)]
    rects = place_labels(boxes, [(110, 16), (110, 16)], image_size=(200, 200))
    assert rects[0] == Rect(20, 24, 110, 16)  # above its box, at the box's left edge
    assert not rects_overlap(*rects) and all(_inside(r, 200, 200) for r in rects)
    assert rects[1] == Rect(90, 100, 110, 16)  # above is taken: below its box

    # faces touching the top edge: no room above, labels go below or inside, never outside
    boxes = [Box(0, 0, 50, 50), Box(45, 5, 50, 50), Box(90, 0, 50, 50), Box(0, 55, 50, 50)]
    rects = place_labels(boxes, [(80, 14)] * 4, image_size=(150, 150))
    assert all(_inside(r, 150, 150) for r in rects)
    assert not any(rects_overlap(a, b) for a, b in combinations(rects, 2))

    # a crowd: 12 faces in a 3x4 grid with wide labels still gets disjoint labels
    boxes = [Box(10 + 45 * c, 10 + 45 * r, 40, 40) for r in range(3) for c in range(4)]
    rects = place_labels(boxes, [(70, 12)] * 12, image_size=(200, 200))
    assert all(_inside(r, 200, 200) for r in rects)
    assert not any(rects_overlap(a, b) for a, b in combinations(rects, 2))


def _face(box: Box, label: str) -> FacePrediction:
    probs = {name: (0.9 if name == label else 0.1 / (len(EMOTIONS) - 1)) for name in EMOTIONS}
    return FacePrediction(box=box, label=label, probs=probs)


def test_drawn_labels_of_neighbouring_faces_stay_readable() -> None:
    image = np.full((120, 200, 3), 90, np.uint8)
    faces = [_face(Box(20, 30, 40, 40), "happiness"), _face(Box(64, 30, 40, 40), "surprise")]
    drawn = draw_faces(image, faces)
    # the second label could not go above its box (the first label is there): it is drawn below it
    assert (drawn[71:75, 64:110] == BOX_COLOR).all(axis=2).mean() > 0.3
    assert (drawn[:30, 20:110] == BOX_COLOR).all(axis=2).any()  # the first one above the faces


def test_a_photo_without_a_face_gets_a_caption(checkpoint: Path, tmp_path: Path) -> None:
    photo = np.full((80, 160, 3), 90, np.uint8)
    Image.fromarray(photo).save(tmp_path / "wall.png")
    predictor = Predictor.from_checkpoint(checkpoint, device="cpu", detector=NoFaceDetector())
    (record,) = predict_files(predictor, [tmp_path / "wall.png"], annotate_dir=tmp_path / "out")
    assert record.faces == [] and record.note.startswith("no face found; if this 160x80 image is a face crop")
    drawn = np.asarray(Image.open(tmp_path / "out" / "wall.png"))
    assert (drawn[2, 2] == BOX_COLOR).all()  # the caption's box in the top-left corner
    assert (drawn[:20, :110].astype(int).sum(axis=2) < 150).sum() > 20  # its dark text
    assert (drawn[40:, :] == 90).all()  # the rest untouched
    np.testing.assert_array_equal(draw_faces(photo, []), photo)  # no caption unless asked (video frames)


def _photo(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((40, 40, 3), value, np.uint8)).save(path)


def test_same_named_inputs_get_their_own_annotated_copies(predictor_cropped: Predictor, tmp_path: Path) -> None:
    _photo(tmp_path / "a" / "x.png", 10)
    _photo(tmp_path / "b" / "x.png", 200)
    out = tmp_path / "out"
    predict_files(predictor_cropped, [tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"], faces_cropped=True,
                  annotate_dir=out)
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["a/x.png", "b/x.png"]
    assert np.asarray(Image.open(out / "a" / "x.png"))[20, 20, 0] == 10
    assert np.asarray(Image.open(out / "b" / "x.png"))[20, 20, 0] == 200

    for parent in ("p1", "p2"):  # two folders both named photos
        _photo(tmp_path / parent / "photos" / "y.png", 50)
    predict_files(predictor_cropped, [tmp_path / "p1" / "photos", tmp_path / "p2" / "photos"], faces_cropped=True,
                  annotate_dir=tmp_path / "out2")
    assert sorted(p.relative_to(tmp_path / "out2").as_posix() for p in (tmp_path / "out2").rglob("*.png")) == [
        "p1/photos/y.png", "p2/photos/y.png"]


def test_planned_paths_never_collide_and_never_hit_an_input(tmp_path: Path) -> None:
    out = tmp_path / "out"
    files = [
        InputFile(tmp_path / "clip.avi", True, Path("clip.avi")),
        InputFile(tmp_path / "clip.mov", True, Path("clip.mov")),  # both would be clip.mp4
        InputFile(tmp_path / "pic.gif", False, Path("pic.gif")),
        InputFile(tmp_path / "pic.gif.png", False, Path("pic.gif.png")),  # both would be pic.gif.png
        InputFile(tmp_path / "Pic.GIF.png", False, Path("Pic.GIF.png")),  # the same on a case-blind disk
        InputFile(out / "x.png", False, Path("x.png")),  # out/x.png would replace this input
        InputFile(tmp_path / "clip.avi", True, Path("clip.avi")),  # named twice: the same copy
    ]
    targets = [p.relative_to(out).as_posix() for p in plan_annotated_paths(files, out)]
    assert targets == ["clip.mp4", "clip-2.mp4", "pic.gif.png", "pic.gif-2.png", "Pic.GIF-3.png", "x-2.png", "clip.mp4"]


def test_an_annotate_folder_inside_an_input_folder_is_never_read_back(predictor_cropped: Predictor,
                                                                     tmp_path: Path) -> None:
    _photo(tmp_path / "photos" / "a.png", 10)
    for _ in range(2):  # the second run must not see the first run's copies
        records = predict_files(predictor_cropped, [tmp_path / "photos"], faces_cropped=True,
                                annotate_dir=tmp_path / "photos" / "out")
        assert [r.file for r in records] == [str(tmp_path / "photos" / "a.png")]
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert written == ["photos/a.png", "photos/out/photos/a.png"]


def test_an_annotate_folder_that_is_or_holds_an_input_is_refused(
    checkpoint: Path, predictor_cropped: Predictor, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _photo(tmp_path / "photos" / "a.png", 10)
    before = (tmp_path / "photos" / "a.png").read_bytes()
    with pytest.raises(InputError, match="is the input"):
        predict_files(predictor_cropped, [tmp_path / "photos"], faces_cropped=True, annotate_dir=tmp_path / "photos")
    with pytest.raises(InputError, match="holds the input"):
        predict_files(predictor_cropped, [tmp_path / "photos" / "a.png"], faces_cropped=True, annotate_dir=tmp_path)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        predict_files(predictor_cropped, [tmp_path / "photos"], faces_cropped=True, annotate_dir=tmp_path / "file.txt")
    assert (tmp_path / "photos" / "a.png").read_bytes() == before and not (tmp_path / "photos" / "photos").exists()
    status = main(["predict", "--checkpoint", str(checkpoint), "--faces-cropped", str(tmp_path / "photos"),
                   "--annotate", str(tmp_path / "photos")])
    err = capsys.readouterr().err
    assert status == 2 and f"--annotate {tmp_path / 'photos'} is the input" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def predictor_cropped(checkpoint: Path) -> Predictor:
    return Predictor.from_checkpoint(checkpoint, device="cpu")
