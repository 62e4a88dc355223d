"""``report.md`` of a run folder, with its plots: what made the run (data, splits and sizes,
model and weights, loss and options, optimiser, budget, seed, fer-nla version), training and
validation loss and accuracy curves, the confusion matrix and per-class accuracy of the best
epoch on the validation split, and, for NLA runs, the NAW weight of every training sample over
the (p_gt, p_nn) plane early, midway and late."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fer_nla import __version__
from fer_nla.metrics import HEADLINE_METRICS
from fer_nla.atomic import write_text_atomic
from fer_nla.train.run_folder import RunFolder
from fer_nla.train.signals import load_signals

MAX_SCATTER_POINTS = 6000


def curves_figure(lines: Sequence[dict[str, Any]], *, loss_name: str = "training", best_epoch: int | None = None,
                  start: Mapping[str, Any] | None = None) -> Figure:
    """Loss (training objective and validation cross-entropy, ``val_loss``, where the run
    recorded it) and train / val accuracy per epoch, on integer epoch ticks; a dotted line marks
    ``best_epoch``. ``start``: the validation of a ``model.init`` network before training, drawn
    at epoch 0 on the validation curves (it can be the best epoch)."""
    epochs = [m["epoch"] for m in lines]
    validated = ([dict(start, epoch=0)] if start is not None else []) + list(lines)
    val_epochs = [m["epoch"] for m in validated]
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    ax_loss.plot(epochs, [m["train_loss"] for m in lines], marker="o", label=f"train ({loss_name} loss)")
    val_loss = [m.get("val_loss", np.nan) for m in validated]
    if np.isfinite(np.asarray(val_loss, dtype=np.float64)).any():
        ax_loss.plot(val_epochs, val_loss, marker="o", label="validation (cross-entropy)")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss per epoch")
    ax_acc.plot(epochs, [100 * m["train_acc"] for m in lines], marker="o", label="train acc")
    ax_acc.plot(val_epochs, [100 * m["val"]["overall_acc"] for m in validated], marker="o", label="val acc")
    ax_acc.plot(val_epochs, [100 * m["val"]["mean_acc"] for m in validated], marker="o", label="val mean acc")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy per epoch")
    for ax in (ax_loss, ax_acc):
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", ls=":", lw=1, label=f"best epoch ({best_epoch})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # whole epochs, also for one
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def plot_curves(lines: Sequence[dict[str, Any]], path: Path, *, loss_name: str = "training",
                best_epoch: int | None = None, start: Mapping[str, Any] | None = None) -> Path:
    """:func:`curves_figure` saved as a PNG at ``path``."""
    curves_figure(lines, loss_name=loss_name, best_epoch=best_epoch, start=start).savefig(path, dpi=110)
    return path


def confusion_figure(matrix: Sequence[Sequence[int]], class_names: Sequence[str], *, title: str) -> Figure:
    """Row-normalised confusion matrix ``[C, C]`` (rows = true class; colour = share of the true
    class) with the counts written in."""
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
    return fig


def plot_confusion(matrix: Sequence[Sequence[int]], class_names: Sequence[str], path: Path, *, title: str) -> Path:
    """:func:`confusion_figure` saved as a PNG at ``path``."""
    confusion_figure(matrix, class_names, title=title).savefig(path, dpi=110)
    return path


def per_class_figure(per_class: Mapping[str, float | None], *, title: str) -> Figure:
    """Bar per class (accuracy in %); a class without a validation sample gets no bar and the
    label ``n/a`` (not ``nan``)."""
    names = list(per_class)
    values = [100 * (v if v is not None else np.nan) for v in per_class.values()]
    fig = Figure(figsize=(1.5 + 0.7 * len(names), 3.4), layout="constrained")
    ax = fig.subplots()
    bars = ax.bar(np.arange(len(names)), np.nan_to_num(values, nan=0.0), color="tab:blue")
    ax.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{v:.1f}" for v in values], fontsize=8)
    ax.set_xticks(np.arange(len(names)), names, rotation=45, ha="right")  # each name ends under its bar
    ax.set(ylabel="accuracy (%)", ylim=(0, 105), title=title)
    return fig


def plot_per_class(per_class: Mapping[str, float | None], path: Path, *, title: str) -> Path:
    """:func:`per_class_figure` saved as a PNG at ``path``."""
    per_class_figure(per_class, title=title).savefig(path, dpi=110)
    return path


def naw_epochs(num_epochs: int) -> list[int]:
    """Early, middle and late epoch (0-based, distinct)."""
    return sorted({0, (num_epochs - 1) // 2, num_epochs - 1})


def naw_figure(signals: Mapping[str, np.ndarray], *, seed: int = 0) -> Figure | None:
    """Per-sample NAW weight over (p_gt, p_nn) at early, middle and late epochs (signals
    ``[epochs, N]``; at most :data:`MAX_SCATTER_POINTS` dots a panel, seeded); each panel's
    title names its epoch and how many samples it shows. ``None`` without NAW weights."""
    if "weights" not in signals or signals["weights"].shape[0] == 0:
        return None
    if not np.isfinite(signals["weights"].astype(np.float32)).any():  # no sample recorded: no colour scale
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
        shown = f"{len(seen)} samples"
        if len(seen) > MAX_SCATTER_POINTS:
            seen = rng.choice(seen, MAX_SCATTER_POINTS, replace=False)
            shown = f"{MAX_SCATTER_POINTS} of {shown}"
        scatter = ax.scatter(signals["p_gt"][e][seen].astype(np.float32), signals["p_nn"][e][seen].astype(np.float32),
                             c=w[seen], s=4, cmap="viridis", vmin=0, vmax=vmax, alpha=0.7)
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="p_gt (given label)",
               title=f"epoch {e + 1} of {len(signals['weights'])} ({shown})")
    axes[0].set_ylabel("p_nn (nearest negative)")
    if scatter is not None:
        fig.colorbar(scatter, ax=list(axes), label="NAW weight")
    return fig


def plot_naw_weights(signals: Mapping[str, np.ndarray], path: Path, *, seed: int = 0) -> Path | None:
    """:func:`naw_figure` saved as a PNG at ``path`` (``None``, nothing written, without weights)."""
    fig = naw_figure(signals, seed=seed)
    if fig is None:
        return None
    fig.savefig(path, dpi=110)
    return path


def eval_advice(config: dict, *, best: str) -> str:
    """The report's sentence on scoring the best epoch, with a ``fer-nla eval`` command that works
    for the run's data: the test split where the dataset declares one, else the run's validation
    split by name (``--split valid``: the part carved from train, rebuilt from the run's config)."""
    data = config.get("data", {}) if isinstance(config, dict) else {}
    splits: tuple[str, ...] = ("test",)
    if data.get("dataset"):
        try:
            from fer_nla.data import dataset_splits

            splits = dataset_splits(str(data["dataset"]), root=data.get("root"), **dict(data.get("options") or {}))
        except Exception:  # noqa: BLE001 - data moved or unreadable: the usual command still applies
            splits = ("test",)
    if "test" in splits:
        return ("The best epoch is chosen on the validation split (never the test split); score it on the test "
                f"split with `fer-nla eval --checkpoint {best}` (the dataset and root default to the run's).")
    command = f"fer-nla eval --checkpoint {best} --split valid"
    return (f"The best epoch is chosen on the validation split; {data.get('dataset')} at this root has no test split "
            f"({', '.join(splits) or 'no splits'}), so score the run's validation split with `{command}`, or name "
            "another labelled set's dataset and root.")


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    header, *body = rows
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in body]


