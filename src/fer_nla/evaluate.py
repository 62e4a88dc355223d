"""Scoring a checkpoint (or an exported ONNX model) on a dataset split: the probabilities and
every metric of ``fer-nla eval``, for the command, the benchmarks and Python users.

Faces are scored through :mod:`fer_nla.inference`, the path ``predict`` and ``serve`` use: the
model's own :class:`~fer_nla.inference.preprocess.Preprocess` is the dataset's transform and
:func:`~fer_nla.inference.classify.loader_logits` runs either backend, so a face gets the
same probabilities here as in ``fer-nla predict`` at the same operating point (class prior and
calibration, :mod:`fer_nla.inference.scoring`).

>>> result = evaluate_checkpoint("runs/raf/best.pt", dataset="rafdb", root="/data/RAF-DB", split="test")
>>> result["overall_acc"], result["mean_acc"], result["num_samples"]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from fer_nla.errors import InputError
from fer_nla.inference.scoring import (
    ECE_BINS,
    OperatingPoint,
    Prior,
    Scoring,
    adjusted_probabilities,
    expected_calibration_error,
    operating_point,
)

if TYPE_CHECKING:
    from fer_nla.checkpoint import CheckpointMeta
    from fer_nla.data.dataset import FERDataset

# The keys of ``--json`` (and of the saved file), in order. ``num_samples``: samples scored;
# ``dropped``: reason -> count of the split's samples that were not scored.
# ``prior``/``calibrated``: the operating point of the metrics; ``ece``: the expected calibration error
# there, before and after the model's temperature; ``operating_points``: overall, mean-class and
# per-class accuracy at the training prior and at the uniform prior (where the model records its prior).
EVAL_KEYS: tuple[str, ...] = (
    "overall_acc", "mean_acc", "top2_acc", "per_class_acc", "macro_f1", "mAP", "confusion_matrix", "class_names",
    "num_samples", "dropped", "prior", "calibrated", "ece", "operating_points",
)

# What a reader's ``info["dropped_*"]`` count means, for the ``dropped`` reasons: every count key a
# reader writes (a test checks the readers' sources against this table).
READER_DROPS: dict[str, str] = {
    "dropped_no_label": "no {labels} label",
    "dropped_not_in_classes": "label outside the dataset's classes",
    "bad_images_dropped": "undecodable image",
    "dropped_duplicates": "duplicate row",
    "dropped_conflicting_labels": "conflicting labels for one image",
    "dropped_box_outside_image": "face box outside the image",
    "dropped_no_image_name": "label row without an image name",
}


def reader_drops(info: dict[str, Any], *, labels: str) -> dict[str, int]:
    """The samples a dataset reader left out, as ``reason (info key) -> count`` (non-zero only);
    a key missing from :data:`READER_DROPS` reads as its words (``dropped_blurry`` -> ``blurry``)."""
    out = {}
    for key, count in info.items():
        if (key.startswith("dropped") or key == "bad_images_dropped") and isinstance(count, int) and count > 0:
            reason = READER_DROPS.get(key) or key.removeprefix("dropped_").replace("_", " ")
            out[f"{reason.format(labels=labels)} ({key})"] = count
    return out


def restrict_to_classes(dataset: FERDataset, class_names: Sequence[str]) -> tuple[FERDataset, dict[str, int]]:
    """``dataset`` without the samples whose label is not in ``class_names`` (a subset of its
    classes), relabelled in ``class_names`` order; and ``"<class>: not a class of the model"
    -> count`` for each class left out that had samples. Soft targets keep the model's columns,
    renormalised; clean labels outside ``class_names`` become -1 (unknown)."""
    index = {name: i for i, name in enumerate(class_names)}
    mapping = np.array([index.get(name, -1) for name in dataset.class_names], dtype=np.int64)
    counts = dataset.class_counts()
    dropped = {f"{name}: not a class of the model": int(counts[k])
               for k, name in enumerate(dataset.class_names) if name not in index and counts[k] > 0}
    view = dataset.subset(np.flatnonzero(mapping[dataset.targets] >= 0))
    view.targets = mapping[view.targets]
    view.class_names = tuple(class_names)
    if view.clean_targets is not None:
        view.clean_targets = np.where(view.clean_targets >= 0, mapping[np.maximum(view.clean_targets, 0)], -1)
    if view.soft_targets is not None:
        columns = [dataset.class_names.index(name) for name in class_names]
        soft = view.soft_targets[:, columns]
        view.soft_targets = soft / np.maximum(soft.sum(axis=1, keepdims=True), 1e-12)
    return view, dropped


def _eval_dataset(info: CheckpointMeta, **arguments: Any) -> tuple[FERDataset, dict[str, int]]:
    """The split in the model's classes, and what was left out: the dataset is read with its own
    classes; samples of classes the model lacks (FERPlus contempt for a 7-class model) are
    dropped and counted. Where the model has classes the dataset lacks by default, the reader
    is asked for the model's class count (and says when it cannot give it)."""
    from fer_nla.data import build_dataset

    model_classes = list(info.class_names)
    dataset = build_dataset(num_classes=None, **arguments)
    if not set(model_classes) <= set(dataset.class_names):
        dataset = build_dataset(num_classes=len(model_classes), **arguments)
    dropped = reader_drops(dataset.info, labels=arguments["labels"])
    if list(dataset.class_names) != model_classes and set(model_classes) <= set(dataset.class_names):
        dataset, left_out = restrict_to_classes(dataset, model_classes)
        dropped = {**left_out, **dropped}
    return dataset, dropped


