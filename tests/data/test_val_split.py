"""``data.val_split=auto`` decides from the splits a source declares, never from a failed read."""

from __future__ import annotations

import pytest
from conftest import write_image

from fer_nla.config import DataConfig
from fer_nla.data import dataset_splits
from fer_nla.errors import InputError
from fer_nla.train.run_data import build_run_data

VOTES = "0,0,0,0,0,0,0,0,0"  # nine more vote columns after the first


def make_ferplus(root, *, valid_lines):
    """A FERPlus folder layout: 20 training faces (neutral or happiness) and a valid label.csv."""
    (root / "FER2013Train").mkdir(parents=True)
    (root / "FER2013Valid").mkdir(parents=True)
    train = []
    for i in range(20):
        name = f"fer{i:07d}.png"
        write_image(root / "FER2013Train" / name, 10 * i, size=(48, 48), mode="L", fmt="PNG")
        train.append(f"{name},\"(0, 0, 48, 48)\",{'10,0' if i % 2 else '0,10'},{VOTES[2:]}\n")
    (root / "FER2013Train" / "label.csv").write_text("".join(train))
    for i in range(4):
        write_image(root / "FER2013Valid" / f"fer{100 + i:07d}.png", 7, size=(48, 48), mode="L", fmt="PNG")
    (root / "FER2013Valid" / "label.csv").write_text("".join(valid_lines))


GOOD_VALID = [f"fer{100 + i:07d}.png,\"(0, 0, 48, 48)\",10,0,{VOTES[2:]}\n" for i in range(4)]


def test_declared_valid_split_is_used(tmp_path):
    make_ferplus(tmp_path, valid_lines=GOOD_VALID)
    data = build_run_data(DataConfig(dataset="ferplus", root=str(tmp_path)), seed=0, log=lambda _m: None)
    assert data.val_source == "the dataset's 'valid' split" and len(data.val) == 4 and len(data.train) == 20


@pytest.mark.parametrize(
    ("broken", "message"),
    [("fer0000100.png,\"(0, 0, 48, 48)\",10,0\n", r"FER2013Valid/label.csv:5: expected 12 fields"),
     ("fer0000999.png,\"(0, 0, 48, 48)\",10,0," + VOTES[2:] + "\n", r"1 of 5 image files listed in .*FER2013Valid")],
)
def test_a_broken_declared_valid_split_is_an_error_not_a_silent_carve(tmp_path, broken, message):
    make_ferplus(tmp_path, valid_lines=[*GOOD_VALID, broken])
    logged: list[str] = []
    with pytest.raises(InputError, match=message):
        build_run_data(DataConfig(dataset="ferplus", root=str(tmp_path)), seed=0, log=logged.append)
    assert not any("carving" in line for line in logged)


def test_a_source_without_valid_split_is_carved_and_says_why(tmp_path):
    for k, name in enumerate(["happy", "sad"]):
        for i in range(10):
            write_image(tmp_path / name / f"{i}.png", 20 * k + i)
    assert dataset_splits("folder", root=tmp_path) == ("train",)
    logged: list[str] = []
    data = build_run_data(DataConfig(dataset="folder", root=str(tmp_path)), seed=0, log=logged.append)
    assert len(data.val) == 2 and len(data.train) == 18
    assert logged == ["folder declares no 'valid' split (it has train); carving one from train"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [({"val_split": "eval"}, "is the test split"), ({"val_split": "testing"}, "is the test split"),
     ({"val_split": "training"}, "is the training split"), ({"train_split": "val", "val_split": "validation"},
                                                            "is the training split"),
     ({"train_split": "test"}, "names the test split"), ({"options": {"num_classes": 8}}, "set num_classes=8")],
)
def test_selection_never_on_test_or_training_data_under_any_name(tmp_path, overrides, message):
    make_ferplus(tmp_path, valid_lines=GOOD_VALID)
    with pytest.raises(InputError, match=message):  # before: 'eval' selected on test data, 'val' twice
        build_run_data(DataConfig(dataset="ferplus", root=str(tmp_path), **overrides), seed=0, log=lambda _m: None)


def test_training_on_the_valid_split_carves_and_reader_counts_are_logged(tmp_path):
    make_ferplus(tmp_path, valid_lines=[*GOOD_VALID, GOOD_VALID[0]])  # one duplicated row
    logged: list[str] = []
    data = build_run_data(DataConfig(dataset="ferplus", root=str(tmp_path), train_split="val"), seed=0,
                          log=logged.append)
    assert data.full_train.split == "valid" and len(data.full_train) == 4 and data.val_source.endswith("of 'valid'")
    assert "data: ferplus 'valid': dropped duplicates 1" in logged