def read_run_config(run: RunFolder) -> dict[str, Any]:
    """The run's ``config.yaml`` as a plain mapping (``{}`` when it is missing or unreadable:
    the report then says so instead of failing at the end of a finished training)."""
    try:
        loaded = yaml.safe_load(run.config.read_text())
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _options(options: Mapping[str, Any] | None, *, none: str) -> str:
    return ", ".join(f"{k}={v}" for k, v in options.items()) if options else none


def _counts(data: Mapping[str, Any] | None, lines: Sequence[dict[str, Any]]) -> tuple[str, str]:
    """Training and validation sample counts: as the run gave them, else from its metrics (the
    samples trained in the last epoch; the validation confusion matrix's total)."""
    data = data or {}
    train = data.get("train_samples")
    val = data.get("val_samples")
    if train is None and lines and "train_samples" in lines[-1]:
        train = f"{lines[-1]['train_samples']} trained per epoch"
    if val is None and lines and "val_confusion_matrix" in lines[-1]:
        val = int(np.sum(lines[-1]["val_confusion_matrix"]))
    return ("n/a" if train is None else str(train)), ("n/a" if val is None else str(val))


def run_summary(config: Mapping[str, Any], *, loss_name: str, data: Mapping[str, Any] | None = None,
                lines: Sequence[dict[str, Any]] = ()) -> list[list[str]]:
    """``[what, value]`` rows naming the data, model, loss, optimiser, budget, seed and fer-nla
    version of a run, from its saved config (a :meth:`Config.to_dict` mapping), the split
    sizes ``data`` (``train_split``, ``train_samples``, ``val_samples``, ``val_source``) and
    its metrics lines. Missing entries read ``n/a``."""
    d, m, loss = config.get("data", {}), config.get("model", {}), config.get("loss", {})
    o, t = config.get("optim", {}), config.get("train", {})
    data = data or {}
    train_n, val_n = _counts(data, lines)
    root = d.get("root")
    subset = f" (subset of {d['train_subset']})" if d.get("train_subset") else ""
    val_source = data.get("val_source") or f"val_split={d.get('val_split', 'n/a')}"
    scheduler = o.get("scheduler", "n/a") + (f" (gamma {o['gamma']})" if o.get("scheduler") == "exponential" else "")
    weights, init = m.get("backbone_weights"), m.get("init")
    return [
        ["dataset", f"{d.get('dataset', 'n/a')}, root {os.path.abspath(root) if root else 'none (built in)'}"],
        ["labels", f"{d.get('labels', 'n/a')}; data options: {_options(d.get('options'), none='none')}"],
        ["training split", f"{data.get('train_split', d.get('train_split', 'n/a'))}{subset}: {train_n} samples"],
        ["validation split", f"{val_source}: {val_n} samples (chooses the best epoch)"],
        ["model", f"{m.get('arch', 'n/a')}, stem {m.get('stem', 'n/a')}, input {d.get('image_size', 'n/a')} px"],
        ["weights", f"whole network from {init} (model.init; head mapped by class name)" if init
                    else f"backbone from {os.path.abspath(weights)}" if weights else "none: random initialisation"],
        ["loss", f"{loss.get('name', loss_name)}; options: {_options(loss.get('options'), none='the defaults')}"],
        ["optimiser", f"{o.get('name', 'n/a')}, lr {o.get('lr', 'n/a')}, weight decay {o.get('weight_decay', 'n/a')}, "
                      f"scheduler {scheduler}"],
        ["budget", f"{t.get('epochs', 'n/a')} epochs, batch size {t.get('batch_size', 'n/a')}, "
                   f"precision {t.get('precision', 'n/a')}"],
        ["seed", f"{t.get('seed', 'n/a')} (deterministic kernels: {t.get('deterministic', 'n/a')})"],
        ["fer-nla", __version__],
    ]


