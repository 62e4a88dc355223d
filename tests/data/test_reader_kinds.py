"""Every reader against each kind of bad input users report (issue 11), on tiny drawn inputs.

Readers: rafdb, affectnet (official CSVs, and a plain CSV), ferplus (folder layout, and the
published fer2013.csv + fer2013new.csv pair), fer2013, folder, manifest. A maker writes one
reader's layout from abstract rows ``(key, emotion, split)``; image ``key`` is a flat drawn image
of value ``VALUES[key]`` (FER2013 rows: 48x48 pixels of that value), so pixels say which row it is.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import defaultdict
from typing import NamedTuple

import numpy as np
import pytest
from conftest import write_image
from PIL import Image

from fer_nla.cli import main
from fer_nla.data import build_dataset, dataset_splits
from fer_nla.errors import InputError

VALUES = {"a": 40, "b": 80, "c": 120, "d": 160, "e": 200}
SIZE = (24, 20)
RAFDB = {"surprise": 1, "fear": 2, "disgust": 3, "happiness": 4, "sadness": 5, "anger": 6, "neutral": 7}
AFFECTNET = {e: i for i, e in enumerate(("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger"))}
FER2013 = {e: i for i, e in enumerate(("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral"))}
VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
USAGE = {"train": "Training", "valid": "PublicTest", "test": "PrivateTest"}
FERPLUS_FOLDERS = {"train": "FER2013Train", "valid": "FER2013Valid", "test": "FER2013Test"}
AFFECTNET_HEADER = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal"
A, B = ("a", "happiness", "train"), ("b", "sadness", "train")


def write_lines(path, lines, kind="utf-8"):
    """``lines`` as a text file: UTF-8, UTF-8 with a BOM, UTF-16 (with its BOM, or little-endian
    without one, as some editors save it), CRLF or bare-CR (old Mac) line ends."""
    text = "".join(line + "\n" for line in lines).replace("\n", {"crlf": "\r\n", "cr": "\r"}.get(kind, "\n"))
    data = {"utf-8-bom": codecs.BOM_UTF8 + text.encode(), "utf-16": text.encode("utf-16"),
            "utf-16-le": text.encode("utf-16-le")}.get(kind, text.encode())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def flat(path, key, size):
    write_image(path, VALUES.get(key, 0), size=size, fmt="PNG")


def pixels(key):
    return " ".join([str(VALUES.get(key, 0))] * 48 * 48)


def votes(emotion):
    return ",".join("10" if column == emotion else "0" for column in VOTE_COLUMNS)


def make_rafdb(root, rows, *, kind="utf-8", size=SIZE, draw=flat, **_):
    for key, _emotion, split in rows:
        draw(root / "Image" / "aligned" / f"{split}_{key}_aligned.jpg", key, size)
    write_lines(root / "EmoLabel" / "list_patition_label.txt", [f"{s}_{k}.jpg {RAFDB[e]}" for k, e, s in rows], kind)
    return root


def make_affectnet(root, rows, *, kind="utf-8", size=SIZE, draw=flat, boxes=None):
    files = {"train": [AFFECTNET_HEADER], "test": [AFFECTNET_HEADER]}
    for key, emotion, split in rows:
        x, y, w, h = (boxes or {}).get(key, (0, 0, *size))
        files[split].append(f"1/{key}.png,{x},{y},{w},{h},1.0;2.0,{AFFECTNET[emotion]},0.1,-0.2")
        draw(root / "Manually_Annotated_Images" / "1" / f"{key}.png", key, size)
    for split, name in (("train", "training.csv"), ("test", "validation.csv")):
        if len(files[split]) > 1:
            write_lines(root / name, files[split], kind)
    return root


def make_affectnet_csv(root, rows, *, kind="utf-8", size=SIZE, draw=flat, **_):
    for key, *_rest in rows:
        draw(root / "img" / f"{key}.png", key, size)
    return write_lines(root / "mine.csv", ["path,expression", *(f"img/{k}.png,{e}" for k, e, _ in rows)], kind)


def make_ferplus(root, rows, *, kind="utf-8", size=SIZE, draw=flat, boxes=None):
    files = defaultdict(list)
    for key, emotion, split in rows:
        name = f"{key}.png" if key else ""  # an empty name: FERPlus's mark for not-a-face
        x, y, w, h = (boxes or {}).get(key, (0, 0, *size))
        files[split].append(f'{name},"({x}, {y}, {w}, {h})",{votes(emotion)}')
        if key:
            draw(root / FERPLUS_FOLDERS[split] / name, key, size)
    for split, lines in files.items():
        write_lines(root / FERPLUS_FOLDERS[split] / "label.csv", lines, kind)
    return root


def make_ferplus_csv(root, rows, *, kind="utf-8", **_):
    # fer2013.csv is indexed by byte offset and read as UTF-8 (see test_fer2013_in_utf16...)
    write_lines(root / "fer2013.csv", ["emotion,pixels,Usage", *(f"0,{pixels(k)},{USAGE[s]}" for k, _, s in rows)],
                "utf-8" if kind.startswith("utf-16") or kind == "cr" else kind)
    names = [f"{USAGE[s]},{k + '.png' if k else ''},{votes(e)}" for k, e, s in rows]
    write_lines(root / "fer2013new.csv", ["Usage,Image name," + ",".join(VOTE_COLUMNS), *names], kind)
    return root


def make_fer2013(root, rows, *, kind="utf-8", one_set=False, **_):
    if one_set:  # no Usage column; root given as the file itself
        return write_lines(root / "fer2013.csv", ["emotion,pixels", *(f"{FER2013[e]},{pixels(k)}" for k, e, _ in rows)])
    lines = ["emotion,pixels,Usage", *(f"{FER2013[e]},{pixels(k)},{USAGE[s]}" for k, e, s in rows)]
    return write_lines(root / "fer2013.csv", lines, kind).parent


def make_manifest(root, rows, *, kind="utf-8", size=SIZE, draw=flat, one_set=False, **_):
    for key, *_rest in rows:
        draw(root / "img" / f"{key}.png", key, size)
    header, split = ("path,label", "") if one_set else ("path,label,split", ",{}")
    return write_lines(root / "m.csv", [header, *(f"img/{k}.png,{e}" + split.format(s) for k, e, s in rows)], kind)


def make_folder(root, rows, *, size=SIZE, draw=flat, one_set=False, **_):
    for key, emotion, split in rows:
        draw(root / ("" if one_set else split) / emotion / f"{key}.png", key, size)
    return root


class Reader(NamedTuple):
    dataset: str
    make: object
    header: int  # lines above the first row of the label file
    label_file: str


READERS = {
    "rafdb": Reader("rafdb", make_rafdb, 0, "list_patition_label.txt"),
    "affectnet": Reader("affectnet", make_affectnet, 1, "training.csv"),
    "affectnet-csv": Reader("affectnet", make_affectnet_csv, 1, "mine.csv"),
    "ferplus": Reader("ferplus", make_ferplus, 0, "FER2013Train/label.csv"),
    "ferplus-csv": Reader("ferplus", make_ferplus_csv, 1, "fer2013new.csv"),
    "fer2013": Reader("fer2013", make_fer2013, 1, "fer2013.csv"),
    "manifest": Reader("manifest", make_manifest, 1, "m.csv"),
    "folder": Reader("folder", make_folder, 0, ""),
}
LABEL_FILE_READERS = [name for name in READERS if name != "folder"]
KINDS = ("utf-8", "utf-8-bom", "utf-16", "utf-16-le", "crlf", "cr")
# fer2013.csv in UTF-16 is refused with the fix (test_fer2013_in_utf16_is_refused_with_the_fix)
CASES = [
    (r, k) for r in LABEL_FILE_READERS for k in KINDS if not (r == "fer2013" and k in ("utf-16", "utf-16-le", "cr"))
]


def make(reader, tmp_path, rows, **kw):
    """``(dataset name, root)`` of ``rows`` written in ``reader``'s layout under ``tmp_path``."""
    return READERS[reader].dataset, READERS[reader].make(tmp_path / reader, rows, **kw)


