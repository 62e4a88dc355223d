"""Label files as users' tools write them (issue 11): Windows paths, numbers as Excel exports
them, huge numbers, header lines and delimiters, and file names a UTF-8 manifest cannot hold
(see test_reader_kinds.py for the makers)."""

from __future__ import annotations

import os
import re
import sys

import numpy as np
import pytest
from test_reader_kinds import A, B, READERS, VOTE_COLUMNS, labels, make, pixels, values

from fer_nla.data import build_dataset
from fer_nla.data.dataset import FERDataset
from fer_nla.data.images import FileImages
from fer_nla.data.sources.manifest import sidecar_path, write_manifest
from fer_nla.errors import InputError
from fer_nla.labels import SEVEN_CLASSES


def label_file(reader, root):
    if root.is_file():
        return root
    return root / READERS[reader].label_file if reader != "rafdb" else root / "EmoLabel" / "list_patition_label.txt"


def edit(path, old, new, count=1):
    """Replace ``count`` matches of the regex ``old`` in a label file (an error if none)."""
    text, n = re.subn(old, new, path.read_text(), count=count)
    assert n, f"{old!r} not in {path}"
    path.write_text(text)


def test_shared_field_rules():
    from fer_nla.data.sources.listing import integer_value, listed_path  # new in issue 11

    assert [integer_value(t) for t in ("3", "3.0", " 3 ", "+3", "-1", "03", "3.")] == [3, 3, 3, 3, -1, 3, 3]
    assert [integer_value(t) for t in ("3.5", "3e0", "", "three", "1 2", ".0")] == [None] * 6
    assert integer_value("9" * 5000) == 10**30  # no ValueError from Python's digit limit
    assert listed_path(r"imgs\sub\a b.jpg") == "imgs/sub/a b.jpg" and listed_path(" ./a.jpg ") == "a.jpg"


@pytest.mark.parametrize("reader", ["affectnet", "affectnet-csv", "ferplus", "manifest"])
def test_a_windows_path_is_read_with_backslash_as_separator(tmp_path, reader):
    name, root = make(reader, tmp_path, [A, B])
    image = next((tmp_path / reader).rglob("a.png"))
    target = image.parent / "sub dir" / "a b.png"
    target.parent.mkdir()
    image.rename(target)
    listing = label_file(reader, root)
    text = listing.read_text().replace("/a.png", "\\a.png").replace("a.png", "sub dir\\a b.png")
    listing.write_text(text)
    dataset = build_dataset(name, root=root)  # before: a listed as missing
    assert labels(dataset) == ["happiness", "sadness"] and values(dataset) == [40, 80]
    assert dataset.samples[0] == str(target)


def test_a_manifest_path_under_the_home_folder_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    name, root = make("manifest", tmp_path, [A, B])
    image = next(tmp_path.rglob("a.png"))
    (tmp_path / "home" / "pics").mkdir(parents=True)
    image.rename(tmp_path / "home" / "pics" / "a.png")
    edit(root, r"img/a\.png", "~/pics/a.png")
    dataset = build_dataset(name, root=root)
    assert values(dataset) == [40, 80] and dataset.samples[0] == str(tmp_path / "home" / "pics" / "a.png")


# The label field of A's line as each maker writes it, and how Excel writes it back.
FLOAT_LABELS = {
    "rafdb": (r"(train_a\.jpg) 4", r"\1 4.0"),
    "affectnet": (r"(1/a\.png(,[^,]*){5}),1,", r"\1,1.0,"),
    "fer2013": (r"^3,", "3.0,"),
    "manifest": (r"img/a\.png,happiness", "img/a.png,1.0"),
    "ferplus": (r'("\(0, 0, 24, 20\)",0),10,', r"\1, +10.0 ,"),  # a vote count
}


@pytest.mark.parametrize("reader", sorted(FLOAT_LABELS))
def test_integer_valued_numbers_as_excel_exports_them_are_read(tmp_path, reader):
    name, root = make(reader, tmp_path, [A, B])
    old, new = FLOAT_LABELS[reader]
    edit(label_file(reader, root), re.compile(old, re.M), new)
    dataset = build_dataset(name, root=root)  # before: refused as not a label
    assert labels(dataset) == ["happiness", "sadness"]


def test_affectnet_plain_csv_codes_as_floats_are_read(tmp_path):
    name, root = make("affectnet-csv", tmp_path, [A, B])
    edit(root, "happiness", "1.0")
    edit(root, "sadness", " +2 ")
    assert labels(build_dataset(name, root=root)) == ["happiness", "sadness"]


