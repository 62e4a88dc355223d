"""Per-sample training signals, one row per epoch, for plots and the label audit.

Each step already has what is needed (the logits, and the per-sample weights a method returns
in its :class:`~fer_nla.methods.MethodOutput`: NLA's NAW weights), so recording costs no
forward. Values are scattered into device buffers indexed by the sample's index in the
training split (as ``build_dataset(..., split=train)`` numbers it), moved to the host once per
epoch, and saved compactly as ``signals.npz``:

``p_gt``, ``p_nn``, ``weights`` (methods with ``sample_weights``, i.e. NLA): float16
``[epochs, N]``, NaN where a sample was not trained on in that epoch; ``correct``: bool
``[epochs, N]`` (the given label held the top probability); ``prediction``: int8 ``[epochs, N]`` (-1 unseen); ``targets`` ``[N]``,
``in_train`` ``[N]`` (False for samples carved out for validation), ``sample_ids`` ``[N]``.
``p_gt_uniform``, ``p_nn_uniform`` (float16) and ``prediction_uniform`` (int8), where the step
gives them: the same at the uniform prior (the training labels' class prior divided out of the
softmax, :func:`fer_nla.train.step.uniform_shift`), what the label audit reads by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from fer_nla.atomic import atomic_write
from fer_nla.audit.views import UNIFORM_KEYS
from fer_nla.distributed import all_reduce_tensor
from fer_nla.train.step import StepSignals

FLOAT_KEYS = ("p_gt", "p_nn", "weights", "p_gt_uniform", "p_nn_uniform")


class SignalRecorder:
    """Collects :class:`StepSignals` during an epoch and keeps one row per finished epoch."""

    def __init__(
        self,
        *,
        num_samples: int,
        epochs: int,
        train_indices: np.ndarray,
        targets: np.ndarray,
        sample_ids: list[str],
        with_weights: bool,
        device: torch.device,
        with_uniform: bool = False,
    ) -> None:
        self.num_samples, self.epochs, self.device = num_samples, epochs, device
        self.with_weights = with_weights
        self.index_map = torch.as_tensor(np.asarray(train_indices, dtype=np.int64), device=device)
        self.targets = np.asarray(targets, dtype=np.int64)
        self.in_train = np.zeros(num_samples, dtype=bool)
        self.in_train[np.asarray(train_indices, dtype=np.int64)] = True
        self.sample_ids = np.asarray(sample_ids, dtype=str)
        keys = ["p_gt", "p_nn"] + (["weights"] if with_weights else []) + (list(UNIFORM_KEYS[:2]) if with_uniform else [])
        self.rows: dict[str, np.ndarray] = {k: np.full((epochs, num_samples), np.nan, np.float16) for k in keys}
        self.rows["correct"] = np.zeros((epochs, num_samples), dtype=bool)
        self.rows["prediction"] = np.full((epochs, num_samples), -1, dtype=np.int8)
        if with_uniform:
            self.rows["prediction_uniform"] = np.full((epochs, num_samples), -1, dtype=np.int8)
        self.done = 0
        self._buffers: dict[str, torch.Tensor] = {}

    def start_epoch(self) -> None:
        n, dev = self.num_samples, self.device
        self._buffers = {k: torch.zeros(n, dtype=torch.float32, device=dev) for k in (*self.rows, "count")}

    def add(self, signals: StepSignals) -> None:
        """Accumulate one batch (no host synchronisation)."""
        idx = self.index_map[signals.index.to(self.device)]
        b = self._buffers
        b["p_gt"].index_add_(0, idx, signals.p_gt.float())
        b["p_nn"].index_add_(0, idx, signals.p_nn.float())
        if self.with_weights and signals.weights is not None:
            b["weights"].index_add_(0, idx, signals.weights.float())
        if signals.correct is not None:
            b["correct"].index_add_(0, idx, signals.correct.float())
        b["prediction"].index_copy_(0, idx, signals.prediction.float() + 1.0)
        if "prediction_uniform" in b and signals.prediction_uniform is not None:
            b["p_gt_uniform"].index_add_(0, idx, signals.p_gt_uniform.float())
            b["p_nn_uniform"].index_add_(0, idx, signals.p_nn_uniform.float())
            b["prediction_uniform"].index_copy_(0, idx, signals.prediction_uniform.float() + 1.0)
        b["count"].index_add_(0, idx, torch.ones_like(idx, dtype=torch.float32))

    def end_epoch(self, epoch: int) -> None:
        """Reduce the epoch over ranks (means where a sample was seen twice) into row ``epoch``."""
        b = self._buffers
        for key in b:
            if key.startswith("prediction") and dist.is_available() and dist.is_initialized():
                dist.all_reduce(b[key], op=dist.ReduceOp.MAX)
            elif not key.startswith("prediction"):
                all_reduce_tensor(b[key])
        count = b["count"].cpu().numpy()
        seen = count > 0
        for key in self.rows:
            values = b[key].cpu().numpy()
            if key in FLOAT_KEYS:
                row = np.full(self.num_samples, np.nan, np.float32)
                row[seen] = values[seen] / count[seen]
                self.rows[key][epoch] = row.astype(np.float16)
            elif key == "correct":
                self.rows[key][epoch] = seen & (values >= 0.5 * np.maximum(count, 1))
            else:
                self.rows[key][epoch] = (values - 1).astype(np.int8)
        self.done = epoch + 1
        self._buffers = {}

    def arrays(self) -> dict[str, Any]:
        out: dict[str, Any] = {k: v[: self.done] for k, v in self.rows.items()}
        out.update(targets=self.targets, in_train=self.in_train, sample_ids=self.sample_ids)
        return out

    def save(self, path: str | Path) -> Path:
        """Write ``signals.npz`` atomically (:func:`fer_nla.atomic.atomic_write`)."""
        with atomic_write(path) as handle:
            np.savez_compressed(handle, **self.arrays())
        return Path(path)

    def restore(self, path: str | Path, *, epochs_done: int) -> None:
        """Reload the rows of the first ``epochs_done`` epochs (resume)."""
        path = Path(path)
        if not path.is_file():
            return
        with np.load(path, allow_pickle=False) as data:
            if epochs_done > 0 and any(key in self.rows and key not in data.files for key in UNIFORM_KEYS):
                for key in UNIFORM_KEYS:  # recorded before the uniform view existed: a partial view would
                    self.rows.pop(key, None)  # silently drop its first epochs from the audit; keep none
            for key in self.rows:
                if key in data.files:
                    rows = data[key][:epochs_done]
                    self.rows[key][: len(rows)] = rows
        self.done = epochs_done


def load_signals(path: str | Path) -> dict[str, np.ndarray]:
    """The arrays of a run's ``signals.npz``."""
    with np.load(Path(path), allow_pickle=False) as data:
        return {key: data[key] for key in data.files}
