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
    from fer_nla.checkpoint import save_checkpoint
    from fer_nla.config import load_config
    from fer_nla.labels import EMOTIONS
    from fer_nla.models import build_model

    torch.manual_seed(0)
    save_checkpoint(path, {
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
    assert "Traceback" not in err and "the training data changed since this run was saved" in err
    assert "training samples then" in err and "another --out DIR" in err
