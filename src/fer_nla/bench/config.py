"""The robustness benchmark's config: one training recipe for every cell, plus the grid.

A bench file is an ordinary training config (``data:``, ``model:``, ``optim:``, ``train:``;
``loss:`` is ignored, the grid sets it) with a ``bench:`` section. ``--quick`` applies the
``bench.quick`` overrides (any ``section.key``, e.g. ``train.epochs``) on top. The same recipe
and budget serve every method and setting; loss hyper-parameters are the published defaults
(``fer_nla.losses``; methods by name: ``fer_nla.methods``) unless ``bench.loss_options`` names
others, again for all settings alike.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fer_nla.config import (
    Config,
    apply_dataset_defaults,
    apply_mapping,
    parse_overrides,
    read_yaml_sections,
    set_key,
    validate,
)
from fer_nla.errors import InputError
from fer_nla.methods import available as available_losses
from fer_nla.values import convert

METHODS: tuple[str, ...] = ("ce", "label_smoothing", "focal", "class_balanced", "logit_adjusted", "gce", "sce", "nla")
NOISY_SETTINGS: tuple[str, ...] = ("single_vote", "symmetric_10", "symmetric_20", "symmetric_30", "imbalance_50", "imbalance_100")
CLEAN_SETTING = "clean"  # the reference: CE on majority labels
SETTINGS: tuple[str, ...] = (*NOISY_SETTINGS, CLEAN_SETTING)


@dataclass
class GridSpec:
    """What to run: ``methods`` x ``settings`` x ``seeds`` (and CE on ``clean`` when
    ``clean_reference``); where to test (``test_split`` with ``test_labels``); how many worker
    processes share the CPU (``workers``, each with ``threads`` intra-op threads).

    ``variants``: more rows, run like methods in every setting and seed: a label mapped to
    ``{"loss": NAME, "options": {...}}`` (NLA with its best measured options, say).
    ``label_sets``: settings of the user's own: a name mapped to a CSV of labels for the pool's
    images (:mod:`fer_nla.bench.label_sets`); list the name in ``settings`` to run it.
    The pretrained regime only: ``start`` ``pretrain`` (half-P pretraining, issue 15) or
    ``backbone`` (the recipe's ``model.backbone_weights`` as it is: a network that never saw an
    expression label); ``paper_protocol``: every cell also scores the test split after each epoch
    (``train.paper_protocol``) and the tables give the test-selected figures beside the honest ones.
    ``imbalance_budget``: the imbalance settings keep at most ``data.train_subset`` faces (their
    exact profile scaled down) instead of as many as the pool allows, so every setting costs alike."""

    methods: list[str] = field(default_factory=lambda: list(METHODS))
    settings: list[str] = field(default_factory=lambda: list(NOISY_SETTINGS))
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    clean_reference: bool = True
    test_split: str = "valid"
    test_labels: str = "majority"
    workers: int = 1
    threads: int = 0  # 0: the machine's cores divided among the workers
    loss_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    label_sets: dict[str, str] = field(default_factory=dict)
    start: str = "pretrain"
    paper_protocol: bool = False
    imbalance_budget: bool = False  # imbalance settings keep at most data.train_subset faces, same profile

    def rows(self) -> list[str]:
        """The row labels: the methods, then the variants."""
        return [*self.methods, *self.variants]

    def loss_of(self, row: str) -> tuple[str, dict[str, Any]]:
        """The loss name and options a row trains with (a method: ``loss_options``; a variant: its own)."""
        if row in self.variants:
            return str(self.variants[row]["loss"]), dict(self.variants[row].get("options") or {})
        return row, dict(self.loss_options.get(row, {}))

    def cells(self) -> list[tuple[str, str, int]]:
        """``(row, setting, seed)`` in run order: seed-major, so a stopped grid has whole seeds."""
        out = [(m, s, seed) for seed in self.seeds for s in self.settings for m in self.rows()]
        if self.clean_reference:
            out += [("ce", CLEAN_SETTING, seed) for seed in self.seeds]
        return out


@dataclass
class BenchConfig:
    recipe: Config
    grid: GridSpec

    def to_dict(self) -> dict[str, Any]:
        recipe = self.recipe.to_dict()
        recipe.pop("loss")
        return {**recipe, "bench": dataclasses.asdict(self.grid)}


def _set_grid(grid: GridSpec, key: str, value: Any, where: str) -> None:
    name = key.split(".", 1)[1] if "." in key else ""
    head, _, rest = name.partition(".")
    if head == "quick" and rest:  # flat dotted keys: bench.quick.train.epochs=2
        grid.quick[rest] = value
        return
    if head == "label_sets" and rest:  # bench.label_sets.mine=/path/to/labels.csv
        grid.label_sets[rest] = str(value)
        return
    if head == "loss_options" and rest:  # bench.loss_options.focal.gamma=1
        method, _, option = rest.partition(".")
        if not option:
            raise InputError(f"{where}{key}: name the option, e.g. bench.loss_options.focal.gamma=1")
        grid.loss_options.setdefault(method, {})[option] = value
        return
    if head in ("methods", "settings", "seeds", "clean_reference", "workers", "threads", "test_split", "test_labels",
                "start", "paper_protocol", "imbalance_budget"):
        try:
            setattr(grid, head, convert(value, typing.get_type_hints(GridSpec)[head], name=key))
        except InputError as err:
            raise InputError(f"{where}{err}") from None
    elif head in ("loss_options", "quick", "variants", "label_sets"):
        if not isinstance(value, dict):
            raise InputError(f"{where}{key} must be a mapping")
        setattr(grid, head, dict(value))
    else:
        fields = ", ".join(f"bench.{f.name}" for f in dataclasses.fields(GridSpec))
        raise InputError(f"{where}unknown bench key {key!r}; valid: {fields}")


def load_bench_config(path: str | Path | None, overrides: list[str] = (), *, quick: bool = False) -> BenchConfig:  # type: ignore[assignment]
    """The file's recipe and grid, then ``--quick``'s overrides, then the command line's."""
    recipe, grid = Config(), GridSpec()
    recipe.data.dataset, recipe.model.arch = "ferplus", "cnn_small"
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"bench config {path} does not exist; see benchmarks/ferplus_cpu.yaml")
        data, lines = read_yaml_sections(path)
        bench = data.pop("bench", {}) or {}
        data.pop("loss", None)
        apply_mapping(recipe, data, lines=lines, where=str(path))
        for key, value in bench.items():
            _set_grid(grid, f"bench.{key}", value, f"{path}:{lines.get('bench.' + key, 0)}: ")
    sources = [("bench.quick: ", k, v) for k, v in grid.quick.items()] if quick else []
    sources += [("command line: ", k, v) for k, v in parse_overrides(overrides)]
    for where, key, value in sources:
        if key.startswith("bench."):
            _set_grid(grid, key, value, where)
        else:
            set_key(recipe, key, value, where=where)
    apply_dataset_defaults(recipe)
    validate(recipe)
    check_grid(grid)
    return BenchConfig(recipe=recipe, grid=grid)


