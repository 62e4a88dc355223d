"""Files from other tools given as checkpoints or weight files (issue 12, case 7): each kind is
named in one line with its fix, wherever a PyTorch file is read (load_checkpoint, eval, predict
--backend torch, export, train --resume, model.backbone_weights); no library warning or error
text reaches the user, and nothing ever advises turning ``weights_only`` off."""

from __future__ import annotations

import json
import pickle
import re
import struct
import warnings
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from PIL import Image

from fer_nla.checkpoint import load_checkpoint
from fer_nla.cli import main
from fer_nla.errors import InputError
from fer_nla.file_kinds import sniff_file
from fer_nla.models import build_model

STATE_DICT_FIX = r"save its state_dict \(torch.save\(model.state_dict\(\), 'weights.pt'\)\)"


def _onnx_bytes() -> bytes:
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "plain",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])],
    )
    return onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]).SerializeToString()


def _write(path: Path, kind: str) -> Path:
    """A file of ``kind`` at ``path`` (each built here, a few hundred bytes to 100 kB)."""
    tiny = build_model("cnn_small", num_classes=7)
    if kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(1, 256, 2048, dtype=np.uint8).tobytes())
    elif kind == "keras_h5":
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(504))
    elif kind == "onnx":
        path.write_bytes(_onnx_bytes())
    elif kind == "pickled_model":
        torch.save(tiny, path)  # the whole nn.Module: weights_only=True refuses it
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes/readme.txt", "hello")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit.save's own deprecation warning
            torch.jit.save(torch.jit.script(tiny), str(path))
    elif kind == "safetensors":
        header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
        path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(8))
    elif kind == "plain_pickle":
        path.write_bytes(pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    elif kind == "state_dict":
        torch.save(tiny.state_dict(), path)
    return path


# kind -> (sniffed kind, the message after "<path> ").
KINDS: dict[str, tuple[str, str]] = {
    "random": ("unknown", r"is not a checkpoint \(random or unknown bytes: it starts [0-9a-f ]+, which matches no model format"),
    "keras_h5": ("hdf5", r"is a Keras/HDF5 file \(TensorFlow or Keras weights\), not a fer-nla checkpoint: .*" + STATE_DICT_FIX),
    "onnx": ("onnx", r"is an ONNX model, not a fer-nla checkpoint: "),
    "pickled_model": ("torch", r"is a pickled model \(it stores the Python class fer_nla.models.SmallCNN\), not a fer-nla "
                               r"checkpoint: fer-nla never unpickles code; load it in your own code and " + STATE_DICT_FIX),
    "zip": ("zip", r"is a zip archive that is not a PyTorch file \(it holds notes/readme.txt\), not a fer-nla checkpoint"),
    "empty": ("empty", r"is empty \(0 bytes\), not a fer-nla checkpoint: it was not written or copied completely"),
    "torchscript": ("torchscript", r"is a TorchScript model \(torch.jit.save\), not a fer-nla checkpoint: fer-nla never "
                                   r"loads code from files: load it with torch.jit.load in your own code and " + STATE_DICT_FIX),
    "safetensors": ("safetensors", r"is a safetensors file, not a fer-nla checkpoint: .*safetensors.torch.load_file"),
    "plain_pickle": ("pickle", r"is a plain Python pickle, not a fer-nla checkpoint: fer-nla never unpickles code"),
    "state_dict": ("torch", r"is not a fer-nla checkpoint \(no 'format': 'fer-nla' entry\)\. It looks like a bare weight "
                            r"file: use it as model.backbone_weights"),
}
LIBRARY_TEXT = ("weights_only", "Traceback", "Warning", "\x1b[", "`torch.load`", "safe_globals", "WeightsUnpickler")


def _clean(text: str) -> None:
    for bad in LIBRARY_TEXT:
        assert bad not in text, f"{bad!r} reached the user: {text}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_load_checkpoint_names_each_kind_without_library_text(tmp_path, kind):
    path = _write(tmp_path / "model.bin", kind)
    assert sniff_file(path).kind == KINDS[kind][0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError) as err:
            load_checkpoint(path)
    message = str(err.value)
    assert message.startswith(f"{path} ")
    assert re.search(KINDS[kind][1], message), message
    _clean(message)
    assert [str(w.message) for w in caught] == []  # no UserWarning from torch.load


def _face(tmp_path: Path) -> Path:
    face = tmp_path / "face.png"
    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(face)
    return face


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("command", ["eval", "predict --backend torch", "export"])
def test_every_command_prints_one_line_per_kind(tmp_path, capsys, kind, command):
    path = _write(tmp_path / "best.pt", kind)
    argv = {
        "eval": ["eval", "--checkpoint", str(path), "--device", "cpu"],
        "predict --backend torch": ["predict", "--checkpoint", str(path), "--backend", "torch", "--device", "cpu",
                                    "--faces-cropped", str(_face(tmp_path))],
        "export": ["export", "--checkpoint", str(path), "--onnx", str(tmp_path / "out.onnx")],
    }[command]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        status = main(argv)
    out = capsys.readouterr()
    assert status == 2
    name = command.split()[0]
    if kind == "onnx" and name == "eval":  # eval scores ONNX models; it asks for the data instead
        assert f"{path} is an ONNX model, which does not record the data it was trained on" in out.err
    else:
        assert out.err.startswith(f"fer-nla {name}: error: {path} ")
        assert re.search(KINDS[kind][1].replace("a fer-nla checkpoint", ".*"), out.err), out.err
    assert out.err.count("\n") == 1 and out.out == ""
    _clean(out.err)
    assert [str(w.message) for w in caught] == []
    assert not (tmp_path / "out.onnx").exists()


def test_the_onnx_advice_fits_the_command(tmp_path, capsys):
    path = _write(tmp_path / "model.onnx", "onnx")
    face = _face(tmp_path)
    assert main(["predict", "--checkpoint", str(path), "--backend", "torch", "--faces-cropped", str(face)]) == 2
    assert capsys.readouterr().err.endswith(f"{path} is an ONNX model, not a fer-nla checkpoint: use --backend onnx "
                                            "(onnxruntime) to run it\n")
    assert main(["export", "--checkpoint", str(path), "--onnx", str(tmp_path / "again.onnx")]) == 2
    assert "it is already exported; run it with `fer-nla predict --backend onnx`" in capsys.readouterr().err
    ckpt = _write(tmp_path / "weights.pt", "state_dict")
    assert main(["predict", "--checkpoint", str(ckpt), "--backend", "onnx", "--faces-cropped", str(face)]) == 2
    assert f"{ckpt} is a PyTorch file, not an ONNX model: use --backend torch" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["onnx", "pickled_model", "torchscript", "keras_h5", "random"])
