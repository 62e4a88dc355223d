"""One device check for every command: a device this machine lacks is named as the user typed
it (``--device mps``, ``train.device=mps``), with what is available here and the fix; never a
traceback, and never blamed on the checkpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from checkpoint_files import save_payload
from fer_nla.cli import main
from fer_nla.config import load_config
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS
from fer_nla.models import build_model
from fer_nla.runtime import available_devices, resolve_device

HAS_CUDA = torch.cuda.is_available()
HAS_MPS = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
MISSING = [d for d, present in (("mps", HAS_MPS), ("cuda", HAS_CUDA), ("cuda:7", HAS_CUDA)) if not present]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 7-class cnn_small checkpoint of the synthetic set (random weights)."""
    torch.manual_seed(0)
    config = load_config(None, ["data.options.num_samples=8", "data.image_size=32", "model.arch=cnn_small"])
    path = tmp_path_factory.mktemp("ckpt") / "best.pt"
    save_payload(path, {
        "model": {"arch": "cnn_small", "num_classes": 7, "stem": "imagenet"}, "class_names": list(EMOTIONS[:7]),
        "preprocess": {"image_size": 32, "mean": [0.5] * 3, "std": [0.25] * 3},
        "state_dict": build_model("cnn_small", num_classes=7).state_dict(), "config": config.to_dict(),
        "epoch": 1, "metrics": {},
    })
    return path


def _commands(tmp: Path, checkpoint: Path, device: str) -> dict[str, tuple[list[str], str]]:
    """Command line -> the device as its user typed it."""
    face = tmp / "face.png"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(face)
    flag = f"--device {device}"
    return {
        "train --device": (["train", "--out", str(tmp / "run"), "--device", device], flag),
        "train override": (["train", "--out", str(tmp / "run"), f"train.device={device}"], f"train.device={device}"),
        "eval": (["eval", "--checkpoint", str(checkpoint), "--device", device], flag),
        "predict torch": (["predict", "--checkpoint", str(checkpoint), str(face), "--faces-cropped",
                           "--device", device], flag),
        "predict onnx": (["predict", "--checkpoint", str(tmp / "model.onnx"), str(face), "--device", device], flag),
    }


@pytest.mark.parametrize("device", MISSING)
@pytest.mark.parametrize("command", ["train --device", "train override", "eval", "predict torch", "predict onnx"])
def test_a_missing_device_is_named_as_typed(tmp_path, capsys, checkpoint, command, device):
    argv, typed = _commands(tmp_path, checkpoint, device)[command]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{typed}:" in err or f"{typed} " in err, err
    assert "Traceback" not in err and "not a fer-nla checkpoint" not in err
    assert ("--device" in err) == typed.startswith("--device")  # never the other spelling
    assert "available here: cpu" in err and ("auto (the best device here)" in err)  # the ONNX backend too
    assert not (tmp_path / "run").exists()  # train stops before making the run folder


def test_the_check_names_the_device_what_is_here_and_the_fix():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")
    assert available_devices()[-1] == "cpu"
    for wrong in ("gpu", "cuda:x", "mps:0", "tpu9", ""):
        with pytest.raises(InputError, match=rf"device={wrong!r} is not a device fer-nla runs on; use device='auto'"):
            resolve_device(wrong)
    if not HAS_MPS:
        with pytest.raises(InputError, match=r"device='mps': this machine has no Apple MPS .*available here: .*cpu\)"):
            resolve_device("mps")
    if not HAS_CUDA:
        with pytest.raises(InputError, match=r"device='cuda:1': this machine has no CUDA GPU \(available here: "):
            resolve_device("cuda:1")


