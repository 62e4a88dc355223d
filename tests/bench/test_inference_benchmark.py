"""benchmarks/inference.py: its measurement functions on a tiny model with 0.2 s budgets, its photo
choice and its Markdown tables (goal marks, rows, positive figures)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from fer_nla.checkpoint import CheckpointMeta, save_checkpoint
from fer_nla.labels import EMOTIONS
from fer_nla.models import build_model
from fer_nla.predict.onnx_export import export_onnx
from fer_nla.inference.preprocess import Preprocess

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "inference.py"
SIZE = 16


@pytest.fixture(scope="module")
def bench(load_benchmark):
    return load_benchmark(SCRIPT, "bench_inference")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny cnn_small checkpoint (16 px input) and its ONNX export."""
    folder = tmp_path_factory.mktemp("tiny")
    torch.manual_seed(0)
    model = build_model("cnn_small", num_classes=len(EMOTIONS)).eval()
    meta = CheckpointMeta(arch="cnn_small", num_classes=len(EMOTIONS), stem="imagenet", class_names=tuple(EMOTIONS),
                          image_size=SIZE, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    checkpoint = save_checkpoint(folder / "tiny.pt", meta, state_dict=model.state_dict())
    onnx_path = export_onnx(model, folder / "tiny.onnx", class_names=list(EMOTIONS),
                            preprocess=Preprocess.from_dict(meta.preprocess), model_spec=meta.model_spec)
    return model, checkpoint, onnx_path


def test_rate_per_second_counts_items_per_wall_second(bench):
    rate = bench.rate_per_second(lambda: time.sleep(0.01), items=4, seconds=0.2, repeats=2)
    assert 100 < rate < 400  # 4 items per >= 10 ms call


def test_tiny_model_report_has_every_row_with_positive_figures(bench, tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("FER_NLA_FERPLUS", str(tmp_path / "absent"))  # the drawn photo, data or not
    model, checkpoint, onnx_path = tiny
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        bench.use_one_thread()
        assert torch.get_num_threads() == 1
        classifiers = bench.classifier_rows(model, onnx_path, image_size=SIZE, batches=[1, 32], seconds=0.2, repeats=2)
        photos = bench.photo_rows(checkpoint, onnx_path, sizes=((160, 120),), runs=1, photos=tmp_path)
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)
    assert [(r.backend, r.batch) for r in classifiers] == [("PyTorch", 1), ("PyTorch", 32), ("onnxruntime", 1),
                                                           ("onnxruntime", 32)]
    assert all(r.faces_per_s > 0 for r in classifiers)
    assert [(r.size, r.backend) for r in photos] == [((160, 120), "PyTorch"), ((160, 120), "onnxruntime")]
    assert all(r.ms > 0 and 0 < r.detect_ms and r.faces >= 0 for r in photos)
    assert all(r.content == "3 drawn cartoon faces" and "(" in r.detector for r in photos)

    head = bench.header(title="T", command="python benchmarks/inference.py --seconds 0.2", model_line="tiny",
                        load=9.0, note="a note")
    text = bench.report(head, classifiers, photos, seconds=0.2, repeats=2, runs=1)
    assert "`python benchmarks/inference.py --seconds 0.2`" in text
    assert "provisional (machine busy)" in text and "torch " in text and "onnxruntime " in text and "- note: a note" in text
    rows = [line for line in text.splitlines() if re.match(r"\| (PyTorch|onnxruntime) \| \d+ \|", line)]
    assert len(rows) == 4
    assert all(float(row.split("|")[3].replace(",", "")) > 0 for row in rows)
    assert re.search(r"\| onnxruntime \| 32 \| .* \| (PASS|FAIL) \(>= 1,300\) \|", text)
    assert sum(line.startswith("| 160x120 |") for line in text.splitlines()) == 2


def test_goal_marks_and_zero_faces(bench):
    rows = [bench.ClassifierRow("PyTorch", 32, 1000.0), bench.ClassifierRow("onnxruntime", 32, 1299.0)]
    table = "\n".join(bench.classifier_table(rows))
    assert "| onnxruntime | 32 | 1,299 | 24.63 | 1.30x | FAIL (>= 1,300) |" in table
    table = "\n".join(bench.classifier_table([rows[0], bench.ClassifierRow("onnxruntime", 32, 1300.0)]))
    assert "PASS (>= 1,300)" in table
    photos = [bench.PhotoRow((640, 480), "x", "PyTorch", "haar", 3, 49.9, 40.0),
              bench.PhotoRow((640, 480), "x", "onnxruntime", "haar", 0, 50.0, 50.0),
              bench.PhotoRow((1920, 1080), "x", "PyTorch", "haar", 3, 120.0, 100.0)]
    lines = bench.photo_table(photos)[2:]
    assert lines[0].endswith("| 3 | 49.9 | 40.0 | PASS (< 50 ms) |")
    assert lines[1].endswith("| 0 (no face detected: detector time only) | 50.0 | 50.0 | FAIL (< 50 ms) |")
    assert lines[2].endswith("| 120.0 | 100.0 |  |")


def test_benchmark_photo_prefers_the_group_photo(bench, tmp_path, monkeypatch):
    monkeypatch.setenv("FER_NLA_FERPLUS", str(tmp_path / "absent"))
    photo, content = bench.benchmark_photo(64, 48, photos=tmp_path)
    assert photo.shape == (48, 64, 3) and photo.dtype == np.uint8 and content == "3 drawn cartoon faces"
    wide = np.zeros((100, 300, 3), dtype=np.uint8)
    wide[:, 100:200] = 200  # the centre third: what a 4:3 centre crop of a 3:1 image keeps, mostly
    Image.fromarray(wide).save(tmp_path / "Group_01.png")
    Image.fromarray(wide).save(tmp_path / "single.png")
    photo, content = bench.benchmark_photo(64, 48, photos=tmp_path)
    assert content.endswith("Group_01.png") and photo.shape == (48, 64, 3)
    assert photo[:, 16:48].mean() > 190 and photo[:, :4].mean() < 10  # centre-cropped, not squashed
