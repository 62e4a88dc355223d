"""data.teachers: training targets from a teacher ensemble's probabilities (fer_nla.train.distill)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import ImageOps

from fer_nla.checkpoint import read_meta
from fer_nla.config import load_config
from fer_nla.errors import InputError
from fer_nla.inference.backends import load_backend
from fer_nla.inference.classify import crop_probabilities
from fer_nla.inference.scoring import operating_point
from fer_nla.train.distill import mix_targets
from fer_nla.train.fit import fit
from fer_nla.train.run_data import build_run_data

TINY = [
    "data.options.num_samples=24", "data.options.image_size=32", "data.image_size=32", "train.batch_size=8",
    "train.eval_batch_size=64", "train.progress=false", "train.max_steps_per_epoch=1", "train.tensorboard=false",
    "train.report=false", "train.record_signals=false", "loss.name=ce", "train.threads=1", "model.arch=cnn_small",
]


def tiny(*extra: str):
    return load_config(None, [*TINY, "train.epochs=1", *extra])


@pytest.fixture(scope="module")
def teachers(tmp_path_factory):
    """best.pt of two tiny cnn_small runs on the synthetic set with different seeds."""
    root, threads = tmp_path_factory.mktemp("teachers"), torch.get_num_threads()
    try:
        for seed in (0, 1):
            fit(tiny(f"train.seed={seed}"), root / f"t{seed}", log=lambda _m: None)
    finally:
        torch.set_num_threads(threads)
    return [str(root / f"t{seed}" / "best.pt") for seed in (0, 1)]


def by_hand(teacher: str, images) -> np.ndarray:
    """log p of one teacher at its training prior, the mean of each image's and its mirror's."""
    backend = load_backend(teacher, backend="torch", device="cpu")
    point = operating_point(backend.scoring, num_classes=len(backend.class_names), prior="train")
    logs = [np.log(crop_probabilities(backend, view, point=point)) for view in
            (images, [ImageOps.mirror(im) for im in images])]
    return np.mean(logs, axis=0)


def normalised(log_p: np.ndarray) -> np.ndarray:
    p = np.exp(log_p - log_p.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True)


def test_mix_is_the_weighted_sum_of_teacher_and_given_targets():
    teacher = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]], dtype=np.float32)
    mixed = mix_targets(teacher, np.array([1, 2]), weight=0.7)
    np.testing.assert_allclose(mixed, [[0.42, 0.51, 0.07], [0.14, 0.14, 0.72]], atol=1e-6)
    soft = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_allclose(mix_targets(teacher, soft, weight=0.25), [[0.525, 0.45, 0.025], [0.05, 0.05, 0.9]],
                               atol=1e-6)
    with pytest.raises(InputError, match=r"teacher_weight=1.5 must lie in \[0, 1\]"):
        mix_targets(teacher, soft, weight=1.5)


def test_targets_are_the_geometric_mean_of_the_teachers_mixed_with_the_labels(teachers):
    lines: list[str] = []
    data = build_run_data(tiny(f"data.teachers={','.join(teachers)}", "data.teacher_weight=0.6").data, seed=0,
                          log=lines.append)
    full = data.full_train
    images = [full.load_image(i) for i in range(len(full))]
    ensemble = normalised(np.mean([by_hand(t, images) for t in teachers], axis=0))
    plain = build_run_data(tiny().data, seed=0, log=lambda _m: None).full_train
    np.testing.assert_array_equal(full.targets, plain.targets)  # the hard labels stay the given ones
    expected = 0.6 * ensemble + 0.4 * np.eye(ensemble.shape[1])[plain.targets]
    np.testing.assert_allclose(full.soft_targets, expected, atol=1e-5)
    assert data.train.target_mode == "soft" and data.val.target_mode == "hard"
    assert any("teacher 2/2" in line for line in lines)
    assert any("0.6 x the ensemble of 2 teacher(s)" in line for line in lines)


def test_a_distilled_run_records_the_mean_of_its_targets_as_its_prior(teachers, tmp_path):
    fit(tiny(f"data.teachers={teachers[0]}", "data.teacher_weight=1"), tmp_path / "student", log=lambda _m: None)
    data = build_run_data(tiny(f"data.teachers={teachers[0]}", "data.teacher_weight=1").data, seed=0,
                          log=lambda _m: None)
    prior = read_meta(tmp_path / "student" / "best.pt").class_prior
    np.testing.assert_allclose(prior, data.full_train.soft_targets[data.train_indices].mean(axis=0), atol=1e-6)
    assert abs(sum(prior) - 1) < 1e-6 and min(prior) > 0  # soft teacher targets give every class a share


def test_a_teacher_without_the_runs_classes_is_refused_naming_it(teachers):
    """The teachers know 7 classes; an 8-class run (contempt too) cannot take its targets from them."""
    with pytest.raises(InputError, match=r"data.teachers: .*t0.best.pt has the classes .* but not contempt"):
        build_run_data(tiny("data.num_classes=8", f"data.teachers={teachers[0]}").data, seed=0, log=lambda _m: None)


def test_a_seven_class_run_takes_its_columns_from_an_eight_class_teacher_by_name(tmp_path):
    """A teacher with more classes gives the run's columns, matched by name and renormalised."""
    teacher = tmp_path / "eight"
    fit(tiny("data.num_classes=8"), teacher, log=lambda _m: None)
    data = build_run_data(tiny(f"data.teachers={teacher / 'best.pt'}", "data.teacher_weight=1").data, seed=0,
                          log=lambda _m: None)
    full = data.full_train
    log_p = by_hand(str(teacher / "best.pt"), [full.load_image(i) for i in range(len(full))])
    backend = load_backend(teacher / "best.pt", backend="torch", device="cpu")
    columns = [backend.class_names.index(name) for name in full.class_names]
    np.testing.assert_allclose(full.soft_targets, normalised(log_p[:, columns]), atol=1e-5)


def test_record_scoring_keeps_a_distilled_runs_prior_without_running_its_teachers(teachers, tmp_path, monkeypatch):
    import fer_nla.train.distill as distill
    from fer_nla.train.scoring_record import record_scoring

    fit(tiny(f"data.teachers={teachers[0]}", "data.teacher_weight=1"), tmp_path / "student", log=lambda _m: None)
    prior = read_meta(tmp_path / "student" / "best.pt").class_prior

    def no_teachers(*_args, **_kwargs):
        raise AssertionError("the teachers ran again")

    monkeypatch.setattr(distill, "ensemble_targets", no_teachers)
    figures = record_scoring(tmp_path / "student" / "best.pt")
    assert figures["class_prior"] == list(prior) and read_meta(tmp_path / "student" / "best.pt").class_prior == prior
