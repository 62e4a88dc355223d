"""The regime grid under two protocols: the honest one and the NLA authors' (test-selected).

Every row of a grid run with ``bench.paper_protocol=true`` holds both:

- **honest**: the epoch chosen on validation (a carve of the training labels), scored on the
  test split (``overall_acc``, ``mean_acc``);
- **paper protocol**: the best test overall accuracy over the epochs and, picked separately, the
  best test mean-class accuracy (``row["paper"]``, :func:`fer_nla.train.paper_protocol.paper_selection`),
  as ``main_rafdb.py`` of the NLA code keeps two checkpoints chosen on the split it reports.

:func:`paper_rows` turns rows into their paper-protocol figures, so every table of the grid can
be written both ways; :func:`protocol_gap_table` says how many points test selection adds per
method; :func:`rivals_table` puts NLA against SCN, RUL and EAC (the methods its paper compares
with) under each protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.bench.config import CLEAN_SETTING
from fer_nla.bench.tables import ordered, summarise

RIVALS: tuple[str, ...] = ("scn", "rul", "eac")
PROTOCOLS: tuple[str, ...] = ("honest", "paper")


def has_paper(rows: Sequence[dict[str, Any]]) -> bool:
    """Whether every row carries the paper protocol's figures."""
    return bool(rows) and all("paper" in r for r in rows)


def paper_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with ``overall_acc`` and ``mean_acc`` replaced by the paper protocol's: the best
    test overall accuracy over the epochs, and the best test mean-class accuracy picked separately."""
    return [{**r, "overall_acc": r["paper"]["best_overall"]["overall_acc"],
             "mean_acc": r["paper"]["best_mean"]["mean_acc"]} for r in rows]


def _by(rows: Sequence[dict[str, Any]], protocol: str) -> list[dict[str, Any]]:
    return paper_rows(rows) if protocol == "paper" else list(rows)


def protocol_gap_table(rows: Sequence[dict[str, Any]]) -> tuple[str, dict[str, float]]:
    """Per method, the points the paper protocol adds to the honest figure (mean over every noisy
    setting and seed, with the smallest and largest cell), for overall and mean-class accuracy; a
    last line over every method. Returns the Markdown and the all-method means (``overall``, ``mean``)."""
    noisy = [r for r in rows if r["setting"] != CLEAN_SETTING]
    paper = paper_rows(noisy)
    lines = ["| method | overall: paper - honest (points) | min .. max | mean-class: paper - honest (points) | min .. max |",
             "|---|---|---|---|---|"]
    everything: dict[str, list[float]] = {"overall_acc": [], "mean_acc": []}
    for method in [*ordered(noisy, "method"), None]:
        cells = [method or "**all methods**"]
        for metric in ("overall_acc", "mean_acc"):
            gaps = [100 * (p[metric] - h[metric]) for h, p in zip(noisy, paper) if method in (None, h["method"])]
            if method is not None:
                everything[metric] += gaps
            cells += [f"{np.mean(gaps):+.2f}", f"{min(gaps):+.2f} .. {max(gaps):+.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    means = {"overall": float(np.mean(everything["overall_acc"])), "mean": float(np.mean(everything["mean_acc"]))}
    return "\n".join(lines), means


def side_by_side_table(rows: Sequence[dict[str, Any]]) -> str:
    """Per method (best honest mean-class accuracy first): overall and mean-class accuracy (%)
    under the honest protocol and under the paper protocol, each the mean over every noisy
    setting and seed, with the method's rank (1 = best) under each."""
    noisy = [r for r in rows if r["setting"] != CLEAN_SETTING]
    means = {(protocol, metric): {m: float(np.mean([r[metric] for r in _by(noisy, protocol) if r["method"] == m]))
                                  for m in ordered(noisy, "method")}
             for protocol in PROTOCOLS for metric in ("overall_acc", "mean_acc")}
    rank = {key: {m: i + 1 for i, m in enumerate(sorted(v, key=lambda m: -v[m]))} for key, v in means.items()}
    lines = ["| method | overall, honest | overall, paper | mean-class, honest | mean-class, paper |", "|---|---|---|---|---|"]
    for method in sorted(means[("honest", "mean_acc")], key=lambda m: -means[("honest", "mean_acc")][m]):
        cells = [f"{100 * means[(p, k)][method]:.2f} ({rank[(p, k)][method]})"
                 for k in ("overall_acc", "mean_acc") for p in PROTOCOLS]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _paired(rows: Sequence[dict[str, Any]], a: str, b: str, setting: str, metric: str) -> list[float]:
    other = {r["seed"]: r[metric] for r in rows if r["method"] == b and r["setting"] == setting}
    return [100 * (r[metric] - other[r["seed"]]) for r in rows
            if r["method"] == a and r["setting"] == setting and r["seed"] in other]


