"""A run resumed from signals recorded before the uniform view existed keeps no partial uniform
view (the audit then reads the trained view and says so), and the uniform shift is Bayes' rule."""

from __future__ import annotations

import numpy as np
import torch

from fer_nla.train.signals import SignalRecorder, load_signals
from fer_nla.train.step import StepSignals, uniform_shift


def recorder(with_uniform: bool) -> SignalRecorder:
    return SignalRecorder(num_samples=4, epochs=3, train_indices=np.arange(4), targets=np.array([0, 1, 1, 0]),
                          sample_ids=[f"s{i}" for i in range(4)], with_weights=False, device=torch.device("cpu"),
                          with_uniform=with_uniform)


def one_epoch(rec: SignalRecorder, epoch: int) -> None:
    rec.start_epoch()
    p = torch.tensor([0.9, 0.2, 0.6, 0.7])
    rec.add(StepSignals(torch.arange(4), p, 1 - p, torch.tensor([0, 0, 1, 0]), None, p > 0.5,
                        p_gt_uniform=p / 2, p_nn_uniform=1 - p / 2, prediction_uniform=torch.tensor([1, 0, 1, 1])))
    rec.end_epoch(epoch)


def test_a_resume_from_old_signals_records_no_partial_uniform_view(tmp_path):
    old = recorder(with_uniform=False)
    one_epoch(old, 0)
    old.save(tmp_path / "signals.npz")
    resumed = recorder(with_uniform=True)
    resumed.restore(tmp_path / "signals.npz", epochs_done=1)
    one_epoch(resumed, 1)
    saved = load_signals(resumed.save(tmp_path / "signals.npz"))
    assert not any(key.endswith("_uniform") for key in saved) and saved["p_gt"].shape == (2, 4)
    fresh = recorder(with_uniform=True)
    one_epoch(fresh, 0)
    rows = load_signals(fresh.save(tmp_path / "fresh.npz"))
    np.testing.assert_allclose(rows["p_gt_uniform"][0], [0.45, 0.1, 0.3, 0.35], atol=1e-3)
    assert rows["prediction_uniform"][0].tolist() == [1, 0, 1, 1]


def test_the_uniform_shift_divides_the_prior_out_and_adds_the_loss_offset():
    prior = np.array([0.5, 0.3, 0.2, 0.0])
    shift = uniform_shift(prior, None, device=torch.device("cpu")).numpy()
    np.testing.assert_allclose(shift[:3], -np.log(prior[:3]), rtol=1e-6)
    assert shift[3] == 0.0
    with_offset = uniform_shift(prior, [1.0, 2.0, 3.0, 4.0], device=torch.device("cpu")).numpy()
    np.testing.assert_allclose(with_offset - shift, [1, 2, 3, 4], rtol=1e-6)
