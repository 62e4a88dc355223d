"""Score balanced-training candidates for the built-in model by the rule fixed before their runs
(``benchmarks/results/balanced_candidates.md``, "The rule"): FERPlus valid, majority labels, 8
classes; each candidate's curve of (overall, mean-class) accuracy over the prior power ``tau``;
its figure of merit is the largest mean-class accuracy at an overall accuracy of at least 87.5%.

    python benchmarks/balanced_candidates.py --data-root ../shared/data/ferplus \\
        --candidate shipped=builtin:ferplus-resnet10s --candidate la_ft25=runs/balanced/la_ft25 ... \\
        --json benchmarks/results/balanced_candidates.json

A run folder's ``best.pt`` is copied and its scoring entry recorded from the run's data and loss
(:func:`fer_nla.train.scoring_record.record_scoring`: class prior, logit offset, temperature),
so runs made before the entry existed are scored the same way; the run folder is not changed.
Every figure comes from :func:`fer_nla.evaluate.evaluate_checkpoint` (the path of ``fer-nla
eval``) at the calibrated training prior; the curve moves its log-probabilities by ``-tau * log pi``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

OVERALL_FLOOR = 0.875  # the overall goal: the rule's constraint
TAUS = tuple(round(0.1 * k, 1) for k in range(11))


def curve(log_probs: np.ndarray, targets: np.ndarray, class_prior: np.ndarray) -> list[dict[str, float]]:
    """(tau, overall, mean-class accuracy) of ``argmax(log_probs - tau * log pi)`` for each tau in
    :data:`TAUS`; ``log_probs`` ``[N, C]`` at the training prior, ``targets`` ``[N]``."""
    from sklearn.metrics import balanced_accuracy_score

    log_pi = np.log(np.maximum(class_prior, 1e-12))
    rows = []
    for tau in TAUS:
        pred = (log_probs - tau * log_pi).argmax(axis=1)
        rows.append({"tau": tau, "overall_acc": float((pred == targets).mean()),
                     "mean_acc": float(balanced_accuracy_score(targets, pred))})
    return rows


def merit(rows: list[dict[str, float]]) -> dict[str, Any]:
    """The rule's figure: the row with the largest mean-class accuracy among those at or above
    :data:`OVERALL_FLOOR` overall (``qualifies``), else the row with the largest overall accuracy."""
    above = [r for r in rows if r["overall_acc"] >= OVERALL_FLOOR]
    if above:
        return {"qualifies": True, **max(above, key=lambda r: (r["mean_acc"], r["overall_acc"]))}
    return {"qualifies": False, **max(rows, key=lambda r: (r["overall_acc"], r["mean_acc"]))}


def score(name: str, source: str, *, data_root: Path, workdir: Path) -> dict[str, Any]:
    """One candidate's figures: its curve, merit, both operating points' per-class accuracy,
    its best epoch and training seconds (run folders)."""
    from fer_nla.builtin import builtin_path
    from fer_nla.evaluate import evaluate_checkpoint
    from fer_nla.inference.backends import load_backend
    from fer_nla.train.scoring_record import record_scoring

    run = None
    if source.startswith("builtin:"):
        checkpoint = builtin_path(source.split(":", 1)[1])
    else:
        run = Path(source)
        checkpoint = workdir / f"{name}.pt"
        shutil.copyfile(run / "best.pt", checkpoint)
        record_scoring(checkpoint, data_root=data_root)
    result = evaluate_checkpoint(str(checkpoint), dataset="ferplus", root=str(data_root), split="valid",
                                 labels="majority", prior="train", calibrated=True, with_probabilities=True,
                                 device_name="cpu")
    prior = np.asarray(load_backend(str(checkpoint), backend="torch", device="cpu").scoring.class_prior)
    with np.errstate(divide="ignore"):
        log_probs = np.log(result["probs"].astype(np.float64))
    rows = curve(log_probs, result["targets"], prior)
    out = {"name": name, "source": source, "curve": rows, "merit": merit(rows), "ece": result["ece"],
           "operating_points": result["operating_points"], "num_samples": result["num_samples"]}
    if run is not None:
        lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
        out |= {"epochs": len(lines), "train_seconds": float(sum(line["seconds"] for line in lines)),
                "best_epoch": max((line["epoch"] for line in lines if line.get("best")), default=None)}
    return out


def table(results: list[dict[str, Any]]) -> str:
    """The Markdown table of every candidate, ranked by the rule."""
    ranked = sorted(results, key=lambda r: (r["merit"]["qualifies"], r["merit"]["mean_acc"] if r["merit"]["qualifies"]
                                            else r["merit"]["overall_acc"]), reverse=True)
    lines = ["| candidate | train point overall / mean-class | uniform overall / mean-class | merit: tau, overall / "
             "mean-class | epochs (best) | training |", "|---|---|---|---|---|---|"]
    for r in ranked:
        train, uniform, m = r["operating_points"]["train"], r["operating_points"].get("uniform"), r["merit"]
        uni = f"{100 * uniform['overall_acc']:.2f} / {100 * uniform['mean_acc']:.2f}" if uniform else "-"
        mark = "" if m["qualifies"] else " (below 87.5 overall)"
        epochs = f"{r['epochs']} ({r['best_epoch']})" if "epochs" in r else "-"
        minutes = f"{r['train_seconds'] / 60:.0f} min" if "train_seconds" in r else "-"
        lines.append(f"| {r['name']} | {100 * train['overall_acc']:.2f} / {100 * train['mean_acc']:.2f} | {uni} | "
                     f"{m['tau']:.1f}, {100 * m['overall_acc']:.2f} / {100 * m['mean_acc']:.2f}{mark} | {epochs} | "
                     f"{minutes} |")
    return "\n".join(lines)


def curves_table(results: list[dict[str, Any]]) -> str:
    """The Markdown table of every candidate's curve: overall / mean-class accuracy per ``tau``."""
    lines = ["| tau | " + " | ".join(r["name"] for r in results) + " |", "|---:|" + "---|" * len(results)]
    for k, tau in enumerate(TAUS):
        cells = [f"{100 * r['curve'][k]['overall_acc']:.2f} / {100 * r['curve'][k]['mean_acc']:.2f}" for r in results]
        lines.append(f"| {tau:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, required=True, help="FERPlus (FER2013Train/, FER2013Valid/)")
    parser.add_argument("--candidate", action="append", required=True, metavar="NAME=RUN",
                        help="a run folder (its best.pt) or builtin:NAME; repeat")
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.candidate:
            name, _, source = spec.partition("=")
            results.append(score(name, source, data_root=args.data_root, workdir=Path(tmp)))
            m = results[-1]["merit"]
            print(f"{name}: merit tau {m['tau']:.1f} overall {100 * m['overall_acc']:.2f} mean {100 * m['mean_acc']:.2f}",
                  flush=True)
    print(table(results))
    print()
    print(curves_table(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