@pytest.mark.parametrize(
    ("reader", "old", "new", "message"),
    [
        ("fer2013", r"^3,", "3.5,", r"fer2013.csv:2: emotion '3.5' is not an integer \(codes 0..6"),
        ("fer2013", r"^3,", "9,", r"fer2013.csv:2: emotion '9' is out of range 0..6"),
        ("rafdb", r"train_a\.jpg 4", "train_a.jpg 4.5",
         r"list_patition_label.txt:1: expected .* got 'train_a.jpg 4.5'"),
        ("manifest", "happiness", "1.5", r"m.csv:2: label '1.5' is not an emotion"),
    ],
)
def test_other_numbers_keep_an_error_naming_file_line_and_value(tmp_path, reader, old, new, message):
    name, root = make(reader, tmp_path, [A, B])
    edit(label_file(reader, root), re.compile(old, re.M), new)
    with pytest.raises(InputError, match=message):
        build_dataset(name, root=root)


@pytest.mark.parametrize(
    ("reader", "old", "new", "message"),
    [
        ("affectnet", r"1/a\.png,0,", "1/a.png,99999999999,",
         r"training.csv:2: face box value '99999999999' is out of range -2147483648..2147483647"),
        ("ferplus", r'"\(0, 0,', '"(99999999999, 0,', r"label.csv:1: face box value '99999999999' is out of range"),
        ("ferplus", r'(\)",0),10,', r"\1,99999999999,",
         r"label.csv:1: vote count '99999999999' is out of range 0..1000000"),
        ("ferplus", r'(\)",0),10,', r"\g<1>," + "9" * 25 + ",", r"label.csv:1: vote count '9{25}' is out of range"),
        ("ferplus-csv", r"(Training,a\.png,0),10,", r"\1,1e400,",
         r"fer2013new.csv:2: vote count '1e400' is not an integer"),
    ],
)
def test_huge_numbers_name_file_line_and_value(tmp_path, reader, old, new, message):
    name, root = make(reader, tmp_path, [A, B])
    listing = root / "fer2013new.csv" if reader == "ferplus-csv" else label_file(reader, root)
    edit(listing, old, new)
    with pytest.raises(InputError, match=message):  # before: OverflowError, or huge votes taken
        build_dataset(name, root=root)


def test_ferplus_label_csv_with_its_column_names_as_header_is_read(tmp_path):
    name, root = make("ferplus", tmp_path, [A, B])
    listing = label_file("ferplus", root)
    listing.write_text("Image name,Box," + ",".join(VOTE_COLUMNS) + "\n" + listing.read_text())
    dataset = build_dataset(name, root=root)
    assert labels(dataset) == ["happiness", "sadness"] and dataset.info["rows"] == 2
    assert dataset.info["dropped_duplicates"] == 0


def test_ferplus_label_csv_with_another_header_says_it_has_none(tmp_path):
    name, root = make("ferplus", tmp_path, [A, B])
    listing = label_file("ferplus", root)
    listing.write_text("name,box," + ",".join(f"v{i}" for i in range(10)) + "\n" + listing.read_text())
    with pytest.raises(InputError, match=r"label.csv:1: 'name,box,v0.* looks like a header line, but FERPlus's "
                                         r"label.csv has none .* remove the line"):
        build_dataset(name, root=root)


@pytest.mark.parametrize("reader", ["affectnet-csv", "manifest"])
@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_separated_csvs_are_read(tmp_path, reader, delimiter):
    name, root = make(reader, tmp_path, [A, B])
    root.write_text(root.read_text().replace(",", delimiter))
    dataset = build_dataset(name, root=root)  # before: "add the header line"
    assert labels(dataset) == ["happiness", "sadness"] and values(dataset) == [40, 80]


@pytest.mark.parametrize(("delimiter", "shown"), [(";", "';'"), ("\t", "tabs")])
def test_fer2013_not_comma_separated_names_the_separator_and_the_fix(tmp_path, delimiter, shown):
    root = tmp_path / "fer2013.csv"
    root.write_text(f"emotion{delimiter}pixels{delimiter}Usage\n3{delimiter}{pixels('a')}{delimiter}Training\n")
    with pytest.raises(InputError, match=f"fer2013.csv:1: the columns are separated by {shown}, but fer2013.csv is "
                                         "read comma-separated .* save it as comma-separated CSV"):
        build_dataset("fer2013", root=root)


