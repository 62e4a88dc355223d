"""model.init: fine-tuning a built-in model or a fer-nla checkpoint, its head mapped by class name."""

from __future__ import annotations

import json

import pytest
import torch

import fer_nla.train.fit as fit_module
from fer_nla.builtin import DEFAULT_MODEL, builtin_path
from fer_nla.checkpoint import load_checkpoint, load_model, read_meta
from fer_nla.config import load_config
from fer_nla.errors import InputError
from fer_nla.labels import EIGHT_CLASSES, SEVEN_CLASSES
from fer_nla.model_init import head_rows, init_model, resolve_init
from fer_nla.models import build_model
from fer_nla.train.fit import fit

BUILTIN = f"builtin:{DEFAULT_MODEL}"
TINY = [
    "data.options.num_samples=24", "data.options.image_size=32", "data.image_size=32", "train.batch_size=8",
    "train.eval_batch_size=64", "train.progress=false", "train.max_steps_per_epoch=1", "train.tensorboard=false",
    "train.report=false", "train.record_signals=false", "loss.name=ce", "train.threads=1",
]


@pytest.fixture(autouse=True)
def _threads_restored():
    """train.threads=1 (10x faster tiny runs beside a busy CPU) sets torch's thread count: put it back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def tiny(*extra: str, epochs: int = 1):
    return load_config(None, [*TINY, f"train.epochs={epochs}", *extra])


@pytest.fixture(scope="module")
def source():
    """The built-in placeholder as a model, and its metadata (its accuracy is never asserted)."""
    return load_model(builtin_path(DEFAULT_MODEL))


def test_head_rows_map_by_name_ignoring_case_and_aliases():
    assert head_rows(EIGHT_CLASSES, SEVEN_CLASSES) == [0, 1, 2, 3, 4, 5, 6]
    assert head_rows(EIGHT_CLASSES, ("Fear", "happy", "pain", "neutral")) == [6, 1, None, 0]
    with pytest.raises(InputError, match="twice in the data"):
        head_rows(EIGHT_CLASSES, ("happy", "happiness"))


def test_seven_class_init_copies_every_tensor_and_the_shared_head_rows(source):
    src_model, meta = source
    assert meta.class_names == EIGHT_CLASSES
    model = build_model(meta.arch, num_classes=7, stem=meta.stem)
    line = init_model(model, BUILTIN, class_names=SEVEN_CLASSES)
    assert line == f"model.init {BUILTIN}: head mapped by class name (7 of 8 source classes; dropped: contempt)"
    want, got = src_model.state_dict(), model.state_dict()
    assert got["fc.weight"].shape == (7, want["fc.weight"].shape[1])
    assert torch.equal(got["fc.weight"], want["fc.weight"][:7]) and torch.equal(got["fc.bias"], want["fc.bias"][:7])
    for key, value in got.items():
        if not key.startswith("fc."):
            assert torch.equal(value, want[key]), key


def test_rows_follow_the_data_order_and_a_new_class_keeps_its_fresh_init(source):
    src_model, meta = source
    torch.manual_seed(0)
    model = build_model(meta.arch, num_classes=3, stem=meta.stem)
    fresh = model.fc.weight.detach().clone(), model.fc.bias.detach().clone()
    line = init_model(model, BUILTIN, class_names=("fear", "pain", "Happy"))
    w, b = src_model.fc.weight.detach(), src_model.fc.bias.detach()
    assert torch.equal(model.fc.weight[0], w[6]) and torch.equal(model.fc.weight[2], w[1])
    assert torch.equal(model.fc.bias[0], b[6]) and torch.equal(model.fc.bias[2], b[1])
    assert torch.equal(model.fc.weight[1], fresh[0][1]) and torch.equal(model.fc.bias[1], fresh[1][1])
    assert "(2 of 8 source classes; dropped: neutral, surprise, sadness, anger, disgust, contempt; " \
           "new, freshly initialised: pain)" in line


def test_fine_tuning_the_builtin_model_on_seven_classes(tmp_path):
    lines: list[str] = []
    config = tiny(f"model.init={BUILTIN}")
    assert config.model.arch == "resnet18"  # the default until the run reads the checkpoint
    fit(config, tmp_path / "run", log=lines.append)
    assert f"model.init {BUILTIN}: head mapped by class name (7 of 8 source classes; dropped: contempt)" in lines
    trained_at = read_meta(builtin_path(DEFAULT_MODEL)).image_size
    assert any(f"data.image_size=32 but model.init {BUILTIN} was trained at {trained_at} px" in m for m in lines)
    saved = load_config(tmp_path / "run" / "config.yaml")
    assert (saved.model.arch, saved.model.init) == ("resnet10s", BUILTIN)
    meta = read_meta(tmp_path / "run" / "best.pt")
    assert (meta.arch, meta.class_names) == ("resnet10s", SEVEN_CLASSES)


def test_an_arch_other_than_the_checkpoints_is_refused_naming_both():
    config = tiny(f"model.init={BUILTIN}", "model.arch=cnn_small")  # neither the default nor the checkpoint's
    with pytest.raises(InputError, match="model.arch=cnn_small.*resnet10s"):
        resolve_init(config, log=lambda _m: None)
    same = tiny(f"model.init={BUILTIN}", "model.arch=resnet10s")
    resolve_init(same, log=lambda _m: None)
    assert same.model.arch == "resnet10s"


def test_init_with_backbone_weights_is_refused(tmp_path):
    with pytest.raises(InputError, match="set only one of them"):
        tiny(f"model.init={BUILTIN}", f"model.backbone_weights={tmp_path / 'w.pth'}")


def test_an_init_path_that_is_not_there_names_the_fix(tmp_path):
    with pytest.raises(InputError, match=f"model.init={DEFAULT_MODEL}:.*does not exist; for the built-in model write "
                                         f"model.init={BUILTIN}"):
        resolve_init(tiny(f"model.init={DEFAULT_MODEL}"), log=lambda _m: None)
    with pytest.raises(InputError, match="no built-in model"):
        resolve_init(tiny("model.init=builtin:nope"), log=lambda _m: None)


@pytest.fixture(scope="module")
def small_runs(tmp_path_factory):
    """best.pt of two tiny cnn_small runs on the synthetic set: colour and gray (data.grayscale)."""
    root, threads = tmp_path_factory.mktemp("small_runs"), torch.get_num_threads()
    try:
        for name, gray in (("colour", "false"), ("gray", "true")):
            fit(tiny("model.arch=cnn_small", f"data.grayscale={gray}"), root / name, log=lambda _m: None)
    finally:
        torch.set_num_threads(threads)
    return {name: root / name / "best.pt" for name in ("colour", "gray")}


def test_a_checkpoint_file_initialises_with_its_gray_input(small_runs):
    """A run's best.pt as model.init: its grayscale flag turns data.grayscale on, its arch is taken."""
    assert read_meta(small_runs["gray"]).grayscale is True
    lines: list[str] = []
    config = tiny(f"model.init={small_runs['gray']}")
    resolve_init(config, log=lines.append)
    assert (config.model.arch, config.data.grayscale) == ("cnn_small", True)
    assert lines == [f"model.init {small_runs['gray']}: model.arch=cnn_small, the checkpoint's (model.arch follows model.init)",
                     f"model.init {small_runs['gray']}: data.grayscale=true, as the model was trained on gray images"]


