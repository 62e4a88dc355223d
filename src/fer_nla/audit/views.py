"""Which probabilities the audit reads: as the network gave them, or with the training class
prior divided out (the uniform view, what ``fer-nla audit`` reads by default).

Training records each label's ``p_gt``, ``p_nn`` and predicted class twice
(:mod:`fer_nla.train.signals`): from the network's softmax, and at the uniform prior (the
training targets' class shares divided out by Bayes' rule, as ``fer-nla predict --prior
uniform`` does). A model trained on imbalanced labels pulls rare faces towards the common
classes; read as trained, that pull looks like wrong rare labels. Measured on FERPlus with
planted noise (``tests/audit/test_ferplus_planted.py``), the uniform view halves the clean rare
labels flagged.
"""

from __future__ import annotations

import numpy as np

UNIFORM_KEYS: tuple[str, ...] = ("p_gt_uniform", "p_nn_uniform", "prediction_uniform")
VIEWS: tuple[str, ...] = ("uniform", "train")


def signals_at_prior(signals: dict[str, np.ndarray], prior: str) -> tuple[dict[str, np.ndarray], str]:
    """The signals to score and the view they are in: with ``prior="uniform"`` the arrays of
    :data:`UNIFORM_KEYS` (``[epochs, N]``) stand in for ``p_gt``, ``p_nn`` and ``prediction``;
    signals recorded without them (older runs) and ``prior="train"`` give the network's own
    softmax (for a logit-adjusted or re-weighted loss, already moved towards balance), view
    ``"train"``. Raises ``ValueError`` for a view not in :data:`VIEWS` or uniform arrays whose
    shape is not ``p_gt``'s."""
    if prior not in VIEWS:
        raise ValueError(f"prior={prior!r} is not one of {', '.join(VIEWS)}")
    if prior == "uniform" and all(key in signals for key in UNIFORM_KEYS):
        shapes = [signals[key].shape for key in UNIFORM_KEYS]
        if any(shape != signals["p_gt"].shape for shape in shapes):
            raise ValueError(f"the uniform-prior signals hold arrays of shapes {shapes}, not {signals['p_gt'].shape}")
        return {**signals, "p_gt": signals["p_gt_uniform"], "p_nn": signals["p_nn_uniform"],
                "prediction": signals["prediction_uniform"]}, "uniform"
    return signals, "train"