def test_rafdb_list_separated_by_a_tab_is_read(tmp_path):
    name, root = make("rafdb", tmp_path, [A, B])
    edit(label_file("rafdb", root), " ", "\t", count=0)
    assert labels(build_dataset(name, root=root)) == ["happiness", "sadness"]


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="needs a file system of raw bytes")
def test_a_file_name_that_is_not_utf8_is_refused_by_the_manifest_writer(tmp_path):
    raw = os.path.join(os.fsencode(str(tmp_path)), b"caf\xe9.png")
    with open(raw, "wb") as handle:
        handle.write(b"not read")
    samples = [os.fsdecode(raw)]
    dataset = FERDataset(samples=samples, targets=[1], class_names=SEVEN_CLASSES, source=FileImages(samples))
    out = tmp_path / "out" / "m.csv"
    out.parent.mkdir()
    with pytest.raises(InputError, match=r"caf\\xe9.png: the file name is not valid UTF-8 .* rename the file"):
        write_manifest(out, dataset, source={"dataset": "folder", "root": str(tmp_path)})
    assert not sidecar_path(out).exists() and not out.exists()  # before: an orphan m.source.json
    assert os.listdir(out.parent) == []  # no temporary file left


def test_a_written_manifest_keeps_its_sidecar_and_reads_back(tmp_path):
    name, root = make("manifest", tmp_path, [A, B])
    dataset = build_dataset(name, root=root)
    out = write_manifest(tmp_path / "copy" / "m.csv", dataset, source={"dataset": "manifest", "root": str(root)})
    assert sidecar_path(out).is_file()
    again = build_dataset("manifest", root=out)
    assert labels(again) == ["happiness", "sadness"] and np.array_equal(again.targets, dataset.targets)
    write_manifest(out, dataset)  # without a source: the stale sidecar goes
    assert not sidecar_path(out).exists()


# --- issue 24: Excel's "sep=;" first line, and label.csv saved with semicolons -------------------------------
def excel_export(path, delimiter, *, sep_line):
    """``path`` rewritten as Excel writes CSV in a decimal-comma locale: each row re-joined by
    ``delimiter`` (fields quoted only where needed), optionally under a ``sep=`` line."""
    import csv
    import io

    rows = list(csv.reader(io.StringIO(path.read_text())))
    out = io.StringIO()
    if sep_line:
        out.write(f"sep={delimiter}\r\n")
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    path.write_text(out.getvalue())


@pytest.mark.parametrize("reader", ["affectnet", "affectnet-csv", "manifest", "ferplus", "ferplus-csv"])
@pytest.mark.parametrize("delimiter", [";", ",", "\t"])
def test_excel_sep_lines_are_read_with_the_separator_they_name(tmp_path, reader, delimiter):
    name, root = make(reader, tmp_path, [A, B])
    excel_export(label_file(reader, root), delimiter, sep_line=True)
    dataset = build_dataset(name, root=root)  # before: "add the header line" (the header is there)
    assert labels(dataset) == ["happiness", "sadness"] and values(dataset) == [40, 80]


def test_ferplus_label_csv_saved_with_semicolons_is_read(tmp_path):
    """Its box field holds commas, so the separator is found by the 12 fields a row has."""
    name, root = make("ferplus", tmp_path, [A, B])
    excel_export(label_file("ferplus", root), ";", sep_line=False)
    assert labels(build_dataset(name, root=root)) == ["happiness", "sadness"]


def test_a_label_csv_line_with_another_separator_is_named(tmp_path):
    name, root = make("ferplus", tmp_path, [A, B])
    path = label_file("ferplus", root)
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(",", ";").replace('"(0; 0; 24; 20)"', '"(0, 0, 24, 20)"')  # one line re-saved
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=r"label.csv:2: expected 12 fields .* got 4: .*its fields are separated by "
                                         r"semicolons, unlike the lines above"):
        build_dataset(name, root=root)


def test_a_manifest_without_path_and_label_says_what_its_header_holds(tmp_path):
    name, root = make("manifest", tmp_path, [A, B])
    root.write_text("img/a.png|happiness\nimg/b.png|sadness\n")
    with pytest.raises(InputError, match=r"m.csv:1: the header line has one column 'img/a.png\|happiness', separated by "
                                         r"commas; it needs columns 'path' and 'label'"):
        build_dataset(name, root=root)


def test_fer2013_with_excels_sep_line_names_it(tmp_path):
    root = tmp_path / "fer2013.csv"
    root.write_text(f"sep=,\nemotion,pixels,Usage\n3,{pixels('a')},Training\n")
    with pytest.raises(InputError, match=r"fer2013.csv:1: 'sep=,' is Excel's separator line, not the header"):
        build_dataset("fer2013", root=root)
