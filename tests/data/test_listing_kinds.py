"""More kinds of the same faults, as a new user met them: one image spelled two ways, messages
in the file's own words, undecodable bytes named by line (see test_reader_kinds.py for the makers)."""

from __future__ import annotations

import re

import pytest
from test_reader_kinds import A, B, READERS, labels, make, values

from fer_nla.data import build_dataset
from fer_nla.data.sources.listing import text_lines
from fer_nla.errors import InputError

NAMED = ["rafdb", "affectnet", "affectnet-csv", "ferplus", "ferplus-csv", "manifest"]  # readers keyed by a name


def label_file_of(reader, root):
    if root.is_file():
        return root
    found = sorted(root.rglob(READERS[reader].label_file.rsplit("/", 1)[-1]))
    return found[0]


def respell_last_row(label_file):
    """The last row's image written as ``./NAME`` (the same file, spelled another way)."""
    lines = label_file.read_text().splitlines()
    lines[-1] = re.sub(r"(^|,)(?=[^,]*[ab]\.(png|jpg))", r"\1./", lines[-1], count=1)
    assert "./" in lines[-1]
    label_file.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("reader", NAMED)
def test_one_image_spelled_two_ways_is_one_image(tmp_path, reader):
    name, root = make(reader, tmp_path, [A, B, A])
    respell_last_row(label_file_of(reader, root))
    dataset = build_dataset(name, root=root)  # before: ./a counted as a second sample
    assert labels(dataset) == ["happiness", "sadness"] and values(dataset) == [40, 80]
    assert dataset.info["dropped_duplicates"] == 1
    name, root = make(reader, tmp_path / "conflict", [A, B, ("a", "surprise", "train")])
    respell_last_row(label_file_of(reader, root))
    with pytest.raises(InputError, match="labelled .*happiness.* and .*surprise"):  # class names, not indices
        build_dataset(name, root=root)


def test_conflicts_are_shown_in_the_files_own_words(tmp_path):
    name, root = make("fer2013", tmp_path, [A, ("a", "surprise", "train")])
    with pytest.raises(InputError, match="lines 2 and 3: 'pixels#[0-9a-f]+' labelled 'happiness' and 'surprise'"):
        build_dataset(name, root=root)
    name, root = make("rafdb", tmp_path, [A, ("a", "surprise", "train")])
    with pytest.raises(InputError, match=r"labelled '4 \(happiness\)' and '1 \(surprise\)'"):
        build_dataset(name, root=root)


def test_undecodable_bytes_are_named_by_their_line(tmp_path):
    path = tmp_path / "list.txt"
    path.write_bytes(b"".join(b"train_%05d.jpg 1\n" % i for i in range(30)) + b"train_caf\xe9.jpg 2\n")
    with pytest.raises(InputError, match=r"list.txt:31: not UTF-8 text \(byte 0xe9 at column 10\)"):
        list(text_lines(path))
