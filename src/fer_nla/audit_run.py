"""The label audit of a run folder: its recorded signals turned into a ranked table, a CSV
and a contact sheet of the most suspicious faces (scores and verdict rule: :mod:`fer_nla.audit`)."""

from __future__ import annotations

import csv
import math
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fer_nla.audit import (
    MIN_CLASS_SAMPLES,
    VIEWS,
    Calibration,
    calibrate,
    detection_quality,
    flag_highest,
    flag_per_class,
    majority_prediction,
    signals_at_prior,
    suspicion_scores,
    verdicts,
)
from fer_nla.errors import InputError
from fer_nla.train.run_folder import RunFolder
from fer_nla.train.signals import load_signals

CSV_COLUMNS = ("rank", "index", "path", "given_label", "predicted_label", "score", "mean_weight", "verdict")
SIGNAL_KEYS = ("p_gt", "p_nn", "prediction", "targets", "sample_ids")
RULES = ("per-class", "global")  # how the calibrated count is spread: within each given class, or over all
PRIORS = VIEWS  # the probabilities the audit reads: the class prior divided out, or as trained


@dataclass
class Audit:
    """Every trained sample of a run, most suspicious first.

    ``calibration``: the confident-learning estimate behind the calibrated verdict and whether
    it is trusted (None under a fixed ``noisy_threshold``); ``rule``: ``per-class`` or
    ``global`` (see :func:`audit_run`); ``too_few``: the classes (indices) the per-class rule
    left unflagged for having too few labels; ``notes``: what the user should know about this
    audit's reliability (e.g. a run no longer than its warm-up), one line each.
    """

    class_names: tuple[str, ...]
    index: np.ndarray  # sample index in the run's training split
    sample_ids: np.ndarray
    given: np.ndarray
    predicted: np.ndarray
    scores: np.ndarray
    mean_weight: np.ndarray | None
    verdict: np.ndarray
    epochs: int = 0
    calibration: Calibration | None = None
    notes: list[str] = field(default_factory=list)
    rule: str = "per-class"
    too_few: tuple[int, ...] = ()
    prior: str = "train"

    def __len__(self) -> int:
        return len(self.index)

    def rows(self, top: int | None = None) -> list[dict[str, Any]]:
        n = len(self) if top is None else min(top, len(self))
        out = []
        for r in range(n):
            pred = int(self.predicted[r])
            weight = None if self.mean_weight is None else float(self.mean_weight[r])
            out.append({
                "rank": r + 1, "index": int(self.index[r]), "path": str(self.sample_ids[r]),
                "given_label": self.class_names[int(self.given[r])],
                "predicted_label": self.class_names[pred] if pred >= 0 else "",
                "score": round(float(self.scores[r]), 6),
                "mean_weight": None if weight is None or math.isnan(weight) else round(weight, 6),
                "verdict": str(self.verdict[r]),
            })
        return out

    def counts(self) -> dict[str, int]:
        values, counts = np.unique(self.verdict.astype(str), return_counts=True)
        return {str(v): int(c) for v, c in zip(values, counts)}

    def verdict_rule(self) -> dict[str, Any]:
        """The verdict rule in numbers: ``rule`` (``calibrated`` or ``fixed``), the flagged
        count and share, the lowest flagged score and, when calibrated, ``count`` (``per-class``
        or ``global``), the flags per given class, the classes with too few labels to flag, the
        estimated noise rate, the model's agreement with the given labels in the last epoch, and
        ``trusted``."""
        flagged = self.verdict == "likely noisy"
        out: dict[str, Any] = {
            "rule": "fixed" if self.calibration is None else "calibrated", "flagged": int(flagged.sum()),
            "flagged_share": float(flagged.mean()) if len(self) else 0.0,
            "lowest_flagged_score": round(float(self.scores[flagged].min()), 6) if flagged.any() else None,
            "prior": self.prior,
        }
        if self.calibration is not None:
            c = self.calibration
            given = self.given[flagged]
            out.update(count=self.rule, flagged_per_class={name: int((given == k).sum())
                                                           for k, name in enumerate(self.class_names)},
                       too_few_to_flag=[self.class_names[k] for k in self.too_few])
            out.update(estimated_noise_rate=round(c.estimate.rate, 6), trusted=c.reliable,
                       previous_epoch_estimate=None if c.previous is None else round(c.previous.rate, 6),
                       last_epoch_agreement=round(c.estimate.agreement, 6))
        return out


