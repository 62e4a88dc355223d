"""The authors' reporting protocol (train.paper_protocol): test scored every epoch, best epochs
picked on it separately for overall and mean-class accuracy, never choosing best.pt."""

from __future__ import annotations

import json

import pytest
import torch

from fer_nla.checkpoint import load_checkpoint
from fer_nla.config import load_config
from fer_nla.errors import InputError
from fer_nla.evaluate import evaluate_checkpoint
from fer_nla.train.fit import fit
from fer_nla.train.paper_protocol import METRICS_KEY, paper_selection

TINY = [
    "data.options.num_samples=48", "data.options.image_size=32", "data.image_size=32", "train.batch_size=16",
    "train.eval_batch_size=64", "train.progress=false", "train.report=false", "train.tensorboard=false",
    "optim.lr=1e-3", "train.epochs=3", "loss.name=ce",
]
PAPER = ["train.paper_protocol=true", "data.test_split=test"]


def _line(epoch, overall, mean):
    return {"epoch": epoch, METRICS_KEY: {"overall_acc": overall, "mean_acc": mean}}


def test_the_two_figures_are_picked_separately_and_ties_go_to_the_earlier_epoch():
    lines = [_line(1, 0.70, 0.50), _line(2, 0.75, 0.48), _line(3, 0.72, 0.55), _line(4, 0.75, 0.55)]
    chosen = paper_selection(lines)
    assert chosen["best_overall"] == {"epoch": 2, "overall_acc": 0.75, "mean_acc": 0.48}
    assert chosen["best_mean"] == {"epoch": 3, "overall_acc": 0.72, "mean_acc": 0.55}
    assert chosen["epochs"] == 4 and "test split" in chosen["label"]
    assert paper_selection([{"epoch": 1, "val": {}}]) is None


def test_the_protocol_records_test_every_epoch_and_leaves_best_pt_as_validation_chose_it(tmp_path):
    honest = fit(load_config(None, TINY), tmp_path / "honest", log=lambda _m: None)
    logged: list[str] = []
    paper = fit(load_config(None, [*TINY, *PAPER]), tmp_path / "paper", log=logged.append)
    lines = [json.loads(t) for t in (tmp_path / "paper" / "metrics.jsonl").read_text().splitlines()]
    assert all(METRICS_KEY in line for line in lines) and len(lines) == 3
    # nothing is selected with the test split: the same epoch and weights as without the protocol
    assert paper.best_epoch == honest.best_epoch and paper.best_metrics["overall_acc"] == honest.best_metrics["overall_acc"]
    a, b = load_checkpoint(tmp_path / "honest" / "best.pt"), load_checkpoint(tmp_path / "paper" / "best.pt")
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    # each epoch's test figure is what evaluating that epoch's network on the test split gives
    best_line = lines[paper.best_epoch - 1][METRICS_KEY]
    again = evaluate_checkpoint(str(tmp_path / "paper" / "best.pt"), split="test", network_logits=True)
    assert best_line["overall_acc"] == pytest.approx(again["overall_acc"], abs=1e-9)
    assert best_line["mean_acc"] == pytest.approx(again["mean_acc"], abs=1e-9)
    top = max(line[METRICS_KEY]["mean_acc"] for line in lines)
    assert paper.paper_protocol["best_mean"]["mean_acc"] == top >= best_line["mean_acc"]
    assert any(m.startswith("paper protocol (test-selected") for m in logged)


@pytest.mark.parametrize(("extra", "message"), [
    (["train.paper_protocol=true"], "name it \\(data.test_split=test\\)"),
    (["data.test_source.where=x"], "data.test_source takes dataset, root, labels and options"),
])
def test_bad_protocol_settings_are_refused_with_the_fix(extra, message):
    with pytest.raises(InputError, match=message):
        load_config(None, [*TINY, *extra])


def test_the_training_split_cannot_be_the_protocols_test_split(tmp_path):
    with pytest.raises(InputError, match="is the training split"):
        fit(load_config(None, [*TINY, "train.paper_protocol=true", "data.test_split=train"]), tmp_path / "r",
            log=lambda _m: None)
