"""``fer-nla bench robustness``: every loss on every label setting of FERPlus, one budget."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fer_nla.commands import DATASET_KEYS

# The bench reads FERPlus from its config: a split the library names is the training split
# or the test split of the grid.
SPELLING: dict[str, str] = {**DATASET_KEYS, "split": "data.train_split={0} (or bench.test_split={0})",
                            "labels": "bench.test_labels={}", "factor": "imbalance_{} in bench.settings"}

# Where a bench writes when --out is not given: a new folder under the current one, never the
# results committed in the repository (benchmarks/results changes only when named with --out).
DEFAULT_OUT_PARENT = "runs"
DEFAULT_OUT_HELP = (
    "output folder (default: a new runs/bench-YYYYmmdd-HHMMSS under the current folder; the results "
    "committed in the repository change only with an explicit --out benchmarks/results)"
)


def default_out(*, now: datetime | None = None, parent: str | Path = DEFAULT_OUT_PARENT) -> Path:
    """A new folder ``<parent>/bench-<YYYYmmdd-HHMMSS>`` (``-2``, ``-3``, ... appended when a run
    started in the same second already holds that name), relative to the current folder as
    typed. Only the name is chosen here; the bench creates the folder."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    candidate = Path(parent) / f"bench-{stamp}"
    number = 2
    while candidate.exists():
        candidate = Path(parent) / f"bench-{stamp}-{number}"
        number += 1
    return candidate