def _shell_path(path: Path) -> str:
    """``path`` made absolute and quoted for a shell: a command that works from any folder."""
    return shlex.quote(os.path.abspath(path))


def _sections(run: RunFolder, lines: Sequence[dict[str, Any]], best: dict[str, Any], *,
              class_names: Sequence[str], loss_name: str, start: Mapping[str, Any] | None = None) -> list[str]:
    """The best-epoch table and every plot of a run with at least one finished epoch."""
    md = [f"## Best epoch: {best['epoch']} (validation)", ""]
    md += _table([["metric", "value"]] + [[k, f"{100 * best['val'][k]:.2f}%"] for k in HEADLINE_METRICS])
    if "val_loss" in best:
        md += [f"| val_loss (cross-entropy, nats) | {best['val_loss']:.4f} |"]
    curves = plot_curves(lines, run.plots / "curves.png", loss_name=loss_name, best_epoch=best["epoch"], start=start)
    md += ["", "## Training curves", "",
           f"Training loss is the {loss_name} objective on the training split; validation loss is the mean "
           "cross-entropy against the validation split's given labels.", "",
           f"![curves]({curves.relative_to(run.root)})", ""]
    cm_path = plot_confusion(best["val_confusion_matrix"], class_names, run.plots / "confusion_matrix.png",
                             title=f"validation confusion matrix, epoch {best['epoch']} "
                                   f"({int(np.sum(best['val_confusion_matrix']))} samples)")
    pc_path = plot_per_class(best["val_per_class_acc"], run.plots / "per_class_accuracy.png",
                             title=f"validation per-class accuracy, epoch {best['epoch']}")
    md += ["## Confusion matrix (rows = true class)", "", f"![confusion matrix]({cm_path.relative_to(run.root)})", "",
           "## Per-class accuracy", "", f"![per-class accuracy]({pc_path.relative_to(run.root)})", ""]
    md += _table([["class", "accuracy"]] + [[n, "n/a" if a is None else f"{100 * a:.2f}%"]
                                            for n, a in best["val_per_class_acc"].items()])
    if run.signals.is_file():
        naw = plot_naw_weights(load_signals(run.signals), run.plots / "naw_weights.png")
        if naw is not None:
            md += ["", "## NAW weights over (p_gt, p_nn)", "",
                   "Each dot is a training sample; colour is its NAW weight. Early on the weight is spread; later the "
                   "'correct' Gaussian concentrates it near the decision boundary p_gt = p_nn (dashed), and confident "
                   "contradictions of the label (low p_gt, high p_nn: likely noise) get little.", "",
                   f"![NAW weights]({naw.relative_to(run.root)})"]
    md += ["", "## Epochs", ""]
    md += _table([["epoch", "lr", "train loss", "val loss", "train acc", "val acc", "val mean acc", "img/s", "s"]] + [
        [str(m["epoch"]), f"{m['lr']:.2e}", f"{m['train_loss']:.4f}",
         f"{m['val_loss']:.4f}" if "val_loss" in m else "n/a", f"{100 * m['train_acc']:.2f}%",
         f"{100 * m['val']['overall_acc']:.2f}%", f"{100 * m['val']['mean_acc']:.2f}%",
         f"{m['images_per_second']:.0f}", f"{m['seconds']:.0f}"] for m in lines])
    return md