def labels(dataset):
    return [dataset.class_names[t] for t in dataset.targets]


def values(dataset):
    return [dataset.load_image(i).getpixel((0, 0))[0] for i in range(len(dataset))]


@pytest.mark.parametrize(("reader", "kind"), CASES)
def test_bom_utf16_and_crlf_label_files_read_as_plain_utf8(tmp_path, reader, kind):
    name, root = make(reader, tmp_path, [A, B, ("c", "surprise", "train")], kind=kind)
    dataset = build_dataset(name, root=root)
    assert labels(dataset) == ["happiness", "sadness", "surprise"] and values(dataset) == [40, 80, 120]
    assert dataset.info["dropped_duplicates"] == 0 and dataset.info["split_overlap"] == 0


def test_fer2013_with_bare_cr_line_ends_is_refused_with_the_fix(tmp_path):
    name, root = make("fer2013", tmp_path, [A], kind="cr")  # before: "no samples in split 'train'"
    with pytest.raises(InputError, match=r"fer2013.csv:1: its lines end in a bare CR .*save the file with LF"):
        build_dataset(name, root=root)


def test_fer2013_in_utf16_is_refused_with_the_fix(tmp_path):
    # fer2013.csv is 300 MB of pixels indexed by byte offset: UTF-16 is named, with the fix
    name, root = make("fer2013", tmp_path, [A], kind="utf-16")
    with pytest.raises(InputError, match=r"fer2013.csv:1: .*UTF-16.*save the file as UTF-8"):
        build_dataset(name, root=root)


