"""Record (or re-record) a checkpoint's ``scoring`` entry from the run that trained it: the class
prior of its training targets, the logit offset its loss added (a logit-adjusted loss's
``tau * log pi``), the temperature fitted on its validation split at the training prior, and
optionally a default operating point. What ``fer-nla train`` writes with every checkpoint, for a
checkpoint written before an entry existed or one whose default prior is chosen afterwards
(``scripts/make_builtin.py``, ``benchmarks/balanced_candidates.py``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from fer_nla.checkpoint import load_checkpoint, read_meta, save_checkpoint


def record_scoring(checkpoint: str | Path, *, data_root: str | Path | None = None,
                   default_tau: float | None = None) -> dict[str, Any]:
    """Rewrite ``checkpoint``'s ``scoring`` entry (atomically; the weights stay as they are) from
    the data its config names (``data_root`` replaces the config's ``data.root``, for a run made
    on another machine) and return the figures: ``class_prior`` ``[C]``, ``logit_offset`` ``[C]``
    or ``None``, ``temperature``, ``ece`` and ``ece_calibrated`` (15 bins, on ``num_faces``
    validation faces, at the training prior) and ``default_prior``. ``default_tau`` (0..1) sets the
    default operating point to the proportions ``pi ** (1 - tau)``
    (:func:`fer_nla.inference.scoring.prior_power`); ``None`` keeps the checkpoint's default.
    Raises :class:`~fer_nla.errors.InputError` for ``default_tau`` outside [0, 1], a checkpoint
    without a run config or data that cannot be read. A last.pt keeps its resume states. A run
    distilled from teachers (``data.teachers``) keeps the class prior ``fer-nla train`` recorded
    (the mean of its mixed targets), so the teachers are not run again."""
    from torch.utils.data import DataLoader

    from fer_nla.config import config_from_dict
    from fer_nla.errors import InputError
    from fer_nla.inference.backends import load_backend
    from fer_nla.inference.classify import loader_logits
    from fer_nla.inference.scoring import OperatingPoint, adjusted_probabilities, calibration_report, prior_power
    from fer_nla.train.run_data import build_run_data
    from fer_nla.train.step import config_method

    checkpoint = Path(checkpoint)
    if default_tau is not None and not 0.0 <= default_tau <= 1.0:
        raise InputError(f"default_tau={default_tau}: give a prior power between 0 (train) and 1 (uniform)")
    meta, payload = read_meta(checkpoint), load_checkpoint(checkpoint)
    if not meta.config:
        raise InputError(f"{checkpoint} records no training run config, so its training data is unknown; "
                         "record its scoring where it was trained")
    config = config_from_dict(meta.config)
    if data_root is not None:
        config.data.root = str(Path(data_root).resolve())
    recorded = config.data.teachers and meta.class_prior is not None
    if recorded:  # a distilled run's prior is its mixed targets' mean, which fit recorded: no teachers rerun
        config.data.teachers = []
    data = build_run_data(config.data, seed=config.train.seed, log=lambda line: None)
    offset = config_method(config, class_counts=data.class_counts(), num_samples=len(data.train_indices)).logit_offset()
    backend = load_backend(str(checkpoint), backend="torch", device="cpu")
    val = data.val.with_transform(backend.preprocess)
    logits, targets = loader_logits(backend, ((x, y) for x, y, _ in DataLoader(val, batch_size=256)))
    figures = calibration_report(adjusted_probabilities(logits, OperatingPoint.plain(logits.shape[1])), targets,
                                 logit_offset=offset)
    prior = tuple(meta.class_prior) if recorded else data.class_prior()
    default = meta.default_prior if default_tau is None else prior_power(prior, default_tau)
    meta = replace(meta, class_prior=prior, temperature=figures["temperature"],
                   logit_offset=None if offset is None else tuple(offset), default_prior=default)
    save_checkpoint(checkpoint, meta, state_dict=payload["state_dict"], resume=payload.get("resume"))
    return {"class_prior": list(prior), "logit_offset": offset, "default_prior": default,
            "num_faces": int(len(targets)), **figures}