def write_report(run: RunFolder, *, class_names: Sequence[str], loss_name: str,
                 data: Mapping[str, Any] | None = None, start: Mapping[str, Any] | None = None) -> Path:
    """Write ``report.md`` and ``plots/*.png`` from the run folder's files (``config.yaml``,
    ``metrics.jsonl``, ``signals.npz``); ``data`` adds the split sizes the run measured
    (``train_split``, ``train_samples``, ``val_samples``, ``val_source``). ``start``: the
    validation of a ``model.init`` network before training, as a metrics line of epoch 0
    (``val``, ``val_per_class_acc``, ``val_confusion_matrix``): the best epoch when no trained
    epoch beat it. Commands in the
    report name the run folder by its absolute path, so they work from any folder."""
    lines = run.read_metrics()
    run.plots.mkdir(parents=True, exist_ok=True)
    config = read_run_config(run)
    loss_name = config.get("loss", {}).get("name", loss_name)
    md = [f"# Training report: {Path(os.path.abspath(run.root)).name}", "",
          f"Run folder `{os.path.abspath(run.root)}`, {len(lines)} epoch(s) finished.", "", "## Run", ""]
    md += _table([["what", "value"]] + run_summary(config, loss_name=loss_name, data=data, lines=lines))
    if not config:
        md += ["", f"(no readable {run.config.name}: data, model and loss unknown)"]
    md += ["", eval_advice(config, best=_shell_path(run.best)), ""]
    if not lines:
        write_text_atomic(run.report, "\n".join(md + ["No epoch finished."]) + "\n")
        return run.report
    marked = [m for m in lines if m.get("best")]
    best = max(marked, key=lambda m: m["epoch"]) if marked else dict(start) if start is not None else lines[-1]
    md += _sections(run, lines, best, class_names=class_names, loss_name=loss_name, start=start)
    md += ["", f"TensorBoard: `tensorboard --logdir {_shell_path(run.tensorboard)}`", ""]
    write_text_atomic(run.report, "\n".join(md))
    return run.report
