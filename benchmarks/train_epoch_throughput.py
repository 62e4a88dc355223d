"""Whole training epochs on FERPlus: images per second of NLA epochs, measured in one run, for

1. fer-nla, ``data.loader=memory``: decoded uint8 images, the recipe's augmentation on whole
   batches on the device, both views in one forward (the default at 48 px);
2. fer-nla, ``data.loader=files``: PIL decoding and per-image transforms in DataLoader workers;
3. the reference script's way: per-sample PIL transforms in DataLoader workers, two forward
   calls (image, then its flip) and the loss module built again for every batch.

Each epoch is :func:`fer_nla.train.loop.train_one_epoch` over the loader that ``fer-nla train``
builds (:func:`fer_nla.train.loaders.build_loaders`); the reference epoch is a plain loop. The
decoding into memory (cached on disk) happens before the clock starts, as it does once per
dataset. Prints a markdown table with the ratios to the reference-style epoch.

    python benchmarks/train_epoch_throughput.py --root ../shared/data/ferplus [--images 2048]
        [--archs resnet18,cnn_medium] [--image-size 48] [--workers 2] [--device auto]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from torch.utils.data import DataLoader

from fer_nla.config import load_config
from fer_nla.distributed import DistInfo
from fer_nla.losses import NLALoss
from fer_nla.models import build_model
from fer_nla.runtime import resolve_device, use_channels_last
from fer_nla.train.loaders import build_loaders
from fer_nla.train.loop import train_one_epoch
from fer_nla.train.run_data import build_run_data
from fer_nla.train.step import build_optimizer, build_train_step


def _config(args: argparse.Namespace, arch: str, loader: str):
    return load_config(None, [
        "data.dataset=ferplus", f"data.root={args.root}", "data.labels=majority", "data.val_split=carve",
        f"data.train_subset={args.images}", f"data.image_size={args.image_size}", f"data.loader={loader}",
        f"data.num_workers={args.workers}", f"model.arch={arch}", "loss.name=nla", "train.epochs=60",
        f"train.device={args.device}", "train.two_view_forward=batched",
    ])


def fer_nla_epoch(args: argparse.Namespace, arch: str, loader: str, device: torch.device) -> float:
    """Images per second of one NLA epoch as ``fer-nla train`` runs it with ``data.loader=loader``."""
    config = _config(args, arch, loader)
    data = build_run_data(config.data, seed=0, log=lambda _line: None)
    loaders = build_loaders(config.data, data, batch_size=32, eval_batch_size=256, seed=0, info=DistInfo(),
                            device=device, log=lambda _line: None)
    torch.manual_seed(0)
    model = build_model(arch, num_classes=len(data.class_names), stem="imagenet")
    channels_last = use_channels_last("auto", device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    counts = np.bincount(data.full_train.targets[data.train_indices], minlength=len(data.class_names))
    step, _ = build_train_step(config, model, class_counts=counts, device=device, channels_last=channels_last)
    return train_one_epoch(step, loaders.train(0, 0), epoch=0, last_good="-").images_per_second


def reference_epoch(args: argparse.Namespace, arch: str, device: torch.device) -> float:
    """Images per second of one epoch written as the authors' script does it."""
    config = _config(args, arch, "files")
    data = build_run_data(config.data, seed=0, log=lambda _line: None)
    loader = DataLoader(data.train, batch_size=32, shuffle=True, num_workers=args.workers, drop_last=True)
    torch.manual_seed(0)
    model = build_model(arch, num_classes=len(data.class_names), stem="imagenet").to(device).train()
    optimizer = build_optimizer(model.parameters(), config.optim)
    seen, start = 0, time.perf_counter()
    for images, targets, _index in loader:
        images, targets = images.to(device), targets.to(device)
        criterion = NLALoss(60).to(device)  # the reference builds its loss in the loop
        criterion.set_epoch(0)
        loss = criterion(model(images), model(images.flip(3)), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        seen += int(targets.shape[0])
    return seen / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="the FERPlus folder (FER2013Train/ ...)")
    parser.add_argument("--images", type=int, default=2048, help="training images per epoch (a stratified subset)")
    parser.add_argument("--archs", default="resnet18,cnn_medium")
    parser.add_argument("--image-size", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers of the files and reference epochs")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"FERPlus train, {args.images} images, {args.image_size} px, batch 32, NLA; device {device} "
          f"({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), torch {torch.__version__}")
    print()
    print("| arch | epoch | images/s | vs reference-style |")
    print("|---|---|---:|---:|")
    for arch in args.archs.split(","):
        fer_nla_epoch(args, arch, "memory", device)  # decode once into the cache, outside the clock
        rates = {"reference-style (PIL workers, 2 forwards, loss rebuilt per batch)": reference_epoch(args, arch, device),
                 "fer-nla, data.loader=files": fer_nla_epoch(args, arch, "files", device),
                 "fer-nla, data.loader=memory (default)": fer_nla_epoch(args, arch, "memory", device)}
        reference = next(iter(rates.values()))
        for name, rate in rates.items():
            print(f"| {arch} | {name} | {rate:.0f} | {rate / reference:.2f}x |")


if __name__ == "__main__":
    main()