READ_ARGUMENTS = ("name", "root", "split", "labels", "seed", "skip_bad_images")  # the rest: dataset options


def _declared_splits(arguments: dict[str, Any]) -> tuple[str, ...]:
    """The splits the dataset of ``arguments`` (:func:`_eval_dataset`'s) declares at its root
    (:func:`fer_nla.data.dataset_splits`, whose :class:`InputError` it raises)."""
    from fer_nla.data import dataset_splits

    options = {k: v for k, v in arguments.items() if k not in READ_ARGUMENTS}
    return dataset_splits(arguments["name"], root=arguments["root"], **options)


def _carved_validation(info: CheckpointMeta, arguments: dict[str, Any]) -> bool:
    """Whether the run validated on a part carved from its training split (its dataset declares
    no ``valid`` split, or ``data.val_split`` was ``carve``): ``valid`` then names that part."""
    chosen = str(info.config.get("data", {}).get("val_split", "auto")).strip().lower()
    if chosen == "carve":
        return True
    return chosen == "auto" and "valid" not in _declared_splits(arguments)


def _require_test_split(checkpoint: str, arguments: dict[str, Any]) -> None:
    """Refuse, with the commands that work, to score the test split of a run's dataset that has none."""
    try:
        declared = _declared_splits(arguments)
    except InputError:
        return  # the reader's own error, when it reads, says what is wrong with the data
    if "test" not in declared:
        raise InputError(
            f"{arguments['root']}: the run's {arguments['name']} data has no test split (only {', '.join(declared)}); "
            f"score the run's validation split with `fer-nla eval --checkpoint {checkpoint} --split valid`, or "
            "name another labelled set's dataset and root"
        )


def _run_validation(info: CheckpointMeta, *, root: str | None) -> tuple[FERDataset, dict[str, int]]:
    """The validation part the run carved from its training split, rebuilt from its saved config
    as ``fer-nla train`` built it (same seed, fraction and fold; no teacher targets needed).
    Raises :class:`InputError` when the data is not the run's (its fingerprint differs: files
    added, removed or relabelled), since the carve would then differ from the one it trained beside."""
    from fer_nla.config import config_from_dict
    from fer_nla.train.run_data import build_run_data
    from fer_nla.train.run_folder import data_fingerprint

    config = config_from_dict(info.config)
    config.data.teachers = []
    moved = root is not None and root != config.data.root
    if root is not None:
        config.data.root = root
    data = build_run_data(config.data, seed=config.train.seed, log=lambda _line: None)
    saved, now = dict(info.data_fingerprint or {}), data_fingerprint(data.full_train, data.val)
    keys = ("num_samples", "num_val_samples") if moved else tuple(saved)  # moved: its paths differ, its counts not
    if any(saved.get(key) != now.get(key) for key in keys):
        raise InputError(
            f"the run's data at {config.data.root} is not what it trained on ({saved.get('num_samples')} and "
            f"{saved.get('num_val_samples')} samples in its training and validation splits then, {now['num_samples']} "
            f"and {now.get('num_val_samples')} now, or other files or labels): its carved validation split cannot be rebuilt, "
            "and scoring it would mix in images it trained on; restore that data, or score a labelled set of its own"
        )
    full = data.full_train.subset(data.val_indices if data.val_indices is not None else np.arange(0))
    return full, reader_drops(data.full_train.info, labels=config.data.labels)


