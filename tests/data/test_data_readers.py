"""Readers on fabricated RAF-DB, AffectNet, FER2013, folder and manifest layouts."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import write_image
from PIL import Image

from fer_nla.data import available_datasets, build_dataset
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS

# --- RAF-DB -------------------------------------------------------------------------------
RAF_LINES = [  # name, RAF-DB code (1 surprise, 2 fear, 3 disgust, 4 happiness, 5 sadness, 6 anger, 7 neutral)
    ("train_00001.jpg", 5), ("train_00002.jpg", 1), ("train_00003.jpg", 7),
    ("train_00004.jpg", 4), ("test_0001.jpg", 2), ("test_0002.jpg", 3), ("test_0003.jpg", 6),
]
RAF_NAMES = {1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness", 6: "anger", 7: "neutral"}


def make_rafdb(root, lines=RAF_LINES, *, skip_images=()):
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("".join(f"{n} {c}\n" for n, c in lines))
    for i, (name, _) in enumerate(lines):
        if name not in skip_images:
            write_image(root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg"), 10 * i, fmt="PNG")
    return root


def test_rafdb_maps_its_codes_and_splits_by_prefix(tmp_path):
    root = make_rafdb(tmp_path)
    train = build_dataset("rafdb", root=root, split="train")
    test = build_dataset("rafdb", root=root, split="test")
    assert train.class_names == EMOTIONS[:7]
    assert len(train) == 4 and len(test) == 3
    assert [train.class_names[t] for t in train.targets] == ["sadness", "surprise", "neutral", "happiness"]
    assert [test.class_names[t] for t in test.targets] == ["fear", "disgust", "anger"]
    image = test.load_image(2)
    assert image.mode == "RGB" and image.size == (24, 20) and image.getpixel((0, 0)) == (60, 60, 60)
    with pytest.raises(InputError, match="only the splits 'train' and 'test', no 'valid'"):
        build_dataset("rafdb", root=root, split="valid")


@pytest.mark.parametrize(
    ("line", "message"),
    [("train_00009.jpg", "expected '<image name> <label 1..7>'"), ("train_00009.jpg 8", "out of range 1..7"),
     ("photo_1.jpg 3", "should start with 'train_' or 'test_'")],
)
def test_rafdb_bad_lines_name_the_file_and_line(tmp_path, line, message):
    make_rafdb(tmp_path)
    label_file = tmp_path / "EmoLabel" / "list_patition_label.txt"
    label_file.write_text(label_file.read_text() + line + "\n")
    with pytest.raises(InputError, match=message) as err:
        build_dataset("rafdb", root=tmp_path)
    assert f"{label_file}:8:" in str(err.value)


def test_empty_split_is_an_error(tmp_path):
    make_rafdb(tmp_path, RAF_LINES[:4])
    with pytest.raises(InputError, match=r"list_patition_label.txt: no samples in split 'test'"):
        build_dataset("rafdb", root=tmp_path, split="test")


def test_missing_root_and_label_file_are_clear(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        build_dataset("rafdb", root=tmp_path / "nowhere")
    with pytest.raises(InputError, match="needs a root"):
        build_dataset("rafdb")
    with pytest.raises(InputError, match="list_patition_label.txt"):
        build_dataset("rafdb", root=tmp_path)


def test_all_missing_images_are_listed_in_one_message(tmp_path):
    lines = [(f"train_{i:05d}.jpg", 1 + i % 7) for i in range(25)]
    gone = {name for name, _ in lines[2:24]}
    make_rafdb(tmp_path, lines, skip_images=gone)
    with pytest.raises(InputError) as err:
        build_dataset("rafdb", root=tmp_path)
    message = str(err.value)
    assert message.startswith("22 of 25 image files listed in")
    assert "train_00002_aligned.jpg" in message and "... and 2 more" in message
    assert "train_00001_aligned.jpg" not in message and "train_00024_aligned.jpg" not in message
    assert message.count("_aligned.jpg") == 20


def test_undecodable_image_is_named_or_dropped_and_counted(tmp_path):
    make_rafdb(tmp_path)
    broken = tmp_path / "Image" / "aligned" / "train_00002_aligned.jpg"
    broken.write_bytes(b"not an image")
    dataset = build_dataset("rafdb", root=tmp_path)
    with pytest.raises(InputError, match="train_00002_aligned.jpg: cannot decode.*skip_bad_images=True"):
        dataset.load_image(1)
    kept = build_dataset("rafdb", root=tmp_path, skip_bad_images=True)
    assert len(kept) == 3 and kept.info["bad_images_dropped"] == 1
    assert kept.info["bad_images"] == [str(broken)]
    assert [kept.class_names[t] for t in kept.targets] == ["sadness", "neutral", "happiness"]


# --- AffectNet ----------------------------------------------------------------------------
AFFECTNET_HEADER = "subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal\n"


def make_affectnet(root, rows, *, header=True, name="training.csv"):
    """rows: (relative path, box, code); images 40x30 with the box region painted white."""
    images = root / "Manually_Annotated_Images"
    lines = [AFFECTNET_HEADER] if header else []
    for rel, (x, y, w, h), code in rows:
        pixels = np.zeros((30, 40, 3), dtype=np.uint8)
        pixels[y:y + h, x:x + w] = 255
        (images / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(images / rel)
        lines.append(f"{rel},{x},{y},{w},{h},1.0;2.0;3.0,{code},0.1,-0.2\n")
    (root / name).write_text("".join(lines))


def test_affectnet_official_csv_maps_codes_drops_8_to_10_and_crops(tmp_path):
    rows = [("1/a.png", (5, 4, 20, 16), 0), ("1/b.png", (0, 0, 40, 30), 2), ("2/c.png", (2, 3, 10, 10), 9),
            ("2/d.png", (1, 1, 30, 20), 7), ("3/e.png", (50, 50, 20, 20), 6), ("3/f.png", (0, 0, 8, 8), 10)]
    make_affectnet(tmp_path, rows)
    eight = build_dataset("affectnet", root=tmp_path)
    assert eight.class_names == EMOTIONS
    # AffectNet codes: 0 neutral, 2 sadness, 7 contempt, 6 anger; 9 and 10 dropped; the anger
    # image's box lies wholly outside its 40x30 photo: dropped and counted, never used whole
    assert [EMOTIONS[t] for t in eight.targets] == ["neutral", "sadness", "contempt"]
    assert eight.info["dropped_not_in_classes"] == 2
    assert eight.info["dropped_box_outside_image"] == 1 and eight.info["boxes_clamped"] == 0
    assert eight.load_image(0).size == (20, 16)
    assert np.asarray(eight.load_image(0)).min() == 255  # exactly the white face box
    assert eight.load_image(1).size == (40, 30)  # box is the whole image
    seven = build_dataset("affectnet", root=tmp_path, num_classes=7)
    assert [EMOTIONS[t] for t in seven.targets] == ["neutral", "sadness"]
    never = build_dataset("affectnet", root=tmp_path, crop="never")
    assert never.load_image(0).size == (40, 30)


def test_affectnet_validation_without_header_is_the_test_split(tmp_path):
    make_affectnet(tmp_path, [("1/a.png", (0, 0, 40, 30), 3), ("1/b.png", (0, 0, 40, 30), 4)],
                   header=False, name="validation.csv")
    test = build_dataset("affectnet", root=tmp_path, split="test")
    assert [EMOTIONS[t] for t in test.targets] == ["surprise", "fear"]
    with pytest.raises(InputError, match="no 'valid' split of its own"):
        build_dataset("affectnet", root=tmp_path, split="valid")


def test_affectnet_plain_csv_of_paths_and_names_or_codes(tmp_path):
    for i in range(3):
        write_image(tmp_path / "img" / f"{i}.png", i)
    csv_path = tmp_path / "mine.csv"
    csv_path.write_text("path,expression\nimg/0.png,Happy\nimg/1.png,5\nimg/2.png,contempt\n")
    dataset = build_dataset("affectnet", root=csv_path, num_classes=7)
    assert [EMOTIONS[t] for t in dataset.targets] == ["happiness", "disgust"]
    csv_path.write_text("path,expression\nimg/0.png,11\n")
    with pytest.raises(InputError, match=r"mine.csv:2: expression 11 is out of range 0..10"):
        build_dataset("affectnet", root=csv_path)
    csv_path.write_text("file_name,expression\nimg/0.png,1\n")
    with pytest.raises(InputError, match=r"mine.csv:1: no path column"):
        build_dataset("affectnet", root=csv_path)


# --- FER2013 ------------------------------------------------------------------------------
def test_fer2013_rows_decode_lazily_to_their_pixels(tmp_path):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(4, 48 * 48))
    usages = ["Training", "PublicTest", "Training", "PrivateTest"]
    codes = [0, 3, 6, 5]  # anger, happiness, neutral, surprise
    body = "".join(f"{c},{' '.join(map(str, p))},{u}\n" for c, p, u in zip(codes, pixels, usages))
    csv_path = tmp_path / "fer2013.csv"
    csv_path.write_text("emotion,pixels,Usage\n" + body)
    train = build_dataset("fer2013", root=tmp_path)
    assert [EMOTIONS[t] for t in train.targets] == ["anger", "neutral"]
    assert train.samples == [f"{csv_path}:2", f"{csv_path}:4"]
    image = train.load_image(1)
    assert image.mode == "RGB" and image.size == (48, 48)
    np.testing.assert_array_equal(np.asarray(image)[..., 1], pixels[2].reshape(48, 48))
    assert [EMOTIONS[t] for t in build_dataset("fer2013", root=csv_path, split="test").targets] == ["surprise"]
    csv_path.write_text("emotion,pixels,Usage\n" + body + "2,1 2 3,Training\n")
    with pytest.raises(InputError, match=r"fer2013.csv:6: pixels must hold 2304 values"):
        build_dataset("fer2013", root=tmp_path)
    assert len(build_dataset("fer2013", root=tmp_path, skip_bad_images=True)) == 2
    csv_path.write_text("emotion,pixels,Usage\n" + "0," + " ".join(["7"] * 9 + ["300"] * 2295) + ",Training\n")
    with pytest.raises(InputError, match=r"fer2013.csv:2: pixel 10 is '300', not an integer in 0..255"):
        build_dataset("fer2013", root=tmp_path)  # at indexing, not later in training


# --- folders and manifests ----------------------------------------------------------------
def test_folder_with_split_folders_and_alias_names(tmp_path):
    for split, names in {"train": ["Happy", "angry", "neutral"], "val": ["Happy", "angry"]}.items():
        for k, name in enumerate(names):
            for i in range(k + 1):
                write_image(tmp_path / split / name / f"{i}.png", 50 * k)
    (tmp_path / "train" / "Happy" / "notes.txt").write_text("not an image")
    train = build_dataset("folder", root=tmp_path)
    assert train.class_names == EMOTIONS[:7]
    assert train.class_counts().tolist() == [3, 1, 0, 0, 2, 0, 0]
    valid = build_dataset("folder", root=tmp_path, split="valid")
    assert valid.class_counts().tolist() == [0, 1, 0, 0, 2, 0, 0]
    with pytest.raises(InputError, match="none for 'test'"):
        build_dataset("folder", root=tmp_path, split="test")


def test_folder_without_splits_is_one_train_set_and_rejects_unknown_names(tmp_path):
    write_image(tmp_path / "contempt" / "0.png", 1)
    write_image(tmp_path / "sad" / "0.png", 2)
    dataset = build_dataset("folder", root=tmp_path)
    assert dataset.class_names == EMOTIONS and dataset.targets.tolist() == [3, 7]
    with pytest.raises(InputError, match="read as split 'train'"):
        build_dataset("folder", root=tmp_path, split="valid")
    write_image(tmp_path / "smirk" / "0.png", 3)
    with pytest.raises(InputError, match="smirk: folder name is not an emotion"):
        build_dataset("folder", root=tmp_path)


def test_manifest_reads_names_indices_relative_paths_and_splits(tmp_path):
    for i in range(4):
        write_image(tmp_path / "faces" / f"{i}.png", i)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,label,clean_label,split\n"
        "faces/0.png,happy,happiness,train\nfaces/1.png,2,neutral,train\n"
        f"{tmp_path / 'faces' / '2.png'},fear,,train\nfaces/3.png,anger,anger,valid\n"
    )
    train = build_dataset("manifest", root=manifest)
    assert train.targets.tolist() == [1, 2, 6] and train.clean_targets.tolist() == [1, 0, -1]
    assert train.noise_rate() == 0.5
    assert train.samples[0] == str(tmp_path / "faces" / "0.png")
    assert build_dataset("manifest", root=manifest, split="valid").targets.tolist() == [4]
    with pytest.raises(InputError, match="no samples for split 'test'; it has rows of train, valid"):
        build_dataset("manifest", root=manifest, split="test")
    manifest.write_text("path,label\nfaces/0.png,grumpy\n")
    with pytest.raises(InputError, match=r"m.csv:2: label 'grumpy' is not an emotion"):
        build_dataset("manifest", root=manifest)
    manifest.write_text("path,label\nfaces/0.png,9\n")
    with pytest.raises(InputError, match=r"m.csv:2: label 9 is out of range 0..7"):
        build_dataset("manifest", root=manifest)


def test_registry_names_and_unknown_options():
    assert available_datasets() == ["rafdb", "affectnet", "ferplus", "fer2013", "folder", "manifest", "synthetic"]
    with pytest.raises(InputError, match="unknown dataset 'cifar'"):
        build_dataset("cifar")
    with pytest.raises(InputError, match="has no option colour; its options are: num_samples, image_size, mix_share"):
        build_dataset("synthetic", colour=1)
    with pytest.raises(InputError, match="needs per-annotator votes"):
        build_dataset("synthetic", labels="single-vote", num_samples=2)


def test_reader_options_take_the_types_their_reader_declares():
    from fer_nla.data.registry import typed_options

    assert typed_options("synthetic", {"num_samples": "20", "image_size": 16.0, "mix_share": "0"}) == {
        "num_samples": 20, "image_size": 16, "mix_share": 0.0}
    assert typed_options("affectnet", {"images_dir": "null", "allow_split_overlap": "Yes", "crop": "never"}) == {
        "images_dir": None, "allow_split_overlap": True, "crop": "never"}
    assert len(build_dataset("synthetic", num_samples="20", image_size="16")) == 20  # text from -o
    with pytest.raises(InputError, match=r"^dataset synthetic: option num_samples='2\.5' must be an integer$"):
        build_dataset("synthetic", num_samples="2.5")
    with pytest.raises(InputError, match=r"^dataset rafdb: option aligned='maybe' must be true or false$"):
        typed_options("rafdb", {"aligned": "maybe"})
    with pytest.raises(InputError, match=r"^dataset synthetic: option mix_share=True must be a number$"):
        typed_options("synthetic", {"mix_share": True})


def test_corrupt_manifest_is_a_standard_csv_and_old_manifests_still_read(tmp_path):
    import json

    from fer_nla.data.sources.manifest import sidecar_path, write_manifest

    source = {"dataset": "synthetic", "root": None, "split": "train", "labels": "majority", "num_classes": None,
              "seed": 3, "options": {"num_samples": 12, "image_size": 16}}
    base = build_dataset("synthetic", num_samples=12, image_size=16, seed=3)
    new = write_manifest(tmp_path / "new.csv", base, source=source)
    assert new.read_text().splitlines()[0] == "path,label,clean_label,is_noisy,split,source"
    assert json.loads(sidecar_path(new).read_text()) == source and sidecar_path(new).name == "new.source.json"
    old = tmp_path / "old.csv"  # what fer-nla wrote before the sidecar: the provenance on line 1
    old.write_text(f"# fer-nla source: {json.dumps(source)}\n" + new.read_text())
    for path in (new, old):
        read = build_dataset("manifest", root=path)
        assert read.samples == base.samples and read.targets.tolist() == base.targets.tolist()
        np.testing.assert_array_equal(np.asarray(read.load_image(5)), np.asarray(base.load_image(5)))
    sidecar_path(new).unlink()  # a copy without its provenance: an error, never images read another way
    with pytest.raises(InputError, match="provenance .*new.source.json is missing"):
        build_dataset("manifest", root=new)
