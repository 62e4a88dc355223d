"""``fer-nla audit``: rank a run's training labels by suspicion, as a CSV and a contact sheet."""

from __future__ import annotations

import argparse
import json
import sys

from fer_nla.commands import DATASET_KEYS

# the per-class rule's defaults, spelled here so that --help needs no numpy import
RULES = ("per-class", "global")
PRIORS = ("uniform", "train")  # fer_nla.audit.VIEWS, spelled here so that --help needs no numpy import
MIN_CLASS_SAMPLES = 50

# The audit rebuilds the training set from the run's config.yaml: that is where to fix it.
SPELLING: dict[str, str] = {
    **{key: f"{template} in the run's config.yaml" for key, template in DATASET_KEYS.items()},
    "skip_epochs": "--skip-epochs {}", "noisy_threshold": "--noisy-threshold {}",
    "ambiguous_band": "--ambiguous-band {}", "rule": "--rule {}", "min_class_samples": "--min-class-samples {}",
    "prior": "--prior {}",
}
SHEET_FACES = 36  # faces on the contact sheet when --top does not say


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="rank a run's training labels by how doubtful they look",
        description=(
            "Ranks the training samples of a run folder by a suspicion score computed from the signals\n"
            "recorded during training (no extra forward): the mean over epochs of p_nn - p_gt, the margin by\n"
            "which the nearest wrong class beat the given label (area under the margin, Pleiss et al. 2020).\n\n"
            "Verdicts: 'likely noisy', within each given class, for as many of its highest scores as\n"
            "confident learning (Northcutt et al. 2021) on the last epoch's predictions estimates wrong\n"
            "labels of that class (per-class thresholds and counts: a class the model finds hard is not\n"
            "flagged for it; a class with fewer than --min-class-samples labels is not flagged, with a\n"
            "warning; on planted symmetric noise of 5%, 20% and 40% the flagged share is within 5 points\n"
            "of the planted rate, or 30% of it where that is more); 'clean' for a score of at most\n"
            "-B (--ambiguous-band B: the given label won by that margin); any other label 'ambiguous'.\n"
            "--rule global takes the highest scores of all classes. --prior uniform (default) reads the\n"
            "probabilities with the training class prior divided out (unlike predict's --prior, only\n"
            "uniform or train: it reads the signals training recorded).\n"
            "While the model is still learning (the estimate moved by more than 5 points over the last\n"
            "epoch, or the model barely beats chance) no label is called likely noisy and a warning says\n"
            "why. --noisy-threshold replaces the count by a fixed score."
        ),
        epilog="example:\n  fer-nla audit --run runs/ferplus --top 100 --out audit.csv --sheet sheet.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", required=True, help="a run folder left by fer-nla train")
    parser.add_argument("--out", required=True, help="CSV to write: rank,index,path,given_label,predicted_label,score,mean_weight,verdict")
    parser.add_argument("--top", type=int, default=None, metavar="K",
                        help="keep only the K most suspicious samples in the CSV (default: all)")
    parser.add_argument("--sheet", metavar="PNG",
                        help=f"also draw the most suspicious faces into this PNG: the --top K, "
                             f"or {SHEET_FACES} without --top")
    parser.add_argument("--skip-epochs", type=int, default=1, metavar="N",
                        help="warm-up epochs left out of the score, 0 or more (default %(default)s)")
    parser.add_argument("--noisy-threshold", type=float, default=None, metavar="SCORE",
                        help="call every score >= SCORE (in [-1, 1]) 'likely noisy' instead of the calibrated count "
                             "(default: calibrated by confident learning)")
    parser.add_argument("--rule", choices=RULES, default="per-class",
                        help="spread the calibrated count within each given class (per-class, the default) or over "
                             "all labels (global: flags the classes the model finds hard)")
    parser.add_argument("--prior", choices=PRIORS, default="uniform",
                        help="score the probabilities with the training class prior divided out (uniform, the "
                             "default: a model's pull towards common classes is not read as noise in the rare "
                             "ones) or as trained (train)")
    parser.add_argument("--min-class-samples", type=int, default=MIN_CLASS_SAMPLES, metavar="N",
                        help="per-class rule: a class with fewer scored labels is not flagged, with a warning "
                             "(default %(default)s)")
    parser.add_argument("--ambiguous-band", type=float, default=0.3, metavar="B",
                        help="|score| below which an unflagged label is 'ambiguous', in [0, 1] (default %(default)s)")
    parser.add_argument("--evaluate", action="store_true",
                        help="where the dataset knows clean labels, print precision@K, recall@K and ROC AUC "
                             "(K: --top, or the number of noisy labels)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(func=run, spelling=SPELLING)


def run(args: argparse.Namespace) -> int:
    from fer_nla.audit_run import audit_run, contact_sheet, evaluate_against_clean, training_dataset, write_csv
    from fer_nla.cli import spell_options
    from fer_nla.errors import InputError

    if args.top is not None and args.top <= 0:
        raise InputError(f"--top {args.top}: must be 1 or more")
    audit = audit_run(args.run, skip_epochs=args.skip_epochs, noisy_threshold=args.noisy_threshold,
                      ambiguous_band=args.ambiguous_band, rule=args.rule, min_class_samples=args.min_class_samples,
                      prior=args.prior)
    for note in audit.notes:
        print(f"fer-nla audit: warning: {spell_options(note, SPELLING)}", file=sys.stderr)
    path = write_csv(audit, args.out, top=args.top)
    summary: dict = {"run": args.run, "csv": str(path), "num_scored": len(audit), "verdicts": audit.counts(),
                     "verdict_rule": audit.verdict_rule(), "notes": audit.notes}
    dataset = training_dataset(args.run, audit=audit) if args.sheet or args.evaluate else None
    if args.sheet:
        summary["sheet"] = str(contact_sheet(audit, dataset, args.sheet, top=args.top or SHEET_FACES))
    if args.evaluate:
        clean = dataset.clean_targets
        summary["evaluation"] = None if clean is None else evaluate_against_clean(audit, clean, k=args.top)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_summary(audit, summary)
    return 0


def print_summary(audit, summary: dict) -> None:
    """The human-readable lines of ``summary`` (see :func:`run`)."""
    print(f"audited {len(audit)} training samples: " + ", ".join(f"{v} {k}" for k, v in summary["verdicts"].items()))
    c = summary["verdict_rule"]
    if c["rule"] == "calibrated" and c["trusted"]:
        lowest = "" if c["lowest_flagged_score"] is None else f", scores >= {c['lowest_flagged_score']:+.3f}"
        where = "within each given class" if c["count"] == "per-class" else "over all classes"
        lowest = "" if c["count"] == "per-class" else lowest  # per class, each class has its own lowest
        print(f"estimated noise rate {c['estimated_noise_rate']:.1%} (confident learning on the last epoch): "
              f"{c['flagged']} labels flagged likely noisy, highest scores {where}{lowest}")
    print(f"ranked list: {summary['csv']}")
    if "sheet" in summary:
        print(f"contact sheet: {summary['sheet']}")
    e = summary.get("evaluation")
    if "evaluation" in summary and e is None:
        print("against clean labels: the dataset knows none")
    elif e and e["roc_auc"] is None:
        print(f"against clean labels: {e['reason']}")
    elif e:
        print(f"against clean labels: precision@{e['k']} {e['precision_at_k']:.3f}, "
              f"recall@{e['k']} {e['recall_at_k']:.3f}, ROC AUC {e['roc_auc']:.3f}")