def evaluate_checkpoint(
    checkpoint: str, *, dataset: str | None = None, root: str | None = None, split: str = "test",
    labels: str | None = None, batch_size: int = 256, num_workers: int = 0, device_name: str = "auto",
    skip_bad_images: bool | None = None,
    options: dict[str, Any] | None = None,
    with_probabilities: bool = False,
    prior: Prior = "default",
    calibrated: bool = True,
    network_logits: bool = False,
) -> dict[str, Any]:
    """The metrics of ``checkpoint`` (a fer-nla ``.pt``, or an ONNX model from ``fer-nla
    export``, scored with onnxruntime through the same preprocessing its metadata states) on one
    split: keys :data:`EVAL_KEYS` (``num_samples``: the samples scored; ``dropped``: reason ->
    count of those left out, e.g. ``{"contempt: not a class of the model": 16}``), plus
    ``dataset`` and ``split`` (canonical: ``val`` -> ``valid``; for a run that carved its
    validation part out of its training split, ``valid`` on its own dataset is that part, rebuilt
    from the run's config). ``skip_bad_images=None`` takes
    the checkpoint's ``data.skip_bad_images`` when ``dataset`` is the one it was trained on, else
    False. The device is checked first (:func:`fer_nla.runtime.resolve_device`,
    :func:`fer_nla.runtime.onnx_providers`); raises :class:`InputError` for a device this machine
    lacks, a file that is neither (one message per kind, see
    :func:`fer_nla.file_kinds.describe_foreign_file`), an ONNX model without ``dataset``, or
    data that does not fit the model. ``with_probabilities`` adds ``probs`` (float32 ``[N, C]``,
    softmax, in the dataset's sample order) and ``targets`` (int64 ``[N]``). ``prior`` and
    ``calibrated`` choose the operating point, as for :class:`~fer_nla.predict.Predictor`
    (:func:`fer_nla.inference.scoring.operating_point`, whose errors it raises).
    ``network_logits=True`` scores the softmax of the network's logits with no prior shift and no
    logit offset (the temperature still applies when ``calibrated``): what training's validation
    and the benchmark grids score, so a logit-adjusted cell is scored at its own logits."""
    from torch.utils.data import DataLoader

    from fer_nla.checkpoint import check_compatible
    from fer_nla.data.sources.common import canonical_split
    from fer_nla.inference.classify import loader_logits
    from fer_nla.metrics import classification_report

    split = canonical_split(split)  # val -> valid: one name in the result and the saved file's name
    backend, info = _load_model(checkpoint, device_name=device_name, dataset=dataset)
    data_cfg = info.config.get("data", {})
    name = dataset or data_cfg.get("dataset", "synthetic")
    same = name == data_cfg.get("dataset")
    if skip_bad_images is None:  # the run's own data: read it as training did
        skip_bad_images = bool(data_cfg.get("skip_bad_images", False)) if same else False
    arguments = dict(name=name, root=root if root is not None else (data_cfg.get("root") if same else None),
                     split=split, labels=labels or "majority", seed=int(info.config.get("train", {}).get("seed", 0)),
                     skip_bad_images=skip_bad_images,
                     **{**(data_cfg.get("options", {}) if same else {}), **(options or {})})
    if same and split == "test":
        _require_test_split(checkpoint, arguments)
    carved = same and split == "valid" and _carved_validation(info, arguments)
    ds, dropped = _run_validation(info, root=arguments["root"]) if carved else _eval_dataset(info, **arguments)
    check_compatible(info, path=checkpoint, class_names=list(ds.class_names))
    ds = ds.with_transform(backend.preprocess)  # the one eval-time preprocessing (fer_nla.inference.preprocess)
    ds.target_mode = "hard"  # metrics score the hard label (plurality for labels=probability)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    logits, targets = loader_logits(backend, ((images, labels) for images, labels, _ in loader))
    point = operating_point(backend.scoring, num_classes=len(ds.class_names), prior=prior, calibrated=calibrated)
    if network_logits:
        point = OperatingPoint(point.temperature, np.zeros(len(ds.class_names)))
    probs = adjusted_probabilities(logits, point)
    report = classification_report(targets, probs, class_names=list(ds.class_names))
    report |= {"num_samples": int(len(targets)), "dropped": dropped, "prior": prior if isinstance(prior, str) else list(prior),
               "calibrated": calibrated, **_scoring_report(backend.scoring, logits, targets, prior=prior,
                                                           class_names=list(ds.class_names))}
    result = {key: report[key] for key in EVAL_KEYS} | {"dataset": name, "split": split}
    if with_probabilities:
        result |= {"probs": probs, "targets": targets}
    return result