def _rank(rows: Sequence[dict[str, Any]], method: str, setting: str, metric: str) -> str:
    stats = summarise([r for r in rows if r["setting"] == setting], metric)
    ranking = sorted((m for m, s in stats if s == setting), key=lambda m: -stats[(m, setting)][0])
    return f"{ranking.index(method) + 1} of {len(ranking)}" if method in ranking else ""


def rivals_table(rows: Sequence[dict[str, Any]], *, nla: str = "nla", rivals: Sequence[str] = RIVALS) -> str:
    """Per noisy setting and protocol: NLA minus each rival (mean over seeds, paired by seed) in
    overall and mean-class accuracy, and NLA's rank among every row of the grid (1 = best)."""
    present = [m for m in rivals if any(r["method"] == m for r in rows)]
    head = ["setting", "protocol"]
    for rival in present:
        head += [f"{nla} - {rival}, overall", f"{nla} - {rival}, mean-class"]
    head += [f"{nla}'s rank, overall", f"{nla}'s rank, mean-class"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for setting in ordered([r for r in rows if r["setting"] != CLEAN_SETTING], "setting"):
        for protocol in PROTOCOLS if has_paper(rows) else ("honest",):
            chosen = _by(rows, protocol)
            cells = [setting, protocol]
            for rival in present:
                for metric in ("overall_acc", "mean_acc"):
                    diffs = _paired(chosen, nla, rival, setting, metric)
                    cells.append(f"{np.mean(diffs):+.2f}" if diffs else "")
            cells += [_rank(chosen, nla, setting, "overall_acc"), _rank(chosen, nla, setting, "mean_acc")]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rivals_summary(rows: Sequence[dict[str, Any]], *, nla: str = "nla", rivals: Sequence[str] = RIVALS) -> dict[str, Any]:
    """``{protocol: {rival: {"overall": d, "mean": d, "settings_ahead_mean": k, "settings": n,
    "cells_ahead_overall": c, "cells_ahead_mean": c, "cells": n}}}``: NLA minus each rival averaged
    over the noisy settings and seeds (points), in how many settings NLA's mean-class accuracy is
    ahead (on the mean over seeds), and in how many (setting, seed) cells NLA is ahead, paired by
    seed (with 3 seeds, the spread the means hide); for the closing note and the README."""
    out: dict[str, Any] = {}
    settings = ordered([r for r in rows if r["setting"] != CLEAN_SETTING], "setting")
    for protocol in PROTOCOLS if has_paper(rows) else ("honest",):
        chosen, mine = _by(rows, protocol), {}
        for rival in rivals:
            paired = {m: [d for s in settings if (d := _paired(chosen, nla, rival, s, m))] for m in ("overall_acc", "mean_acc")}
            per = {m: [float(np.mean(d)) for d in by_setting] for m, by_setting in paired.items()}
            cells = {m: [x for d in by_setting for x in d] for m, by_setting in paired.items()}
            if per["mean_acc"]:
                mine[rival] = {"overall": float(np.mean(per["overall_acc"])), "mean": float(np.mean(per["mean_acc"])),
                               "settings_ahead_mean": int(sum(d > 0 for d in per["mean_acc"])),
                               "settings": len(per["mean_acc"]),
                               "cells_ahead_overall": int(sum(d > 0 for d in cells["overall_acc"])),
                               "cells_ahead_mean": int(sum(d > 0 for d in cells["mean_acc"])),
                               "cells": len(cells["mean_acc"])}
        out[protocol] = mine
    return out


def plot_protocols(rows: Sequence[dict[str, Any]], path: Path) -> Path | None:
    """Mean-class accuracy per method (mean over noisy settings and seeds) under the honest
    protocol and the paper protocol, side by side."""
    if not has_paper(rows):
        return None
    from matplotlib.figure import Figure  # a plain Figure: no global backend or figure registry touched

    noisy = [r for r in rows if r["setting"] != CLEAN_SETTING]
    methods = ordered(noisy, "method")
    honest = [100 * np.mean([r["mean_acc"] for r in noisy if r["method"] == m]) for m in methods]
    paper = [100 * np.mean([r["mean_acc"] for r in paper_rows(noisy) if r["method"] == m]) for m in methods]
    fig = Figure(figsize=(max(6.0, 0.7 * len(methods) + 2), 4.2))
    ax = fig.subplots()
    x = np.arange(len(methods))
    ax.bar(x - 0.2, honest, 0.4, label="honest: epoch chosen on validation", color="tab:blue")
    ax.bar(x + 0.2, paper, 0.4, label="paper protocol: best epoch on the test split", color="tab:orange")
    ax.set_xticks(x, methods, rotation=30, ha="right")
    ax.set_ylabel("mean-class accuracy (%)")
    ax.set_ylim(max(0.0, min(honest + paper) - 10), max(honest + paper) + 3)
    ax.set_title("Mean over the noisy settings and seeds")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path