def run_class_names(run: RunFolder) -> tuple[str, ...]:
    from fer_nla.checkpoint import read_meta

    for path in (run.last, run.best):
        if path.is_file():
            return read_meta(path).class_names
    raise InputError(f"{run.root} has neither last.pt nor best.pt; is it a fer-nla run folder?")


def check_options(
    *, skip_epochs: int, noisy_threshold: float | None, ambiguous_band: float, rule: str = "per-class",
    min_class_samples: int = MIN_CLASS_SAMPLES, prior: str = "uniform",
) -> None:
    """Raise :class:`InputError` naming the option unless each lies in its range."""
    if rule not in RULES:
        raise InputError(f"rule={rule!r} is not one of {', '.join(RULES)}")
    if prior not in PRIORS:
        raise InputError(f"prior={prior!r} is not one of {', '.join(PRIORS)}")
    if min_class_samples < 0:
        raise InputError(f"min_class_samples={min_class_samples} is negative: give 0 (trust every class) or more")
    if skip_epochs < 0:
        raise InputError(f"skip_epochs={skip_epochs} is negative: give 0 (score every epoch) or more")
    if not 0.0 <= ambiguous_band <= 1.0:
        raise InputError(f"ambiguous_band={ambiguous_band} lies outside [0, 1]: |score| is at most 1")
    if noisy_threshold is not None and not -1.0 <= noisy_threshold <= 1.0:
        raise InputError(f"noisy_threshold={noisy_threshold} lies outside [-1, 1], the score's range")
    if noisy_threshold is not None and ambiguous_band > noisy_threshold:
        raise InputError(
            f"ambiguous_band={ambiguous_band} is wider than noisy_threshold={noisy_threshold}: "
            "give a band no wider than the threshold"
        )


def read_signals(run: RunFolder) -> dict[str, np.ndarray]:
    """The run's ``signals.npz`` with the arrays the audit needs, or :class:`InputError`."""
    if not run.root.is_dir():
        raise InputError(f"{run.root} is not a folder: give the run folder that fer-nla train wrote")
    if not run.signals.is_file():
        raise InputError(
            f"{run.signals} does not exist: train with train.record_signals=true (the default) to audit a run"
        )
    try:
        sig = load_signals(run.signals)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise InputError(f"{run.signals} cannot be read ({err}): it is damaged; train the run again") from None
    missing = [key for key in SIGNAL_KEYS if key not in sig]
    if missing:
        raise InputError(f"{run.signals} lacks {', '.join(missing)}: not the signals of a fer-nla run")
    if sig["p_gt"].ndim != 2 or sig["p_gt"].shape[0] == 0:
        raise InputError(f"{run.signals} holds no finished epoch; let the run finish at least one")
    return sig


def check_signals_match(sig: dict[str, np.ndarray], run: RunFolder, *, num_classes: int) -> None:
    """Raise :class:`InputError` unless the signals hold one column per sample and their labels
    lie among the checkpoint's ``num_classes`` classes."""
    n = sig["p_gt"].shape[1]
    shapes = {key: sig[key].shape for key in SIGNAL_KEYS}
    if any(shape[-1:] != (n,) for shape in shapes.values()) or sig["p_nn"].shape != sig["p_gt"].shape:
        raise InputError(f"{run.signals} holds arrays of mismatched shapes {shapes}: it is damaged; train the run again")
    if n and not 0 <= int(sig["targets"].min()) <= int(sig["targets"].max()) < num_classes:
        raise InputError(
            f"{run.signals} has labels outside the {num_classes} classes of the run's checkpoint: "
            "the signals and the checkpoint come from different runs"
        )