def _scoring_report(scoring: Scoring, logits: np.ndarray, targets: np.ndarray, *, prior: Prior,
                    class_names: list[str]) -> dict[str, Any]:
    """``ece`` (at ``prior``: ``before``/``after`` the model's ``temperature``) and
    ``operating_points`` (``train`` and, where the model records its prior, ``uniform`` and, where
    it is neither, the model's ``default``: overall, mean-class and per-class accuracy, calibrated)."""
    from fer_nla.metrics import classification_report

    num = len(class_names)
    ece = {"temperature": scoring.temperature, "bins": ECE_BINS}
    for key, calibrated in (("before", False), ("after", True)):
        point = operating_point(scoring, num_classes=num, prior=prior, calibrated=calibrated)
        ece[key] = expected_calibration_error(adjusted_probabilities(logits, point), targets)
    points = {}
    names = ["train"] + (["uniform"] if scoring.class_prior is not None else [])
    names += ["default"] if scoring.default_prior not in names else []
    for name in names:
        probs = adjusted_probabilities(logits, operating_point(scoring, num_classes=num, prior=name))
        report = classification_report(targets, probs, class_names=class_names)
        points[name] = {key: report[key] for key in ("overall_acc", "mean_acc", "per_class_acc")}
    return {"ece": ece, "operating_points": points}


def _load_model(checkpoint: str, *, device_name: str, dataset: str | None) -> tuple[Any, CheckpointMeta]:
    """The backend of ``checkpoint`` (:func:`fer_nla.inference.backends.load_backend`: an ONNX
    file, found by its content, on onnxruntime; a checkpoint on PyTorch) and its metadata (an
    ONNX model's as a :class:`~fer_nla.checkpoint.CheckpointMeta` with an empty ``config``)."""
    from fer_nla.checkpoint import CheckpointMeta
    from fer_nla.inference.backends import is_onnx_model, load_backend
    from fer_nla.inference.onnx_backend import OnnxBackend

    if dataset is None and is_onnx_model(checkpoint):
        raise InputError(f"{checkpoint} is an ONNX model, which does not record the data it was trained on: "
                         "name the data with dataset=... and root=...")
    backend = load_backend(checkpoint, device=device_name)
    if not isinstance(backend, OnnxBackend):
        return backend, backend.meta
    spec, pre = backend.model_spec, backend.preprocess
    info = CheckpointMeta(arch=str(spec.get("arch", "")), num_classes=int(spec.get("num_classes", len(backend.class_names))),
                          stem=str(spec.get("stem", "")), class_names=tuple(backend.class_names),
                          image_size=pre.image_size, mean=tuple(pre.mean), std=tuple(pre.std), grayscale=pre.grayscale)
    return backend, info
