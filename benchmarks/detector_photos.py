"""Builds the detector test photos of ``tests/data/photos/`` from registry packages' sample images.

The sources are read straight from the downloaded archives (nothing else is fetched):

    pip download scikit-image==0.26.0 mahotas==1.4.19 --no-deps --only-binary=:all: -d SRC
    pip download face_recognition==1.3.0 --no-deps --no-binary=:all: -d SRC
    python benchmarks/detector_photos.py --src SRC --out tests/data/photos

Each photo's origin and licence are in ``tests/data/photos/SOURCES.md``; the face boxes (in
``faces.json``) are the sources' boxes below, hand-checked on overlays, carried through each
crop, resize and paste. Box convention (WIDER FACE's): hairline to chin, cheek to cheek.
"""

from __future__ import annotations

import argparse
import io
import json
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

JPEG_QUALITY = 88


@dataclass(frozen=True)
class Source:
    """A face photo in a package archive: ``member`` inside the archive matching ``archive``,
    its face ``box`` (x, y, w, h) and eye centres (for drawn sunglasses), in its pixels."""

    archive: str
    member: str
    box: tuple[int, int, int, int]
    eyes: tuple[tuple[int, int], tuple[int, int]]


SOURCES = {
    "astronaut": Source("scikit_image-0.26.0", "skimage/data/astronaut.png", (177, 59, 93, 117), ((204, 100), (247, 103))),
    "camera": Source("scikit_image-0.26.0", "skimage/data/camera.png", (195, 113, 60, 81), ((235, 149), (248, 148))),
    "luispedro": Source("mahotas-1.4.19", "mahotas/demos/data/luispedro.jpg", (42, 70, 177, 252), ((66, 166), (141, 161))),
    "obama": Source("face_recognition-1.3.0", "face_recognition-1.3.0/tests/test_images/obama.jpg",
                    (372, 87, 237, 331), ((436, 210), (549, 208))),
    "biden": Source("face_recognition-1.3.0", "face_recognition-1.3.0/tests/test_images/biden.jpg",
                    (425, 177, 284, 384), ((533, 325), (655, 349))),
    "obama3": Source("face_recognition-1.3.0", "face_recognition-1.3.0/tests/test_images/obama3.jpg",
                     (641, 254, 270, 358), ((739, 389), (856, 395))),
    "coffee": Source("scikit_image-0.26.0", "skimage/data/coffee.png", (0, 0, 0, 0), ((0, 0), (0, 0))),
    "chelsea": Source("scikit_image-0.26.0", "skimage/data/chelsea.png", (0, 0, 0, 0), ((0, 0), (0, 0))),
}
# The group photo: (source, face width in the group, mirrored, sunglasses), laid out in rows.
GROUP = [
    [("obama3", 56, False, False), ("luispedro", 40, True, False), ("astronaut", 72, True, True),
     ("camera", 64, False, False), ("biden", 30, False, False)],
    [("obama", 128, False, False), ("biden", 104, False, True), ("astronaut", 92, False, False),
     ("luispedro", 84, False, False)],
    [("biden", 60, True, False), ("obama", 44, True, True), ("camera", 60, True, False),
     ("astronaut", 36, False, False), ("obama3", 80, True, False)],
]
GROUP_SIZE = (1280, 720)


def read_image(src: Path, source: Source) -> Image.Image:
    """The source image, RGB, read from its archive in ``src``."""
    (path,) = [p for p in src.iterdir() if p.name.startswith(source.archive) and p.is_file()]
    if path.suffix == ".whl":
        with zipfile.ZipFile(path) as archive:
            data = archive.read(source.member)
    else:
        with tarfile.open(path) as archive:
            data = archive.extractfile(source.member).read()  # type: ignore[union-attr]
    return Image.open(io.BytesIO(data)).convert("RGB")


