"""Backbones with an expression head, and loading backbone weight files the user supplies.

``build_model(arch, num_classes=..., stem=..., backbone_weights=...)`` builds a torchvision
ResNet-18/50, a small CPU-sized CNN (``cnn_small``, ``cnn_medium``: for benchmarks grids,
tests and CPU-only users) or a timm model when timm is installed, with a ``num_classes`` head. Weights are
never downloaded: a backbone file (the MS-Celeb-1M ResNet-18 of the paper, a torchvision
ImageNet file, a fer-nla checkpoint) is read from a local path with ``weights_only=True``, its kind sniffed first.
Parameters whose names or shapes do not fit (the source's classifier, a 7x7 stem loaded into
the small stem) are skipped and reported in a :class:`BackboneLoadReport`.

Every built-in network is a :class:`FeatureNetwork` (timm's naming): ``forward_features(x)``
gives the feature maps before pooling and ``forward_head(maps)`` the logits, so a training
method that needs features (:class:`fer_nla.methods.Needs`) gets them from the same forward.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

from fer_nla.errors import InputError
from fer_nla.file_kinds import read_torch_file
from fer_nla.pooled import PooledClassifier as _PooledClassifier

log = logging.getLogger(__name__)

TORCHVISION_ARCHS: tuple[str, ...] = ("resnet18", "resnet50")
STEMS: tuple[str, ...] = ("imagenet", "small")
# Channel widths of the four conv blocks of the small CNNs (about 0.1M and 0.4M parameters).
SMALL_CNN_WIDTHS: dict[str, tuple[int, ...]] = {"cnn_small": (16, 32, 64, 128), "cnn_medium": (32, 64, 128, 256)}
# Small residual networks for 48-px faces: (stem width, stage widths, basic blocks per stage).
SMALL_RESNETS: dict[str, tuple[int, tuple[int, ...], tuple[int, ...]]] = {"resnet10s": (16, (32, 64, 128, 256), (1, 1, 1, 1))}
TIMM_PREFIX = "timm:"
# dlib's face-recognition ResNet-29 (fer_nla.dlib_resnet), 150-px input, identity-trained weights.
DLIB_ARCH = "dlib_resnet"
# Names the classifier carries in the files we read; never part of the backbone.
HEAD_PREFIXES: tuple[str, ...] = ("fc.", "head.", "classifier.", "last_linear.")
# Below this share of backbone weights (by element count) fitting, of the model's or of the
# file's, the file is for another architecture (ResNet-50 tensors fill 56% of a ResNet-18).
MIN_BACKBONE_SHARE = 0.5
# Logged by the trainer when a recipe that assumes a face-pretrained file runs without one.
RANDOM_BACKBONE_WARNING = (
    "warning: model.backbone_weights is not set, so the backbone starts from random weights; this recipe "
    "assumes the MS-Celeb-1M ResNet-18 (resnet18_msceleb.pth, see docs/datasets.md, 'Pretrained weights') "
    "and scores far below the paper without it. Set model.backbone_weights=/path/to/resnet18_msceleb.pth, or "
    "model.expect_backbone_weights=false to train from scratch on purpose"
)
# Wrappers that prefix every key in saved files: DataParallel/DDP, torch.compile, Lightning.
KEY_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.", "model.", "backbone.")


def available_models() -> list[str]:
    """Architecture names :func:`build_model` accepts (``timm:<name>`` when timm is installed)."""
    names = list(TORCHVISION_ARCHS) + list(SMALL_CNN_WIDTHS) + list(SMALL_RESNETS) + [DLIB_ARCH]
    if importlib.util.find_spec("timm") is not None:
        names.append(f"{TIMM_PREFIX}<name>")
    return names


def build_model(
    arch: str,
    *,
    num_classes: int,
    stem: str = "imagenet",
    backbone_weights: str | Path | None = None,
) -> nn.Module:
    """A classifier returning ``num_classes`` logits.

    ``stem="small"`` replaces the 7x7 stride-2 convolution and the max-pool by a 3x3 stride-1
    convolution, so 48-64 px faces keep an 8x8 (not 2x2) final feature map. With
    ``backbone_weights`` the file's matching parameters are loaded (the head stays freshly
    initialised) and what was skipped is logged; call :func:`load_backbone_weights` directly
    to get the report. ``dlib_resnet`` is dlib's face-recognition ResNet-29 for 150-px input
    (:class:`fer_nla.dlib_resnet.DlibFaceResNet`; backbone weights
    ``dlib_face_recognition_resnet_model_v1`` or its ``.dat``).
    """
    if num_classes < 2:
        raise InputError(f"num_classes must be at least 2, got {num_classes}")
    if stem not in STEMS:
        raise InputError(f"unknown stem {stem!r}; choose one of: {', '.join(STEMS)} (model.stem=...)")
    if arch in TORCHVISION_ARCHS:
        model = _torchvision_resnet(arch, num_classes=num_classes, stem=stem)
    elif arch in SMALL_CNN_WIDTHS:
        if stem != "imagenet":
            raise InputError(f"stem {stem!r} is only available for {', '.join(TORCHVISION_ARCHS)}; "
                             f"{arch} has one stem: use model.stem=imagenet")
        model = SmallCNN(SMALL_CNN_WIDTHS[arch], num_classes=num_classes)
    elif arch in SMALL_RESNETS:
        if stem != "imagenet":
            raise InputError(f"stem {stem!r} is only available for {', '.join(TORCHVISION_ARCHS)}; "
                             f"{arch} has one stem: use model.stem=imagenet")
        stem_width, widths, blocks = SMALL_RESNETS[arch]
        model = SmallResNet(stem_width, widths, blocks, num_classes=num_classes)
    elif arch == DLIB_ARCH:
        if stem != "imagenet":
            raise InputError(f"stem {stem!r} is only available for {', '.join(TORCHVISION_ARCHS)}; "
                             f"{arch} has one stem: use model.stem=imagenet")
        # imported here: fer_nla.dlib_resnet imports this module
        from fer_nla.dlib_resnet import DlibFaceResNet

        model = DlibFaceResNet(num_classes=num_classes)
    elif arch.startswith(TIMM_PREFIX):
        model = _timm_model(arch[len(TIMM_PREFIX):], num_classes=num_classes, stem=stem)
    else:
        raise InputError(f"unknown model {arch!r}; choose one of: {', '.join(available_models())} (model.arch=...)")
    if backbone_weights is not None:
        report = load_backbone_weights(model, backbone_weights)
        log.info("%s", report.summary())
    return model


@runtime_checkable
class FeatureNetwork(Protocol):
    """A classifier split where training methods need it (timm's names and semantics).

    ``forward_features(x)``: images ``[B, 3, H, W]`` -> the last feature maps ``[B, C, h, w]``
    (before global pooling). ``forward_head(maps, pre_logits=False)``: the maps -> logits
    ``[B, num_classes]``, or with ``pre_logits=True`` the pooled features ``[B, C]`` the
    classifier reads. ``forward_head(forward_features(x))`` equals ``forward(x)``. timm models
    have both; for a timm model whose features are not maps (a ViT's tokens) the trainer refuses
    a method that needs maps."""

    def forward_features(self, x: Tensor) -> Tensor: ...

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor: ...


class FeatureResNet(ResNet):
    """torchvision's ResNet with the :class:`FeatureNetwork` split; the same modules, state-dict
    keys, initialisation and ``forward`` as ``torchvision.models.resnet18/50(weights=None)``."""

    def forward_features(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        pooled = torch.flatten(self.avgpool(x), 1)
        return pooled if pre_logits else self.fc(pooled)


def _torchvision_resnet(arch: str, *, num_classes: int, stem: str) -> nn.Module:
    block, layers = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet50": (Bottleneck, [3, 4, 6, 3])}[arch]
    model = FeatureResNet(block, layers, num_classes=num_classes)
    if stem == "small":
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
    return model


class SmallCNN(_PooledClassifier):
    """Conv3x3-BN-ReLU blocks with 2x2 max-pooling between them, global average pooling and a
    linear head ``fc``. At 32x32 input ``cnn_small`` costs about 15M multiply-adds per image:
    ~2,000 training images/s on 2 CPU cores, 20x a ResNet-18 at 48 px."""

    def __init__(self, widths: tuple[int, ...], *, num_classes: int, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for i, width in enumerate(widths):
            if i:
                layers.append(nn.MaxPool2d(2))
            layers += [nn.Conv2d(channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)]
            channels = width
        self._finish(layers, channels=channels, num_classes=num_classes)


class SmallResNet(_PooledClassifier):
    """A ResNet for 48-px faces (He et al. 2016, torchvision's ``BasicBlock``): a 3x3 stride-1
    convolution to ``stem_width`` channels, a 3x3 stride-2 one to ``widths[0]`` (48 -> 24 px),
    then stages of ``blocks[i]`` basic blocks of ``widths[i]`` channels, each stage after the
    first halving the resolution (24, 12, 6, 3 px), global average pooling and a linear head ``fc``.

    ``resnet10s`` (16; 32, 64, 128, 256; one block per stage): 1.2M parameters (4.9 MB in
    float32), about 39M multiply-adds per 48x48 face; measured on one thread of a 2-vCPU Xeon
    (AVX-512) through onnxruntime at batch 32: 1,978 faces/s (``benchmarks/results/inference_cpu.md``).
    Input ``float32 [B, 3, H, W]``, output logits ``[B, num_classes]``."""

    def __init__(self, stem_width: int, widths: tuple[int, ...], blocks: tuple[int, ...], *, num_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(3, stem_width, 3, padding=1, bias=False), nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True),
            nn.Conv2d(stem_width, widths[0], 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True),
        ]
        channels, ends = widths[0], [len(layers)]
        for stage, (width, count) in enumerate(zip(widths, blocks, strict=True)):
            for block in range(count):
                stride = 2 if stage and not block else 1
                downsample = None
                if stride != 1 or channels != width:
                    downsample = nn.Sequential(nn.Conv2d(channels, width, 1, stride=stride, bias=False), nn.BatchNorm2d(width))
                layers.append(BasicBlock(channels, width, stride=stride, downsample=downsample))
                channels = width
            ends.append(len(layers))
        self.stage_ends = tuple(ends)
        self._finish(layers, channels=channels, num_classes=num_classes)


def _timm_model(name: str, *, num_classes: int, stem: str) -> nn.Module:
    if importlib.util.find_spec("timm") is None:
        raise InputError(f"model 'timm:{name}' needs timm: pip install 'fer-nla[timm]'")
    if stem != "imagenet":
        raise InputError(f"stem {stem!r} is only available for {', '.join(TORCHVISION_ARCHS)}; use stem=imagenet with timm models")
    import timm

    try:
        return timm.create_model(name, pretrained=False, num_classes=num_classes)
    except RuntimeError as err:  # timm raises RuntimeError for an unknown name
        raise InputError(f"timm has no model {name!r}: {err}") from None


# -- backbone files ---------------------------------------------------------------------------
@dataclass
class BackboneLoadReport:
    """What loading a backbone file did: parameters loaded, and those skipped and why."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the model, not in the file (left as initialised)
    unexpected: list[str] = field(default_factory=list)  # in the file, not in the model
    shape_mismatch: list[str] = field(default_factory=list)  # same name, other shape (skipped)

    def summary(self) -> str:
        def names(keys: list[str]) -> str:
            return ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")

        lines = [f"backbone weights {self.path}: loaded {len(self.loaded)} tensors"]
        if self.missing:
            lines.append(f"  missing (kept as initialised): {names(self.missing)}")
        if self.shape_mismatch:
            lines.append(f"  other shape (skipped): {names(self.shape_mismatch)}")
        if self.unexpected:
            lines.append(f"  unexpected (ignored): {names(self.unexpected)}")
        return "\n".join(lines)


def read_weight_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict inside a weight file: a plain state dict (torchvision), a dict with
    ``state_dict`` (the MS-Celeb-1M ResNet-18, Lightning) or ``model``, or a fer-nla
    checkpoint; wrapper prefixes such as ``module.`` are removed. The file goes through
    :func:`fer_nla.file_kinds.read_torch_file` (kind sniffed first, ``weights_only=True``): a
    foreign file (ONNX, Keras/HDF5, TorchScript, a pickled model, ...) is an :class:`InputError`.
    A dlib ``.dat`` (or the name ``dlib_face_recognition_resnet_model_v1``) is read by
    :func:`fer_nla.dlib_format.read_dlib_resnet`."""
    from fer_nla.dlib_format import dlib_weight_path, read_dlib_resnet

    if (dat := dlib_weight_path(path)) is not None:
        return read_dlib_resnet(dat)
    path = Path(path)
    if not path.exists():
        raise InputError(f"backbone weights file {path} does not exist; set model.backbone_weights to a local file")
    obj: Any = read_torch_file(
        path, target="a PyTorch weight file", fix="set model.backbone_weights to a state dict saved with torch.save",
        onnx_hint="model.backbone_weights takes a PyTorch state dict (the .pth/.pt file the ONNX model was made from)",
    )
    state = obj
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(key), Mapping) and not _is_tensor_dict(state):
            state = state[key]
            break
    if not isinstance(state, Mapping) or not state or not _is_tensor_dict(state):
        raise InputError(
            f"{path} holds no state dict (expected a dict of tensors, or a dict with 'state_dict' of tensors)"
        )
    return {strip_prefixes(k): v for k, v in state.items()}


def _is_tensor_dict(obj: Mapping[str, Any]) -> bool:
    return bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def strip_prefixes(key: str) -> str:
    """``module.layer1.0.conv1.weight`` -> ``layer1.0.conv1.weight`` (any wrapper prefixes)."""
    changed = True
    while changed:
        changed = False
        for prefix in KEY_PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def load_backbone_weights(model: nn.Module, path: str | Path) -> BackboneLoadReport:
    """Copy the tensors of ``path`` whose name and shape match into ``model``.

    The classifier of the source file (``fc.*`` of another class count) is reported as
    unexpected or other-shape, never loaded into the new head. It is an error when fewer
    than half the backbone's weights, or of the file's, fit (a file of another architecture).
    """
    source = read_weight_file(path)
    target = model.state_dict()
    report = BackboneLoadReport(path=str(path))
    to_load: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        if key not in target:
            report.unexpected.append(key)
        elif tuple(value.shape) != tuple(target[key].shape):
            report.shape_mismatch.append(key)
        else:
            to_load[key] = value
    report.missing = [k for k in target if k not in source]
    report.loaded = sorted(to_load)
    backbone_keys = [k for k in target if not k.startswith(HEAD_PREFIXES) and not k.endswith("num_batches_tracked")]
    total = sum(target[k].numel() for k in backbone_keys)
    fitting = sum(target[k].numel() for k in backbone_keys if k in to_load)
    file_total = sum(v.numel() for k, v in source.items() if not k.startswith(HEAD_PREFIXES))
    if fitting < MIN_BACKBONE_SHARE * total or fitting < MIN_BACKBONE_SHARE * file_total:
        raise InputError(
            f"only {fitting / max(total, 1):.0%} of the model's backbone weights and "
            f"{fitting / max(file_total, 1):.0%} of the file's fit {path} "
            f"({len(source)} tensors in the file, e.g. "
            f"{', '.join(list(source)[:3])}); is it a weight file for another architecture? "
            "Set model.arch to the file's architecture"
        )
    model.load_state_dict(to_load, strict=False)
    return report
