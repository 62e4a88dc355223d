"""Tiny ``fer-nla train`` runs of a method on the synthetic data: the plain path (``cnn_small``
at 32 px) and the cached frozen path (``resnet10s`` at 48 px, stages 1-3 frozen and cached)."""

from __future__ import annotations

from pathlib import Path

from fer_nla.checkpoint import load_checkpoint
from fer_nla.cli import main

PLAIN = ["model.arch=cnn_small", "data.options.num_samples=48", "data.options.image_size=32", "data.image_size=32",
         "--batch-size", "16"]
CACHED = ["model.arch=resnet10s", "data.options.num_samples=48", "data.options.image_size=48", "data.image_size=48",
          "--batch-size", "16", "model.frozen_stages=3", "train.cache_frozen=true", "data.flip=false",
          "data.erasing=false", "data.gaussian_noise=false", "data.loader=memory"]
COMMON = ["--no-progress", "train.eval_batch_size=64", "train.tensorboard=false", "train.report=false",
          "train.threads=1", "train.deterministic=true", "optim.lr=1e-2"]


def train_tiny(run: Path, loss: str, *extra: str, cached: bool = False, epochs: int = 1) -> dict:
    """Run ``fer-nla train --loss <loss>`` into ``run``; returns ``last.pt`` as loaded. Asserts
    the command succeeded and wrote both checkpoints."""
    shape = CACHED + [f"data.cache_dir={run.parent / 'cache'}"] if cached else PLAIN
    code = main(["train", "--out", str(run), "--loss", loss, "--epochs", str(epochs), *shape, *COMMON, *extra])
    assert code == 0
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()
    return load_checkpoint(run / "last.pt")
