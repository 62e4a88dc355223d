"""``fer-nla audit``: rank a run's training labels by suspicion, as a CSV and a contact sheet."""

from __future__ import annotations

import argparse
import json

from fer_nla.commands import DATASET_KEYS

# The audit rebuilds the training set from the run's config.yaml: that is where to fix it.
SPELLING: dict[str, str] = {key: f"{template} in the run's config.yaml" for key, template in DATASET_KEYS.items()}


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "audit",
        help="rank a run's training labels by how doubtful they look",
        description=(
            "Ranks the training samples of a run folder by a suspicion score computed from the signals "
            "recorded during training (no extra forward): the mean over epochs of p_nn - p_gt, the margin "
            "by which the nearest wrong class beat the given label. Verdicts: likely noisy, ambiguous, clean."
        ),
        epilog="example:\n  fer-nla audit --run runs/ferplus --top 100 --out audit.csv --sheet sheet.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--run", required=True, help="a run folder left by fer-nla train")
    parser.add_argument("--out", required=True, help="CSV to write: rank,index,path,given_label,predicted_label,score,mean_weight,verdict")
    parser.add_argument("--top", type=int, default=None, help="keep only the K most suspicious samples (default all)")
    parser.add_argument("--sheet", help="also draw the top K (default 36) faces into this PNG")
    parser.add_argument("--skip-epochs", type=int, default=1, help="warm-up epochs left out of the score (default 1)")
    parser.add_argument("--noisy-threshold", type=float, default=0.3, help="score from which a label is 'likely noisy'")
    parser.add_argument("--ambiguous-band", type=float, default=0.3, help="|score| below which a label is 'ambiguous'")
    parser.add_argument("--evaluate", action="store_true",
                        help="where the dataset knows clean labels, print precision@K, recall@K and ROC AUC")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")
    parser.set_defaults(func=run, spelling=SPELLING)


def run(args: argparse.Namespace) -> int:
    from fer_nla.audit_run import audit_run, contact_sheet, evaluate_against_clean, training_dataset, write_csv
    from fer_nla.errors import InputError

    if args.top is not None and args.top <= 0:
        raise InputError(f"--top {args.top}: must be 1 or more")
    audit = audit_run(args.run, skip_epochs=args.skip_epochs, noisy_threshold=args.noisy_threshold,
                      ambiguous_band=args.ambiguous_band)
    path = write_csv(audit, args.out, top=args.top)
    summary: dict = {"run": args.run, "csv": str(path), "num_scored": len(audit), "verdicts": audit.counts()}
    dataset = None
    if args.sheet or args.evaluate:
        dataset = training_dataset(args.run)
    if args.sheet:
        summary["sheet"] = str(contact_sheet(audit, dataset, args.sheet, top=args.top or 36))
    if args.evaluate:
        if dataset.clean_targets is None:
            summary["evaluation"] = None
        else:
            summary["evaluation"] = evaluate_against_clean(audit, dataset.clean_targets, k=args.top)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"audited {len(audit)} training samples: " + ", ".join(f"{v} {k}" for k, v in summary["verdicts"].items()))
        print(f"ranked list: {path}")
        if "sheet" in summary:
            print(f"contact sheet: {summary['sheet']}")
        if summary.get("evaluation"):
            e = summary["evaluation"]
            print(f"against clean labels: precision@{e['k']} {e['precision_at_k']:.3f}, "
                  f"recall@{e['k']} {e['recall_at_k']:.3f}, ROC AUC {e['roc_auc']:.3f}")
    return 0
