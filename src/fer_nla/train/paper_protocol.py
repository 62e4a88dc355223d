"""The NLA authors' reporting protocol, as a labelled option (``train.paper_protocol``), never the default.

The authors' script (``main_rafdb.py`` of the NLA code, as EAC's before it) scores the test split
after every epoch and keeps two checkpoints: the epoch with the best overall accuracy and,
separately, the epoch with the best mean-class accuracy, both chosen on the split they report.
The two published figures can come from different epochs, and each is the maximum of a noisy
curve over the very samples it is reported on, so it overstates what the model does on new data.

fer-nla chooses ``best.pt`` on validation (``data.val_split``) and reports the test split at that
epoch. With ``train.paper_protocol=true`` a run also scores ``data.test_split`` (of the run's own
dataset, or of ``data.test_source`` when another source holds it) after every epoch, writes it to
``metrics.jsonl`` as ``paper_protocol_test`` and, at the end, the test-selected figures as
:func:`paper_selection` computes them. Nothing is selected with them: ``best.pt`` is the same with
and without the option (the test scoring draws no random numbers and trains nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from fer_nla.config import Config
from fer_nla.data import build_dataset
from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources.common import canonical_split
from fer_nla.data.transforms import eval_transform
from fer_nla.distributed import DistInfo
from fer_nla.errors import InputError
from fer_nla.metrics import classification_report
from fer_nla.train.loaders import Batches, eval_loader
from fer_nla.train.loop import predict_probabilities

METRICS_KEY = "paper_protocol_test"
LABEL = "paper protocol (best epoch chosen on the test split itself; not an estimate for new data)"


def test_dataset(config: Config, *, class_names: Sequence[str], log: Callable[[str], None] = print) -> FERDataset:
    """The split ``data.test_split`` names, read like the run's own data (``data.test_source``
    overrides ``dataset``, ``root``, ``labels``, ``options``), hard labels, eval transform.
    Raises :class:`InputError` when it is the training split or its classes differ from training's."""
    d, source = config.data, config.data.test_source
    split = str(d.test_split)
    dataset, root = source.get("dataset", d.dataset), source.get("root", d.root)
    if dataset == d.dataset and root == d.root and canonical_split(split) == canonical_split(d.train_split):
        raise InputError(f"data.test_split={split!r} is the training split: the paper protocol would score the data "
                         "trained on; name the test split (data.test_split=test)")
    try:
        test = build_dataset(dataset, root=root, split=split, labels=source.get("labels", d.labels),
                             num_classes=len(class_names), seed=config.train.seed, **source.get("options", d.options))
    except (TypeError, KeyError) as err:
        raise InputError(f"data.test_split: cannot build {dataset!r} split {split!r}: {err}; check data.test_source") from None
    if tuple(test.class_names) != tuple(class_names):
        raise InputError(f"the paper protocol's test split {split!r} has classes {test.class_names}, training has "
                         f"{tuple(class_names)}; give both the same classes")
    test = test.with_transform(eval_transform(image_size=d.image_size, grayscale=d.grayscale))
    test.target_mode = "hard"
    log(f"paper protocol: {dataset} split {split!r} ({len(test)} images) is scored after every epoch; "
        "best.pt is still chosen on validation")
    return test


def test_batches(config: Config, test: FERDataset, *, kind: str, info: DistInfo, device: torch.device,
                 frozen: nn.Module | None, log: Callable[[str], None] = print) -> Batches:
    """The test split's evaluation batches, of the same ``kind`` as the run's loaders."""
    return eval_loader(config.data, test, kind=kind, eval_batch_size=config.train.eval_batch_size, info=info,
                       device=device, log=log, frozen=frozen)


def score_test(net: nn.Module, batches: Iterable[Any], *, class_names: Sequence[str], device: torch.device,
               amp_dtype: torch.dtype | None = None, channels_last: bool = False) -> dict[str, Any]:
    """``overall_acc``, ``mean_acc``, ``macro_f1`` (fractions) and ``per_class_acc`` (by class
    name) of ``net`` on the test batches, at the network's own logits."""
    probs = predict_probabilities(net, batches, device=device, amp_dtype=amp_dtype, channels_last=channels_last,
                                  num_classes=len(class_names))
    report = classification_report(probs["targets"], probs["probs"], class_names=list(class_names))
    return {k: report[k] for k in ("overall_acc", "mean_acc", "macro_f1", "per_class_acc")}


def paper_selection(lines: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The test-selected figures of a run's ``metrics.jsonl`` lines (``None`` without the protocol).

    ``best_overall``: the epoch with the highest test overall accuracy (its ``epoch``,
    ``overall_acc``, ``mean_acc``); ``best_mean``: likewise by mean-class accuracy, picked
    separately, as the authors' script keeps two checkpoints. Ties go to the earlier epoch."""
    scored = [(int(line["epoch"]), line[METRICS_KEY]) for line in lines if METRICS_KEY in line]
    if not scored:
        return None

    def best(metric: str) -> dict[str, Any]:
        epoch, test = max(scored, key=lambda item: (item[1][metric], -item[0]))
        return {"epoch": epoch, "overall_acc": test["overall_acc"], "mean_acc": test["mean_acc"]}

    return {"label": LABEL, "best_overall": best("overall_acc"), "best_mean": best("mean_acc"), "epochs": len(scored)}


def selection_line(selection: Mapping[str, Any]) -> str:
    """One log line of :func:`paper_selection`'s figures, labelled."""
    o, m = selection["best_overall"], selection["best_mean"]
    return (f"paper protocol (test-selected, not an estimate): best test overall {100 * o['overall_acc']:.2f}% at epoch "
            f"{o['epoch']}, best test mean-class {100 * m['mean_acc']:.2f}% at epoch {m['epoch']}")
