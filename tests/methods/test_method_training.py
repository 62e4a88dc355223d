"""A method that needs feature maps, pooled features, sample indices and a head of its own,
trained by the real trainer (``fer_nla.train.fit``) on the synthetic data, resumed included."""

from __future__ import annotations

import json

import pytest
import torch
from probe import PROBE_NEEDS, ProbeMethod, Received

from fer_nla.checkpoint import load_checkpoint
from fer_nla.config import load_config
from fer_nla.methods import register_method
from fer_nla.methods.registry import REGISTRY
from fer_nla.models import build_model
from fer_nla.train.fit import fit

TINY = [
    "data.options.num_samples=48", "data.options.image_size=32", "data.image_size=32", "model.arch=cnn_small",
    "train.batch_size=16", "train.eval_batch_size=64", "train.progress=false", "optim.lr=1e-2",
    "train.report=false", "train.tensorboard=false", "loss.name=probe", "train.deterministic=true",
]
CHANNELS = 128  # cnn_small's last width; 32 px -> 4x4 maps after three 2x2 max-pools


class SimulatedKill(BaseException):
    """Stands for SIGKILL: not an Exception, so nothing in the run may swallow it."""


@pytest.fixture
def probe():
    """Registers the probe as ``loss.name=probe`` for one test; yields what it receives."""
    received = Received()

    def factory(*, num_samples: int) -> ProbeMethod:
        return ProbeMethod(num_samples, channels=CHANNELS, num_classes=7, received=received)

    register_method("probe", factory, needs=PROBE_NEEDS)
    try:
        yield received
    finally:
        REGISTRY.pop("probe")


def test_a_feature_method_gets_maps_features_and_indices_and_trains_its_own_head(tmp_path, probe):
    config = load_config(None, [*TINY, "train.epochs=2"])
    fit(config, tmp_path / "run", log=lambda _m: None)
    (method,) = probe.methods
    assert probe.maps == [(16, CHANNELS, 4, 4)] * 6  # 3 batches of 16 a epoch, 2 epochs
    assert probe.features == [(16, CHANNELS)] * 6
    assert probe.epochs == [0, 0, 0, 1, 1, 1]
    for epoch in (0, 1):  # each epoch visits every training sample once, by its position in the split
        seen = sorted(i for step in probe.indices[3 * epoch:3 * epoch + 3] for i in step)
        assert seen == list(range(48))
    assert method.visits.tolist() == [2] * 48
    assert len(set(probe.aux_loss)) == 6  # the head's loss moved from step to step
    moved = (method.aux.weight.detach() - method.initial_aux_weight).abs()
    assert float(moved.min()) > 0  # every weight of the method's own head was stepped

    saved = load_checkpoint(tmp_path / "run" / "last.pt")["resume"]["method"]
    assert saved["visits"].tolist() == [2] * 48  # per-sample state travels with last.pt
    torch.testing.assert_close(saved["aux.weight"], method.aux.weight.detach())
    assert "aux.weight" not in load_checkpoint(tmp_path / "run" / "best.pt")["state_dict"]  # not part of the model


def test_the_optimizer_steps_the_method_head_with_the_network(tmp_path, probe):
    config = load_config(None, [*TINY, "train.epochs=1", "train.max_steps_per_epoch=1"])
    fit(config, tmp_path / "run", log=lambda _m: None)
    (method,) = probe.methods
    assert method.visits.sum().item() == 16 and method.visits.max().item() == 1  # one step of 16 samples
    optimizer = load_checkpoint(tmp_path / "run" / "last.pt")["resume"]["optimizer"]
    (group,) = optimizer["param_groups"]
    n_model = len(list(build_model("cnn_small", num_classes=7).parameters()))
    assert len(group["params"]) == n_model + 2  # the network's parameters, then the method's head
    moments = [optimizer["state"][i]["exp_avg"] for i in group["params"]]
    assert [tuple(m.shape) for m in moments[n_model:]] == [(7, CHANNELS), (7,)]
    assert all(float(m.abs().sum()) > 0 for m in moments)  # every one of them got a gradient and a step


def test_resume_restores_the_method_state_and_matches_an_uninterrupted_run(tmp_path, probe):
    config = load_config(None, [*TINY, "train.epochs=3"])
    fit(config, tmp_path / "whole", log=lambda _m: None)
    whole = probe.methods[-1]

    def kill(epoch: int, step: int) -> None:
        if (epoch, step) == (1, 2):
            raise SimulatedKill

    with pytest.raises(SimulatedKill):
        fit(load_config(None, [*TINY, "train.epochs=3"]), tmp_path / "killed", on_step=kill, log=lambda _m: None)
    fit(load_config(None, [*TINY, "train.epochs=3"]), tmp_path / "killed", resume=True, log=lambda _m: None)
    resumed = probe.methods[-1]
    assert resumed is not whole and resumed.visits.tolist() == whole.visits.tolist() == [3] * 48
    torch.testing.assert_close(resumed.aux.weight, whole.aux.weight, rtol=0, atol=0)
    lines = [json.loads(t) for t in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    again = [json.loads(t) for t in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert [m["train_loss"] for m in lines] == [m["train_loss"] for m in again]
