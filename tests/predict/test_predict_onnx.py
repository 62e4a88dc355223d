"""ONNX export: metadata, dynamic batch, agreement with PyTorch, and no torch on the onnx path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from conftest import IMAGE_SIZE, MEAN, STD
from fer_nla.cli import main
from fer_nla.errors import InputError
from fer_nla.labels import EMOTIONS
from fer_nla.predict import Predictor


def _crops(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(int(rng.integers(40, 140)), int(rng.integers(40, 140)), 3), dtype=np.uint8)
            for _ in range(count)]


def test_the_onnx_file_holds_class_names_preprocessing_and_a_dynamic_batch(onnx_model: Path) -> None:
    model = onnx.load(str(onnx_model))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["format"] == "fer-nla"
    assert json.loads(meta["class_names"]) == list(EMOTIONS)
    assert json.loads(meta["image_size"]) == IMAGE_SIZE
    assert json.loads(meta["mean"]) == MEAN and json.loads(meta["std"]) == STD
    assert json.loads(meta["model"]) == {"arch": "resnet18", "num_classes": 8, "stem": "small"}
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param and not dims[0].HasField("dim_value")  # symbolic batch
    assert [d.dim_value for d in dims[1:]] == [3, IMAGE_SIZE, IMAGE_SIZE]


def test_onnxruntime_and_pytorch_probabilities_agree_within_1e4(checkpoint: Path, onnx_model: Path,
                                                               frontal_faces_or_none: list[np.ndarray]) -> None:
    torch_predictor = Predictor.from_checkpoint(checkpoint, device="cpu", batch_size=32)
    onnx_predictor = Predictor.from_onnx(onnx_model, batch_size=7)  # batches of 7, 7 and the remainder
    crops = _crops(17) + frontal_faces_or_none
    p_torch = torch_predictor.probabilities(crops)
    p_onnx = onnx_predictor.probabilities(crops)
    assert p_torch.shape == p_onnx.shape == (len(crops), 8)
    assert np.abs(p_torch - p_onnx).max() < 1e-4
    assert p_torch.max() > 0.5 and len(set(p_torch.argmax(1))) > 1  # not a degenerate, uniform output
    single = onnx_predictor.probabilities(crops[:1])  # batch of one through the dynamic axis
    np.testing.assert_allclose(single, p_torch[:1], atol=1e-4)
    assert onnx_predictor.class_names == list(EMOTIONS)


@pytest.fixture
def frontal_faces_or_none(request: pytest.FixtureRequest) -> list[np.ndarray]:
    try:
        return list(request.getfixturevalue("frontal_faces"))
    except pytest.skip.Exception:
        return []


def test_the_onnx_backend_runs_without_importing_torch(onnx_model: Path) -> None:
    code = (
        "import sys, numpy as np\n"
        "from fer_nla.predict import Predictor\n"
        f"p = Predictor.from_onnx({str(onnx_model)!r})\n"
        "faces = p.predict(np.full((64, 64, 3), 90, np.uint8), faces_cropped=True)[0]\n"
        "assert len(faces) == 1 and abs(sum(faces[0].probs.values()) - 1) < 1e-5\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_onnx_files_without_fer_nla_metadata_or_damaged_are_clear_errors(tmp_path: Path) -> None:
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Identity", ["x"], ["y"])], "plain",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3])],
    )
    plain = tmp_path / "plain.onnx"
    onnx.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), str(plain))
    with pytest.raises(InputError, match="without fer-nla metadata.*fer-nla export"):
        Predictor.from_onnx(plain)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(InputError, match=r"garbage.onnx is a text file \(it starts with 'not a model'\), not an ONNX model"):
        Predictor.from_onnx(garbage)
    with pytest.raises(InputError, match="does not exist"):
        Predictor.from_onnx(tmp_path / "absent.onnx")


def test_export_command_writes_and_verifies_the_model(exported: tuple[Path, int, str], checkpoint: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    target, status, out = exported
    assert status == 0
    assert f"wrote {target}" in out
    diff = float(out.split("differ by at most ")[1].split()[0])
    assert 0 <= diff < 1e-4
    assert main(["export", "--checkpoint", str(tmp_path / "nope.pt"), "--onnx", str(tmp_path / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()


# --- issue 12: eval scores ONNX models; export validates --opset and fails in one line ----------
def test_eval_scores_an_onnx_model_as_the_checkpoint_it_came_from(checkpoint: Path, onnx_model: Path, tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from fer_nla.evaluate import evaluate_checkpoint

    data = {"dataset": "synthetic", "options": {"num_samples": 32, "image_size": IMAGE_SIZE}, "device_name": "cpu"}
    torch_result = evaluate_checkpoint(str(checkpoint), **data)
    onnx_result = evaluate_checkpoint(str(onnx_model), **data)
    assert onnx_result["num_samples"] == torch_result["num_samples"] == 32
    assert onnx_result["class_names"] == list(EMOTIONS)
    for key in ("overall_acc", "mean_acc", "top2_acc", "per_class_acc", "confusion_matrix", "dropped"):
        assert onnx_result[key] == torch_result[key], key
    assert onnx_result["mAP"] == pytest.approx(torch_result["mAP"], abs=1e-6)
    assert onnx_result["macro_f1"] == pytest.approx(torch_result["macro_f1"], abs=1e-9)
    predicted = np.asarray(torch_result["confusion_matrix"]).sum(axis=0)
    assert (predicted > 0).sum() >= 2  # the model tells faces apart: the tables compared are not one column
    out = tmp_path / "eval.json"
    argv = ["eval", "--checkpoint", str(onnx_model), "--dataset", "synthetic", "-o", "num_samples=32",
            "-o", f"image_size={IMAGE_SIZE}", "--device", "cpu", "--output", str(out), "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["overall_acc"] == torch_result["overall_acc"]
    assert main(argv[:3] + ["--device", "cpu"]) == 2  # an ONNX model does not record its data: eval asks for it
    assert "is an ONNX model, which does not record the data it was trained on: name the data with --dataset" \
        in capsys.readouterr().err


@pytest.mark.parametrize("opset", ["-1", "0", "17", "999"])
def test_export_refuses_an_opset_outside_the_supported_range(checkpoint: Path, tmp_path: Path, opset: str,
                                                             capfd: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--onnx", str(target), "--opset", opset]) == 2
    out, err = capfd.readouterr()
    newest = onnx.defs.onnx_opset_version()
    assert err == (f"fer-nla export: error: --opset {opset} is not an ONNX opset fer-nla exports to; use --opset 18 "
                   f"(the default) or another opset from 18 to {newest}\n")
    assert out == "" and not target.exists()


def test_an_export_failure_is_one_line_and_no_file(checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capfd: pytest.CaptureFixture[str]) -> None:
    import torch

    def failing_export(*args: object, **kwargs: object) -> None:
        print("exporter chatter on stdout")
        raise RuntimeError("Failed to convert aten::frobnicate\nTraceback (most recent call last): ...")

    monkeypatch.setattr(torch.onnx, "export", failing_export)
    target = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(checkpoint), "--onnx", str(target)]) == 2
    out, err = capfd.readouterr()
    assert err == ("fer-nla export: error: exporting the model {'arch': 'resnet18', 'num_classes': 8, 'stem': 'small'} "
                   "to ONNX opset 18 failed (Failed to convert aten::frobnicate); try --opset 18, or report the model "
                   "architecture\n")
    assert out == "" and sorted(p.name for p in tmp_path.iterdir()) == []


# --- issue 24: export without --onnx writes beside the checkpoint -------------------------------------------
def test_export_without_onnx_writes_beside_the_checkpoint(checkpoint: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    run = tmp_path / "runs" / "mine"
    run.mkdir(parents=True)
    shutil.copyfile(checkpoint, run / "best.pt")
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--no-verify"]) == 0
    assert f"wrote {run / 'best.onnx'}" in capsys.readouterr().out
    assert Predictor.from_onnx(run / "best.onnx").class_names == list(EMOTIONS)
    monkeypatch.chdir(tmp_path)
    assert main(["export", "--model", "ferplus-resnet10s", "--no-verify"]) == 0
    assert "wrote ferplus-resnet10s.onnx" in capsys.readouterr().out
    assert (tmp_path / "ferplus-resnet10s.onnx").is_file()
