"""The run configuration: typed dataclasses, YAML files, ``key=value`` overrides.

A :class:`Config` is built from its defaults (the CPU quick start on the synthetic set), then a
YAML file (``configs/*.yaml``), then ``section.key=value`` overrides from the command line, and
validated once. An unknown key is an error naming the closest valid key and, for a YAML file,
the line. ``loss.options`` and ``data.options`` are free mappings passed to the loss and the
dataset reader (``loss.options.lam_a=0.3``, ``data.options.num_samples=2000``); options of the
synthetic set left unset get :data:`SYNTHETIC_DEFAULT_OPTIONS` (the quick start's size).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from fer_nla.data.augmentation import Augmentation
from fer_nla.errors import InputError
from fer_nla.values import convert


@dataclass
class DataConfig:
    """What to train on. ``val_split``: ``auto`` uses the dataset's ``valid`` split when its
    source declares one (a broken one is then an error) and otherwise carves a seeded
    stratified ``val_fraction`` out of train; ``carve`` always carves; any other value names a
    split. The test split is never used for selection. ``loader``: ``memory`` decodes the
    images once into a uint8 tensor (cached on disk under ``cache_dir``, default
    ``$FER_NLA_CACHE`` or ``~/.cache/fer-nla``) and augments whole batches on the training
    device; ``files`` decodes and transforms each image with PIL every epoch in ``num_workers``
    DataLoader workers; ``auto`` takes ``memory`` when the decoded images fit the budget of
    :func:`fer_nla.data.memory.fits_in_memory` (2 GiB, or a quarter of the RAM if less)."""

    dataset: str = "synthetic"
    root: str | None = None
    labels: str = "majority"
    num_classes: int | None = None
    train_split: str = "train"
    val_split: str = "auto"
    val_fraction: float = 0.1
    train_subset: int | None = None  # at most this many training samples, seeded and stratified
    train_fold: str | None = None  # "K/N": only the K-th of N folds of the training split (by sample id)
    fold_seed: int = 0  # seeds the folds' partition (kept apart from train.seed: every seed shares the folds)
    image_size: int = 48
    flip: bool = True
    erasing: bool = True
    gaussian_noise: bool = True
    affine: bool = False  # random rotation/shift/scale (not in the NLA recipe; the built-in model's recipe uses it)
    grayscale: bool = False  # every image made gray (PIL convert('L')) in 3 equal channels; saved in checkpoints
    skip_bad_images: bool = False
    num_workers: int = 0
    loader: Literal["auto", "memory", "files"] = "auto"
    cache_dir: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    teachers: list[str] = field(default_factory=list)  # distil from these models' ensemble (fer_nla.train.distill)
    teacher_weight: float = 0.5  # the teachers' share of each training target
    # Scored every epoch under train.paper_protocol only (never for selection): a split of this
    # dataset, or of test_source's (keys dataset, root, labels, options) when another source holds it.
    test_split: str | None = None
    test_source: dict[str, Any] = field(default_factory=dict)

    @property
    def augmentation(self) -> Augmentation:
        """The random augmentations ``flip``, ``erasing``, ``gaussian_noise`` and ``affine`` switch on."""
        return Augmentation(flip=self.flip, erasing=self.erasing, gaussian_noise=self.gaussian_noise, affine=self.affine)


@dataclass
class ModelConfig:
    """The network: ``arch`` resnet18 | resnet50 | timm:<name>; ``stem`` imagenet | small
    (3x3 stride-1, for 48-64 px faces at ~10x the compute); ``backbone_weights`` a local file
    (the MS-Celeb-1M ResNet-18 of the paper, or torchvision ImageNet weights);
    ``expect_backbone_weights`` marks recipes that assume such a file (the paper configs): a run
    without one then starts with a warning that the backbone is random. ``init``: fine-tune a whole
    network, ``builtin:NAME`` (``fer-nla models``) or a fer-nla checkpoint (best.pt/last.pt); its
    arch, stem and gray input are taken, its head mapped by class name (:mod:`fer_nla.model_init`).
    ``frozen_stages``: -1 trains every layer; 0 freezes the stem, K the stem and stages 1..K (no
    gradient, BatchNorm in eval mode; networks with declared stages: resnet10s; :mod:`fer_nla.freeze`)."""

    arch: str = "resnet18"
    stem: str = "imagenet"
    init: str | None = None
    backbone_weights: str | None = None
    expect_backbone_weights: bool = False
    frozen_stages: int = -1  # mmdetection's convention: -1 none, 0 the stem, K the stem and stages 1..K (fer_nla.freeze)


@dataclass
class LossConfig:
    """A training method of ``fer_nla.methods.available()`` by name; ``options`` go to its constructor."""

    name: str = "nla"
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimConfig:
    """Optimizer (the recipe: Adam, lr 1e-4, weight decay 1e-4) and learning-rate schedule
    (the recipe: ExponentialLR with ``gamma`` 0.9, stepped once per epoch)."""

    name: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    scheduler: Literal["exponential", "cosine", "none"] = "exponential"
    gamma: float = 0.9


@dataclass
class TrainConfig:
    """The loop. ``two_view_forward``: ``batched`` sends the image and its flip through the
    model as one batch of 2B: one forward and one backward, faster where a batch of B leaves the
    device underused (measured on 2 CPU cores, ResNet-18, batch 32: 1.19x the images/s of
    ``separate`` at 48 px, equal at 112 px), but BatchNorm statistics are then computed over both
    views together; ``separate`` makes two forwards as the reference code does.
    ``precision``: auto (bf16 on CUDA with bf16, else fp16 on CUDA, fp32 on CPU/MPS) | fp32 |
    bf16 | fp16. ``channels_last``: auto (on for CUDA and CPU) | on | off."""

    epochs: int = 4
    batch_size: int = 32
    eval_batch_size: int = 256
    two_view_forward: Literal["batched", "separate"] = "batched"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    channels_last: Literal["auto", "on", "off"] = "auto"
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    select_metric: Literal["overall_acc", "mean_acc", "macro_f1", "mAP"] = "overall_acc"  # on the val split
    grad_clip: float | None = None
    max_steps_per_epoch: int | None = None  # cap for smoke tests and budgets
    record_signals: bool = True  # per-sample p_gt, p_nn (and NAW weights) each epoch
    progress: bool = True
    tensorboard: bool = True
    report: bool = True  # report.md and its plots at the end (benchmarks switch it off)
    select_init: bool = True  # with model.init: the network before training (epoch 0) competes for best.pt
    cache_frozen: bool = False  # frozen stages' outputs (image and flip) computed once; needs no random augmentation
    threads: int | None = None  # PyTorch intra-op CPU threads (None: PyTorch's default); float sums differ by count
    # The NLA authors' reporting protocol (fer_nla.train.paper_protocol), never the default: data.test_split
    # scored every epoch, the best epoch by overall and by mean-class accuracy each picked on it. best.pt
    # is still chosen on validation; the test-selected figures are labelled "paper protocol" wherever shown.
    paper_protocol: bool = False
    # Flush subnormal floats to zero on the CPU (torch.set_flush_denormal) for the run. Off by default
    # (exact IEEE arithmetic); a pure speed-up where long CPU runs slow down as values reach ~1e-38:
    # measured 3x on the identity regime's cells (benchmarks/identity_regime.yaml turns it on).
    flush_denormal: bool = False


@dataclass
class Config:
    """One training run, saved as ``config.yaml`` in the run folder."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# -- keys and values ---------------------------------------------------------------------------