@pytest.mark.parametrize(("reader", "kind"), CASES)
def test_an_exact_duplicate_row_is_dropped_and_counted(tmp_path, reader, kind):
    name, root = make(reader, tmp_path, [A, B, A], kind=kind)
    dataset = build_dataset(name, root=root)
    assert labels(dataset) == ["happiness", "sadness"] and values(dataset) == [40, 80]
    assert dataset.info["dropped_duplicates"] == 1 and dataset.info["dropped_conflicting_labels"] == 0


@pytest.mark.parametrize(("reader", "kind"), CASES)
def test_conflicting_labels_name_both_lines_or_are_dropped_and_counted(tmp_path, reader, kind):
    name, root = make(reader, tmp_path, [A, B, ("a", "surprise", "train")], kind=kind)
    first = READERS[reader].header + 1
    with pytest.raises(InputError, match=f"lines {first} and {first + 2}: ") as err:
        build_dataset(name, root=root)
    assert READERS[reader].label_file in str(err.value) and "conflicts='drop'" in str(err.value)
    dataset = build_dataset(name, root=root, conflicts="drop")
    assert labels(dataset) == ["sadness"] and values(dataset) == [80]
    assert dataset.info["dropped_conflicting_labels"] == 2 and dataset.info["dropped_duplicates"] == 0


OVERLAP_PLACES = {  # where image a is listed: (train, test)
    "affectnet": ("training.csv:2", "validation.csv:2"),
    "ferplus": ("FER2013Train/label.csv:1", "FER2013Test/label.csv:1"),
    "ferplus-csv": ("fer2013new.csv:2", "fer2013new.csv:4"),
    "fer2013": ("fer2013.csv:2", "fer2013.csv:4"),
    "manifest": ("m.csv:2", "m.csv:4"),
}


