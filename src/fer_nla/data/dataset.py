"""The one kind of dataset every reader returns: an index of samples, decoded lazily.

A :class:`FERDataset` holds, per sample, an identifier the user can find again (a file
path, or ``file.csv:row``), the training target, optionally the clean target where it is
known (``-1`` where it is not) and optionally soft targets (votes turned into
probabilities). Images are decoded on access by an :class:`ImageSource`, never all held
in memory, so 300k AffectNet rows cost only their paths and labels.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from PIL import Image


class ImageSource(Protocol):
    """Decodes sample ``i`` to an RGB ``PIL.Image``. Must be picklable (DataLoader workers)."""

    def __call__(self, index: int) -> Image.Image: ...


class IndexedSource:
    """The images of ``base`` at ``indices``: how a subset shares its parent's images."""

    def __init__(self, base: ImageSource, indices: np.ndarray) -> None:
        self.base = base
        self.indices = np.asarray(indices, dtype=np.int64)

    def __call__(self, index: int) -> Image.Image:
        return self.base(int(self.indices[index]))


class FERDataset:
    """Samples of one split in the canonical label space (see :mod:`fer_nla.labels`).

    ``__getitem__`` returns ``(image, target, index)``: the image after ``transform`` (a
    ``PIL.Image`` when there is none), the target as an ``int`` (or a float32 ``[C]`` array of
    probabilities when ``target_mode == "soft"``, which PyTorch's ``default_collate`` stacks
    into a tensor) and the sample's index in this dataset, which the engine uses to record
    per-sample signals. A map-style dataset for ``torch.utils.data.DataLoader`` that needs no
    PyTorch itself, so the readers work in an install without it.
    """

    def __init__(
        self,
        *,
        samples: Sequence[str],
        targets: Sequence[int] | np.ndarray,
        class_names: Sequence[str],
        source: ImageSource,
        clean_targets: Sequence[int] | np.ndarray | None = None,
        soft_targets: np.ndarray | None = None,
        transform: Callable[[Image.Image], Any] | None = None,
        name: str = "",
        split: str = "",
        info: Mapping[str, Any] | None = None,
    ) -> None:
        self.samples = list(samples)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.class_names = tuple(class_names)
        self.source = source
        self.clean_targets = None if clean_targets is None else np.asarray(clean_targets, dtype=np.int64)
        self.soft_targets = None if soft_targets is None else np.asarray(soft_targets, dtype=np.float32)
        self.transform = transform
        self.name = name
        self.split = split
        self.info: dict[str, Any] = dict(info or {})  # how it was built: label mode, drops, ...
        self.target_mode = "hard"
        self._validate()

    # -- shape checks -------------------------------------------------------------------
    def _validate(self) -> None:
        n = len(self.samples)
        if self.targets.shape != (n,):
            raise ValueError(f"targets has shape {self.targets.shape}, expected ({n},)")
        c = len(self.class_names)
        if n and (self.targets.min() < 0 or self.targets.max() >= c):
            raise ValueError(f"targets must lie in [0, {c}); got {self.targets.min()}..{self.targets.max()}")
        if self.clean_targets is not None and self.clean_targets.shape != (n,):
            raise ValueError(f"clean_targets has shape {self.clean_targets.shape}, expected ({n},)")
        if self.soft_targets is not None and self.soft_targets.shape != (n, c):
            raise ValueError(f"soft_targets has shape {self.soft_targets.shape}, expected ({n}, {c})")

    # -- views sharing the index ----------------------------------------------------------
    def subset(self, indices: Sequence[int] | np.ndarray) -> FERDataset:
        """The samples at ``indices`` (in that order), sharing this dataset's images."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"subset indices must lie in [0, {n}); got {idx.min()}..{idx.max()}")
        idx = idx % max(n, 1)
        base = self.source
        if isinstance(base, IndexedSource):  # compose instead of nesting wrappers
            source: ImageSource = IndexedSource(base.base, base.indices[idx])
        else:
            source = IndexedSource(base, idx)
        view = copy.copy(self)
        view.samples = [self.samples[i] for i in idx]
        view.targets = self.targets[idx]
        view.clean_targets = None if self.clean_targets is None else self.clean_targets[idx]
        view.soft_targets = None if self.soft_targets is None else self.soft_targets[idx]
        view.source = source
        view.info = dict(self.info)
        return view

    def with_transform(self, transform: Callable[[Image.Image], Any] | None) -> FERDataset:
        """The same samples with another transform (the index and images are shared)."""
        view = copy.copy(self)
        view.transform = transform
        return view

    # -- Dataset protocol ---------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.samples)

    def load_image(self, index: int) -> Image.Image:
        """The decoded RGB image of sample ``index``, before any transform."""
        return self.source(index)

    def __getitem__(self, index: int) -> tuple[Any, Any, int]:
        image = self.load_image(index)
        if self.transform is not None:
            image = self.transform(image)
        if self.target_mode == "soft":
            if self.soft_targets is None:
                raise ValueError(f"{self.name or 'dataset'} has no soft targets")
            return image, np.array(self.soft_targets[index], dtype=np.float32), index
        return image, int(self.targets[index]), index

    # -- facts --------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> np.ndarray:
        """Number of samples per class of the training target, in class order."""
        return np.bincount(self.targets, minlength=self.num_classes)

    def noise_rate(self) -> float | None:
        """Share of samples whose target differs from the known clean target, or None."""
        if self.clean_targets is None:
            return None
        known = self.clean_targets >= 0
        if not known.any():
            return None
        return float((self.targets[known] != self.clean_targets[known]).mean())