def reliability_notes(
    *, epochs: int, skip_epochs: int, calibration: Calibration | None, too_few: dict[str, int] | None = None,
    min_class_samples: int = MIN_CLASS_SAMPLES, prior: str = "train", prior_used: str = "train",
) -> list[str]:
    """One line per reason to distrust this audit's score or verdicts; ``too_few``: the classes
    the per-class rule left unflagged, by name, with their scored labels; ``prior``/``prior_used``:
    the view asked for and the one the signals had (:func:`fer_nla.audit.signals_at_prior`)."""
    notes = []
    if prior_used != prior:
        notes.append(
            "the run's signals were recorded before fer-nla kept them at the uniform prior: audited at the training "
            "prior, where a model's pull towards the common classes reads as noise in the rare ones; train the run "
            "again for the uniform view"
        )
    if epochs <= skip_epochs:
        notes.append(
            f"the run recorded {epochs} epoch(s), no more than the {skip_epochs} warm-up epoch(s) the score "
            f"leaves out (skip_epochs={skip_epochs}): it is scored on its last epoch, warm-up included; "
            "train longer for a score averaged over epochs"
        )
    if calibration is not None and not calibration.reliable:
        notes.append(
            f"no label is called 'likely noisy': {calibration.reason}; its noise estimate "
            f"({calibration.estimate.rate:.1%}) would count its own errors as wrong labels. The ranking holds; "
            "train longer, or give noisy_threshold=0.3 for a fixed score"
        )
    if too_few and (calibration is None or calibration.reliable):
        named = ", ".join(f"{name} ({n})" for name, n in too_few.items())
        notes.append(
            f"too few labels to estimate their noise per class (under min_class_samples={min_class_samples}): "
            f"{named}; none of them is called 'likely noisy' (they are ranked all the same). Audit a run "
            "with more of them, or give rule='global' (which flags the classes the model finds hard)"
        )
    return notes


def audit_run(
    run_dir: str | Path, *, skip_epochs: int = 1, noisy_threshold: float | None = None, ambiguous_band: float = 0.3,
    rule: str = "per-class", min_class_samples: int = MIN_CLASS_SAMPLES, prior: str = "uniform",
) -> Audit:
    """Rank the trained samples of ``run_dir`` by suspicion (highest first, ties by index).

    Verdicts follow :mod:`fer_nla.audit`: by default (``rule="per-class"``) each given class
    gets as many ``likely noisy`` labels as the confident-learning estimate on the last recorded
    epoch finds wrong among its labels, its highest scores (:func:`fer_nla.audit.flag_per_class`;
    a class with fewer than ``min_class_samples`` scored labels gets none, and ``notes`` names
    it); ``rule="global"`` flags the estimated total among the highest scores of all classes
    (the rule before per-class counts: it flags the classes the model finds hard). None while
    the estimate is not trusted (``notes`` says why); with ``noisy_threshold`` every score at or
    above it. ``prior="uniform"`` (default) scores the probabilities with the training class
    prior divided out (:func:`fer_nla.audit.signals_at_prior`): a model's pull towards the common classes
    otherwise reads as noise in the rare ones' labels (measured on FERPlus with planted noise,
    ``tests/audit/test_ferplus_planted.py``); ``prior="train"`` scores them as trained.

    Raises:
        InputError: options out of range (see :func:`check_options`), a folder that is not a
            run, missing or damaged ``signals.npz``, or no checkpoint to read class names from.
    """
    check_options(skip_epochs=skip_epochs, noisy_threshold=noisy_threshold, ambiguous_band=ambiguous_band,
                  rule=rule, min_class_samples=min_class_samples, prior=prior)
    run = RunFolder(Path(run_dir))
    sig = read_signals(run)
    class_names = run_class_names(run)
    check_signals_match(sig, run, num_classes=len(class_names))
    try:
        sig, used = signals_at_prior(sig, prior)
    except ValueError as err:
        raise InputError(f"{run.signals}: {err}; it is damaged: train the run again, or audit with prior='train'") from None
    p_gt, p_nn = sig["p_gt"].astype(np.float32), sig["p_nn"].astype(np.float32)
    scores = suspicion_scores(p_gt, p_nn, skip_epochs=skip_epochs)
    predicted = majority_prediction(sig["prediction"], num_classes=len(class_names), skip_epochs=skip_epochs)
    trained = np.flatnonzero(np.isfinite(scores))
    order = trained[np.lexsort((trained, -scores[trained]))]
    calibration, too_few = None, ()
    if noisy_threshold is None:
        calibration, flagged, too_few = calibrated_flags(sig, order, scores[order], num_classes=len(class_names),
                                                         rule=rule, min_class_samples=min_class_samples)
        verdict = verdicts(scores[order], flagged=flagged, ambiguous_band=ambiguous_band)
    else:
        verdict = verdicts(scores[order], noisy_threshold=noisy_threshold, ambiguous_band=ambiguous_band)
    weight = mean_weights(sig, skip_epochs=skip_epochs)
    given = sig["targets"][order]
    sizes = {class_names[k]: int((given == k).sum()) for k in too_few}
    return Audit(
        class_names=class_names, index=order, sample_ids=sig["sample_ids"][order], given=given,
        predicted=predicted[order], scores=scores[order], mean_weight=None if weight is None else weight[order],
        verdict=verdict, epochs=len(p_gt), calibration=calibration, rule=rule, too_few=too_few, prior=used,
        notes=reliability_notes(epochs=len(p_gt), skip_epochs=skip_epochs, calibration=calibration, too_few=sizes,
                                min_class_samples=min_class_samples, prior=prior, prior_used=used),
    )


