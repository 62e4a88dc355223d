"""Training throughput: images per second of one full training step (forward, loss, backward,
optimizer) through the engine's own ``TrainStep``, same model and batch size, for

1. CE, one view (the baselines never compute the flipped view);
2. NLA, both views in ONE batched forward of 2B images (fer-nla's default);
3. NLA, two separate forwards of B images each (the reference code's way);

with the ratios to CE and of batched to separate, measured in one run on this machine.

    python benchmarks/train_throughput.py [--arch resnet18] [--stem imagenet] [--image-size 112]
        [--batch-size 32] [--steps 6] [--device auto] [--precision auto]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from fer_nla.runtime import autocast_dtype, resolve_device, use_channels_last
from fer_nla.train.step import TrainStep, build_optimizer
from fer_nla.config import OptimConfig
from fer_nla.methods import build_method
from fer_nla.models import build_model

CASES = (("ce", "batched", "CE, one view"), ("nla", "batched", "NLA, batched (1 forward of 2B)"),
         ("nla", "separate", "NLA, separate (2 forwards of B)"))


def measure(case: tuple[str, str, str], args: argparse.Namespace, device: torch.device) -> float:
    """Median images per second (unique input images) over ``args.steps`` timed steps."""
    loss_name, mode, _ = case
    torch.manual_seed(0)
    model = build_model(args.arch, num_classes=7, stem=args.stem).to(device)
    channels_last = use_channels_last("auto", device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = build_optimizer(model.parameters(), OptimConfig(lr=1e-4))
    amp = autocast_dtype(args.precision, device)
    scaler = torch.amp.GradScaler(device.type) if amp is torch.float16 else None
    step = TrainStep(model, build_method(loss_name, epochs=60).to(device), optimizer, device, amp, channels_last, mode, None, scaler)
    g = torch.Generator().manual_seed(0)
    images = torch.randn(args.batch_size, 3, args.image_size, args.image_size, generator=g)
    targets = torch.randint(0, 7, (args.batch_size,), generator=g)
    index = torch.arange(args.batch_size)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        step(images, targets, index)
    sync()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step(images, targets, index)
        sync()
        times.append(time.perf_counter() - start)
    return args.batch_size / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--stem", default="imagenet")
    parser.add_argument("--image-size", type=int, default=112)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    args = parser.parse_args()
    device = resolve_device(args.device)
    amp = autocast_dtype(args.precision, device)
    print(f"{args.arch} ({args.stem} stem), {args.image_size}x{args.image_size}, batch {args.batch_size}, "
          f"device {device} ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads), "
          f"precision {amp or 'fp32'}, channels_last {use_channels_last('auto', device)}, torch {torch.__version__}")
    rates = {case[2]: measure(case, args, device) for case in CASES}
    ce, batched, separate = (rates[c[2]] for c in CASES)
    print()
    print(f"| {'training step':<32} | images/s | vs CE one view |")
    print(f"|{'-' * 34}|---------:|---------------:|")
    for name, rate in rates.items():
        print(f"| {name:<32} | {rate:8.1f} | {rate / ce:14.2f} |")
    print()
    print(f"NLA batched / NLA separate: {batched / separate:.2f}x the images per second")


if __name__ == "__main__":
    main()
