"""``fer-nla eval``: every metric of a checkpoint on a dataset split, printed and saved."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

# The keys of ``--json`` (and of the saved file), in order.
EVAL_KEYS: tuple[str, ...] = (
    "overall_acc", "mean_acc", "top2_acc", "per_class_acc", "macro_f1", "mAP", "confusion_matrix", "class_names",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint on a dataset split",
        description=(
            "Overall, mean-class and top-2 accuracy, per-class accuracy, macro-F1, mAP and the confusion "
            "matrix (rows = true class, in class_names order) of a checkpoint on one split. The dataset, "
            "its root and options default to those the checkpoint was trained with."
        ),
        epilog="example:\n  fer-nla eval --checkpoint runs/raf/best.pt --dataset rafdb --root /data/RAF-DB --split test --json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, help="best.pt or last.pt of a run folder")
    parser.add_argument("--dataset", help="dataset name (default: the checkpoint's)")
    parser.add_argument("--root", help="dataset folder (default: the checkpoint's)")
    parser.add_argument("--split", default="test", help="split to evaluate (default test)")
    parser.add_argument("--labels", help="label kind, e.g. majority (default: majority)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per forward (default 256)")
    parser.add_argument("--num-workers", type=int, default=0, help="data-loading processes (default 0)")
    parser.add_argument("--device", default="auto", help="auto (cuda, else mps, else cpu), cpu, cuda, mps")
    parser.add_argument("--output", help="where to save the metrics JSON (default: beside the checkpoint)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    parser.set_defaults(func=run)


def evaluate_checkpoint(
    checkpoint: str, *, dataset: str | None = None, root: str | None = None, split: str = "test",
    labels: str | None = None, batch_size: int = 256, num_workers: int = 0, device_name: str = "auto",
) -> dict[str, Any]:
    """The metrics of ``checkpoint`` on one split: keys :data:`EVAL_KEYS`, plus ``num_samples``,
    ``dataset`` and ``split``."""
    from torch.utils.data import DataLoader

    from fer_nla.checkpoint import check_compatible, load_model
    from fer_nla.data import build_dataset
    from fer_nla.data.transforms import eval_transform
    from fer_nla.engine import predict_probabilities, select_device
    from fer_nla.metrics import classification_report

    device = select_device(device_name)
    model, info = load_model(checkpoint, map_location=device)
    data_cfg = info.get("config", {}).get("data", {})
    name = dataset or data_cfg.get("dataset", "synthetic")
    same = name == data_cfg.get("dataset")
    ds = build_dataset(
        name, root=root if root is not None else (data_cfg.get("root") if same else None), split=split,
        labels=labels or "majority", num_classes=int(info["model"]["num_classes"]),
        seed=int(info.get("config", {}).get("train", {}).get("seed", 0)),
        **(data_cfg.get("options", {}) if same else {}),
    )
    check_compatible(info, path=checkpoint, class_names=list(ds.class_names))
    size = int(info["preprocess"]["image_size"])
    ds = ds.with_transform(eval_transform(image_size=size, mean=tuple(info["preprocess"]["mean"]),
                                          std=tuple(info["preprocess"]["std"])))
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers, pin_memory=device.type == "cuda")
    out = predict_probabilities(model, loader, device=device, num_classes=len(ds.class_names),
                                channels_last=device.type != "mps")
    report = classification_report(out["targets"], out["probs"], class_names=list(ds.class_names))
    return {key: report[key] for key in EVAL_KEYS} | {"num_samples": report["num_samples"], "dataset": name, "split": split}


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fer_nla.metrics import format_report

    result = evaluate_checkpoint(
        args.checkpoint, dataset=args.dataset, root=args.root, split=args.split, labels=args.labels,
        batch_size=args.batch_size, num_workers=args.num_workers, device_name=args.device,
    )
    dataset = result["dataset"]
    output = Path(args.output) if args.output else Path(args.checkpoint).with_name(
        f"eval_{Path(args.checkpoint).stem}_{dataset}_{args.split}.json")
    payload = {key: result[key] for key in EVAL_KEYS}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(payload, indent=2) + "\n")
    if args.json:
        print(json.dumps(payload))
        print(f"saved {output}", file=sys.stderr)
    else:
        print(f"{args.checkpoint} on {dataset} {args.split}")
        print(format_report(result))
        print(f"saved {output}")
    return 0
