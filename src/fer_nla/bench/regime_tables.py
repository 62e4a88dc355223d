"""The pretrained regime's outputs: ``pretrained_regime.json`` (``meta`` and ``rows``),
``pretrained_regime.md`` (the grid's tables with mean and spread over seeds, how far CE fits the
noise, NLA's ablation with per-class accuracy) and two plots: accuracy against the symmetric
noise rate, and the training accuracy of CE and NLA at 30% symmetric noise against the given
and against the clean labels, per epoch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.bench.config import CLEAN_SETTING
from fer_nla.bench.protocol_tables import (
    RIVALS,
    has_paper,
    paper_rows,
    plot_protocols,
    protocol_gap_table,
    rivals_summary,
    rivals_table,
    side_by_side_table,
)
from fer_nla.bench.tables import metric_table, ordered, per_class_table, plot_noise, summarise, training_sets_table

CURVE_SETTING = "symmetric_30"
CURVE_METHODS: tuple[str, ...] = ("ce", "nla")


def _pct(value: float) -> str:
    return f"{100 * value:.2f}"


def _mean_history(rows: Sequence[dict[str, Any]], key: str) -> np.ndarray:
    """``[epochs]``: ``key`` of each epoch's history, averaged over ``rows`` (nan where absent)."""
    values = [[h.get(key, np.nan) for h in r["history"]] for r in rows]
    width = max((len(v) for v in values), default=0)
    padded = np.full((len(values), width), np.nan)
    for i, v in enumerate(values):
        padded[i, :len(v)] = v
    return np.nanmean(padded, axis=0) if len(values) else padded[0:0]


def fit_table(rows: Sequence[dict[str, Any]], setting: str = CURVE_SETTING) -> str:
    """Per method at ``setting`` (mean over seeds): training accuracy on the given and on the
    clean labels after the first and the last epoch, the best epoch, and the share of the
    training labels that are wrong: a method fits the noise when its accuracy on the given
    labels passes the clean share and its accuracy on the clean labels falls."""
    chosen = [r for r in rows if r["setting"] == setting]
    lines = ["| method | train acc (given), epoch 1 -> last | train acc (clean), epoch 1 -> last | best epoch (mean) |",
             "|---|---|---|---|"]
    for method in ordered(chosen, "method"):
        mine = [r for r in chosen if r["method"] == method]
        given, clean = _mean_history(mine, "train_acc"), _mean_history(mine, "train_acc_clean")
        best = np.mean([r["best_epoch"] for r in mine])
        lines.append(f"| {method} | {_pct(given[0])} -> {_pct(given[-1])} | {_pct(clean[0])} -> {_pct(clean[-1])} | {best:.1f} |")
    return "\n".join(lines)


def fit_epochs(rows: Sequence[dict[str, Any]], *, method: str = "ce") -> dict[str, list[int | None]]:
    """``{setting: [epoch, ...]}`` per noisy setting, one entry per seed (in seed order): the first
    epoch at which ``method``'s training accuracy on the given labels passes its accuracy on the
    clean labels (it fits the noise), or ``None`` when it never does within the run. Settings
    without wrong labels (accuracy on the given labels always equals that on the clean ones) and
    rows without a history or without ``train_acc_clean`` are left out."""
    out: dict[str, list[int | None]] = {}
    for setting in ordered([r for r in rows if r["setting"] != CLEAN_SETTING], "setting"):
        mine = sorted((r for r in rows if r["method"] == method and r["setting"] == setting and r.get("history")),
                      key=lambda r: r["seed"])
        epochs = [next((h["epoch"] for h in r["history"] if "train_acc_clean" in h and h["train_acc"] > h["train_acc_clean"]),
                       None) for r in mine]
        measured = mine and all("train_acc_clean" in r["history"][0] for r in mine)
        if measured and any(h["train_acc"] != h["train_acc_clean"] for r in mine for h in r["history"]):
            out[setting] = epochs  # settings whose given labels are the clean ones (imbalance) have nothing to fit
    return out


