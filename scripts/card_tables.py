"""Print the figures a built-in model's card states, measured on FERPlus valid (majority labels)
through :func:`fer_nla.evaluate.evaluate_checkpoint` (the path of ``fer-nla eval``): the
headline table (8 and 7 classes), the per-class table at each operating point it reports
(``train``, ``uniform`` and the model's ``default`` where that is neither), all at the model's
default prior where not named otherwise, and the expected
calibration error at the default prior before and after the temperature.

    python scripts/card_tables.py --name ferplus-resnet10s --data-root ../shared/data/ferplus

``tests/test_doc_figures.py`` re-scores the shipped weights and compares them with the card.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="a built-in model (fer_nla.builtin.BUILTIN_MODELS)")
    parser.add_argument("--data-root", type=Path, required=True, help="FERPlus (FER2013Valid/)")
    args = parser.parse_args()
    from fer_nla.builtin import builtin_path
    from fer_nla.evaluate import evaluate_checkpoint

    checkpoint = str(builtin_path(args.name))
    common = {"dataset": "ferplus", "root": str(args.data_root), "split": "valid", "labels": "majority",
              "device_name": "cpu"}
    full = evaluate_checkpoint(checkpoint, with_probabilities=True, **common)
    print("| classes | faces | overall | mean-class | top-2 | macro-F1 | mAP |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(f"| 8 | {full['num_samples']:,} | {pct(full['overall_acc'])} | {pct(full['mean_acc'])} | "
          f"{pct(full['top2_acc'])} | {pct(full['macro_f1'])} | {pct(full['mAP'])} |")
    keep = full["targets"] != 7  # 7 classes: contempt faces and output dropped
    pred = full["probs"][keep, :7].argmax(axis=1)
    target = full["targets"][keep]
    mean7 = sum((pred[target == k] == k).mean() for k in range(7)) / 7
    print(f"| 7 (contempt faces and output dropped) | {int(keep.sum()):,} | {pct((pred == target).mean())} | "
          f"{pct(mean7)} | | | |")
    names = list(full["per_class_acc"])
    print("\n| prior | overall | mean-class | " + " | ".join(names) + " |")
    print("|---|---:|---:|" + "---:|" * len(names))
    for prior, point in full["operating_points"].items():
        cells = [pct(point["per_class_acc"][name]) for name in names]
        print(f"| {prior} | {pct(point['overall_acc'])} | {pct(point['mean_acc'])} | " + " | ".join(cells) + " |")
    ece = full["ece"]
    print(f"\ntemperature {ece['temperature']:.3f}; ECE ({ece['bins']} bins) at the default prior: "
          f"{pct(ece['before'])} uncalibrated, {pct(ece['after'])} calibrated")


if __name__ == "__main__":
    main()
