"""train_acc_clean: training accuracy against the clean labels, beside train_acc (given labels)."""

from __future__ import annotations

import json

import torch

from fer_nla.config import load_config
from fer_nla.train.fit import fit
from fer_nla.train.loop import train_one_epoch


class _FixedStep:
    """A stand-in TrainStep whose logits are fixed per sample index."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.model, self.device, self.first_nonfinite, self.logits = torch.nn.Identity(), torch.device("cpu"), None, logits

    def __call__(self, images, targets, index, *, step_number):
        return torch.tensor(0.5), self.logits[index], None

    def check_finite(self) -> None:
        pass


def test_clean_accuracy_counts_samples_with_a_known_clean_label_only() -> None:
    logits = torch.eye(4) * 5  # sample i is predicted as class i
    given = torch.tensor([0, 1, 0, 0])
    clean = torch.tensor([0, 2, 2, -1])  # sample 3's clean label is unknown
    loader = [(torch.zeros(2, 3, 4, 4), given[:2], torch.tensor([0, 1])),
              (torch.zeros(2, 3, 4, 4), given[2:], torch.tensor([2, 3]))]
    result = train_one_epoch(_FixedStep(logits), loader, epoch=0, last_good="none", clean_targets=clean)
    assert result.accuracy == 0.5  # samples 0 and 1 predicted as given
    assert abs(result.accuracy_clean - 2 / 3) < 1e-12  # samples 0 and 2 of the 3 with a clean label
    assert train_one_epoch(_FixedStep(logits), loader, epoch=0, last_good="none").accuracy_clean is None


RUN = ["data.image_size=32", "train.eval_batch_size=64", "train.progress=false", "train.tensorboard=false",
       "model.arch=cnn_small", "train.report=false", "loss.name=ce", "train.threads=1", "train.epochs=2"]


def _metrics(tmp_path, overrides: list[str]) -> list[dict]:
    """The metrics lines of a tiny CE run with ``overrides`` (the thread count restored after it)."""
    threads = torch.get_num_threads()
    try:
        fit(load_config(None, [*RUN, *overrides]), tmp_path / "run", log=lambda _m: None)
    finally:
        torch.set_num_threads(threads)
    return [json.loads(t) for t in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]


def test_a_run_on_data_with_clean_labels_records_train_acc_clean_each_epoch(tmp_path) -> None:
    lines = _metrics(tmp_path, ["data.options.num_samples=48", "data.options.image_size=32", "train.batch_size=16"])
    assert [line["epoch"] for line in lines] == [1, 2]
    assert all(0.0 <= line["train_acc_clean"] <= 1.0 for line in lines)  # the synthetic set knows its clean labels


def test_train_acc_clean_follows_the_trained_part_when_it_is_a_subset_of_the_split(tmp_path) -> None:
    """The loaders index samples by their position in the trained part (data.train_subset, a fold or
    a carve make it differ from the split): the clean labels must be looked up the same way. With
    clean labels equal to the given ones, both accuracies are then the same number."""
    from fer_nla.data import build_dataset

    options = ["data.options.num_samples=96", "data.options.image_size=32", "data.options.mix_share=0"]
    data = build_dataset("synthetic", split="train", num_samples=96, image_size=32, mix_share=0.0)
    assert data.clean_targets is not None and (data.clean_targets == data.targets).all()
    lines = _metrics(tmp_path, [*options, "data.train_subset=40", "train.batch_size=8", "optim.lr=3e-3"])
    assert [line["train_acc_clean"] for line in lines] == [line["train_acc"] for line in lines]