@pytest.mark.parametrize("reader", OVERLAP_PLACES)
def test_an_image_in_two_splits_is_leakage_unless_allowed_then_counted(tmp_path, reader):
    name, root = make(reader, tmp_path, [A, B, ("a", "happiness", "test")])
    train_place, test_place = OVERLAP_PLACES[reader]
    for split, mine, other in (("train", train_place, test_place), ("test", test_place, train_place)):
        with pytest.raises(InputError, match="also listed in another split") as err:
            build_dataset(name, root=root, split=split)
        message = str(err.value)
        assert f"{mine} ({split}) and " in message and f"{other} ({'test' if split == 'train' else 'train'})" in message
        assert "allow_split_overlap=True" in message and (reader == "fer2013" or "a.png" in message)
    train = build_dataset(name, root=root, split="train", allow_split_overlap=True)
    test = build_dataset(name, root=root, split="test", allow_split_overlap=True)
    assert labels(train) == ["happiness", "sadness"] and train.info["split_overlap"] == 1
    assert values(test) == [40] and test.info["split_overlap"] == 1


@pytest.mark.parametrize("reader", ["ferplus", "ferplus-csv", "fer2013", "manifest"])
def test_an_image_in_three_splits_is_one_overlapping_image(tmp_path, reader):
    name, root = make(reader, tmp_path, [A, B, ("a", "happiness", "valid"), ("a", "happiness", "test")])
    with pytest.raises(InputError, match=r"^1 (image|pixel row)\(s\) of split 'train' are also listed"):
        build_dataset(name, root=root)
    assert build_dataset(name, root=root, allow_split_overlap=True).info["split_overlap"] == 1


def test_fer2013_declares_the_splits_its_usage_column_names(tmp_path):
    _, root = make("fer2013", tmp_path, [A, B, ("c", "surprise", "test")])
    assert dataset_splits("fer2013", root=root) == ("train", "test")  # no PublicTest row: no valid


def test_layouts_that_cannot_list_one_image_in_two_splits(tmp_path):
    # RAF-DB: the split is the name's prefix, so train_a.jpg and test_a.jpg are two images
    name, root = make("rafdb", tmp_path, [A, ("a", "happiness", "test")])
    for split in ("train", "test"):
        dataset = build_dataset(name, root=root, split=split, allow_split_overlap=True)
        assert values(dataset) == [40] and dataset.info["split_overlap"] == 0
    # folders: train/happiness/a.png and test/happiness/a.png are two files, each read once
    name, root = make("folder", tmp_path, [A, ("a", "happiness", "test")])
    assert [values(build_dataset(name, root=root, split=s)) for s in ("train", "test")] == [[40], [40]]
    # a plain AffectNet CSV has no split column: one set (test_one_set_sources_are_train_only)


