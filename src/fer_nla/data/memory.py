"""A dataset's images decoded once into one uint8 tensor, cached on disk.

Decoding PNG/JPEG files and transforming them with PIL on every step starves a GPU on 48-112 px
faces. :func:`decode_to_memory` decodes every image of a :class:`~fer_nla.data.dataset.FERDataset`
once into ``uint8 [N, 3, H, W]`` (RGB) and saves it to a cache file, so a second run loads it
in well under a second (FERPlus train, 25k x 48 x 48); :mod:`fer_nla.data.batch_augment` then
applies the recipe's augmentation to whole batches on the training device.

Stored size. When every image has the same size and that size is at most ``native_cap``
(256 px), the images keep their own size, so the recipe's Gaussian pixel noise is added before
the resize to the training size, as the reference does (NLA recipe,
``/work/shared/docs/NLA-METHOD.md``: "Gaussian pixel noise (variance 30) on half of the images
before the transform"). Otherwise (mixed sizes, or larger images) they are resized at decode
time to the training size with :func:`fer_nla.inference.preprocess.resize_face` (PIL bilinear, antialiased, as
the files path and eval-time preprocessing do), and
for such sources the noise then comes AFTER the resize. Gray sources (every image R = G = B,
e.g. FERPlus) are held as one channel expanded to three (``stride(1) == 0``): a third of the
memory and cache size, the same values. With ``grayscale`` (``data.grayscale``) every image is
made gray as it is decoded (:func:`fer_nla.data.transforms.to_gray`, PIL's ``convert("L")``),
so a colour source is then held as one channel too.

The cache folder is ``cache_dir``, else ``$FER_NLA_CACHE``, else ``$XDG_CACHE_HOME/fer-nla``,
else ``~/.cache/fer-nla``; a cache file's name carries a hash of everything that decides its
content (:func:`cache_key`), so a changed file or option makes a new one (old ones are left).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from fer_nla.atomic import atomic_write
from fer_nla.data.dataset import FERDataset
from fer_nla.data.transforms import to_gray
from fer_nla.errors import InputError
from fer_nla.inference.preprocess import resize_face

FORMAT_VERSION = 1  # bump when the stored layout or the decoding changes
NATIVE_SIZE_CAP = 256  # px: larger images are resized at decode time
DEFAULT_BUDGET_BYTES = 2 * 1024**3  # data.loader=auto: at most 2 GiB, or a quarter of RAM if smaller


@dataclass(frozen=True)
class MemoryImages:
    """Decoded images of one dataset, in its sample order.

    ``images``: ``uint8 [N, 3, H, W]`` RGB on the CPU (0..255; gray sets as an expanded view).
    ``native``: True when the images kept their own size (the recipe's noise then precedes the
    resize), False when they were resized to ``size`` at decode time. ``key``: the cache key;
    ``cache_path``: the cache file (None when caching is off); ``from_cache``: loaded, not decoded.
    """

    images: Tensor
    samples: tuple[str, ...]
    size: int | None
    native: bool
    key: str
    cache_path: Path | None
    from_cache: bool

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the stored images in pixels."""
        return int(self.images.shape[2]), int(self.images.shape[3])