def valid_keys(cls: type = Config, prefix: str = "") -> list[str]:
    """Every dotted key of the config (``optim.lr``, ``loss.options``, ...)."""
    keys = []
    for f in dataclasses.fields(cls):
        hint = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(hint):
            keys += valid_keys(hint, f"{prefix}{f.name}.")
        else:
            keys.append(f"{prefix}{f.name}")
    return keys


def _unknown_key(key: str, where: str) -> InputError:
    close = difflib.get_close_matches(key, valid_keys(), n=1, cutoff=0.5)
    leaf = difflib.get_close_matches(key.rsplit(".", 1)[-1], [k.rsplit(".", 1)[-1] for k in valid_keys()], n=1)
    if not close and leaf:
        close = [k for k in valid_keys() if k.endswith("." + leaf[0])][:1]
    hint = f"; did you mean {close[0]!r}?" if close else f"; valid keys: {', '.join(valid_keys())}"
    return InputError(f"{where}unknown config key {key!r}{hint}")


def set_key(config: Config, key: str, value: Any, *, where: str = "") -> None:
    """Set the dotted ``key`` to ``value``, converted to its declared type
    (:func:`fer_nla.values.convert`).

    Keys under a free mapping (``loss.options.lam_a``) set one entry of that mapping.
    """
    parts = key.split(".")
    node: Any = config
    for i, part in enumerate(parts):
        if not dataclasses.is_dataclass(node):
            raise _unknown_key(key, where)
        names = {f.name for f in dataclasses.fields(node)}
        if part not in names:
            raise _unknown_key(key, where)
        hint = typing.get_type_hints(type(node))[part]
        if dataclasses.is_dataclass(hint):
            node = getattr(node, part)
            continue
        rest = parts[i + 1:]
        if rest:
            if typing.get_origin(hint) is not dict:
                raise _unknown_key(key, where)
            mapping = getattr(node, part)
            for sub in rest[:-1]:
                mapping = mapping.setdefault(sub, {})
            mapping[rest[-1]] = value
            return
        try:
            setattr(node, part, convert(value, hint, name=key))
        except InputError as err:
            raise InputError(f"{where}{err}") from None
        return
    raise InputError(f"{where}{key} is a section; set one of its keys, e.g. {valid_keys(type(node), key + '.')[0]}")


