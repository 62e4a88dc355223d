"""The one Reader base: what every dataset reader is asked, checked once, before it reads a file.

A call ``build_dataset(name, root=..., split=..., labels=..., num_classes=..., seed=...,
skip_bad_images=..., **options)`` becomes a :class:`~fer_nla.data.sources.common.ReadRequest`;
the reader's :meth:`Reader.request` checks it against what the dataset declares (its label
modes, class counts, splits and root), with the dataset's own ``options`` that need no file,
and :meth:`Reader.build` reads the checked request with those options.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources.common import (
    ReadRequest,
    canonical_split,
    require_label_mode,
    require_num_classes,
    require_root,
)
from fer_nla.data.sources.listing import require_conflict_policy
from fer_nla.errors import InputError

# How a reader without a validation split of its own says where model selection takes its data.
CARVED_VALID = "model selection uses a part carved from 'train' (what training does with data.val_split=auto)"


@dataclass(frozen=True)
class ClassCounts:
    """The class counts a dataset can give (``allowed``) and the one it gives by default;
    ``dataset`` names it in the error (``"RAF-DB basic (7 classes)"``)."""

    allowed: tuple[int, ...]
    default: int
    dataset: str


class Reader:
    """A dataset format. A subclass declares ``name`` (the registry's name, which the no-root
    error shows), ``title`` (how label-mode errors name the dataset), ``expect`` (what ``root``
    should point at), its ``label_modes``, its ``classes`` when fixed (``None``: the data
    decides, and the reader checks ``num_classes`` itself) and, for a dataset without a
    ``valid`` split of its own, ``no_valid`` (why, as the error says it); it implements
    :meth:`build` (its own options are that method's keyword-only arguments, which the
    registry lists and converts by their annotations) and :meth:`splits`.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    expect: ClassVar[str] = ""
    label_modes: ClassVar[tuple[str, ...]] = ("majority",)
    classes: ClassVar[ClassCounts | None] = None
    no_valid: ClassVar[str | None] = None

    def request(self, given: ReadRequest, options: Mapping[str, Any]) -> ReadRequest:
        """``given`` checked in this order: the label mode, the class count (when ``classes`` is
        declared), the own ``options`` that need no file (:meth:`check_options`), the split, then
        the root (:meth:`root_path`).

        Raises:
            InputError: a label mode the dataset lacks, a class count it cannot give, a bad
                option, an unknown split or ``valid`` where the dataset has none, or a root
                missing or not what the reader reads.
        """
        require_label_mode(given.labels, dataset=self.title, allowed=self.label_modes)
        num_classes = given.num_classes
        if self.classes is not None:
            counts = self.classes
            num_classes = require_num_classes(
                num_classes, dataset=counts.dataset, allowed=counts.allowed, default=counts.default
            )
        self.check_options(options)
        split = canonical_split(given.split)
        if split == "valid" and self.no_valid is not None:
            raise InputError(f"{self.no_valid}; {CARVED_VALID}")
        return dataclasses.replace(given, root=self.root_path(given.root), split=split, num_classes=num_classes)

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Check the reader's own ``options`` (already of their declared types) where that needs
        no file; a reader without such checks has none.

        Raises:
            InputError: in a subclass, an option value the reader does not take.
        """

    def root_path(self, root: str | Path | None) -> Path | None:
        """``root`` as the absolute path this reader reads.

        Raises:
            InputError: no root given, or none at that path (saying what to pass).
        """
        return require_root(root, dataset=self.name, expect=self.expect)

    def build(self, request: ReadRequest, **options: Any) -> FERDataset:
        """One split of the dataset as a :class:`FERDataset`, from a checked ``request``.

        Raises:
            InputError: in a subclass, what is wrong with the files read.
        """
        raise NotImplementedError

    def splits(self, *, root: str | Path | None, **options: Any) -> tuple[str, ...]:
        """The splits the dataset at ``root`` declares, in train/valid/test order.

        Raises:
            InputError: in a subclass, a root that does not exist.
        """
        raise NotImplementedError


class ListingReader(Reader):
    """A reader of a label listing (a file naming each image and its label), with the options of
    :mod:`fer_nla.data.sources.listing`: ``conflicts`` and ``allow_split_overlap``."""

    def check_options(self, options: Mapping[str, Any]) -> None:
        """``conflicts``, when given, is a policy of :data:`~fer_nla.data.sources.listing.CONFLICT_POLICIES`.

        Raises:
            InputError: another ``conflicts``, naming the policies.
        """
        if "conflicts" in options:
            require_conflict_policy(options["conflicts"])