def check_grid(grid: GridSpec) -> None:
    unknown = [m for m in grid.methods if m not in available_losses()]
    if unknown:
        raise InputError(f"bench.methods: unknown {', '.join(unknown)}; available: {', '.join(available_losses())}")
    bad = [s for s in grid.settings if s not in SETTINGS and s not in grid.label_sets]
    if bad:
        raise InputError(f"bench.settings: unknown {', '.join(bad)}; choose from {', '.join(SETTINGS)}, or name a "
                         "label set of your own in bench.label_sets")
    taken = sorted(set(grid.label_sets) & set(SETTINGS))
    if taken:
        raise InputError(f"bench.label_sets: {', '.join(taken)} is a built-in setting's name; give your labels another name")
    if grid.start not in ("pretrain", "backbone"):
        raise InputError(f"bench.start must be pretrain (half-P pretraining) or backbone (model.backbone_weights as "
                         f"it is); got {grid.start!r}")
    for label, variant in grid.variants.items():
        if label in grid.methods or not isinstance(variant, dict) or variant.get("loss") not in available_losses() \
                or not isinstance(variant.get("options") or {}, dict) or set(variant) - {"loss", "options"}:
            raise InputError(f"bench.variants.{label}: expected {{loss: NAME, options: {{...}}}} with a known loss "
                             f"({', '.join(available_losses())}) and a label that is not also in bench.methods")
    if not grid.seeds or not grid.methods or not grid.settings:
        raise InputError("bench.methods, bench.settings and bench.seeds must each name at least one entry")
    if grid.workers < 1 or grid.threads < 0:
        raise InputError("bench.workers must be at least 1 and bench.threads 0 (auto) or more")
    if grid.test_split.lower() == "train":
        raise InputError("bench.test_split must not be the training split")
    for method, options in grid.loss_options.items():
        if method not in available_losses() or not isinstance(options, dict):
            raise InputError(f"bench.loss_options.{method}: expected a loss name mapped to its options")
