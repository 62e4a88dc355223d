"""The core install predicts and serves without PyTorch (issue 22): the extras in pyproject.toml,
the one-line messages for a missing extra and for a torch/torchvision mismatch, and predict and
serve run in a Python where torch, torchvision, kornia, scikit-learn and matplotlib cannot be
imported (each test starts its own interpreter with them blocked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fer_nla.cli import main
from fer_nla.extras import EXTRAS, missing_module_message, torch_pair_message
from fer_nla.file_kinds import sniff_file

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "data" / "photos" / "group.jpg"
TRAIN_ONLY = ("torch", "torchvision", "kornia", "sklearn", "matplotlib", "tensorboard", "onnx", "onnxscript")
BLOCK = f"import sys; [sys.modules.__setitem__(m, None) for m in {TRAIN_ONLY!r}]\n"


def _requirement_names(requirements: list[str]) -> set[str]:
    names = set()
    for line in requirements:
        name = line.split(";")[0].strip()
        for stop in "<>=![ ":
            name = name.split(stop)[0]
        names.add(name.lower())
    return names


def _run_without_torch(code: str, *, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


def test_the_core_install_needs_no_pytorch_and_the_extras_are_what_fer_nla_names():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = _requirement_names(project["dependencies"])
    assert core == {"numpy", "pillow", "pyyaml", "opencv-python-headless", "onnxruntime"}
    extras = project["optional-dependencies"]
    optional = {"swagger-ui-bundle-v2"}  # offline /docs; serve runs without it (FastAPI's CDN page)
    for extra, dists in EXTRAS.items():
        assert _requirement_names(extras[extra]) - optional == set(dists), extra
    dev = _requirement_names(extras["dev"])
    assert "fer-nla" in dev and "pytest" in dev and any("train" in r and "serve" in r for r in extras["dev"])


def test_predict_runs_on_a_group_photo_without_pytorch():
    done = _run_without_torch(
        f"sys.argv = ['fer-nla', 'predict', {str(PHOTO)!r}, '--json']\n"
        "from fer_nla.cli import main\nstatus = main()\n"
        f"assert not any(m in sys.modules and sys.modules[m] is not None for m in {TRAIN_ONLY!r})\n"
        "sys.exit(status)"
    )
    assert done.returncode == 0, done.stderr
    [record] = json.loads(done.stdout)
    assert len(record["faces"]) == 14 and record["error"] is None
    assert sum(face["label"] == "happiness" for face in record["faces"]) >= 5
    assert done.stderr.startswith("model: built-in model ferplus-resnet10s")


def test_serve_answers_without_pytorch():
    pytest.importorskip("fastapi")
    done = _run_without_torch(
        "from fastapi.testclient import TestClient\n"
        "from fer_nla.serve.app import create_app\n"
        "from fer_nla.serve import ServeSettings\n"
        "with TestClient(create_app(ServeSettings(device='cpu'))) as client:\n"
        f"    answer = client.post('/v1/predict', files={{'file': ('g.jpg', open({str(PHOTO)!r}, 'rb').read(), 'image/jpeg')}})\n"
        "print(answer.status_code, answer.json()['count'], answer.json()['model']['backend'])\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "14", "OnnxBackend"]


@pytest.mark.parametrize(("argv", "extra"), [
    (["train", "--out", "{tmp}/run", "--epochs", "1"], "train"),
    (["predict", "--backend", "torch", str(PHOTO)], "train"),
    (["eval", "--dataset", "synthetic"], "train"),
])
def test_a_command_that_needs_pytorch_names_the_extra_in_one_line(argv, extra, tmp_path):
    argv = [arg.format(tmp=tmp_path) for arg in argv]
    done = _run_without_torch(f"from fer_nla.cli import main\nsys.exit(main({argv!r}))")
    assert done.returncode == 2, done.stderr
    [line] = done.stderr.strip().splitlines()[-1:]
    assert line.startswith(f"fer-nla {argv[0]}: error: ") and f'pip install "fer-nla[{extra}]"' in line
    assert "Traceback" not in done.stderr


def test_missing_module_messages_name_the_extra_or_leave_other_modules_alone():
    message = missing_module_message(ModuleNotFoundError("No module named 'kornia'", name="kornia.losses"), command="train")
    assert message == ('`fer-nla train` needs kornia (the train extra), not installed here; '
                       'install it with: pip install "fer-nla[train]"')
    assert "fer-nla[serve]" in missing_module_message(ModuleNotFoundError(name="uvicorn"), command="serve")
    assert missing_module_message(ModuleNotFoundError(name="numpy"), command="predict") is None


def test_a_torchvision_built_for_another_torch_is_one_line_naming_both_versions(monkeypatch, capsys):
    import fer_nla.extras as extras

    versions = {"torch": "2.13.0", "torchvision": "0.29.1"}
    monkeypatch.setattr(extras, "_version", versions.__getitem__)
    raised = RuntimeError("operator torchvision::nms does not exist")
    assert torch_pair_message(raised) == (
        "torchvision 0.29.1 does not match torch 2.13.0 (torchvision::nms is missing); pip install "
        '"torchvision==0.28.*" (the torchvision built for torch 2.13), or reinstall both from one index: '
        "pip install --force-reinstall torch torchvision")
    assert torch_pair_message(RuntimeError("CUDA out of memory")) is None

    import fer_nla.commands.models as models

    def broken(args):
        raise raised

    monkeypatch.setattr(models, "run", broken)
    assert main(["models"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "torchvision 0.29.1 does not match torch 2.13.0" in err


def test_onnx_files_are_recognised_by_their_fields_without_the_onnx_package(tmp_path):
    from fer_nla.builtin import builtin_onnx_path

    model = builtin_onnx_path().read_bytes()
    cases = {"whole.onnx": (model, "onnx"), "cut.onnx": (model[: len(model) // 2], "onnx-truncated"),
             "varint.bin": (bytes([0x08, 0x07, 0x12, 0x03]) + b"abc" + bytes([0x3A, 0x01, 0x00]), "onnx"),
             "no_graph.bin": (bytes([0x08, 0x07, 0x12, 0x03]) + b"abc", "unknown"),
             "random.bin": (bytes([0x08]) + bytes(range(200, 255)), "unknown")}
    for name, (data, kind) in cases.items():
        (tmp_path / name).write_bytes(data)
        assert sniff_file(tmp_path / name).kind == kind, name


def test_a_missing_or_foreign_checkpoint_is_said_as_such_not_as_a_missing_pytorch(tmp_path):
    (tmp_path / "photo.pt").write_bytes(PHOTO.read_bytes())
    for checkpoint, said in ((tmp_path / "none.pt", "none.pt does not exist; pass the best.pt or last.pt"),
                             (tmp_path / "photo.pt", "photo.pt is not a checkpoint (random or unknown bytes")):
        done = _run_without_torch("from fer_nla.cli import main\n"
                                  f"sys.exit(main(['predict', '--checkpoint', {str(checkpoint)!r}, {str(PHOTO)!r}]))")
        assert done.returncode == 2 and said in done.stderr and "fer-nla[train]" not in done.stderr, done.stderr
