"""The embedded demo set: procedurally drawn faces whose expression is set by a few
interpretable parameters, generated lazily per index from ``(seed, split, index)``.

Each class has a row of :data:`EXPRESSIONS` (brow tilt and height, eye openness, mouth
curvature, openness, width and skew). Each face gets a random identity (face shape, skin
and background colour, eye spacing, hair, nose), pose (position, scale, rotation), lighting
and pixel noise. A share of faces (``mix_share``) blends two expressions with a known weight
``w`` in [0.55, 0.9] for the dominant one; its label is drawn from that mix (dominant with
probability ``w``), so label ambiguity and noise are known exactly: ``clean_targets`` is the
dominant expression and ``soft_targets`` the mix. Splits use different seeds, so they share
no face; image ``i`` is the same whatever ``num_samples`` is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from fer_nla.data.dataset import FERDataset
from fer_nla.data.sources.common import ReadRequest
from fer_nla.data.sources.reader import ClassCounts, Reader
from fer_nla.errors import InputError
from fer_nla.labels import class_names

PARAMETERS = ("brow_tilt", "brow_raise", "eye_open", "mouth_curve", "mouth_open", "mouth_width", "mouth_skew")
# One row per canonical emotion; columns follow PARAMETERS. brow_tilt > 0 lifts the inner ends.
EXPRESSIONS = np.array(
    [
        [0.0, 0.0, 0.55, 0.0, 0.0, 0.85, 0.0],  # neutral
        [0.0, 0.1, 0.35, 1.0, 0.35, 1.25, 0.0],  # happiness
        [0.0, 0.9, 1.0, 0.0, 1.0, 0.6, 0.0],  # surprise
        [0.9, 0.1, 0.4, -0.9, 0.0, 0.85, 0.0],  # sadness
        [-1.0, -0.4, 0.75, -0.2, 0.0, 0.7, 0.0],  # anger
        [-0.5, -0.3, 0.15, -0.7, 0.4, 1.0, 0.0],  # disgust
        [0.9, 0.7, 1.0, -0.3, 0.55, 1.3, 0.0],  # fear
        [0.0, 0.0, 0.5, 0.0, 0.0, 0.9, 1.0],  # contempt
    ],
    dtype=np.float64,
)
SPLIT_CODES = {"train": 0, "valid": 1, "test": 2}
SUPERSAMPLE = 2


@dataclass(frozen=True)
class FaceSpec:
    """Everything that decides one synthetic face: its label facts and how it is drawn."""

    dominant: int
    partner: int
    weight: float  # share of the dominant expression (1.0 for a pure face)
    label: int  # drawn from the mix
    expression: np.ndarray  # blended PARAMETERS, with a little per-face jitter
    rng_state: dict  # state of the generator for identity, pose, lighting and noise


def face_spec(*, seed: int, split: str, index: int, num_classes: int = 7, mix_share: float = 0.2) -> FaceSpec:
    """The label facts and drawing parameters of face ``index`` of ``split``."""
    rng = np.random.default_rng((seed, SPLIT_CODES[split], index))
    dominant = int(rng.integers(num_classes))
    partner, weight = dominant, 1.0
    if rng.random() < mix_share:
        partner = int((dominant + rng.integers(1, num_classes)) % num_classes)
        weight = float(rng.uniform(0.55, 0.9))
    label = dominant if rng.random() < weight else partner
    expression = weight * EXPRESSIONS[dominant] + (1.0 - weight) * EXPRESSIONS[partner]
    expression = expression + rng.normal(0.0, 0.06, size=expression.shape)
    return FaceSpec(dominant, partner, weight, label, expression, rng.bit_generator.state)


def render_face(spec: FaceSpec, *, image_size: int = 48) -> Image.Image:
    """Draw the face of ``spec`` as an RGB image of ``image_size`` x ``image_size``."""
    rng = np.random.default_rng()
    rng.bit_generator.state = spec.rng_state
    brow_tilt, brow_raise, eye_open, curve, mouth_open, mouth_width, skew = spec.expression
    size = image_size * SUPERSAMPLE
    skin = np.array([225, 190, 160]) * rng.uniform(0.45, 1.05) + rng.normal(0, 12, 3)
    background = rng.uniform(30, 230) + rng.normal(0, 25, 3)
    dark = skin * rng.uniform(0.15, 0.35)
    radius = size * 0.38 * rng.uniform(0.85, 1.08)
    cx = size / 2 + rng.uniform(-0.06, 0.06) * size
    cy = size / 2 + rng.uniform(-0.06, 0.06) * size
    half_w, half_h = rng.uniform(0.75, 0.92), rng.uniform(0.98, 1.15)

    def at(u: float, v: float) -> tuple[float, float]:
        return cx + u * radius, cy + v * radius

    def colour(rgb: np.ndarray) -> tuple[int, int, int]:
        r, g, b = np.clip(rgb, 0, 255).astype(int)
        return int(r), int(g), int(b)

    image = Image.new("RGB", (size, size), colour(background))
    draw = ImageDraw.Draw(image)
    if rng.random() < 0.7:  # hair
        hair = colour(rng.uniform(10, 120, 3))
        draw.ellipse([*at(-half_w * 1.08, -half_h * 1.12), *at(half_w * 1.08, half_h * 0.3)], fill=hair)
    draw.ellipse([*at(-half_w, -half_h), *at(half_w, half_h)], fill=colour(skin))
    line = max(2, round(radius * 0.085))
    eye_x, eye_y, eye_w = rng.uniform(0.3, 0.4), rng.uniform(-0.22, -0.1), rng.uniform(0.14, 0.18)
    eye_h = eye_w * (0.08 + 0.62 * float(np.clip(eye_open, 0, 1.2)))
    for side in (-1, 1):
        x = side * eye_x
        draw.ellipse([*at(x - eye_w, eye_y - eye_h), *at(x + eye_w, eye_y + eye_h)], fill=(245, 245, 240))
        pupil = min(eye_h, eye_w * 0.55)
        draw.ellipse([*at(x - pupil, eye_y - pupil), *at(x + pupil, eye_y + pupil)], fill=colour(dark))
        brow_y = eye_y - eye_h - 0.1 - 0.16 * brow_raise
        inner, outer = x - side * 0.18 * 0.3, x + side * 0.18
        tilt = 0.13 * brow_tilt
        draw.line([at(inner - side * 0.06, brow_y - tilt), at(outer, brow_y + 0.02)], fill=colour(dark), width=line)
    if rng.random() < 0.6:  # nose
        draw.line([at(0.0, eye_y + 0.12), at(0.04, 0.22), at(-0.03, 0.24)], fill=colour(skin * 0.7), width=line // 2 + 1)
    _draw_mouth(draw, at, curve, mouth_open, mouth_width, skew, rng.uniform(0.45, 0.55), colour(dark), line)
    angle = rng.uniform(-12, 12)
    image = image.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=colour(background))
    image = image.reduce(SUPERSAMPLE)
    return _light_and_noise(image, rng)


def _draw_mouth(draw, at, curve, mouth_open, width, skew, mouth_y, fill, line):  # type: ignore[no-untyped-def]
    """Upper lip from corner to corner; a filled opening below it when the mouth is open."""
    half = 0.3 * max(width, 0.3)
    ts = np.linspace(-1.0, 1.0, 13)
    upper = [(t * half, mouth_y - 0.17 * curve * t * t - 0.2 * skew * max(t, 0.0) ** 2) for t in ts]
    opening = 0.3 * max(mouth_open, 0.0)
    if opening > 0.03:  # an oval gap: the upper lip lifts a little, the lower drops more
        arc = np.sqrt(1.0 - ts * ts)
        top = [(u, v - 0.3 * opening * a) for (u, v), a in zip(upper, arc)]
        lower = [(u, v + 0.7 * opening * a) for (u, v), a in zip(upper, arc)]
        draw.polygon([at(u, v) for u, v in top + lower[::-1]], fill=fill)
    else:
        draw.line([at(u, v) for u, v in upper], fill=fill, width=line, joint="curve")


def _light_and_noise(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A linear light gradient in a random direction, a contrast change and Gaussian noise."""
    pixels = np.asarray(image, dtype=np.float32)
    n = pixels.shape[0]
    theta = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(theta) * np.arange(n)[None, :] + np.sin(theta) * np.arange(n)[:, None]) / n - 0.5
    pixels = pixels * (1.0 + rng.uniform(0.0, 0.5) * ramp)[..., None] * rng.uniform(0.75, 1.2)
    pixels += rng.normal(0.0, rng.uniform(1.0, 8.0), pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


class SyntheticFaces:
    """Image source drawing face ``i`` of one split on demand (picklable: holds only numbers)."""

    def __init__(self, *, seed: int, split: str, num_classes: int, image_size: int, mix_share: float) -> None:
        self.seed, self.split, self.num_classes = seed, split, num_classes
        self.image_size, self.mix_share = image_size, mix_share

    def spec(self, index: int) -> FaceSpec:
        return face_spec(
            seed=self.seed, split=self.split, index=index, num_classes=self.num_classes, mix_share=self.mix_share
        )

    def __call__(self, index: int) -> Image.Image:
        return render_face(self.spec(index), image_size=self.image_size)


class Synthetic(Reader):
    """The embedded synthetic set: every split drawn, no files read."""

    name = "synthetic"
    title = "the synthetic set"
    label_modes = ("majority", "distribution")
    classes = ClassCounts(allowed=(7, 8), default=7, dataset="the synthetic set")

    def request(self, given: ReadRequest, options: Mapping[str, Any]) -> ReadRequest:
        """``given`` checked, its root first: a root means another dataset was meant.

        Raises:
            InputError: a root given, or what :meth:`Reader.request` refuses.
        """
        self.root_path(given.root)
        return super().request(given, options)

    def root_path(self, root: str | Path | None) -> None:
        """No root: the synthetic set reads no files.

        Raises:
            InputError: a root given (naming the readers of folders and files).
        """
        if root is not None and str(root) != "":
            raise InputError(
                f"root={str(root)!r} was given, but the dataset is the embedded synthetic set, which reads no "
                "files; name the dataset of that folder or file: dataset='folder' for class folders (or ferplus, "
                "rafdb, affectnet, fer2013, manifest)"
            )

    def build(
        self, request: ReadRequest, *, num_samples: int = 5000, image_size: int = 48, mix_share: float = 0.2
    ) -> FERDataset:
        """``num_samples`` synthetic faces of the split. ``labels="majority"`` gives the labels
        drawn from each face's mix (hard targets); ``"distribution"`` trains on the mix itself.

        Raises:
            InputError: ``num_samples < 1``, ``image_size`` outside 16..512, or ``mix_share``
                outside 0..1.
        """
        if int(num_samples) < 1 or not 16 <= int(image_size) <= 512 or not 0.0 <= float(mix_share) <= 1.0:
            raise InputError(
                f"synthetic options num_samples={num_samples}, image_size={image_size}, mix_share={mix_share}: "
                "need num_samples >= 1, 16 <= image_size <= 512 and 0 <= mix_share <= 1"
            )
        classes, split, seed = class_names(request.num_classes), request.split, int(request.seed)
        source = SyntheticFaces(
            seed=seed, split=split, num_classes=len(classes), image_size=int(image_size), mix_share=float(mix_share)
        )
        specs = [source.spec(i) for i in range(int(num_samples))]
        soft = np.zeros((len(specs), len(classes)), dtype=np.float32)
        rows = np.arange(len(specs))
        soft[rows, [s.dominant for s in specs]] += [s.weight for s in specs]
        soft[rows, [s.partner for s in specs]] += [1.0 - s.weight for s in specs]
        dataset = FERDataset(
            samples=[f"synthetic:{split}:{i}" for i in rows],
            targets=[s.label for s in specs],
            clean_targets=[s.dominant for s in specs],
            soft_targets=soft,
            class_names=classes,
            source=source,
            name="synthetic",
            split=split,
            info={
                "labels": request.labels, "seed": seed, "image_size": int(image_size), "mix_share": float(mix_share),
                "blended": int(sum(s.partner != s.dominant for s in specs)),
            },
        )
        if request.labels == "distribution":
            dataset.target_mode = "soft"
        return dataset

    def splits(self, **_: object) -> tuple[str, ...]:
        """The synthetic set draws every split: ``train``, ``valid`` and ``test``."""
        return tuple(SPLIT_CODES)
