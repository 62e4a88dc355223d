"""The console script: --version and --help, in-process and installed; resuming a run with
other data; what eval scored and what it dropped."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import fer_nla
from fer_nla.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"fer-nla {fer_nla.__version__}"
    assert fer_nla.__version__ != "0.0.0+unknown", "the package should be installed (pip install -e .)"


def test_help_lists_the_program(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "usage: fer-nla" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: fer-nla" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "fer_nla", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"fer-nla {fer_nla.__version__}"


@pytest.mark.skipif(shutil.which("fer-nla") is None, reason="console script not on PATH")
def test_console_script():
    out = subprocess.run(["fer-nla", "--help"], capture_output=True, text=True, check=True)
    assert "usage: fer-nla" in out.stdout


TINY_RUN = ["--no-progress", "--epochs", "1", "--batch-size", "16", "model.arch=cnn_small", "data.options.num_samples=48",
            "data.options.image_size=32", "data.image_size=32", "train.eval_batch_size=64", "train.tensorboard=false"]


def test_resume_with_other_data_names_each_changed_key(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TINY_RUN]) == 0
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--labels", "distribution", "data.options.num_samples=64"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"saved in {run / 'config.yaml'}" in err
    assert "data.labels: saved 'majority', now 'distribution'" in err
    assert "data.options.num_samples: saved 48, now 64" in err
    assert "pass data.labels=majority data.options.num_samples=48), or start a new run with another --out DIR" in err
    assert main(["train", "--out", str(run), "--resume", "--num-classes", "8", "data.image_size=40"]) == 2
    err = capsys.readouterr().err
    assert "data.num_classes: saved None, now 8; data.image_size: saved 32, now 40" in err
    # what does not change the samples, classes or network may change: more epochs
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2"]) == 0
    assert "resuming" in capsys.readouterr().out


# columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
FERPLUS_VOTES = [
    [8, 1, 0, 0, 0, 0, 0, 1, 0, 0], [0, 9, 1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 7, 0, 0, 0, 3, 0, 0, 0],
    [1, 0, 0, 8, 0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 10, 0, 0, 0, 0, 0], [0, 0, 0, 0, 2, 8, 0, 0, 0, 0],
    [0, 0, 1, 0, 0, 0, 9, 0, 0, 0],
    [1, 0, 0, 0, 0, 0, 0, 9, 0, 0], [2, 0, 0, 0, 0, 0, 0, 8, 0, 0], [0, 0, 0, 0, 0, 0, 0, 6, 4, 0],  # contempt
    [0, 5, 5, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 6, 4],  # a tie, unknown: no majority label
]


def _tiny_ferplus_test_split(root):
    import csv

    folder = root / "FER2013Test"
    folder.mkdir(parents=True)
    with open(folder / "label.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        for i, votes in enumerate(FERPLUS_VOTES):
            Image.fromarray(np.full((48, 48), 20 * i, np.uint8), mode="L").save(folder / f"fer{i:07d}.png")
            writer.writerow([f"fer{i:07d}.png", "(0, 0, 48, 48)", *votes])
    return folder


def _seven_class_checkpoint(path):
    from checkpoint_files import save_payload
    from fer_nla.config import load_config
    from fer_nla.labels import EMOTIONS
    from fer_nla.models import build_model

    torch.manual_seed(0)
    save_payload(path, {
        "model": {"arch": "cnn_small", "num_classes": 7, "stem": "imagenet"}, "class_names": list(EMOTIONS[:7]),
        "preprocess": {"image_size": 32, "mean": [0.5] * 3, "std": [0.25] * 3},
        "state_dict": build_model("cnn_small", num_classes=7).state_dict(),
        "config": load_config(None, ["model.arch=cnn_small", "data.image_size=32"]).to_dict(), "epoch": 1, "metrics": {},
    })
    return path


def test_eval_counts_what_it_scored_and_what_it_dropped_and_why(tmp_path, capsys):
    folder = _tiny_ferplus_test_split(tmp_path / "ferplus")
    checkpoint = _seven_class_checkpoint(tmp_path / "best.pt")
    args = ["eval", "--checkpoint", str(checkpoint), "--dataset", "ferplus", "--root", str(tmp_path / "ferplus")]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["num_samples"] == 7 == int(np.sum(report["confusion_matrix"]))
    assert report["dropped"] == {"contempt: not a class of the model": 3,
                                 "no majority label (dropped_no_label)": 2}
    assert report["class_names"] == list(report["per_class_acc"]) and "contempt" not in report["class_names"]
    saved = json.loads((tmp_path / "eval_best_ferplus_test.json").read_text())
    assert saved["num_samples"] == 7 and saved["dropped"] == report["dropped"]

    (folder / "fer0000001.png").write_bytes(b"not an image")  # a happiness face
    assert main([*args, "--skip-bad-images"]) == 0
    text = capsys.readouterr().out
    assert "samples: 6" in text
    assert ("scored 6 samples; dropped 6 (contempt: not a class of the model: 3, "
            "no majority label (dropped_no_label): 2, undecodable image (bad_images_dropped): 1)") in text


def test_option_that_has_its_own_flag_names_the_flag(capsys):
    assert main(["data", "stats", "-o", "num_classes=8"]) == 2
    assert "-o num_classes sets an argument every dataset has, not a reader option: use --num-classes 8" in (
        capsys.readouterr().err)


def test_table_piped_into_a_closed_pipe_exits_quietly():
    import subprocess
    import sys

    script = "import sys; from fer_nla.cli import main; raise SystemExit(main(sys.argv[1:]))"
    proc = subprocess.Popen(  # the reader end is closed before anything is written: like `| head` that quit
        [sys.executable, "-c", script, "data", "stats", "-o", "num_samples=50", "-o", "image_size=16"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    proc.stdout.close()
    stderr = proc.stderr.read()
    assert proc.wait(timeout=120) == 141
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr


def test_resume_after_the_files_changed_is_refused_and_a_relative_root_resumes_anywhere(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    for k, emotion in enumerate(["happy", "sad"]):
        for i in range(12):
            path = data / emotion / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((32, 32, 3), 40 * k + i, np.uint8)).save(path)
    tiny = [a for a in TINY_RUN if not a.startswith("data.options.")]
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "folder", "--root", "data", "--out", "run", *tiny]) == 0  # a relative root
    monkeypatch.chdir(data)  # from another folder: the saved root is absolute, so the same data is found
    assert main(["train", "--out", str(tmp_path / "run"), "--resume", "--epochs", "2"]) == 0
    (data / "sad" / "0.png").unlink()  # the data changed under the same config
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "run"), "--resume", "--epochs", "3"]) == 2
    err = capsys.readouterr().err  # before: a raw numpy broadcast error from the signal recorder
    assert "Traceback" not in err and "the data changed since this run was saved" in err
    assert "training: 24 samples then, 23 now" in err and "another --out DIR" in err


def test_a_changed_validation_split_is_named_on_resume(tmp_path):
    from fer_nla.data import build_dataset
    from fer_nla.errors import InputError
    from fer_nla.train.run_folder import RunFolder, check_same_data, data_fingerprint

    train = build_dataset("synthetic", num_samples=8, image_size=16)
    val = build_dataset("synthetic", split="valid", num_samples=4, image_size=16)
    saved = data_fingerprint(train, val)
    check_same_data(saved, data_fingerprint(train, val), run=RunFolder(tmp_path))  # the same data: no error
    grown = build_dataset("synthetic", split="valid", num_samples=5, image_size=16)
    with pytest.raises(InputError, match=r"data changed .*\(validation: 4 samples then, 5 now\)"):
        check_same_data(saved, data_fingerprint(train, grown), run=RunFolder(tmp_path))


def test_an_error_in_a_data_loader_worker_is_one_message(tmp_path, capsys):
    for k, emotion in enumerate(["happy", "sad"]):
        for i in range(6):
            path = tmp_path / "data" / emotion / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((32, 32, 3), 40 * k + i, np.uint8)).save(path)
    (tmp_path / "data" / "sad" / "3.png").write_bytes(b"not an image")  # found when a worker decodes it
    tiny = [a for a in TINY_RUN if not a.startswith("data.options.")]
    args = ["train", "--dataset", "folder", "--root", str(tmp_path / "data"), "--out", str(tmp_path / "run"), *tiny,
            "data.num_workers=1", "data.val_split=carve"]
    assert main(args) == 2
    err = capsys.readouterr().err  # before: "Caught InputError in DataLoader worker process 0. Original Traceback"
    assert "Traceback" not in err and "DataLoader worker" not in err, err
    assert "3.png: cannot decode" in err and "data.skip_bad_images=true" in err


# --- issue 11: eval reads the run's own data as training did; stats and train spell what they do --
def _folder_checkpoint(path, root, *, skip_bad_images):
    """A 7-class cnn_small checkpoint whose saved config trained on the image folder ``root``."""
    from checkpoint_files import save_payload
    from fer_nla.config import load_config
    from fer_nla.labels import EMOTIONS
    from fer_nla.models import build_model

    torch.manual_seed(0)
    config = load_config(None, ["model.arch=cnn_small", "data.image_size=32", "data.dataset=folder",
                                f"data.root={root}", f"data.skip_bad_images={str(skip_bad_images).lower()}"])
    save_payload(path, {
        "model": {"arch": "cnn_small", "num_classes": 7, "stem": "imagenet"}, "class_names": list(EMOTIONS[:7]),
        "preprocess": {"image_size": 32, "mean": [0.5] * 3, "std": [0.25] * 3},
        "state_dict": build_model("cnn_small", num_classes=7).state_dict(),
        "config": config.to_dict(), "epoch": 1, "metrics": {},
    })
    return path


def _split_folders_with_a_bad_image(root):
    for split in ("train", "val", "test"):
        for k, emotion in enumerate(("happy", "sad")):
            for i in range(2):
                path = root / split / emotion / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((32, 32, 3), 60 * k + 10 * i, np.uint8)).save(path)
        (root / split / "happy" / "bad.png").write_bytes(b"not an image")
    return root


def test_eval_reads_the_runs_own_data_with_its_skip_bad_images(tmp_path, capsys):
    root = _split_folders_with_a_bad_image(tmp_path / "data")
    checkpoint = _folder_checkpoint(tmp_path / "best.pt", root, skip_bad_images=True)
    assert main(["eval", "--checkpoint", str(checkpoint), "--json"]) == 0  # before: the bad image failed mid-eval
    report = json.loads(capsys.readouterr().out)
    assert report["num_samples"] == 4 and report["dropped"] == {"undecodable image (bad_images_dropped)": 1}
    assert main(["eval", "--checkpoint", str(checkpoint), "--no-skip-bad-images"]) == 2  # the user's word wins
    err = capsys.readouterr().err
    assert "Traceback" not in err and f"{root / 'test' / 'happy' / 'bad.png'}: cannot decode" in err
    plain = _folder_checkpoint(tmp_path / "plain.pt", root, skip_bad_images=False)
    assert main(["eval", "--checkpoint", str(plain), "--skip-bad-images", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_samples"] == 4
    assert main(["eval", "--checkpoint", str(plain)]) == 2  # the saved config says no: fails, naming the fix
    assert "--skip-bad-images" in capsys.readouterr().err


def test_eval_names_the_split_canonically(tmp_path, capsys):
    from fer_nla.evaluate import evaluate_checkpoint

    root = _split_folders_with_a_bad_image(tmp_path / "data")
    checkpoint = _folder_checkpoint(tmp_path / "best.pt", root, skip_bad_images=True)
    assert main(["eval", "--checkpoint", str(checkpoint), "--split", "val"]) == 0
    assert f"{checkpoint} on folder valid" in capsys.readouterr().out
    assert (tmp_path / "eval_best_folder_valid.json").is_file()
    assert not (tmp_path / "eval_best_folder_val.json").exists()
    assert evaluate_checkpoint(str(checkpoint), split="Validation", device_name="cpu")["split"] == "valid"


def test_every_count_a_reader_drops_by_has_a_readable_reason():
    import re
    from pathlib import Path

    from fer_nla.evaluate import READER_DROPS, reader_drops

    data = Path(fer_nla.__file__).parent / "data"
    written = {key for path in data.rglob("*.py")
               for key in re.findall(r"[\"'](dropped_[a-z_]+|bad_images_dropped)[\"']", path.read_text())}
    assert {"dropped_box_outside_image", "dropped_no_image_name", "dropped_duplicates"} <= written
    assert written <= set(READER_DROPS), f"no reason phrase for {sorted(written - set(READER_DROPS))}"
    reasons = reader_drops({key: 1 for key in written}, labels="majority")
    assert len(reasons) == len(written)
    for reason in reasons:
        phrase, key = re.fullmatch(r"(.+) \((\w+)\)", reason).groups()
        assert phrase != key and "_" not in phrase, reason
    assert reasons["face box outside the image (dropped_box_outside_image)"] == 1
    assert reader_drops({"dropped_blurry_faces": 2}, labels="majority") == {"blurry faces (dropped_blurry_faces)": 2}


def test_stats_table_says_what_the_imbalance_ratio_is_over_and_shows_what_json_has(tmp_path, capsys):
    root = tmp_path / "faces"
    for emotion, count in (("happy", 4), ("sad", 2)):
        for i in range(count):
            (root / emotion).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((8, 8, 3), 30 * i, np.uint8)).save(root / emotion / f"{i}.png")
    assert main(["data", "stats", "--dataset", "folder", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert ("imbalance ratio (largest/smallest non-empty class): 2.00; "
            "empty classes: neutral, surprise, anger, disgust, fear") in out.splitlines()
    _tiny_ferplus_test_split(tmp_path / "ferplus")
    args = ["data", "stats", "--dataset", "ferplus", "--root", str(tmp_path / "ferplus"), "--split", "test",
            "--labels", "single-vote"]
    assert main([*args, "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"label file rows: {stats['info']['rows']}" in lines and stats["info"]["rows"] == 12
    assert lines[1].split() == ["class", "count", "share", "clean"]
    table = {line.split()[0]: line.split() for line in lines[2:2 + stats["num_classes"]]}
    assert {name: int(row[1]) for name, row in table.items()} == stats["class_counts"]
    assert {name: int(row[3]) for name, row in table.items()} == stats["clean_class_counts"]
    assert stats["clean_class_counts"]["contempt"] == 3


def test_dash_o_values_stay_text_until_the_reader_types_them(capsys):
    from fer_nla.commands import parse_options

    assert parse_options(["num_samples=2000", "crop = never", "images_dir="]) == {
        "num_samples": "2000", "crop": "never", "images_dir": ""}
    assert main(["data", "stats", "-o", "num_samples=2.5"]) == 2
    assert "dataset synthetic: option num_samples='2.5' must be an integer" in capsys.readouterr().err


def test_train_takes_reader_options_as_dash_o(tmp_path, capsys):
    import yaml

    from fer_nla.cli import build_parser
    from fer_nla.commands.train import overrides_from_args
    from fer_nla.config import load_config

    args = build_parser().parse_args(["train", "--out", "x", "-o", "crop=never", "-o", "num_samples=40",
                                      "data.options.num_samples=48"])
    config = load_config(None, overrides_from_args(args))
    assert config.data.options["crop"] == "never" and config.data.options["num_samples"] == 48  # positional wins
    run = tmp_path / "run"
    tiny = [a for a in TINY_RUN if not a.startswith("data.options.")]
    assert main(["train", "--out", str(run), "-o", "num_samples=48", "-o", "image_size=32", *tiny]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())["data"]["options"]
    assert saved["num_samples"] == 48 and saved["image_size"] == 32
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "other"), "-o", "root=/data/faces"]) == 2
    err = capsys.readouterr().err
    assert "-o root sets an argument every dataset has, not a reader option: use --root /data/faces" in err
    assert not (tmp_path / "other").exists()


def test_a_third_new_user_pass_by_kind(tmp_path, capsys):
    """Library and OS errors reach the user as one line naming the option or path (no traceback)."""
    synth = ["--dataset", "synthetic", "-o", "num_samples=60", "-o", "image_size=16"]
    cases = [  # (arguments, expected exit code, text in stderr)
        (["data", "corrupt", *synth, "--noise", "symmetric", "--rate", "0.1", "--out", str(tmp_path)], 2,
         "is a directory; check that the path is right"),
        (["data", "corrupt", *synth, "--imbalance", "nan", "--out", str(tmp_path / "m.csv")], 2,
         "the factor must be a finite number"),
        (["data", "corrupt", *synth, "--imbalance", "2", "--out", ""], 2, "--out is empty"),
        (["train", "--out", "", *TINY_RUN], 2, "the run folder is an empty path"),
        (["train", "--out", str(tmp_path / "r"), *TINY_RUN, "optim.lr=inf"], 2, "optim.lr must be a finite number"),
        (["train", "--out", str(tmp_path / "r"), *TINY_RUN, "train.seed=-1"], 2, "train.seed must be an integer"),
        (["train", "--out", str(tmp_path / "r"), *TINY_RUN, "train.epochs=1e30"], 2, "train.epochs must lie in"),
        (["train", "--out", str(tmp_path / "r"), *TINY_RUN, "optim.weight_decay=-1"], 2, "optim.weight_decay must be"),
    ]
    for args, code, text in cases:
        assert main(args) == code, args
        err = capsys.readouterr().err
        assert text in err and "Traceback" not in err, (args, err)
    for args, text in ((["data", "stats", "--seed", "-1"], "argument --seed: -1 is outside 0..4294967295"),
                       (["eval", "--checkpoint", "x", "--batch-size", "0"], "argument --batch-size: 0 is outside")):
        with pytest.raises(SystemExit):
            main(args)
        assert text in capsys.readouterr().err
    assert not list(tmp_path.glob(".*.tmp"))  # nothing half-written is left behind


def test_overrides_may_follow_options_and_long_messages_are_shortened(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--no-progress", "model.arch=cnn_small", "--epochs", "1",
                 *TINY_RUN[3:]]) == 0  # before: "unrecognized arguments" for overrides after --epochs
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\n" + "a" * 200_000 + ",happy\n")  # one field over csv's 128 KB limit
    assert main(["data", "stats", "--dataset", "manifest", "--root", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "is not readable CSV (field larger than field limit" in err and "Traceback" not in err
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "EmoLabel").mkdir()
    (tmp_path / "list" / "EmoLabel" / "list_patition_label.txt").write_text("train_1.jpg " + "9" * 5000 + "\n")
    assert main(["data", "stats", "--dataset", "rafdb", "--root", str(tmp_path / "list")]) == 2
    err = capsys.readouterr().err
    assert len(err) < 1500 and "characters left out" in err
