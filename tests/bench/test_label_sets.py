"""Label sets of the user's own (bench.label_sets): a CSV of noisy labels for the grid's pool."""

from __future__ import annotations

import numpy as np
import pytest

from fer_nla.bench.config import load_bench_config
from fer_nla.bench.label_sets import UNLISTED, read_label_set
from fer_nla.bench.settings import setting_split
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS

RNG = np.random.default_rng(3)
MAJORITY = np.repeat(np.arange(8), [900, 700, 300, 300, 200, 30, 60, 30])
VOTES = np.where(RNG.random(MAJORITY.size) < 0.2, RNG.integers(0, 8, MAJORITY.size), MAJORITY)
ROOT = "/data/ferplus"
IDS = [f"{ROOT}/FER2013Train/fer{i:07d}.png" for i in range(MAJORITY.size)]


def _write(path, rows, header="image,label"):
    path.write_text("\n".join([header, *(f"{a},{b}" for a, b in rows)]) + "\n")
    return path


def _read(path, **kw):
    return read_label_set(path, sample_ids=IDS, class_names=EMOTIONS, root=ROOT, log=lambda _m: None, **kw)


def test_a_file_holding_a_built_in_settings_labels_gives_that_settings_exact_split(tmp_path):
    builtin = setting_split("single_vote", majority=MAJORITY, single_vote=VOTES, num_classes=8, seed=1,
                            val_fraction=0.1, train_size=1500)
    # names by file name and by path under the root, labels by name, alias and index: all the same labels
    rows = [(f"fer{i:07d}.png" if i % 3 else f"FER2013Train/fer{i:07d}.png",
             (EMOTIONS[v], "happy" if v == 1 else EMOTIONS[v], str(v))[i % 3]) for i, v in enumerate(VOTES)]
    labels = _read(_write(tmp_path / "mine.csv", rows))
    assert (labels == VOTES).all()
    mine = setting_split("mine", majority=MAJORITY, single_vote=VOTES, num_classes=8, seed=1, val_fraction=0.1,
                         train_size=1500, label_set=labels)
    for field in ("train_index", "train_labels", "train_clean", "val_index", "val_labels"):
        assert (getattr(mine, field) == getattr(builtin, field)).all(), field


def test_images_the_file_leaves_out_and_rows_outside_the_pool_are_counted_and_not_used(tmp_path):
    listed = np.flatnonzero(np.arange(MAJORITY.size) % 2 == 0)
    logged = []
    rows = [(f"fer{i:07d}.png", int(MAJORITY[i])) for i in listed] + [("fer9000000.png", "fear"), ("x/y.png", 1)]
    labels = read_label_set(_write(tmp_path / "half.csv", rows),
                            sample_ids=IDS, class_names=EMOTIONS, root=ROOT, log=logged.append)
    assert (labels[listed] == MAJORITY[listed]).all() and (np.delete(labels, listed) == UNLISTED).all()
    assert logged == [f"label set {tmp_path / 'half.csv'}: {listed.size} of the pool's {MAJORITY.size} images listed; "
                      f"the {MAJORITY.size - listed.size} others are left out of this setting; 2 row(s) name images "
                      f"outside the pool, not used (e.g. 'fer9000000.png' (line {listed.size + 2}))"]
    s = setting_split("half", majority=MAJORITY, single_vote=VOTES, num_classes=8, seed=0, val_fraction=0.1,
                      train_size=None, label_set=labels)
    used = np.concatenate([s.train_index, s.val_index])
    assert set(used.tolist()) == set(listed.tolist()) and s.noise_rate == 0.0


@pytest.mark.parametrize(("rows", "header", "message"), [
    ([("fer9999999.png", "anger")], "image,label", r"half.csv: no row names an image of the grid's pool .* \(e.g. "
                                                   r"'fer9999999.png' \(line 2\)\)"),
    ([("fer0000001.png", "angr")], "image,label", r"bad.csv:2: 'angr' is not one of the classes"),
    ([("fer0000001.png", "8")], "image,label", r"bad.csv:2: class index 8 is outside 0..7"),
    ([("fer0000001.png", "anger"), ("FER2013Train/fer0000001.png", "fear")], "image,label",
     r"bad.csv:3: image 'FER2013Train/fer0000001.png' is listed again \(first on line 2\)"),
    ([("fer0000001.png", "anger")], "file,emotion", r"bad.csv:1: the header lacks image, label"),
    ([], "image,label", r"bad.csv: no row names an image of the grid's pool"),
])
def test_every_bad_row_names_the_file_line_and_fix(tmp_path, rows, header, message):
    name = "half.csv" if "half" in message else "bad.csv"
    with pytest.raises(InputError, match=message):
        _read(_write(tmp_path / name, rows, header=header))
    with pytest.raises(InputError, match="does not exist"):
        _read(tmp_path / "missing.csv")


def test_the_bench_config_takes_label_sets_as_settings_and_refuses_a_built_in_name(tmp_path):
    cfg = load_bench_config(None, ["bench.label_sets.mine=/x/mine.csv", "bench.settings=[mine,symmetric_30]"])
    assert cfg.grid.label_sets == {"mine": "/x/mine.csv"} and cfg.grid.settings == ["mine", "symmetric_30"]
    with pytest.raises(InputError, match="symmetric_30 is a built-in setting's name"):
        load_bench_config(None, ["bench.label_sets.symmetric_30=/x.csv"])
    with pytest.raises(InputError, match="bench.settings: unknown theirs"):
        load_bench_config(None, ["bench.settings=[theirs]"])


def test_a_grid_manifest_with_edited_labels_is_a_label_set(tmp_path):
    """The manifests a grid writes (path,label,clean_label,is_noisy,split,source) read as label sets."""
    lines = ["path,label,clean_label,is_noisy,split,source"]
    lines += [f"{IDS[i]},{EMOTIONS[int(VOTES[i])]},{EMOTIONS[int(MAJORITY[i])]},0,{('train', 'valid')[i % 2]},ferplus"
              for i in range(0, MAJORITY.size, 3)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    labels = _read(tmp_path / "m.csv")
    listed = np.arange(0, MAJORITY.size, 3)
    assert (labels[listed] == VOTES[listed]).all() and (np.delete(labels, listed) == UNLISTED).all()
