"""DDP through torchrun: 2 CPU processes (Gloo) train a tiny synthetic run; rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch.distributed as dist

from fer_nla.checkpoint import load_checkpoint
from fer_nla.evaluate import evaluate_checkpoint
from fer_nla.distributed import DistInfo, env_dist_info

TINY = [
    "data.options.num_samples=64", "data.options.image_size=32", "data.image_size=32",
    "train.batch_size=8", "train.eval_batch_size=32", "train.epochs=2", "train.device=cpu",
]


def test_single_process_without_torchrun(monkeypatch):
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert env_dist_info() == DistInfo() and env_dist_info().is_main and not env_dist_info().enabled
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert env_dist_info() == DistInfo(3, 4, 1) and not env_dist_info().is_main


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed with Gloo")
def test_torchrun_two_cpu_processes(tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "fer_nla",
           "train", "--out", str(out), "--no-progress", *TINY]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stdout.count("report: ") == 1  # only rank 0 prints and writes
    assert "2 process(es)" in proc.stdout
    lines = [json.loads(t) for t in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    # 64 samples over 2 ranks, batch 8 per rank: 4 steps per rank, all 64 counted (reduced over ranks)
    assert [m["train_samples"] for m in lines] == [64, 64]
    best = load_checkpoint(out / "best.pt")
    # validation metrics gathered over both ranks equal a single-process evaluation of the same weights
    single = evaluate_checkpoint(str(out / "best.pt"), split="valid", device_name="cpu")
    assert single["num_samples"] == 64
    assert best["metrics"]["val"]["overall_acc"] == pytest.approx(single["overall_acc"], abs=1e-12)
    assert best["metrics"]["val"]["confusion_matrix"] == single["confusion_matrix"]
    assert best["metrics"]["train"]["loss"] > 0