def calibrated_flags(
    sig: dict[str, np.ndarray], order: np.ndarray, ranked_scores: np.ndarray, *, num_classes: int,
    rule: str = "per-class", min_class_samples: int = MIN_CLASS_SAMPLES,
) -> tuple[Calibration | None, np.ndarray, tuple[int, ...]]:
    """The calibration (:func:`fer_nla.audit.calibrate`), the ``likely noisy`` mask over
    ``ranked_scores`` (float ``[M]``: the scores of the trained samples ``order``, int ``[M]``)
    and the classes left unflagged for too few labels. When the estimate is trusted: per class,
    each class's estimated count of its highest scores (:func:`fer_nla.audit.flag_per_class`),
    or, under ``rule="global"``, the estimated total of the highest; none otherwise.
    ``(None, all False, ())`` when no sample was trained on."""
    if not len(ranked_scores):
        return None, np.zeros(0, dtype=bool), ()
    calibration = calibrate(sig["p_gt"], sig["p_nn"], sig["prediction"], sig["targets"], num_classes=num_classes)
    if rule == "global" or not calibration.reliable:
        count = calibration.estimate.count(len(ranked_scores)) if calibration.reliable else 0
        return calibration, flag_highest(ranked_scores, count=count), ()
    flags = flag_per_class(ranked_scores, sig["targets"][order], class_rates=calibration.estimate.class_rates(),
                           min_class_samples=min_class_samples)
    return calibration, flags.flagged, flags.too_few


def mean_weights(sig: dict[str, np.ndarray], *, skip_epochs: int) -> np.ndarray | None:
    """Mean NAW weight per sample over the scored epochs (NaN where never trained; None without NLA)."""
    if "weights" not in sig:
        return None
    w = sig["weights"].astype(np.float32)
    with warnings.catch_warnings():  # 'mean of empty slice' for samples never trained on
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(w[slice(min(skip_epochs, len(w) - 1), None)], axis=0)


def write_csv(audit: Audit, path: str | Path, *, top: int | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in audit.rows(top):
            writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS})
    return path