def parse_overrides(items: Iterable[str]) -> list[tuple[str, Any]]:
    """``["optim.lr=3e-4", "train.deterministic=false"]`` -> ``[(key, value), ...]`` (values
    read as YAML scalars, so ``null``, numbers and lists work)."""
    pairs = []
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"override {item!r} must look like section.key=value (e.g. optim.lr=3e-4)")
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        pairs.append((key.strip(), value))
    return pairs


# -- files -------------------------------------------------------------------------------------
def _flatten(mapping: Mapping[str, Any], lines: Mapping[str, int], *, prefix: str = "") -> list[tuple[str, Any, int]]:
    """Leaves of a YAML mapping as ``(dotted key, value, line)``; sections are recursed into,
    free mappings (``options``) kept whole."""
    out = []
    free = {k for k in valid_keys() if typing.get_origin(_hint_of(k)) is dict}
    for key, value in mapping.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping) and dotted not in free:
            out += _flatten(value, lines, prefix=dotted + ".")
        else:
            out.append((dotted, value, lines.get(dotted, 0)))
    return out


def _hint_of(key: str) -> Any:
    cls: Any = Config
    hint: Any = None
    for part in key.split("."):
        hint = typing.get_type_hints(cls)[part]
        cls = hint
    return hint


def _key_lines(node: yaml.Node, prefix: str = "") -> dict[str, int]:
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            dotted = f"{prefix}{key_node.value}"
            lines[dotted] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, dotted + "."))
    return lines


def read_yaml_sections(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """A YAML file's top-level mapping and the line of every dotted key (for error messages)."""
    text = path.read_text()
    try:
        data = yaml.safe_load(text) or {}
        lines = _key_lines(yaml.compose(text)) if data else {}
    except yaml.YAMLError as err:
        raise InputError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, Mapping):
        raise InputError(f"{path}: expected a mapping of sections (data:, model:, ...) at the top level")
    return dict(data), lines


def apply_mapping(config: Config, data: Mapping[str, Any], *, lines: Mapping[str, int] | None = None, where: str = "") -> None:
    """Set every leaf of the nested mapping ``data`` (a config file's sections) on ``config``;
    errors name ``where`` and the key's line."""
    for key, value, line in _flatten(data, lines or {}):
        set_key(config, key, value, where=f"{where}:{line}: " if where else "")


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> Config:
    """Defaults, then the YAML file at ``path`` (if any), then ``key=value`` overrides; validated."""
    config = Config()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"config file {path} does not exist; see configs/ for examples")
        data, lines = read_yaml_sections(path)
        apply_mapping(config, data, lines=lines, where=str(path))
    for key, value in parse_overrides(overrides):
        set_key(config, key, value, where="command line: ")
    apply_dataset_defaults(config)
    validate(config)
    return config


# The quick start's size of the embedded synthetic set (its reader's default is 5000 per split):
# 2000 faces train 4 epochs of ResNet-18 to ~70% validation accuracy in about a minute on 2 CPU cores.
SYNTHETIC_DEFAULT_OPTIONS: dict[str, Any] = {"num_samples": 2000}


