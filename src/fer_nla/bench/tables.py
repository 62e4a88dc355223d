"""The robustness grid's outputs: ``robustness.json`` (rows), ``robustness.md`` (tables with
mean and spread over seeds) and two plots (accuracy against noise rate; per-class accuracy on
single-vote labels)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.bench.config import CLEAN_SETTING, NOISY_SETTINGS

NOISE_SETTINGS = {"symmetric_10": 0.1, "symmetric_20": 0.2, "symmetric_30": 0.3}


def summarise(rows: Sequence[dict[str, Any]], metric: str) -> dict[tuple[str, str], tuple[float, float, int]]:
    """``(method, setting) -> (mean, sample std, seeds)`` of ``metric`` (std 0 for one seed)."""
    groups: dict[tuple[str, str], list[float]] = {}
    for row in rows:
        groups.setdefault((row["method"], row["setting"]), []).append(float(row[metric]))
    return {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)) for k, v in groups.items()}


def ordered(rows: Sequence[dict[str, Any]], key: str, known: Sequence[str] = ()) -> list[str]:
    seen = list(dict.fromkeys(r[key] for r in rows))
    return [k for k in known if k in seen] + [k for k in seen if k not in known]


def metric_table(rows: Sequence[dict[str, Any]], metric: str) -> str:
    """Methods x settings, ``mean ± std`` in %, the best mean of each setting in bold; the clean
    reference as its own column."""
    stats = summarise(rows, metric)
    methods = ordered(rows, "method")
    settings = ordered([r for r in rows if r["setting"] != CLEAN_SETTING], "setting", NOISY_SETTINGS)
    has_clean = any(r["setting"] == CLEAN_SETTING for r in rows)
    best = {s: max((stats[(m, s)][0] for m in methods if (m, s) in stats), default=None) for s in settings}
    head = ["method", *settings] + ([f"{CLEAN_SETTING} (reference)"] if has_clean else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in methods:
        cells = [method]
        for setting in [*settings] + ([CLEAN_SETTING] if has_clean else []):
            if (method, setting) not in stats:
                cells.append("")
                continue
            mean, std, n = stats[(method, setting)]
            text = f"{100 * mean:.2f} ± {100 * std:.2f}" if n > 1 else f"{100 * mean:.2f}"
            cells.append(f"**{text}**" if setting in best and mean == best[setting] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_class_table(rows: Sequence[dict[str, Any]], setting: str, class_names: Sequence[str]) -> str:
    chosen = [r for r in rows if r["setting"] == setting]
    lines = ["| method | " + " | ".join(class_names) + " |", "|" + "---|" * (len(class_names) + 1)]
    for method in ordered(chosen, "method"):
        accs = _per_class_mean(chosen, method, class_names)
        lines.append(f"| {method} | " + " | ".join("" if np.isnan(a) else f"{100 * a:.1f}" for a in accs) + " |")
    return "\n".join(lines)


def _per_class_mean(rows: Sequence[dict[str, Any]], method: str, class_names: Sequence[str]) -> np.ndarray:
    values = [[np.nan if r["per_class_acc"].get(c) is None else r["per_class_acc"][c] for c in class_names]
              for r in rows if r["method"] == method]
    if not values:
        return np.full(len(class_names), np.nan)
    with warnings.catch_warnings():  # a class absent from the test split stays nan
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.asarray(values, dtype=np.float64), axis=0)


def training_sets_table(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| setting | train size | noise rate (vs majority) | largest/smallest class |", "|---|---|---|---|"]
    for setting in ordered(rows, "setting", (*NOISY_SETTINGS, CLEAN_SETTING)):
        chosen = [r for r in rows if r["setting"] == setting]
        lines.append(f"| {setting} | {np.mean([r['train_size'] for r in chosen]):.0f} | "
                     f"{100 * np.mean([r['train_noise_rate'] for r in chosen]):.1f}% | "
                     f"{np.mean([r['train_imbalance_ratio'] for r in chosen]):.0f} |")
    return "\n".join(lines)


def plot_noise(rows: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Overall and mean accuracy against the symmetric noise rate, one line per method."""
    from matplotlib.figure import Figure  # a plain Figure: no global backend or figure registry touched

    chosen = [r for r in rows if r["setting"] in NOISE_SETTINGS]
    if not chosen:
        return None
    fig = Figure(figsize=(11, 4.2))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("overall_acc", "mean_acc")):
        stats = summarise(chosen, metric)
        for method in ordered(chosen, "method"):
            pts = sorted((NOISE_SETTINGS[s], *stats[(m, s)][:2]) for (m, s) in stats if m == method)
            x, y, e = (np.array(v) for v in zip(*pts))
            style = {"color": "black", "linewidth": 2.5} if method == "nla" else {"linewidth": 1.2}
            ax.errorbar(100 * x, 100 * y, yerr=100 * e, marker="o", capsize=3, label=method, **style)
        clean = summarise([r for r in rows if r["setting"] == CLEAN_SETTING], metric)
        if clean:
            ax.axhline(100 * next(iter(clean.values()))[0], color="gray", linestyle="--", label="CE, clean labels")
        ax.set_xlabel("symmetric label noise (%)")
        ax.set_ylabel(f"{metric.replace('_', ' ')} (%)")
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def plot_per_class(rows: Sequence[dict[str, Any]], class_names: Sequence[str], path: Path, *, setting: str = "single_vote") -> Path | None:
    from matplotlib.figure import Figure  # a plain Figure: no global backend or figure registry touched

    chosen = [r for r in rows if r["setting"] == setting]
    if not chosen:
        return None
    methods = ordered(chosen, "method")
    width = 0.8 / len(methods)
    fig = Figure(figsize=(12, 4.2))
    ax = fig.subplots()
    for i, method in enumerate(methods):
        ax.bar(np.arange(len(class_names)) + i * width, 100 * np.nan_to_num(_per_class_mean(chosen, method, class_names)),
               width, label=method, **({"color": "black"} if method == "nla" else {}))
    ax.set_xticks(np.arange(len(class_names)) + 0.4 - width / 2, class_names)
    ax.set_ylabel(f"test accuracy (%), {setting} labels")
    ax.legend(fontsize=8, ncol=4)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def write_outputs(rows: Sequence[dict[str, Any]], meta: dict[str, Any], out: Path) -> list[Path]:
    """``robustness.json``, ``robustness.md`` and the plots in ``out``."""
    class_names = meta["class_names"]
    cfg = meta["config"]
    rows_path = out / "robustness.json"
    rows_path.write_text(json.dumps(list(rows), indent=1) + "\n")
    seeds = sorted({r["seed"] for r in rows})
    noise_png = plot_noise(rows, out / "robustness_noise.png")
    class_png = plot_per_class(rows, class_names, out / "robustness_per_class.png")
    g = cfg["bench"]
    text = [
        "# Robustness benchmark: NLA against the baselines on FERPlus",
        "",
        f"- command: `{meta['command']}`",
        f"- machine: {meta['machine']}; wall time {meta['seconds'] / 60:.1f} min "
        f"({meta['cells_run_now']} cells run in this invocation, {len(rows)} in the table)",
        f"- recipe, the same for every cell: {cfg['model']['arch']} at {cfg['data']['image_size']}px, "
        f"{cfg['train']['epochs']} epochs, batch {cfg['train']['batch_size']}, {cfg['optim']['name']} lr {cfg['optim']['lr']:g} "
        f"(weight decay {cfg['optim']['weight_decay']:g}, {cfg['optim']['scheduler']} schedule), two views {cfg['train']['two_view_forward']}; "
        f"best epoch by validation {cfg['train']['select_metric']} on a {cfg['data']['val_fraction']:.0%} carve-out of train "
        "(labels as given in the setting)",
        f"- test: FERPlus `{g['test_split']}` split, `{g['test_labels']}` labels; seeds {seeds}; "
        f"loss options: {g['loss_options'] or 'published defaults for every method'}",
        "",
        "## Overall accuracy (%), mean ± sample std over seeds",
        "",
        metric_table(rows, "overall_acc"),
        "",
        "## Mean class accuracy (%), mean ± sample std over seeds",
        "",
        metric_table(rows, "mean_acc"),
        "",
        "## Per-class accuracy (%) on single-vote labels, mean over seeds",
        "",
        per_class_table(rows, "single_vote", class_names),
        "",
        "## Training sets",
        "",
        training_sets_table(rows),
        "",
    ]
    plots = [p for p in (noise_png, class_png) if p is not None]
    text += [f"![{p.stem}]({p.name})" for p in plots]
    md = out / "robustness.md"
    md.write_text("\n".join(text) + "\n")
    return [rows_path, md, *plots]