@pytest.mark.skipif(HAS_MPS, reason="this machine has MPS")
def test_the_installed_command_prints_no_traceback(checkpoint):
    out = subprocess.run([sys.executable, "-m", "fer_nla", "eval", "--checkpoint", str(checkpoint), "--device", "mps"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr.startswith("fer-nla eval: error: --device mps: this machine has no Apple MPS")
    assert "Traceback" not in out.stderr


# --- issue 12, case 8: an ONNX model on a CUDA device this machine lacks --------------------------
@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory, checkpoint: Path) -> Path:
    from fer_nla.predict.onnx_export import export_checkpoint

    return export_checkpoint(checkpoint, tmp_path_factory.mktemp("onnx") / "model.onnx")


@pytest.fixture
def gpu_onnxruntime_without_a_gpu(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """onnxruntime-gpu on a machine without a GPU: the CUDA provider is listed, but a session
    asked for it falls back to the CPU, printing and warning as onnxruntime does."""
    import warnings

    import onnxruntime as ort

    real_session = ort.InferenceSession
    sessions: list[dict] = []

    def session(path, sess_options=None, providers=None, **kwargs):
        sessions.append({"providers": list(providers or []), "log_severity_level": sess_options.log_severity_level})
        print("*************** EP Error ***************\nFalling back to ['CPUExecutionProvider'] and retrying.")
        warnings.warn("Specified provider 'CUDAExecutionProvider' is not in available provider names", stacklevel=2)
        return real_session(path, sess_options=sess_options, providers=["CPUExecutionProvider"])

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", session)
    return sessions


@pytest.mark.parametrize("device,missing", [("cuda", "CUDA GPU"), ("cuda:1", "CUDA GPU number 1")])
def test_an_onnx_model_on_cuda_without_a_gpu_is_the_torch_device_error(tmp_path, capsys, onnx_model, device, missing,
                                                                       gpu_onnxruntime_without_a_gpu):
    face = tmp_path / "face.png"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(face)
    expected = (f"--device {device}: this machine has no {missing} (available here: cpu); use --device auto (the best "
                "device here) or --device cpu\n")
    for argv in (["predict", "--checkpoint", str(onnx_model), str(face), "--faces-cropped", "--device", device],
                 ["eval", "--checkpoint", str(onnx_model), "--dataset", "synthetic", "-o", "num_samples=8",
                  "--device", device]):
        assert main(argv) == 2
        out = capsys.readouterr()
        assert out.err == f"fer-nla {argv[0]}: error: {expected}"  # before: a silent CPU run, exit 0
        assert out.out == ""  # onnxruntime's fallback notes stay out of the user's output
    sessions = gpu_onnxruntime_without_a_gpu
    index = {"cuda": None, "cuda:1": 1}[device]
    want = ["CUDAExecutionProvider"] if index is None else [("CUDAExecutionProvider", {"device_id": index})]
    assert [s["providers"] for s in sessions] == [want, want]  # CUDA alone: no CPU fallback asked for
    assert {s["log_severity_level"] for s in sessions} == {3}  # onnxruntime's warnings silenced


def test_an_onnx_model_on_auto_falls_back_to_the_cpu_quietly(tmp_path, capsys, onnx_model, gpu_onnxruntime_without_a_gpu):
    import warnings

    face = tmp_path / "face.png"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(face)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["predict", "--checkpoint", str(onnx_model), str(face), "--faces-cropped", "--device", "auto"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith(f"{face}: ") and "EP Error" not in out.out + out.err and "provider" not in out.err
    assert [str(w.message) for w in caught] == []
    assert gpu_onnxruntime_without_a_gpu[0]["providers"] == ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_onnx_providers_per_device(monkeypatch):
    import onnxruntime as ort

    from fer_nla.runtime import check_onnx_providers, onnx_providers

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    assert onnx_providers("auto") == onnx_providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(InputError, match=r"device='cuda': this onnxruntime has no CUDA GPU support \(available here: "
                                         r"cpu\); use device='auto' \(the best device here\) or device='cpu'"):
        onnx_providers("cuda")
    with pytest.raises(InputError, match=r"device='mps': onnxruntime has no Apple MPS provider \(available here: cpu\)"):
        onnx_providers("mps")
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert onnx_providers("cuda:2") == [("CUDAExecutionProvider", {"device_id": 2})]
    check_onnx_providers(["CUDAExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"])  # got it
    check_onnx_providers(["CUDAExecutionProvider", "CPUExecutionProvider"], ["CPUExecutionProvider"])  # a fallback asked for