# -- where and under which key -----------------------------------------------------------------
def cache_folder(cache_dir: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> Path:
    """The folder of image caches: ``cache_dir``, else ``$FER_NLA_CACHE``, else
    ``$XDG_CACHE_HOME/fer-nla``, else ``~/.cache/fer-nla`` (``environ`` defaults to ``os.environ``)."""
    env = os.environ if environ is None else environ
    if cache_dir is not None and str(cache_dir).strip():
        return Path(cache_dir).expanduser()
    if env.get("FER_NLA_CACHE", "").strip():
        return Path(env["FER_NLA_CACHE"]).expanduser()
    if env.get("XDG_CACHE_HOME", "").strip():
        return Path(env["XDG_CACHE_HOME"]).expanduser() / "fer-nla"
    return Path("~/.cache").expanduser() / "fer-nla"


def _file_stamps(samples: Sequence[str]) -> list[tuple[str, int, int]]:
    """``(path, size in bytes, mtime in ns)`` of each distinct file behind the sample ids: the id
    itself when it is a file, else its part before ``:row`` (``file.csv:12``). Other ids give none."""
    stamps: dict[str, tuple[str, int, int]] = {}
    for sample in samples:
        for path in (sample, sample.rsplit(":", 1)[0] if ":" in sample else None):
            if path is None or path in stamps:
                break
            try:
                st = os.stat(path)
            except (OSError, ValueError):
                continue
            stamps[path] = (path, int(st.st_size), int(st.st_mtime_ns))
            break
    return list(stamps.values())


def _source_digest(source: Any) -> str:
    """A hash of the image source's state (paths, face boxes, crop mode, CSV offsets, synthetic
    parameters): what the reader's options changed. Unpicklable sources give their type only."""
    try:
        return hashlib.sha256(pickle.dumps(source, protocol=4)).hexdigest()
    except Exception:  # noqa: BLE001 - any pickling failure only weakens the key
        return f"{type(source).__module__}.{type(source).__qualname__}"


def cache_key(
    dataset: FERDataset,
    *,
    size: int | None,
    root: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    native_cap: int = NATIVE_SIZE_CAP,
    grayscale: bool = False,
) -> str:
    """Hex SHA-256 of what decides the decoded images: format version, dataset name, ``root``
    (absolute), split, label mode, number of classes, reader ``options`` and ``info``, the image
    source's state, the size rule (``size``, ``native_cap``), ``grayscale`` (only when on, so the
    keys of colour caches stay as they were), the ordered sample ids and each image file's size
    and modification time (so an edited or replaced file changes the key)."""
    head = {
        "format": FORMAT_VERSION, "name": dataset.name, "split": dataset.split,
        "root": os.path.abspath(os.path.expanduser(str(root))) if root not in (None, "") else "",
        "labels": dataset.info.get("labels", ""), "num_classes": dataset.num_classes,
        "options": dict(options or {}), "info": dataset.info, "size": size, "native_cap": native_cap,
        "source": _source_digest(dataset.source),
    }
    if grayscale:
        head["grayscale"] = True
    digest = hashlib.sha256(json.dumps(head, sort_keys=True, default=str).encode())
    digest.update("\n".join(dataset.samples).encode("utf-8", "surrogatepass"))
    digest.update(json.dumps(_file_stamps(dataset.samples)).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _cache_path(folder: Path, dataset: FERDataset, key: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{dataset.name or 'dataset'}-{dataset.split or 'split'}")
    short_key = key[:24]  # 96 bits of the SHA-256 name the file; the whole key is checked on load
    return folder / f"{slug}-{short_key}.pt"


# -- decoding ----------------------------------------------------------------------------------
def _rgb_array(image: Image.Image, *, grayscale: bool = False) -> np.ndarray:
    """``uint8 [H, W, 3]`` of a PIL image in any mode (``grayscale``: its :func:`to_gray` luma
    in all three channels)."""
    if grayscale:
        return np.repeat(np.asarray(to_gray(image), dtype=np.uint8)[:, :, None], 3, axis=2)
    return np.array(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.uint8)  # writable copy


def _resized(pixels: np.ndarray, size: int) -> Tensor:
    """``uint8 [3, size, size]``: RGB pixels resized as eval-time preprocessing resizes them
    (:func:`fer_nla.inference.preprocess.resize_face`: PIL bilinear, antialiased)."""
    return torch.from_numpy(resize_face(pixels, size=size)).permute(2, 0, 1)


def _first_shape(dataset: FERDataset) -> tuple[int, int]:
    width, height = dataset.load_image(0).size
    return height, width


def _decode(dataset: FERDataset, *, size: int | None, native_cap: int, log: Callable[[str], None],
            grayscale: bool = False) -> tuple[Tensor, bool]:
    """Every image as ``uint8 [N, 3, H, W]`` and whether it kept its own size (see module doc)."""
    n = len(dataset)
    first = _rgb_array(dataset.load_image(0), grayscale=grayscale)
    h, w = first.shape[:2]
    native = size is None or max(h, w) <= native_cap
    out = torch.empty((n, 3, h, w) if native else (n, 3, size, size), dtype=torch.uint8)
    out[0] = torch.from_numpy(first).permute(2, 0, 1) if native else _resized(first, size)  # type: ignore[arg-type]
    for i in range(1, n):
        pixels = _rgb_array(dataset.load_image(i), grayscale=grayscale)
        if native and pixels.shape[:2] != (h, w):
            if size is None:
                raise InputError(
                    f"{dataset.samples[i]}: image is {pixels.shape[1]}x{pixels.shape[0]} px but {dataset.samples[0]} is "
                    f"{w}x{h}; images of different sizes need a training size: pass size=<image_size>"
                )
            log(f"{dataset.name or 'dataset'} {dataset.split}: images differ in size ({dataset.samples[i]} is "
                f"{pixels.shape[1]}x{pixels.shape[0]}, the first {w}x{h}); storing all at {size}x{size}, so the "
                "Gaussian noise comes after the resize for this source")
            resized = torch.empty((n, 3, size, size), dtype=torch.uint8)
            for j in range(i):  # the stored pixels are the decoded image: resizing them equals resizing it
                resized[j] = _resized(out[j].permute(1, 2, 0).numpy(), size)
            out, native = resized, False
        out[i] = torch.from_numpy(pixels).permute(2, 0, 1) if native else _resized(pixels, size)  # type: ignore[arg-type]
    return out, native


def _share_gray(images: Tensor) -> Tensor:
    """One channel expanded to three when every image is gray (R = G = B), else ``images``."""
    if images.shape[0] and torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 0], images[:, 2]):
        return images[:, :1].clone().expand(-1, 3, -1, -1)
    return images


# -- the cache file ----------------------------------------------------------------------------
def _load_cache(path: Path, *, key: str, count: int, log: Callable[[str], None]) -> tuple[Tensor, bool] | None:
    """The cached ``(images, native)`` of ``key``, or None when absent, unreadable or not that key."""
    if not path.is_file():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        images, native = payload["images"], bool(payload["native"])
        valid = (payload.get("format") == FORMAT_VERSION and payload.get("key") == key and isinstance(images, Tensor)
                 and images.dtype == torch.uint8 and images.dim() == 4 and tuple(images.shape[:2]) == (count, 3))
    except Exception as err:  # noqa: BLE001 - a truncated or corrupt cache is rebuilt, never fatal
        log(f"image cache {path} is unreadable ({type(err).__name__}); decoding the images again")
        return None
    if not valid:
        log(f"image cache {path} does not hold these images; decoding them again")
        return None
    return images, native


def _save_cache(path: Path, *, key: str, images: Tensor, native: bool, log: Callable[[str], None]) -> bool:
    """Write the cache atomically (file mode as an ordinary file: 0o666 less the umask)."""
    try:
        with atomic_write(path) as handle:
            torch.save({"format": FORMAT_VERSION, "key": key, "images": images, "native": native}, handle)
    except OSError as err:
        log(f"could not write the image cache {path} ({err}); continuing without it")
        return False
    return True


def decode_to_memory(
    dataset: FERDataset,
    *,
    size: int | None,
    root: str | Path | None = None,
    options: Mapping[str, Any] | None = None,
    native_cap: int = NATIVE_SIZE_CAP,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    grayscale: bool = False,
    log: Callable[[str], None] = print,
) -> MemoryImages:
    """Every image of ``dataset`` decoded once as ``uint8 [N, 3, H, W]`` RGB (see the module doc
    for the stored size), loaded from the cache when one matches, else decoded and cached.

    ``size``: the training image size in px (``None``: keep the images' own size, which must
    agree); ``root``/``options``: the reader's root and options (part of the cache key);
    ``cache_dir``: see :func:`cache_folder`; ``use_cache=False`` neither reads nor writes one;
    ``grayscale``: every image made gray as decoded (module doc; part of the cache key).
    A corrupt or truncated cache file is decoded again with a one-line ``log``; one that
    cannot be written is skipped with a line.

    Raises:
        InputError: an empty dataset, ``size``/``native_cap`` not positive, images of different
            sizes with ``size=None``, or a reader's own error for an unreadable image.
    """
    if len(dataset) == 0:
        raise InputError(f"{dataset.name or 'dataset'} split {dataset.split!r} has no samples to decode")
    if (size is not None and int(size) < 1) or int(native_cap) < 1:
        raise InputError(f"size={size!r} and native_cap={native_cap!r} must be positive pixel counts")
    key = cache_key(dataset, size=size, root=root, options=options, native_cap=native_cap, grayscale=grayscale)
    path = _cache_path(cache_folder(cache_dir), dataset, key) if use_cache else None
    cached = _load_cache(path, key=key, count=len(dataset), log=log) if path is not None else None
    if cached is not None:
        return MemoryImages(cached[0], tuple(dataset.samples), size, cached[1], key, path, True)
    images, native = _decode(dataset, size=size, native_cap=native_cap, log=log, grayscale=grayscale)
    images = _share_gray(images)
    if path is not None and not _save_cache(path, key=key, images=images, native=native, log=log):
        path = None
    return MemoryImages(images, tuple(dataset.samples), size, native, key, path, False)


# -- will it fit -------------------------------------------------------------------------------
def memory_bytes(dataset: FERDataset, *, size: int | None, native_cap: int = NATIVE_SIZE_CAP) -> int:
    """Upper estimate in bytes of :func:`decode_to_memory`'s tensor, from the first image's size:
    ``N * 3 * max(H0, size) * max(W0, size)`` when it is at most ``native_cap`` (kept, or resized
    to ``size`` if sizes turn out mixed), else ``N * 3 * size * size``. Gray sets take a third."""
    if len(dataset) == 0:
        return 0
    h, w = _first_shape(dataset)
    if size is None:
        return len(dataset) * 3 * h * w
    if max(h, w) <= native_cap:
        return len(dataset) * 3 * max(h, size) * max(w, size)
    return len(dataset) * 3 * size * size


def default_budget_bytes() -> int:
    """``min(2 GiB, a quarter of physical RAM)``; 2 GiB where ``os.sysconf`` cannot tell the RAM."""
    try:
        ram = int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, OSError, ValueError):
        return DEFAULT_BUDGET_BYTES
    return min(DEFAULT_BUDGET_BYTES, ram // 4) if ram > 0 else DEFAULT_BUDGET_BYTES


def fits_in_memory(
    dataset: FERDataset, *, size: int | None, budget_bytes: int | None = None, native_cap: int = NATIVE_SIZE_CAP
) -> bool:
    """Whether ``data.loader=auto`` should pick the memory path: :func:`memory_bytes` is at most
    ``budget_bytes`` (default :func:`default_budget_bytes`)."""
    budget = default_budget_bytes() if budget_bytes is None else int(budget_bytes)
    return memory_bytes(dataset, size=size, native_cap=native_cap) <= budget
