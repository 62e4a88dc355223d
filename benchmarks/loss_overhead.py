"""How much NLALoss costs: per call against cross-entropy, and as a share of a training step.

Prints two tables measured on this machine in one run:
1. forward + backward time per call of CE and NLALoss at batch 32 and 256, 7 and 8 classes,
   with the ratio NLA / CE;
2. the share of NLALoss (forward + backward) in one ResNet-18 training step at batch 32 on
   112x112 inputs, both views in one batched forward as fer-nla trains.

    python benchmarks/loss_overhead.py [--repeats 200] [--steps 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torchvision

from fer_nla.losses import NLALoss
from fer_nla.methods import MethodInputs, build_method


def median_seconds(fn: Callable[[], None], *, repeats: int, warmup: int = 3, sync: Callable[[], None] = lambda: None) -> float:
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def loss_call(name: str, batch: int, classes: int, device: torch.device) -> Callable[[], None]:
    method = build_method(name, epochs=60).to(device)
    method.set_epoch(10)
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(batch, classes, generator=g) * 2).to(device).requires_grad_(True)
    logits_flip = (logits.detach() + 0.3 * torch.randn(batch, classes, generator=g).to(device)).requires_grad_(True)
    targets = torch.randint(0, classes, (batch,), generator=g).to(device)

    def step() -> None:
        method(MethodInputs(logits, targets, logits_flip if method.needs.flip_view else None)).loss.backward()

    return step


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor, targets: torch.Tensor, loss: NLALoss) -> Callable[[], None]:
    def step() -> None:
        logits, logits_flip = model(torch.cat([images, images.flip(3)])).chunk(2)
        optimizer.zero_grad(set_to_none=True)
        loss(logits, logits_flip, targets).backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per loss configuration")
    parser.add_argument("--steps", type=int, default=5, help="timed ResNet-18 training steps")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}")

    print("\n| batch | classes | CE fwd+bwd (us) | NLA fwd+bwd (us) | NLA / CE |")
    print("|---:|---:|---:|---:|---:|")
    for batch in (32, 256):
        for classes in (7, 8):
            ce = median_seconds(loss_call("ce", batch, classes, device), repeats=args.repeats, sync=sync)
            nla = median_seconds(loss_call("nla", batch, classes, device), repeats=args.repeats, sync=sync)
            print(f"| {batch} | {classes} | {ce * 1e6:.1f} | {nla * 1e6:.1f} | {nla / ce:.2f} |")

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=7).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-4)
    images = torch.randn(32, 3, 112, 112, device=device)
    targets = torch.randint(0, 7, (32,), device=device)
    nla = NLALoss(60).to(device)
    step = median_seconds(training_step(model, optimizer, images, targets, nla), repeats=args.steps, warmup=2, sync=sync)
    loss_only = median_seconds(loss_call("nla", 32, 7, device), repeats=args.repeats, sync=sync)
    print("\n| ResNet-18 step, batch 32 (x2 views), 112x112 | time (ms) |")
    print("|---|---:|")
    print(f"| whole training step with NLALoss | {step * 1e3:.1f} |")
    print(f"| NLALoss forward + backward | {loss_only * 1e3:.3f} |")
    print(f"| NLALoss share of the step | {100 * loss_only / step:.3f}% |")


if __name__ == "__main__":
    main()