def test_train_resume_names_a_foreign_last_pt(tmp_path, capsys, kind):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("model:\n  arch: cnn_small\ntrain:\n  device: cpu\n")
    _write(run / "last.pt", kind)
    assert main(["train", "--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"fer-nla train: error: {run / 'last.pt'} ") and err.count("\n") == 1
    _clean(err)


@pytest.mark.parametrize("kind", ["onnx", "pickled_model", "torchscript", "keras_h5", "safetensors", "empty", "random"])
def test_backbone_weights_name_a_foreign_file(tmp_path, kind):
    path = _write(tmp_path / "backbone.pth", kind)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError) as err:
            build_model("resnet18", num_classes=7, backbone_weights=path)
    message = str(err.value)
    assert message.startswith(f"{path} ") and ("not a PyTorch weight file" in message or kind == "random"), message
    if kind == "onnx":
        assert "model.backbone_weights takes a PyTorch state dict" in message
    if kind == "pickled_model":
        assert "is a pickled model (it stores the Python class fer_nla.models.SmallCNN)" in message
    _clean(message)
    assert [str(w.message) for w in caught] == []


def test_a_run_folder_given_as_checkpoint_names_its_best_pt(tmp_path):
    _write(tmp_path / "best.pt", "state_dict")
    with pytest.raises(InputError, match=rf"{tmp_path} is a folder, not a fer-nla checkpoint; pass {tmp_path / 'best.pt'}"):
        load_checkpoint(tmp_path)


def test_no_source_advises_turning_weights_only_off_and_user_files_go_through_one_gate():
    src = Path(__file__).resolve().parents[1] / "src" / "fer_nla"
    call = re.compile(r"torch\.load\((?!\.\.\.)[^)]*")  # a call, not the docstrings' torch.load(..., weights_only=True)
    for path in src.rglob("*.py"):
        text = path.read_text()
        assert "weights_only=False" not in text, path
        assert all("weights_only=True" in found for found in call.findall(text)), path
    # every file a user names (checkpoints, backbone weights, resume) is read by file_kinds.read_torch_file
    user_facing = ["checkpoint.py", "models.py", "train", "audit_run.py", "commands", "predict"]
    for name in user_facing:
        for path in ([src / name] if name.endswith(".py") else sorted((src / name).rglob("*.py"))):
            assert not call.search(path.read_text()), path


# --- issue 24: NumPy values in a checkpoint load; other objects are named; a cut ONNX file is said so --------
def test_a_checkpoint_holding_numpy_values_loads(tmp_path):
    """A user's np.float64 score and np.ndarray in a fer-nla checkpoint: NumPy's data unpickles no
    code, so it is allow-listed (weights_only stays on) and the values come back."""
    from fer_nla.builtin import DEFAULT_MODEL, builtin_path

    payload = torch.load(builtin_path(DEFAULT_MODEL), weights_only=True)
    payload |= {"my_score": np.float64(0.5), "my_curve": np.arange(3, dtype=np.float32), "n": np.int64(7)}
    torch.save(payload, tmp_path / "best.pt")
    loaded = load_checkpoint(tmp_path / "best.pt")
    assert loaded["my_score"] == 0.5 and loaded["n"] == 7
    np.testing.assert_array_equal(loaded["my_curve"], [0.0, 1.0, 2.0])


def test_other_objects_in_a_checkpoint_are_named_with_what_to_store_instead(tmp_path):
    import datetime

    from fer_nla.builtin import DEFAULT_MODEL, builtin_path

    payload = torch.load(builtin_path(DEFAULT_MODEL), weights_only=True)
    payload |= {"score": np.float64(0.5), "when": datetime.datetime(2026, 1, 1)}
    torch.save(payload, tmp_path / "best.pt")
    with pytest.raises(InputError) as err:
        load_checkpoint(tmp_path / "best.pt")
    assert str(err.value).startswith(f"{tmp_path / 'best.pt'} stores Python objects of datetime.datetime, which "
                                     "fer-nla never unpickles")
    assert "pickled model" not in str(err.value) and "numpy" not in str(err.value)
    _clean(str(err.value))


@pytest.mark.parametrize("keep", [0.5, 0.01])
def test_a_cut_onnx_file_is_named_as_cut_with_every_command(tmp_path, capsys, keep):
    """A download or copy cut short: an ONNX model that ends inside a field, not "random bytes"."""
    from fer_nla.builtin import DEFAULT_MODEL, builtin_onnx_path
    from fer_nla.predict import Predictor

    whole = builtin_onnx_path(DEFAULT_MODEL).read_bytes()
    cut = tmp_path / "model.onnx"
    cut.write_bytes(whole[:int(len(whole) * keep)])
    assert sniff_file(cut).kind == "onnx-truncated"
    with pytest.raises(InputError, match=rf"model.onnx is an ONNX model cut short \({cut.stat().st_size:,} of at least "
                                         rf"[\d,]+ bytes\): it was not written, downloaded or copied completely"):
        Predictor.from_onnx(cut)
    for argv in (["predict", "--checkpoint", str(cut), "--faces-cropped", str(_face(tmp_path))],
                 ["eval", "--checkpoint", str(cut), "--dataset", "synthetic", "--device", "cpu"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "cut short" in err and "random" not in err and err.count("\n") == 1, err
    assert sniff_file(_write(tmp_path / "whole.onnx", "onnx")).kind == "onnx"