def test_folder_reader_skips_and_counts_system_files(tmp_path):
    name, root = make("folder", tmp_path, [A, B])
    happy = root / "train" / "happiness"
    (happy / "._a.png").write_bytes(b"\x00\x05\x16\x07AppleDouble junk")
    (happy / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1 junk")
    (happy / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0 junk")
    (root / "train" / "__MACOSX" / "happiness").mkdir(parents=True)
    dataset = build_dataset(name, root=root, skip_bad_images=True)
    assert labels(dataset) == ["happiness", "sadness"] and values(dataset) == [40, 80]
    assert dataset.info["skipped_system_files"] == 4 and dataset.info["bad_images_dropped"] == 0


def junk_for_dot_names(path, key, size):
    if key.startswith("._"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x00\x05\x16\x07AppleDouble junk")
    else:
        flat(path, key, size)


# RAF-DB names are <split>_<name>.jpg -> <split>_<name>_aligned.jpg: never a dot name
@pytest.mark.parametrize("reader", ["affectnet", "affectnet-csv", "ferplus", "manifest"])
def test_a_listed_system_file_is_an_ordinary_bad_or_missing_image(tmp_path, reader):
    name, root = make(reader, tmp_path, [A, ("._b", "sadness", "train")], draw=junk_for_dot_names)
    with pytest.raises(InputError, match=r"\._b\.png: cannot (decode|read the image)"):
        build_dataset(name, root=root).load_image(1)  # at build (face boxes need its size) or at load
    dataset = build_dataset(name, root=root, skip_bad_images=True)
    assert values(dataset) == [40] and dataset.info["bad_images_dropped"] == 1
    next((root.parent if root.is_file() else root).rglob("._b.png")).unlink()
    with pytest.raises(InputError, match=r"1 of 2 image files listed in .* are missing:\n  \S*\._b\.png"):
        build_dataset(name, root=root)


def draw_modes(path, key, size):
    """Image a: 16-bit gray PNG (mode I;16), 32896 = 128 in 8 bits. Image b: a JPEG stored on its
    side with EXIF orientation 6; shown as ``size`` with its top half black, bottom half white."""
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    if key == "a":
        Image.fromarray(np.full((height, width), 32896, dtype=np.uint16)).save(path, format="PNG")
        return
    stored = np.zeros((width, height, 3), dtype=np.uint8)
    stored[:, height // 2:] = 255  # right half of the stored image = bottom half once turned
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(stored).save(path, format="JPEG", exif=exif, quality=95)


@pytest.mark.parametrize("reader", ["rafdb", "affectnet", "affectnet-csv", "ferplus", "manifest", "folder"])
def test_16_bit_and_exif_rotated_images_decode_alike_through_every_file_reader(tmp_path, reader):
    # face boxes (affectnet, ferplus) are the displayed size: read as the stored 16x32 they would be clamped
    name, root = make(reader, tmp_path, [A, B], size=(32, 16), draw=draw_modes)
    dataset = build_dataset(name, root=root)
    gray, photo = (np.asarray(dataset.load_image(i)) for i in range(2))
    assert gray.shape == (16, 32, 3) and (gray == 128).all()
    assert photo.shape == (16, 32, 3) and photo[:8].max() < 30 and photo[8:].min() > 225
    assert dataset.info.get("boxes_clamped", 0) == 0


BOXES = {"a": (0, 0, 24, 20), "b": (2, 2, 16, 16), "c": (4, 2, 24, 24), "d": (40, 40, 5, 5)}


@pytest.mark.parametrize("reader", ["affectnet", "ferplus"])
def test_face_boxes_partly_outside_are_clamped_wholly_outside_dropped(tmp_path, reader):
    rows = [(key, "happiness", "train") for key in "abcd"]
    name, root = make(reader, tmp_path, rows, boxes=BOXES)
    dataset = build_dataset(name, root=root)
    assert values(dataset) == [40, 80, 120]  # d's box lies wholly outside its 24x20 image
    assert dataset.info["boxes_clamped"] == 1 and dataset.info["dropped_box_outside_image"] == 1
    assert [dataset.load_image(i).size for i in range(3)] == [(24, 20), (16, 16), (20, 18)]  # c: (4, 2, 20, 18)
    whole = build_dataset(name, root=root, crop="never")
    assert values(whole) == [40, 80, 120, 160] and {whole.load_image(i).size for i in range(4)} == {(24, 20)}
    assert whole.info["boxes_clamped"] == 0 and whole.info["dropped_box_outside_image"] == 0
    name, root = make(reader, tmp_path / "most", rows, boxes={**BOXES, "a": (60, 60, 2, 2), "b": (-9, -9, 5, 5)})
    with pytest.raises(InputError, match="3 of 4 face boxes lie wholly outside .* crop='never'"):
        build_dataset(name, root=root)


@pytest.mark.parametrize("reader", ["affectnet-csv", "folder", "manifest", "fer2013"])
def test_one_set_sources_are_train_only(tmp_path, reader):
    name, root = make(reader, tmp_path, [A, B], one_set=True)
    assert dataset_splits(name, root=root) == ("train",)
    assert labels(build_dataset(name, root=root)) == ["happiness", "sadness"]
    for split in ("valid", "test"):
        with pytest.raises(InputError, match="one set, read as split 'train'|no 'valid' split of its own"):
            build_dataset(name, root=root, split=split)


@pytest.mark.parametrize("reader", ["ferplus", "ferplus-csv"])
def test_ferplus_rows_without_an_image_name_are_dropped_and_counted(tmp_path, reader):
    name, root = make(reader, tmp_path, [A, ("", "NF", "train"), B])
    dataset = build_dataset(name, root=root)
    assert labels(dataset) == ["happiness", "sadness"] and values(dataset) == [40, 80]
    assert dataset.info["dropped_no_image_name"] == 1 and dataset.info["rows"] == 3


def with_bad_pixels(csv_path, line, value):
    """Row ``line`` of ``csv_path`` with its 5th pixel set to ``value`` (None: one pixel short)."""
    lines = csv_path.read_text().splitlines()
    fields = lines[line - 1].split(",")
    levels = fields[1].split()
    if value is None:
        levels.pop()
    else:
        levels[4] = value
    lines[line - 1] = ",".join([fields[0], " ".join(levels), *fields[2:]])
    csv_path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("reader", ["fer2013", "ferplus-csv"])
@pytest.mark.parametrize(("value", "problem"), [
    ("300", "pixel 5 is '300', not an integer in 0..255"), ("-4", "pixel 5 is '-4', not an integer in 0..255"),
    ("12.5", "pixel 5 is '12.5', not an integer in 0..255"), (None, "pixels must hold 2304 values (48x48), not 2303"),
])
def test_bad_pixels_fail_at_build_naming_file_line_and_value(tmp_path, reader, value, problem):
    name, root = make(reader, tmp_path, [A, B])
    with_bad_pixels(root / "fer2013.csv", 3, value)
    with pytest.raises(InputError, match=re.escape(f"fer2013.csv:3: {problem}; fix the row, or pass skip_bad_images")):
        build_dataset(name, root=root)
    dataset = build_dataset(name, root=root, skip_bad_images=True)
    assert labels(dataset) == ["happiness"] and values(dataset) == [40] and dataset.info["bad_images_dropped"] == 1


def cli_case(case, tmp_path):
    """``(data stats arguments, the info counts its output must show)`` of one scenario."""
    if case == "affectnet":
        rows = [A, A, B, ("b", "surprise", "train"), *((k, "happiness", "train") for k in "cde"), ("d", "fear", "test")]
        _, root = make("affectnet", tmp_path, rows, boxes={"c": (4, 2, 24, 24), "e": (40, 40, 5, 5)})
        return ["-o", "conflicts=drop", "-o", "allow_split_overlap=true"], root, {
            "dropped_duplicates": 1, "dropped_conflicting_labels": 2, "split_overlap": 1, "boxes_clamped": 1,
            "dropped_box_outside_image": 1}
    if case == "folder":
        _, root = make("folder", tmp_path, [A, B])
        for junk in ("._a.png", ".DS_Store", "Thumbs.db"):
            (root / "train" / "happiness" / junk).write_bytes(b"junk")
        return [], root, {"skipped_system_files": 3}
    if case == "ferplus":
        _, root = make("ferplus", tmp_path, [A, ("", "NF", "train"), B])
        return [], root, {"dropped_no_image_name": 1}
    _, root = make("fer2013", tmp_path, [A, B])
    with_bad_pixels(root / "fer2013.csv", 3, "300")
    return ["--skip-bad-images"], root, {"bad_images_dropped": 1}


@pytest.mark.parametrize("case", ["affectnet", "folder", "ferplus", "fer2013"])
def test_data_stats_shows_every_count_in_its_table_and_json(tmp_path, capsys, case):
    options, root, expected = cli_case(case, tmp_path)
    args = ["data", "stats", "--dataset", case, "--root", str(root), *options]
    assert main(args) == 0
    table = capsys.readouterr().out
    for key, value in expected.items():
        assert f"\n{key.replace('_', ' ')}: {value}\n" in table
    assert main([*args, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["info"]
    assert {key: info[key] for key in expected} == expected


def test_data_stats_names_a_conflict_by_file_and_lines(tmp_path, capsys):
    _, root = make("manifest", tmp_path, [A, B, ("a", "surprise", "train")])
    assert main(["data", "stats", "--dataset", "manifest", "--root", str(root)]) == 2
    error = capsys.readouterr().err
    assert f"{root}: 1 image(s) listed more than once" in error and "lines 2 and 4:" in error
    assert "or pass -o conflicts=drop " in error  # the hint in data stats' own spelling
