"""``report.md`` of a run folder, with its plots: training curves, the confusion matrix and
per-class accuracy of the best epoch on the validation split, and, for NLA runs, the NAW
weight of every training sample over the (p_gt, p_nn) plane early, midway and late."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from fer_nla.metrics import HEADLINE_METRICS
from fer_nla.run_folder import RunFolder, write_text_atomic
from fer_nla.training_signals import load_signals

MAX_SCATTER_POINTS = 6000


def plot_curves(lines: Sequence[dict[str, Any]], path: Path) -> Path:
    """Training loss, and train / val accuracy, per epoch."""
    epochs = [m["epoch"] for m in lines]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [m["train_loss"] for m in lines], marker="o")
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax_acc.plot(epochs, [100 * m["train_acc"] for m in lines], marker="o", label="train acc")
    ax_acc.plot(epochs, [100 * m["val"]["overall_acc"] for m in lines], marker="o", label="val acc")
    ax_acc.plot(epochs, [100 * m["val"]["mean_acc"] for m in lines], marker="o", label="val mean acc")
    ax_acc.set(xlabel="epoch", ylabel="%", title="accuracy")
    ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    return path


def plot_confusion(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: Path, *, title: str) -> Path:
    """Row-normalised confusion matrix (rows = true class) with the counts written in."""
    cm = np.asarray(matrix, dtype=np.float64)
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(2.2 + 0.75 * len(class_names), 1.2 + 0.7 * len(class_names)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(class_names))
    ax.set_xticks(ticks, class_names, rotation=45, ha="right")
    ax.set_yticks(ticks, class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if rates[i, j] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    fig.savefig(path, dpi=110)
    return path


def plot_per_class(per_class: dict[str, float | None], path: Path, *, title: str) -> Path:
    names = list(per_class)
    values = [100 * (v if v is not None else np.nan) for v in per_class.values()]
    fig = Figure(figsize=(1.5 + 0.7 * len(names), 3.4), layout="constrained")
    ax = fig.subplots()
    bars = ax.bar(names, values, color="tab:blue")
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set(ylabel="accuracy (%)", ylim=(0, 105), title=title)
    ax.tick_params(axis="x", rotation=45)
    fig.savefig(path, dpi=110)
    return path


def naw_epochs(num_epochs: int) -> list[int]:
    """Early, middle and late epoch (0-based, distinct)."""
    return sorted({0, (num_epochs - 1) // 2, num_epochs - 1})


def plot_naw_weights(signals: dict[str, np.ndarray], path: Path, *, seed: int = 0) -> Path | None:
    """Per-sample NAW weight over (p_gt, p_nn) at early, middle and late epochs."""
    if "weights" not in signals or signals["weights"].shape[0] == 0:
        return None
    epochs = naw_epochs(signals["weights"].shape[0])
    fig = Figure(figsize=(4.2 * len(epochs), 3.8), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(epochs), sharex=True, sharey=True))
    rng = np.random.default_rng(seed)
    vmax = float(np.nanmax(signals["weights"].astype(np.float32)))
    scatter = None
    for ax, e in zip(axes, epochs):
        w = signals["weights"][e].astype(np.float32)
        seen = np.flatnonzero(np.isfinite(w))
        if len(seen) > MAX_SCATTER_POINTS:
            seen = rng.choice(seen, MAX_SCATTER_POINTS, replace=False)
        scatter = ax.scatter(signals["p_gt"][e][seen].astype(np.float32), signals["p_nn"][e][seen].astype(np.float32),
                             c=w[seen], s=4, cmap="viridis", vmin=0, vmax=vmax, alpha=0.7)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="p_gt (given label)", title=f"epoch {e + 1}")
    axes[0].set_ylabel("p_nn (nearest negative)")
    if scatter is not None:
        fig.colorbar(scatter, ax=list(axes), label="NAW weight")
    fig.savefig(path, dpi=110)
    return path


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    header, *body = rows
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in body]


def write_report(run: RunFolder, *, class_names: Sequence[str], loss_name: str) -> Path:
    """Write ``report.md`` and ``plots/*.png`` from the run folder's files."""
    lines = run.read_metrics()
    run.plots.mkdir(parents=True, exist_ok=True)
    md = [f"# Training report: {run.root.name}", "", f"Loss `{loss_name}`, {len(lines)} epochs. "
          "The best epoch is chosen on the validation split (never the test split); "
          "evaluate it with `fer-nla eval --checkpoint best.pt ...`.", ""]
    if not lines:
        write_text_atomic(run.report, "\n".join(md + ["No epoch finished."]) + "\n")
        return run.report
    best = max((m for m in lines if m.get("best")), key=lambda m: m["epoch"], default=lines[-1])
    md += [f"## Best epoch: {best['epoch']} (validation)", ""]
    md += _table([["metric", "value"]] + [[k, f"{100 * best['val'][k]:.2f}%"] for k in HEADLINE_METRICS])
    md += ["", "## Training curves", "", f"![curves]({plot_curves(lines, run.plots / 'curves.png').relative_to(run.root)})", ""]
    cm_path = plot_confusion(best["val_confusion_matrix"], class_names, run.plots / "confusion_matrix.png",
                             title=f"validation, epoch {best['epoch']}")
    pc_path = plot_per_class(best["val_per_class_acc"], run.plots / "per_class_accuracy.png",
                             title=f"validation per-class accuracy, epoch {best['epoch']}")
    md += ["## Confusion matrix (rows = true class)", "", f"![confusion matrix]({cm_path.relative_to(run.root)})", "",
           "## Per-class accuracy", "", f"![per-class accuracy]({pc_path.relative_to(run.root)})", ""]
    md += _table([["class", "accuracy"]] + [[n, "n/a" if a is None else f"{100 * a:.2f}%"] for n, a in best["val_per_class_acc"].items()])
    if run.signals.is_file():
        naw = plot_naw_weights(load_signals(run.signals), run.plots / "naw_weights.png")
        if naw is not None:
            md += ["", "## NAW weights over (p_gt, p_nn)", "",
                   "Each dot is a training sample; colour is its NAW weight. Early on the weight is spread; later the "
                   "'correct' Gaussian concentrates it near the decision boundary p_gt = p_nn (dashed), and confident "
                   "contradictions of the label (low p_gt, high p_nn: likely noise) get little.", "",
                   f"![NAW weights]({naw.relative_to(run.root)})"]
    md += ["", "## Epochs", ""]
    md += _table([["epoch", "lr", "train loss", "train acc", "val acc", "val mean acc", "img/s", "s"]] + [
        [str(m["epoch"]), f"{m['lr']:.2e}", f"{m['train_loss']:.4f}", f"{100 * m['train_acc']:.2f}%",
         f"{100 * m['val']['overall_acc']:.2f}%", f"{100 * m['val']['mean_acc']:.2f}%",
         f"{m['images_per_second']:.0f}", f"{m['seconds']:.0f}"] for m in lines])
    md += ["", "TensorBoard: `tensorboard --logdir " + str(run.tensorboard) + "`", ""]
    write_text_atomic(run.report, "\n".join(md))
    return run.report