def apply_dataset_defaults(config: Config) -> None:
    """Fill ``data.options`` the user left unset with the defaults of the chosen dataset, so
    that ``config.yaml`` shows every option the run used."""
    if config.data.dataset == "synthetic":
        config.data.options = {**SYNTHETIC_DEFAULT_OPTIONS, **config.data.options}


def config_from_dict(data: Mapping[str, Any]) -> Config:
    """A config from its saved form (``config.yaml`` or a checkpoint's ``config``)."""
    config = Config()
    for key, value, _ in _flatten(data, {}):
        set_key(config, key, value, where="saved config: ")
    apply_dataset_defaults(config)
    validate(config)
    return config


def save_config(config: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML (the run folder's ``config.yaml``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return path


MAX_EPOCHS = 100_000  # per-sample signals hold [epochs, N]: a typo like 1e8 must not allocate gigabytes


def _fold_ok(fold: str) -> bool:
    from fer_nla.data.split import parse_fold

    try:
        parse_fold(fold)
    except ValueError:
        return False
    return True


def validate(config: Config) -> None:
    """Check values that types alone do not; raise :class:`InputError` naming the key."""
    from fer_nla.methods import available as available_losses

    checks = [
        (1 <= config.train.epochs <= MAX_EPOCHS, f"train.epochs must lie in 1..{MAX_EPOCHS}"),
        (0 <= config.train.seed < 2**32, "train.seed must be an integer in 0..4294967295"),
        (config.train.batch_size >= 1, "train.batch_size must be at least 1"),
        (config.train.eval_batch_size >= 1, "train.eval_batch_size must be at least 1"),
        (0.0 < config.data.val_fraction < 1.0, "data.val_fraction must lie strictly between 0 and 1"),
        (config.data.image_size >= 16, "data.image_size must be at least 16 pixels"),
        (0.0 <= config.data.teacher_weight <= 1.0, "data.teacher_weight must lie in [0, 1]"),
        (config.data.num_workers >= 0, "data.num_workers must be 0 or more"),
        (math.isfinite(config.optim.lr) and config.optim.lr > 0, "optim.lr must be a finite number above 0"),
        (math.isfinite(config.optim.weight_decay) and config.optim.weight_decay >= 0,
         "optim.weight_decay must be a finite number, 0 or more"),
        (math.isfinite(config.optim.momentum) and config.optim.momentum >= 0, "optim.momentum must be 0 or more"),
        (0.0 < config.optim.gamma <= 1.0, "optim.gamma must lie in (0, 1]"),
        (config.data.train_subset is None or config.data.train_subset >= 2, "data.train_subset must be at least 2"),
        (config.data.train_fold is None or _fold_ok(config.data.train_fold),
         f"data.train_fold={config.data.train_fold!r}: write K/N with N >= 2 and K in 1..N (1/2: the first half)"),
        (config.train.max_steps_per_epoch is None or config.train.max_steps_per_epoch >= 1, "train.max_steps_per_epoch must be at least 1"),
        (config.model.init is None or bool(config.model.init.strip()),
         "model.init is empty: set it to builtin:NAME or a checkpoint file, or to null to train from scratch"),
        (not (config.model.init and config.model.backbone_weights),
         f"model.init={config.model.init} starts the whole network from that checkpoint, so model.backbone_weights="
         f"{config.model.backbone_weights} would be ignored: set only one of them (model.backbone_weights=null)"),
        (config.model.frozen_stages >= -1, "model.frozen_stages must be -1 (none), 0 (the stem) or a stage number"),
        (not config.train.paper_protocol or bool(config.data.test_split),
         ("train.paper_protocol scores a test split every epoch: name it (data.test_split=test), or leave the "
          "protocol off (train.paper_protocol=false)")),
        (set(config.data.test_source) <= {"dataset", "root", "labels", "options"},
         f"data.test_source takes dataset, root, labels and options; got {', '.join(sorted(config.data.test_source))}"),
    ]
    for ok, message in checks:
        if not ok:
            raise InputError(message)
    if config.train.cache_frozen:
        from fer_nla.freeze import check_cacheable

        d = config.data
        check_cacheable(frozen_stages=config.model.frozen_stages, augment=d.augmentation)
    if config.loss.name not in available_losses():
        close = difflib.get_close_matches(config.loss.name, available_losses(), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise InputError(f"loss.name {config.loss.name!r} is not a loss; {hint}available: {', '.join(available_losses())}")