def training_dataset(run_dir: str | Path, *, audit: Audit | None = None) -> Any:
    """The run's full training split, rebuilt from its ``config.yaml`` (images load lazily).

    Raises:
        InputError: the run folder has no ``config.yaml``, or (given ``audit``) the rebuilt
            split no longer holds the audited samples at the recorded indices (the data
            changed since training).
    """
    from fer_nla.config import load_config
    from fer_nla.train.run_data import _load

    run = RunFolder(Path(run_dir))
    if not run.config.is_file():
        raise InputError(f"{run.config} does not exist: the sheet and --evaluate rebuild the training set from it")
    config = load_config(run.config)
    dataset = _load(config.data, config.data.train_split, seed=config.train.seed)
    if audit is not None and len(audit):
        n = len(dataset)
        known = audit.index < n
        same = known.all() and all(dataset.samples[i] == str(s) for i, s in zip(audit.index, audit.sample_ids))
        if not same:
            raise InputError(
                f"the training data named in {run.config} ({n} samples) no longer holds the samples the run "
                "trained on at the same positions: the data changed since training; restore it or train again"
            )
    return dataset


def evaluate_against_clean(audit: Audit, clean_targets: np.ndarray, *, k: int | None = None) -> dict[str, Any]:
    """Precision at K, recall at K and ROC AUC of the ranking where clean labels are known.

    ``clean_targets``: int ``[N]`` over the training split (-1 = unknown). ``k`` defaults to
    the number of noisy labels and is capped at the number of scored samples. Where the known
    labels are all clean (or all noisy) the ranking cannot be scored: the metrics are None and
    ``reason`` says why.
    """
    clean = np.asarray(clean_targets)[audit.index]
    known = clean >= 0
    noisy = (audit.given != clean)[known]
    out: dict[str, Any] = {"num_scored": int(known.sum()), "noise_rate": float(noisy.mean()) if noisy.size else None}
    if not noisy.any() or noisy.all():
        kind = "clean" if not noisy.any() else "noisy"
        return {**out, "k": None, "num_noisy": int(noisy.sum()), "precision_at_k": None, "recall_at_k": None,
                "roc_auc": None, "reason": f"every known label is {kind}: nothing to tell apart"}
    quality = detection_quality(noisy, audit.scores[known], k=None if k is None else min(k, int(known.sum())))
    return {**quality.as_dict(), **out}


TITLE_INCHES = 0.35  # room above the grid for the sheet's title, whatever the number of rows


def contact_sheet(audit: Audit, dataset: Any, path: str | Path, *, top: int = 36, columns: int = 6) -> Path:
    """A grid of the ``top`` most suspicious faces titled ``given -> predicted (score)``, under a
    title that has its own band of ``TITLE_INCHES`` above the grid (it covers no face).

    Raises:
        InputError: the audit holds no trained sample, or ``top`` / ``columns`` below 1.
    """
    from matplotlib.figure import Figure  # a plain Figure: no global backend or figure registry touched

    if top < 1 or columns < 1:
        raise InputError(f"contact sheet: top={top} and columns={columns} must both be 1 or more")
    rows = audit.rows(top)
    if not rows:
        raise InputError("nothing to draw: the audit holds no trained sample")
    n_rows = math.ceil(len(rows) / columns)
    height = n_rows * 2.2 + TITLE_INCHES
    fig = Figure(figsize=(columns * 1.9, height))
    axes = fig.subplots(n_rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), rows):
        ax.imshow(np.asarray(dataset.load_image(row["index"]).convert("RGB")))
        ax.set_title(f"#{row['rank']} {row['given_label']}\n-> {row['predicted_label']} ({row['score']:+.2f})", fontsize=7)
    # the title hangs from the top edge in its own band (figure text: the layout below leaves it alone)
    fig.text(0.5, 1.0 - 0.1 / height, "most suspicious training labels: given -> predicted (score)",
             fontsize=9, ha="center", va="top")
    fig.tight_layout(rect=(0.0, 0.0, 1.0, 1.0 - TITLE_INCHES / height))
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--sheet {path} is a folder: name the PNG file to draw, e.g. {path / 'sheet.png'}")
    if not path.suffix:
        path = path.with_suffix(".png")  # what savefig would write; the path printed is the file's
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path
