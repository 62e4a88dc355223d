"""data.train_fold: seeded folds of the training split by sample id (pretrain on one half,
fine-tune on the other, as issue 15's pretrained regime needs)."""

from __future__ import annotations

import numpy as np
import pytest

from fer_nla.config import load_config
from fer_nla.data.split import fold_indices, parse_fold
from fer_nla.errors import InputError
from fer_nla.train.run_data import build_run_data

IDS = [f"FER2013Train/fer{i:07d}.png" for i in range(2000)]


def test_folds_partition_the_samples_by_id_whatever_their_order() -> None:
    halves = [fold_indices(IDS, f"{k}/2", seed=0) for k in (1, 2)]
    assert len(np.intersect1d(*halves)) == 0 and len(halves[0]) + len(halves[1]) == len(IDS)
    assert 900 < len(halves[0]) < 1100  # about half (not stratified)
    order = np.random.default_rng(3).permutation(len(IDS))
    shuffled = [IDS[i] for i in order]
    members = {shuffled[i] for i in fold_indices(shuffled, "1/2", seed=0)}
    assert members == {IDS[i] for i in halves[0]}
    assert not np.array_equal(fold_indices(IDS, "1/2", seed=1), halves[0])
    thirds = [fold_indices(IDS, f"{k}/3", seed=0) for k in (1, 2, 3)]
    assert sorted(np.concatenate(thirds).tolist()) == list(range(len(IDS)))


@pytest.mark.parametrize("fold", ["0/2", "3/2", "1/1", "a/b", "1-2", "1/2/3"])
def test_a_malformed_fold_is_refused(fold: str) -> None:
    with pytest.raises(ValueError):
        parse_fold(fold)
    with pytest.raises(InputError, match="data.train_fold"):
        load_config(None, [f"data.train_fold={fold}"])


def test_a_run_trains_and_validates_inside_its_fold_only() -> None:
    base = ["data.options.num_samples=400", "data.options.image_size=32", "data.image_size=32", "data.val_split=carve"]
    parts = []
    for k in (1, 2):
        lines: list[str] = []
        data = build_run_data(load_config(None, [*base, f"data.train_fold={k}/2"]).data, seed=0, log=lines.append)
        used = np.concatenate([data.train_indices, data.val_indices])
        assert len(np.intersect1d(data.train_indices, data.val_indices)) == 0
        expected = fold_indices([str(s) for s in data.full_train.samples], f"{k}/2", seed=0)
        assert sorted(used.tolist()) == expected.tolist()
        assert any(line.startswith(f"data: training fold {k}/2 of 'train'") for line in lines)
        assert data.val_source.endswith(f"of fold {k}/2 of 'train'")
        parts.append(set(used.tolist()))
    assert not parts[0] & parts[1] and len(parts[0] | parts[1]) == 400