def test_gray_run_from_a_colour_trained_model_keeps_gray_and_warns(small_runs):
    lines: list[str] = []
    config = tiny(f"model.init={small_runs['colour']}", "data.grayscale=true")
    resolve_init(config, log=lines.append)
    assert config.data.grayscale is True
    assert lines[-1:] == [f"warning: data.grayscale=true but model.init {small_runs['colour']} was trained on colour "
                          "images; the run trains it on gray ones"]


def test_resume_of_an_initialised_run_does_not_initialise_again(tmp_path, monkeypatch):
    """Killed after epoch 1 and resumed (from a fresh config, as the user wrote it): the same weights
    as an uninterrupted run, and model.init loaded once per run, never on resume."""
    calls: list[str] = []
    real_init = fit_module.init_model
    monkeypatch.setattr(fit_module, "init_model", lambda *a, **k: calls.append("init") or real_init(*a, **k))
    args = (f"model.init={BUILTIN}",)
    fit(tiny(*args, epochs=2), tmp_path / "whole", log=lambda _m: None)

    def kill(epoch: int, step: int) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(tiny(*args, epochs=2), tmp_path / "killed", on_step=kill, log=lambda _m: None)
    assert calls == ["init", "init"]
    lines: list[str] = []
    fit(tiny(*args, epochs=2), tmp_path / "killed", resume=True, log=lines.append)
    assert calls == ["init", "init"] and not any("head mapped" in m for m in lines)
    a, b = load_checkpoint(tmp_path / "whole" / "last.pt"), load_checkpoint(tmp_path / "killed" / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    strip = lambda m: {k: v for k, v in m.items() if k not in ("seconds", "images_per_second")}  # noqa: E731
    metrics = [[strip(json.loads(t)) for t in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
               for run in ("whole", "killed")]
    assert metrics[0] == metrics[1]


def _scored(monkeypatch, scores: list[float]) -> None:
    """fit's validation with its overall accuracy replaced, call by call, by ``scores``."""
    real, queue = fit_module._validate, iter(scores)

    def validate(session, **kwargs):
        val, loss = real(session, **kwargs)
        return {**val, "overall_acc": next(queue)}, loss

    monkeypatch.setattr(fit_module, "_validate", validate)


def test_the_model_init_network_is_best_until_an_epoch_scores_higher(tmp_path, monkeypatch):
    """Scored before training (epoch 0): best.pt holds the initialised network, report says epoch 0."""
    _scored(monkeypatch, [0.9, 0.5])
    lines: list[str] = []
    fit(tiny(f"model.init={BUILTIN}", "train.report=true"), tmp_path / "run", log=lines.append)
    assert any(m.startswith("epoch 0 (model.init before training): val acc 90.00%") for m in lines)
    assert "best epoch 0 (the model.init network before training: no epoch scored higher): val overall_acc 90.00%" in lines
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["epoch"] == 0 and best["metrics"]["val"]["overall_acc"] == 0.9
    start = build_model("resnet10s", num_classes=7)
    init_model(start, BUILTIN, class_names=SEVEN_CLASSES)
    for key, value in start.state_dict().items():
        assert torch.equal(best["state_dict"][key], value), key
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Best epoch: 0 (validation)" in report and "| overall_acc | 90.00% |" in report
    assert f"whole network from {BUILTIN} (model.init" in report


def test_an_epoch_scoring_higher_than_the_start_replaces_it(tmp_path, monkeypatch):
    _scored(monkeypatch, [0.6, 0.5, 0.7])
    fit(tiny(f"model.init={BUILTIN}", epochs=2), tmp_path / "run", log=lambda _m: None)
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["epoch"] == 2 and best["metrics"]["val"]["overall_acc"] == 0.7
    flags = [json.loads(t)["best"] for t in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert flags == [False, True]


def test_resume_takes_a_relative_init_path_and_refuses_another_init(tmp_path, monkeypatch):
    """The saved config holds the init file's absolute path: the same relative path resumes, a
    different model.init is a changed fixed key."""
    import shutil

    monkeypatch.chdir(tmp_path)
    shutil.copy(builtin_path(DEFAULT_MODEL), tmp_path / "start.pt")

    def kill(epoch: int, step: int) -> None:
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(tiny("model.init=start.pt", epochs=2), "run", on_step=kill, log=lambda _m: None)
    assert load_config(tmp_path / "run" / "config.yaml").model.init == str(tmp_path / "start.pt")
    with pytest.raises(InputError, match="model.init"):
        fit(tiny(f"model.init={BUILTIN}", epochs=2), "run", resume=True, log=lambda _m: None)
    fit(tiny("model.init=start.pt", epochs=2), "run", resume=True, log=lambda _m: None)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 2