def resolve_out(args: argparse.Namespace, *, log: Callable[[str], None] = print) -> str:
    """``args.out`` as given, or :func:`default_out` when it was left out; sets ``args.out`` (so
    the recorded command names the folder, and a stopped grid can be resumed with it) and logs
    the folder before any work starts."""
    if args.out is None:
        args.out = str(default_out())
        log(f"writing to {args.out} (a new folder: no --out given); "
            f"to resume or extend this run later pass --out {shlex.quote(args.out)}")
    else:
        log(f"writing to {args.out}")
    return args.out


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="benchmarks that compare methods side by side")
    actions = parser.add_subparsers(dest="bench", metavar="BENCH", required=True)
    robust = actions.add_parser(
        "robustness",
        help="NLA against the baseline losses on noisy and imbalanced FERPlus labels",
        description=(
            "Trains every method of bench.methods on every setting of bench.settings (single_vote, "
            "symmetric_10/20/30, imbalance_50/100) and seed, plus CE on clean majority labels, with one model "
            "and budget; selects each run's best epoch on a validation split carved from train and scores it "
            "on the test split (default FERPlus valid, majority labels). Writes robustness.json, "
            "robustness.md and plots to --out (default: a new runs/bench-<time> folder; the committed "
            "benchmarks/results change only with --out benchmarks/results). A stopped grid resumes when "
            "run again with the same explicit --out: its finished cells are kept (--fresh starts over)."
        ),
        epilog="examples:\n"
               "  fer-nla bench robustness --config benchmarks/ferplus_cpu.yaml data.root=/data/ferplus\n"
               "  fer-nla bench robustness --config benchmarks/ferplus_cpu.yaml --quick --out /tmp/quick\n"
               "  fer-nla bench robustness --config benchmarks/ferplus_cpu.yaml --out benchmarks/results"
               "   (replaces the committed results)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    robust.add_argument("--config", required=True, help="bench YAML (see benchmarks/ferplus_cpu.yaml)")
    robust.add_argument("--out", default=None, help=DEFAULT_OUT_HELP + "; to resume a stopped grid, pass its folder")
    robust.add_argument("--quick", action=argparse.BooleanOptionalAction, default=False,
                        help="apply the config's bench.quick overrides: a few-minute smoke grid")
    robust.add_argument("--fresh", action="store_true",
                        help="ignore the finished cells of a stopped grid in the --out given")
    robust.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="overrides, e.g. data.root=/data/ferplus bench.seeds=[0] bench.workers=2 train.epochs=3")
    robust.set_defaults(func=run, spelling=SPELLING)

    _register_regime(actions)
    audit = actions.add_parser(
        "audit",
        help="how well the label audit finds real annotator disagreement, against cleanlab",
        description=(
            "On FERPlus single-vote labels (noisy = the drawn vote differs from the majority of ten) and the "
            "robustness grid's single_vote training set and budget, scores the audit's ranking from one NLA run "
            "and one CE run, and cleanlab's find_label_issues fed with out-of-fold probabilities of --folds CE "
            "models: precision and recall at K (K = number of noisy labels), ROC AUC, and the flagged sets. "
            "Writes audit.json to --out (default: a new runs/bench-<time> folder). Needs cleanlab: "
            "pip install 'fer-nla[bench]'."
        ),
        epilog="example:\n  fer-nla bench audit --config benchmarks/ferplus_cpu.yaml bench.seeds=[0,1]",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    audit.add_argument("--config", required=True, help="bench YAML (see benchmarks/ferplus_cpu.yaml)")
    audit.add_argument("--out", default=None, help=DEFAULT_OUT_HELP)
    audit.add_argument("--folds", type=int, default=5, help="cross-validation folds for cleanlab's probabilities (default 5)")
    audit.add_argument("--quick", action=argparse.BooleanOptionalAction, default=False,
                       help="apply the config's bench.quick overrides")
    audit.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. bench.seeds=[0] data.root=...")
    audit.set_defaults(func=run_audit, spelling=SPELLING)


def _register_regime(actions: argparse._SubParsersAction) -> None:
    regime = actions.add_parser(
        "regime",
        help="every method fine-tuning a face-pretrained network on noisy FERPlus labels, and NLA's ablation",
        description=(
            "Pretrains the network on one half of FERPlus train (half P, majority labels, the --pretrain-config "
            "recipe) into OUT/pretrain, then fine-tunes it with every method of bench.methods on every label "
            "setting of the other half (half F) and seed, plus CE on clean labels and NLA's ablation "
            "(single_vote, symmetric_30); each run's best epoch is chosen on a carve of half F with the setting's "
            "labels and scored on FERPlus valid. Writes pretrained_regime.json, .md and plots to --out. "
            "Resumes a stopped run from the same --out (pretraining included). With bench.start=backbone there "
            "is no pretraining: every cell starts from model.backbone_weights (a face-identity network, "
            "benchmarks/identity_regime.yaml); bench.paper_protocol=true also reports each cell as the NLA "
            "authors' script selects it (best epochs chosen on the test split), beside the honest figures."
        ),
        epilog="example:\n  fer-nla bench regime --config benchmarks/pretrained_regime.yaml --out runs/regime "
               "data.root=/data/ferplus",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    regime.add_argument("--config", default=None,
                        help="bench YAML (see benchmarks/pretrained_regime.yaml); not needed with --report-only")
    regime.add_argument("--pretrain-config", default=None,
                        help="the recipe half P is pretrained with (default: configs/ferplus_model.yaml beside the "
                             "bench config's folder)")
    regime.add_argument("--pretrain", action="append", default=[], metavar="KEY=VALUE",
                        help="an override of the pretraining recipe, after the fixed ones (repeatable)")
    regime.add_argument("--out", default=None, help=DEFAULT_OUT_HELP + "; to resume a stopped run, pass its folder")
    regime.add_argument("--quick", action=argparse.BooleanOptionalAction, default=False,
                        help="apply the config's bench.quick overrides: a few-minute smoke grid")
    regime.add_argument("--ablation", action=argparse.BooleanOptionalAction, default=True,
                        help="run NLA's ablation cells too (default)")
    regime.add_argument("--report-only", action="store_true", help="rewrite the .md and plots from --out's rows")
    regime.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides of the fine-tuning recipe or bench")
    regime.set_defaults(func=run_regime_command, spelling=SPELLING)


def run_regime_command(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fer_nla.bench.config import load_bench_config
    from fer_nla.bench.regime import pretrain_config, run_regime
    from fer_nla.bench.regime_tables import rewrite_report

    if args.report_only:
        if args.out is None:
            from fer_nla.errors import InputError

            raise InputError("--report-only rewrites the report of a finished run: name its folder with --out")
        for path in rewrite_report(Path(args.out)):
            print(path)
        return 0
    if args.config is None:
        from fer_nla.errors import InputError

        raise InputError("name the bench config: --config benchmarks/pretrained_regime.yaml")
    cfg = load_bench_config(args.config, list(args.overrides), quick=args.quick)
    pre = None
    if cfg.grid.start == "pretrain":
        default = Path(args.config).resolve().parent.parent / "configs" / "ferplus_model.yaml"
        pre = pretrain_config(args.pretrain_config or default, root=cfg.recipe.data.root, overrides=args.pretrain)
    resolve_out(args)
    extra = tuple(x for o in args.pretrain for x in ("--pretrain", o))
    extra += ("--pretrain-config", args.pretrain_config) if args.pretrain_config else ()
    run_regime(cfg, pre, args.out, command=_command(args, extra + (() if args.ablation else ("--no-ablation",))),
               ablation=args.ablation)
    return 0


def _command(args: argparse.Namespace, extra: tuple[str, ...] = ()) -> str:
    """The command line that reproduces this run (recorded with its results)."""
    parts = ["fer-nla", "bench", args.bench, "--config", args.config, "--out", args.out, *extra]
    if args.quick:
        parts.append("--quick")
    return " ".join(shlex.quote(p) for p in [*parts, *args.overrides])


def run_audit(args: argparse.Namespace) -> int:
    import importlib.util

    from fer_nla.bench.audit_compare import run_audit_comparison
    from fer_nla.bench.config import load_bench_config
    from fer_nla.errors import InputError

    if importlib.util.find_spec("cleanlab") is None:
        raise InputError("fer-nla bench audit compares with cleanlab: pip install 'fer-nla[bench]'")
    if args.folds < 2:
        raise InputError("--folds must be at least 2")
    cfg = load_bench_config(args.config, list(args.overrides), quick=args.quick)
    resolve_out(args)
    run_audit_comparison(cfg, args.out, folds=args.folds,
                         command=_command(args, ("--folds", str(args.folds))))
    return 0


def run(args: argparse.Namespace) -> int:
    from fer_nla.bench.config import load_bench_config
    from fer_nla.bench.robustness import run_robustness

    cfg = load_bench_config(args.config, list(args.overrides), quick=args.quick)
    resolve_out(args)
    run_robustness(cfg, args.out, command=_command(args),
                   fresh=args.fresh)
    return 0