def fit_epochs_table(rows: Sequence[dict[str, Any]], *, method: str = "ce") -> str:
    """Per noisy setting: the epoch at which ``method`` fits the given labels better than the
    clean ones (per seed, "never" within the run), and the last epoch's accuracies on both
    (mean over seeds)."""
    lines = [f"| setting | {method}: given passes clean at epoch (per seed) | last epoch: train acc given / clean |",
             "|---|---|---|"]
    for setting, epochs in fit_epochs(rows, method=method).items():
        mine = [r for r in rows if r["method"] == method and r["setting"] == setting]
        given, clean = _mean_history(mine, "train_acc"), _mean_history(mine, "train_acc_clean")
        cells = ", ".join("never" if e is None else str(e) for e in epochs)
        lines.append(f"| {setting} | {cells} | {_pct(given[-1])} / {_pct(clean[-1])} |")
    return "\n".join(lines)


def plot_curves(rows: Sequence[dict[str, Any]], path: Path, *, setting: str = CURVE_SETTING,
                methods: Sequence[str] = CURVE_METHODS) -> Path | None:
    """Training accuracy on the given (solid) and clean (dashed) labels and validation accuracy
    (dotted, given labels) per epoch, mean over seeds, one colour per method."""
    from matplotlib.figure import Figure  # a plain Figure: no global backend or figure registry touched

    chosen = [r for r in rows if r["setting"] == setting and r["method"] in methods]
    if not chosen:
        return None
    fig = Figure(figsize=(7.5, 4.5))
    ax = fig.subplots()
    for method, colour in zip(methods, ("tab:blue", "black", "tab:red", "tab:green")):
        mine = [r for r in chosen if r["method"] == method]
        if not mine:
            continue
        for key, style, what in (("train_acc", "-", "train, given labels"), ("train_acc_clean", "--", "train, clean labels"),
                                 ("val_overall_acc", ":", "validation, given labels")):
            y = _mean_history(mine, key)
            ax.plot(np.arange(1, len(y) + 1), 100 * y, style, color=colour, marker="o", markersize=3,
                    label=f"{method}: {what}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"{setting}: fitting the given labels against the clean ones (mean of {len(chosen) // len(methods)} seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, handlelength=4)  # long enough to tell solid, dashed and dotted lines apart
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def ablation_table(rows: Sequence[dict[str, Any]], settings: Sequence[str], labels: Sequence[str],
                   class_names: Sequence[str]) -> str:
    """NLA and its variants on ``settings``: overall and mean accuracy (mean ± std over seeds)
    and per-class accuracy (mean), one line per (variant, setting)."""
    chosen = [r for r in rows if r["method"] in labels and r["setting"] in settings]
    overall, mean = summarise(chosen, "overall_acc"), summarise(chosen, "mean_acc")
    head = ["variant", "setting", "overall", "mean-class", *class_names]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for setting in settings:
        for label in labels:
            mine = [r for r in chosen if r["method"] == label and r["setting"] == setting]
            if not mine:
                continue
            per_class = [np.mean([r["per_class_acc"][c] for r in mine if r["per_class_acc"].get(c) is not None] or [np.nan])
                         for c in class_names]
            o, m = overall[(label, setting)], mean[(label, setting)]
            lines.append(f"| {label} | {setting} | {_pct(o[0])} ± {_pct(o[1])} | {_pct(m[0])} ± {_pct(m[1])} | "
                         + " | ".join(f"{100 * a:.1f}" for a in per_class) + " |")
    return "\n".join(lines)


def nla_against_ce(rows: Sequence[dict[str, Any]]) -> str:
    """Per noisy setting: NLA minus CE in overall and mean-class accuracy (mean over seeds, with
    the sample std of the per-seed differences) and NLA's rank among the methods (1 = best mean)."""
    overall, mean = summarise(rows, "overall_acc"), summarise(rows, "mean_acc")
    methods = ordered(rows, "method")
    lines = ["| setting | NLA - CE, overall (points) | NLA - CE, mean-class (points) | NLA's rank, overall | NLA's rank, mean-class |",
             "|---|---|---|---|---|"]
    for setting in ordered(rows, "setting"):
        if ("nla", setting) not in overall or ("ce", setting) not in overall:
            continue
        cells = [setting]
        for metric, stats in (("overall_acc", overall), ("mean_acc", mean)):
            by_seed = {r["seed"]: r[metric] for r in rows if r["method"] == "ce" and r["setting"] == setting}
            diffs = [r[metric] - by_seed[r["seed"]] for r in rows
                     if r["method"] == "nla" and r["setting"] == setting and r["seed"] in by_seed]
            spread = float(np.std(diffs, ddof=1)) if len(diffs) > 1 else 0.0
            cells.append(f"{100 * float(np.mean(diffs)):+.2f} ± {100 * spread:.2f}")
        for stats in (overall, mean):
            ranking = sorted((m for m in methods if (m, setting) in stats), key=lambda m: -stats[(m, setting)][0])
            cells.append(f"{ranking.index('nla') + 1} of {len(ranking)}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _start_line(meta: dict[str, Any]) -> str:
    """Where every cell starts: the half-P pretraining, or the backbone file as it is."""
    cfg, pre = meta["config"], meta.get("pretrain_config")
    if pre is None:
        return (f"- start: {cfg['model']['arch']} with `model.backbone_weights={cfg['model']['backbone_weights']}` as it "
                "is (bench.start=backbone): a network trained for face identity that never saw an expression label; "
                "a new expression head on its pooled features")
    start = meta.get("pretrained_start") or {}
    return (f"- pretraining (half P, fold 1/2 of FERPlus train by image id, majority labels): {pre['model']['arch']}, "
            f"{pre['train']['epochs']} epochs of {pre['optim']['name']} lr {pre['optim']['lr']:g} ({pre['optim']['scheduler']}), "
            f"batch {pre['train']['batch_size']}, best epoch on a {pre['data']['val_fraction']:.0%} carve of half P"
            + (f"; it scores {_pct(start['overall_acc'])}% overall, {_pct(start['mean_acc'])}% mean-class on the test split "
               "below before any fine-tuning" if start else ""))


def _header(meta: dict[str, Any], rows: Sequence[dict[str, Any]]) -> list[str]:
    cfg = meta["config"]
    seeds = sorted({r["seed"] for r in rows})
    title = ("a face-identity network" if meta.get("pretrain_config") is None else "a face-pretrained network")
    return [
        f"# The regime grid: every method fine-tuning {title} on noisy FERPlus labels",
        "",
        f"- command: `{meta['command']}`" + (f" ({meta['command_note']})" if meta.get("command_note") else ""),
        f"- machine: {meta['machine']}; wall time {meta['seconds'] / 60:.1f} min ("
        + (f"{len(rows)} cells over {len(meta['invocations'])} invocations of the command, resumed in the same folder: "
           + ", ".join(f"{i['seconds'] / 60:.1f} min for {i['cells']} cells" for i in meta["invocations"]) + ")"
           if meta.get("invocations") else
           f"{meta['cells_run_now']} cells run in this invocation, {len(rows)} in the tables)"),
        _start_line(meta),
        f"- fine-tuning (half F, fold 2/2, {meta.get('half_f_size', '?')} faces), the same for every cell: "
        f"{cfg['optim']['name']} lr {cfg['optim']['lr']:g} (weight decay {cfg['optim']['weight_decay']:g}, "
        f"{cfg['optim']['scheduler']} {cfg['optim']['gamma']:g}), batch {cfg['train']['batch_size']}, "
        f"{cfg['train']['epochs']} epochs, {cfg['data']['train_subset']} training faces (imbalance settings: what "
        f"the profile keeps); stem and stages 1-{cfg['model']['frozen_stages']} frozen and their outputs cached "
        "(train.cache_frozen), the later stages and the head trained; best epoch by validation "
        f"{cfg['train']['select_metric']} on a {cfg['data']['val_fraction']:.0%} carve of half F with the setting's labels",
        f"- test: FERPlus `{cfg['bench']['test_split']}`, `{cfg['bench']['test_labels']}` labels (chose nothing); "
        f"seeds {seeds}; loss options: {cfg['bench']['loss_options'] or 'published defaults for every method'}",
        "",
    ]


def protocol_sections(grid: Sequence[dict[str, Any]], *, variants: Sequence[str] = ()) -> list[str]:
    """The Markdown sections of the paper protocol (when the rows carry it) and of NLA (and each
    NLA variant) against SCN, RUL and EAC (when the grid ran them)."""
    text: list[str] = []
    if has_paper(grid):
        gaps, means = protocol_gap_table(grid)
        text += ["## Both protocols side by side (%, mean over the noisy settings and seeds; rank in brackets)", "",
                 side_by_side_table(grid), "",
                 "## Overall accuracy (%) under the paper protocol (best test epoch), mean ± sample std over seeds", "",
                 ("The NLA authors' script scores the test split every epoch and reports the best epoch's figure; "
                  "overall and mean-class accuracy are each picked separately. These are not estimates for new data."),
                 "", metric_table(paper_rows(grid), "overall_acc"), "",
                 "## Mean class accuracy (%) under the paper protocol, mean ± sample std over seeds", "",
                 metric_table(paper_rows(grid), "mean_acc"), "",
                 "## What test selection adds (paper protocol - honest, noisy settings and seeds)", "",
                 (f"Over every method, setting and seed: {means['overall']:+.2f} points of overall accuracy and "
                  f"{means['mean']:+.2f} of mean-class accuracy."), "", gaps, ""]
    if any(r["method"] in RIVALS for r in grid):
        for nla in ["nla", *[v for v in variants if any(r["method"] == v for r in grid)]]:
            text += [f"## {nla} against SCN, RUL and EAC (points, paired by seed; rank among every row)", "",
                     rivals_table(grid, nla=nla), ""]
    return text


def regime_markdown(rows: Sequence[dict[str, Any]], meta: dict[str, Any], plots: Sequence[Path]) -> str:
    """The Markdown report of the grid (``rows``) and its ``meta``."""
    ablations = list(meta.get("ablations", {}))
    grid = [r for r in rows if r["method"] not in ablations]
    labels = ["nla", *ablations]
    settings = [s for s in ("single_vote", "symmetric_30") if any(r["setting"] == s and r["method"] in ablations for r in rows)]
    class_names = meta["class_names"]
    text = _header(meta, rows) + [
        "## Overall accuracy (%), mean ± sample std over seeds", "", metric_table(grid, "overall_acc"), "",
        "## Mean class accuracy (%), mean ± sample std over seeds", "", metric_table(grid, "mean_acc"), "",
        "## NLA against CE, per setting (paired by seed)", "", nla_against_ce(grid), "",
    ]
    if any(r["setting"] == CURVE_SETTING for r in grid):  # a grid of label sets of one's own may lack it
        text += [f"## Does training fit the noise? ({CURVE_SETTING}, mean over seeds)", "", fit_table(grid), ""]
    if fit_epochs(grid):
        text += ["## When CE fits the noisy labels (training accuracy on the given labels passes that on the clean ones)",
                 "", fit_epochs_table(grid), ""]
    own = [(name, name) for name in meta["config"]["bench"].get("label_sets") or {}  # label sets of one's own
           if name not in ("single_vote", CURVE_SETTING)]
    for setting, name in (("single_vote", "single-vote"), (CURVE_SETTING, CURVE_SETTING), *own):
        if any(r["setting"] == setting for r in grid):  # a smoke grid may lack one
            text += [f"## Per-class accuracy (%) on {name} labels, mean over seeds", "",
                     per_class_table(grid, setting, class_names), ""]
    if settings:
        text += ["## NLA's ablation (same seeds and cells)", "",
                 "full = nla; naw_only: lam_c = 0; consistency_only: lam_b = 0; no_schedule: schedule=false; "
                 "detached: NAW weights detached from the graph; consistency_mean: the consistency term averaged "
                 "over the batch instead of summed.", "", ablation_table(rows, settings, labels, class_names), ""]
    text += protocol_sections(grid, variants=list(meta["config"]["bench"].get("variants") or {}))
    text += ["## Training sets", "", training_sets_table(grid), ""]
    text += [f"![{p.stem}]({p.name})" for p in plots]
    return "\n".join(text) + "\n"


def write_regime_outputs(rows: Sequence[dict[str, Any]], meta: dict[str, Any], out: Path) -> list[Path]:
    """``pretrained_regime.json``, ``.md`` and the plots in ``out``; the pretrained network's
    own score on the test split (``meta['pretrained_start']``) is measured from
    ``out/pretrain/best.pt`` when the meta lacks it."""
    out = Path(out)
    if "pretrained_start" not in meta and (out / "pretrain" / "best.pt").is_file():
        from fer_nla.bench.cells import EvalSplit, score_cached

        cfg = meta["config"]
        test = EvalSplit("ferplus", cfg["data"]["root"], cfg["bench"]["test_split"], cfg["bench"]["test_labels"],
                         dict(cfg["data"].get("options", {})))
        scored = score_cached(out / "pretrain" / "best.pt", test, frozen_stages=cfg["model"]["frozen_stages"],
                              cache_dir=cfg["data"].get("cache_dir"))
        meta = {**meta, "pretrained_start": {k: scored[k] for k in ("overall_acc", "mean_acc", "per_class_acc")}}
    grid_rows = [r for r in rows if r["method"] not in set(meta.get("ablations", {}))]
    if has_paper(grid_rows):
        variants = [v for v in meta["config"]["bench"].get("variants") or {} if any(r["method"] == v for r in grid_rows)]
        meta = {**meta, "protocol_gap": protocol_gap_table(grid_rows)[1], "nla_against_rivals": rivals_summary(grid_rows),
                "variants_against_rivals": {v: rivals_summary(grid_rows, nla=v) for v in variants}}
    if epochs := fit_epochs(grid_rows):
        meta = {**meta, "ce_fit_epochs": epochs}
    rows_path = out / "pretrained_regime.json"
    rows_path.write_text(json.dumps({"meta": meta, "rows": list(rows)}, indent=1) + "\n")
    ablations = set(meta.get("ablations", {}))
    grid = [r for r in rows if r["method"] not in ablations]
    plots = [p for p in (plot_noise(grid, out / "pretrained_regime_noise.png"),
                         plot_curves(grid, out / "pretrained_regime_curves.png"),
                         plot_protocols(grid, out / "pretrained_regime_protocols.png")) if p is not None]
    md = out / "pretrained_regime.md"
    md.write_text(regime_markdown(rows, meta, plots))
    return [rows_path, md, *plots]


def rewrite_report(out: Path) -> list[Path]:
    """Rewrite the Markdown and plots from ``out/pretrained_regime.json``. Raises
    :class:`~fer_nla.errors.InputError` when the folder holds no finished run or its JSON is not a report."""
    path = Path(out) / "pretrained_regime.json"
    if not path.is_file():
        from fer_nla.errors import InputError

        raise InputError(f"{path} does not exist: the report is rewritten from a finished run; finish (or resume) "
                         "the run into this folder first")
    try:
        data = json.loads(path.read_text())
        rows, meta = data["rows"], data["meta"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        from fer_nla.errors import InputError

        raise InputError(f"{path} is not a regime report's JSON ({type(err).__name__}: {err}): it should be the "
                         "{\"meta\": ..., \"rows\": [...]} a finished `fer-nla bench regime` writes; run or resume "
                         "the grid into this folder to write it again") from None
    return write_regime_outputs(rows, meta, Path(out))
