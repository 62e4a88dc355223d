"""The bench config: a training recipe plus the grid, --quick and command-line overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer_nla.bench.config import METHODS, NOISY_SETTINGS, load_bench_config
from fer_nla.errors import InputError

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "ferplus_cpu.yaml"


def test_the_committed_grid_is_every_method_on_every_setting_plus_the_clean_reference():
    cfg = load_bench_config(BENCH)
    assert cfg.grid.methods == list(METHODS) and cfg.grid.settings == list(NOISY_SETTINGS)
    cells = cfg.grid.cells()
    assert len(cells) == len(METHODS) * len(NOISY_SETTINGS) * len(cfg.grid.seeds) + len(cfg.grid.seeds)
    assert cells[-1] == ("ce", "clean", cfg.grid.seeds[-1])
    assert cfg.grid.loss_options == {}  # published defaults
    assert cfg.recipe.model.arch == "cnn_small" and cfg.recipe.train.batch_size == 32


def test_quick_and_command_line_overrides_apply_in_that_order():
    quick = load_bench_config(BENCH, ["train.epochs=1", "bench.seeds=[4, 5]"], quick=True)
    assert quick.grid.methods == ["ce", "nla"] and quick.recipe.data.train_subset == 3000
    assert quick.recipe.train.epochs == 1 and quick.grid.seeds == [4, 5]
    assert not quick.grid.clean_reference
    opts = load_bench_config(BENCH, ["bench.loss_options.focal.gamma=1.5", "bench.methods=ce,focal"])
    assert opts.grid.loss_options == {"focal": {"gamma": 1.5}} and opts.grid.methods == ["ce", "focal"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("bench.methods=[ce, nlaa]", "unknown nlaa"),
        ("bench.settings=[symmetric_40]", "unknown symmetric_40"),
        ("bench.sedes=[0]", "unknown bench key 'bench.sedes'"),
        ("bench.test_split=train", "must not be the training split"),
        ("train.epohcs=3", "train.epochs"),
        ("bench.workers=0", "workers must be at least 1"),
        ("bench.clean_reference=maybe", "bench.clean_reference must be true or false"),
        ("bench.workers=two", "bench.workers must be an integer"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(override, message):
    with pytest.raises(InputError, match=message):
        load_bench_config(BENCH, [override])


def test_a_bad_key_in_the_file_names_its_line(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text("train:\n  epochs: 2\nbench:\n  seeds: [0]\n  metods: [ce]\n")
    with pytest.raises(InputError, match=r"bench.yaml:5: unknown bench key 'bench.metods'"):
        load_bench_config(path)