def draw_sunglasses(image: Image.Image, source: Source) -> Image.Image:
    """Two dark lenses over the eyes, a bridge and temples, sized by the eye distance."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    (lx, ly), (rx, ry) = source.eyes
    gap = float(np.hypot(rx - lx, ry - ly))
    rw, rh = 0.50 * gap, 0.34 * gap
    for cx, cy in source.eyes:
        draw.ellipse([cx - rw, cy - rh, cx + rw, cy + rh], fill=(18, 18, 22), outline=(60, 60, 60),
                     width=max(1, round(gap / 40)))
        draw.ellipse([cx - 0.5 * rw, cy - 0.7 * rh, cx - 0.1 * rw, cy - 0.4 * rh], fill=(70, 70, 80))  # glint
    width = max(2, round(gap / 25))
    draw.line([(lx + rw, ly - 0.2 * rh), (rx - rw, ry - 0.2 * rh)], fill=(30, 30, 30), width=width)
    x, y, w, _ = source.box
    draw.line([(lx - rw, ly - 0.2 * rh), (x - 0.02 * w, ly - 0.1 * rh)], fill=(30, 30, 30), width=width)
    draw.line([(rx + rw, ry - 0.2 * rh), (x + 1.02 * w, ry - 0.1 * rh)], fill=(30, 30, 30), width=width)
    return out


def head_crop(image: Image.Image, source: Source, *, context: float = 1.7) -> tuple[Image.Image, tuple[float, ...]]:
    """A square crop of side ``context`` times the face's longer side around it, and the face
    box inside the crop."""
    x, y, w, h = source.box
    side = min(context * max(w, h), image.width, image.height)
    left, top = x + w / 2 - side / 2, y + h / 2 - side / 2
    left = min(max(0.0, left), image.width - side)
    top = min(max(0.0, top), image.height - side)
    crop = image.crop((round(left), round(top), round(left + side), round(top + side)))
    return crop, (x - round(left), y - round(top), w, h)


def background(size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A drawn backdrop: a warm vertical gradient with soft noise."""
    width, height = size
    ramp = np.linspace(0.0, 1.0, height)[:, None, None]
    top, bottom = np.array([196, 188, 176]), np.array([120, 112, 104])
    canvas = top + (bottom - top) * ramp + np.zeros((1, width, 1))
    canvas += np.random.default_rng(seed).normal(0, 6, size=(height, width, 3))
    return Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1))


def compose_group(src: Path) -> tuple[Image.Image, list[list[int]]]:
    """The group photo and its face boxes."""
    canvas, boxes = background(GROUP_SIZE), []
    width, height = GROUP_SIZE
    y = 16
    for row in GROUP:
        pieces = []
        for name, face_width, mirrored, glasses in row:
            source = SOURCES[name]
            image = read_image(src, source)
            crop, (fx, fy, fw, fh) = head_crop(draw_sunglasses(image, source) if glasses else image, source)
            scale = face_width / fw
            crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.LANCZOS)
            if mirrored:
                crop, fx = ImageOps.mirror(crop), crop.width / scale - fx - fw
            pieces.append((crop, (fx * scale, fy * scale, fw * scale, fh * scale)))
        gap = (width - sum(c.width for c, _ in pieces)) / (len(pieces) + 1)
        x = gap
        for crop, (fx, fy, fw, fh) in pieces:
            canvas.paste(crop, (round(x), y))
            boxes.append([round(x) + round(fx), y + round(fy), round(fw), round(fh)])
            x += crop.width + gap
        y += max(c.height for c, _ in pieces) + 16
    assert y <= height, f"the group rows need {y} px of height"
    return canvas, boxes


def scaled(image: Image.Image, box: tuple[int, ...], factor: float) -> tuple[Image.Image, list[int]]:
    size = (round(image.width * factor), round(image.height * factor))
    return image.resize(size, Image.LANCZOS), [round(v * factor) for v in box]


def build(src: Path, out: Path) -> dict[str, dict[str, list]]:
    """Writes the photos to ``out`` and returns their face boxes by file name."""
    out.mkdir(parents=True, exist_ok=True)
    photos: dict[str, tuple[Image.Image, list[list[int]]]] = {}
    for name in ("astronaut", "luispedro"):
        photos[f"frontal_{name}.jpg"] = (read_image(src, SOURCES[name]), [list(SOURCES[name].box)])
    image, box = scaled(read_image(src, SOURCES["obama"]), SOURCES["obama"].box, 0.5)
    photos["frontal_obama.jpg"] = (image, [box])
    photos["turned_camera.jpg"] = (read_image(src, SOURCES["camera"]).convert("L"), [list(SOURCES["camera"].box)])
    biden = SOURCES["biden"]
    crop, face = head_crop(draw_sunglasses(read_image(src, biden), biden), biden, context=2.0)
    image, box = scaled(crop, face, 480 / crop.width)
    photos["sunglasses_biden.jpg"] = (image, [box])
    photos["group.jpg"] = compose_group(src)
    photos["noface_coffee.jpg"] = (read_image(src, SOURCES["coffee"]), [])
    photos["noface_cat.jpg"] = (read_image(src, SOURCES["chelsea"]), [])
    for name, (image, _) in photos.items():
        image.save(out / name, quality=JPEG_QUALITY, optimize=True)
    return {name: {"size": list(image.size), "faces": boxes} for name, (image, boxes) in photos.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, required=True, help="folder holding the downloaded archives")
    parser.add_argument("--out", type=Path, default=Path("tests/data/photos"))
    args = parser.parse_args()
    truth = build(args.src, args.out)
    text = json.dumps(truth, indent=1)
    (args.out / "faces.json").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
