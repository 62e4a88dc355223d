"""The image-folder reader against the layouts new users bring (issue 11), on tiny drawn images.

Each image is a flat PNG (or JPEG/AVIF where the extension is the point) whose pixel value says
which file it is, so a test can tell which files were read, in which order, with which label.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import write_image
from PIL import Image, features

from fer_nla.data import build_dataset, dataset_splits
from fer_nla.data.images import find_missing
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS


def values(dataset) -> list[int]:
    """The pixel value of each sample, in dataset order."""
    return [int(np.asarray(dataset.load_image(i))[0, 0, 0]) for i in range(len(dataset))]


def labels(dataset) -> list[str]:
    return [dataset.class_names[t] for t in dataset.targets]


def png(path: Path, value: int) -> Path:
    return write_image(path, value, fmt="PNG")


# --- split folders: any letter case, every usual name -------------------------------------------
@pytest.mark.parametrize("names", [("Train", "Validation", "Test"), ("TRAINING", "Val", "Testing"),
                                   ("training", "VALID", "test")])
def test_split_folders_match_in_any_letter_case(tmp_path, names):
    for value, (name, emotion) in enumerate(zip(names, ("happy", "sad", "angry")), start=1):
        png(tmp_path / name / emotion / "a.png", 10 * value)
    assert dataset_splits("folder", root=tmp_path) == ("train", "valid", "test")
    for split, value, emotion in (("train", 10, "happiness"), ("valid", 20, "sadness"), ("val", 20, "sadness"),
                                  ("test", 30, "anger")):
        dataset = build_dataset("folder", root=tmp_path, split=split)
        assert values(dataset) == [value] and labels(dataset) == [emotion]
        assert dataset.split == ("valid" if split == "val" else split)


def test_two_folders_naming_one_split_are_refused_naming_both(tmp_path):
    png(tmp_path / "train" / "happy" / "a.png", 10)
    png(tmp_path / "val" / "happy" / "b.png", 20)
    png(tmp_path / "Validation" / "happy" / "c.png", 30)
    for call in (lambda: build_dataset("folder", root=tmp_path, split="valid"),
                 lambda: build_dataset("folder", root=tmp_path, split="train"),
                 lambda: dataset_splits("folder", root=tmp_path)):
        with pytest.raises(InputError) as err:
            call()
        message = str(err.value)
        assert str(tmp_path / "Validation") in message and str(tmp_path / "val") in message
        assert "both name split 'valid'" in message


def test_a_split_the_folder_lacks_names_the_split_folders_it_has(tmp_path):
    png(tmp_path / "Train" / "happy" / "a.png", 10)
    with pytest.raises(InputError, match=r"has split folders \(Train\) but none for 'test'"):
        build_dataset("folder", root=tmp_path, split="test")


# --- class folders read recursively --------------------------------------------------------------
def test_images_in_subfolders_of_a_class_folder_are_read_with_its_label(tmp_path):
    happy, sad = tmp_path / "train" / "happy", tmp_path / "train" / "sad"
    png(happy / "session2" / "a.png", 30)
    png(happy / "b.png", 10)
    png(happy / "session1" / "deep" / "c.png", 20)
    png(happy / "session1" / ".thumbnails" / "c.png", 99)  # a system folder: skipped, counted once
    png(happy / "session1" / "__MACOSX" / "d.png", 98)
    (happy / "session1" / "._c.png").write_bytes(b"\x00\x05\x16\x07AppleDouble junk")
    (happy / "session2" / "notes.txt").write_text("not an image")
    png(sad / "x" / "y.png", 40)
    dataset = build_dataset("folder", root=tmp_path)
    assert [Path(p).relative_to(tmp_path / "train").as_posix() for p in dataset.samples] == [
        "happy/b.png", "happy/session1/deep/c.png", "happy/session2/a.png", "sad/x/y.png"]
    assert values(dataset) == [10, 20, 30, 40]
    assert labels(dataset) == ["happiness"] * 3 + ["sadness"]
    assert dataset.info["skipped_system_files"] == 3 and dataset.info["skipped_not_images"] == 1


def test_a_link_back_to_an_ancestor_folder_lists_each_image_once(tmp_path):
    png(tmp_path / "happy" / "a.png", 10)
    png(tmp_path / "happy" / "s" / "b.png", 20)
    os.symlink(tmp_path / "happy", tmp_path / "happy" / "s" / "loop", target_is_directory=True)
    dataset = build_dataset("folder", root=tmp_path)
    assert values(dataset) == [10, 20]


# --- images outside any class folder --------------------------------------------------------------
def test_images_beside_the_class_folders_are_counted(tmp_path):
    png(tmp_path / "train" / "happy" / "a.png", 10)
    png(tmp_path / "train" / "stray.jpg", 20)
    png(tmp_path / "train" / "other.PNG", 30)
    (tmp_path / "train" / "README.txt").write_text("not an image: not counted as one")
    (tmp_path / "train" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    dataset = build_dataset("folder", root=tmp_path)
    assert values(dataset) == [10]
    assert dataset.info["skipped_outside_class_folders"] == 2
    assert dataset.info["skipped_system_files"] == 1
    one_set = tmp_path / "one"  # a root of class folders only: the root is where strays lie
    png(one_set / "sad" / "a.png", 40)
    png(one_set / "stray.jpeg", 50)
    assert build_dataset("folder", root=one_set).info["skipped_outside_class_folders"] == 1


# --- image extensions -------------------------------------------------------------------------------
def test_jpeg_and_avif_extensions_are_images(tmp_path):
    gray = np.full((16, 16, 3), 128, dtype=np.uint8)
    (tmp_path / "happy").mkdir()
    Image.fromarray(gray).save(tmp_path / "happy" / "a.jfif", format="JPEG", quality=100)
    Image.fromarray(gray).save(tmp_path / "happy" / "b.JPE", format="JPEG", quality=100)
    expected = ["a.jfif", "b.JPE"]
    if features.check("avif"):
        Image.fromarray(gray).save(tmp_path / "happy" / "c.avif", format="AVIF", quality=100)
        expected.append("c.avif")
    dataset = build_dataset("folder", root=tmp_path)
    assert [Path(p).name for p in dataset.samples] == expected
    assert dataset.info["skipped_not_images"] == 0
    for i in range(len(dataset)):
        assert abs(int(np.asarray(dataset.load_image(i)).astype(int).mean()) - 128) <= 3


# --- links whose target is gone -------------------------------------------------------------------
def test_a_dangling_link_is_a_missing_image_when_the_index_is_built(tmp_path):
    happy = tmp_path / "happy"
    png(happy / "a.png", 10)
    os.symlink(tmp_path / "deleted.png", happy / "b.png")
    with pytest.raises(InputError) as err:
        build_dataset("folder", root=tmp_path)
    message = str(err.value)
    assert "1 of 2 image files" in message and str(happy / "b.png") in message
    assert "remove their lines from the label file" not in message  # a folder has no label file
    assert "for a link, the file it points to" in message


def test_find_missing_follows_links(tmp_path):
    png(tmp_path / "real.png", 10)
    (tmp_path / "folder.png").mkdir()
    os.symlink(tmp_path / "real.png", tmp_path / "link.png")
    os.symlink(tmp_path / "gone.png", tmp_path / "dangling.png")
    paths = [str(tmp_path / name) for name in ("real.png", "link.png", "dangling.png", "folder.png", "absent.png")]
    assert find_missing(paths) == [str(tmp_path / n) for n in ("dangling.png", "folder.png", "absent.png")]


def test_an_image_gone_after_indexing_names_skip_bad_images(tmp_path):
    png(tmp_path / "happy" / "a.png", 10)
    png(tmp_path / "happy" / "b.png", 20)
    dataset = build_dataset("folder", root=tmp_path)
    (tmp_path / "happy" / "b.png").unlink()
    assert values(dataset.subset(np.array([0]))) == [10]
    with pytest.raises(InputError) as err:
        dataset.load_image(1)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'happy' / 'b.png'}: image file is missing")
    assert "skip_bad_images=True" in message


def test_contempt_in_a_seven_class_read_is_counted_not_lost(tmp_path):
    png(tmp_path / "happy" / "a.png", 10)
    png(tmp_path / "contempt" / "s" / "b.png", 20)
    png(tmp_path / "contempt" / "c.png", 30)
    assert build_dataset("folder", root=tmp_path).class_names == EMOTIONS
    seven = build_dataset("folder", root=tmp_path, num_classes=7)
    assert values(seven) == [10] and seven.info["dropped_not_in_classes"] == 2
