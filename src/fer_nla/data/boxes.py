"""Face boxes checked against their images when an index is built (AffectNet, FERPlus, any reader).

Label files give a face box ``(x, y, w, h)`` in pixels of the photo as displayed (EXIF
orientation applied, as :func:`fer_nla.data.images.decode_image` decodes it). Users' boxes
often reach past the photo's edge (detectors box faces cut by the frame) or lie wholly
outside it (a box from another copy of the photo). The rule, applied once at indexing so
that training never meets a bad box:

- a box inside the image is kept;
- a box that overlaps the image but reaches outside is clamped to it and counted
  (``info["boxes_clamped"]``);
- a box with no overlap (or a width or height <= 0) is dropped with its sample and counted
  (``info["dropped_box_outside_image"]``);
- with ``crop="auto"``, a box of exactly the image's size means the image is already the
  face crop: the whole image is used; and when most boxes lie outside their images the
  images are taken to be pre-cropped copies and the reader stops, pointing at ``crop=never``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from fer_nla.errors import InputError

_SWAPPED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees
_EXIF_ORIENTATION = 0x0112


def displayed_size(path: str) -> tuple[int, int]:
    """``(width, height)`` of the image at ``path`` as displayed (EXIF orientation applied),
    read from the file's header without decoding its pixels.

    Raises:
        InputError: the file cannot be opened as an image, naming it and the fix.
    """
    try:
        with Image.open(path) as handle:
            width, height = handle.size
            orientation = handle.getexif().get(_EXIF_ORIENTATION, 1)
    except (OSError, SyntaxError, ValueError) as err:
        raise InputError(
            f"{path}: cannot read the image ({err}); replace the file, or pass "
            "skip_bad_images=True to drop undecodable images when the index is built"
        ) from None
    return (height, width) if orientation in _SWAPPED_ORIENTATIONS else (width, height)


def fit_boxes(
    paths: Sequence[str], boxes: np.ndarray, *, crop: str = "auto", listed_in: str = ""
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Boxes clamped to their images, and which samples keep one (see the module docstring).

    Args:
        paths: ``N`` image files (present and readable).
        boxes: ``(N, 4)`` int ``(x, y, w, h)`` in pixels.
        crop: ``"auto"``, ``"always"`` or ``"never"`` (boxes are then not used: all kept as given).
        listed_in: the label file, named in the error.

    Returns:
        ``boxes`` ``(N, 4)`` int32 inside their images; ``keep`` ``(N,)`` bool; counts
        ``{"boxes_clamped": n, "dropped_box_outside_image": m}``.

    Raises:
        InputError: with ``crop="auto"``, more than half of the boxes lie outside their images.
    """
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    keep = np.ones(len(boxes), dtype=bool)
    counts = {"boxes_clamped": 0, "dropped_box_outside_image": 0}
    if crop == "never" or not len(boxes):
        return boxes.astype(np.int32), keep, counts
    sizes = np.array([displayed_size(p) for p in paths], dtype=np.int64).reshape(-1, 2)
    x, y, w, h = boxes.T
    width, height = sizes.T
    already_cropped = (w == width) & (h == height) if crop == "auto" else np.zeros(len(boxes), dtype=bool)
    left, top = np.clip(x, 0, width), np.clip(y, 0, height)
    right, bottom = np.clip(x + w, 0, width), np.clip(y + h, 0, height)
    overlaps = (w > 0) & (h > 0) & (right > left) & (bottom > top)
    inside = (x >= 0) & (y >= 0) & (x + w <= width) & (y + h <= height)
    keep = overlaps | already_cropped
    outside = int((~keep).sum())
    if crop == "auto" and outside * 2 > len(boxes):
        raise InputError(
            f"{listed_in}: {outside} of {len(boxes)} face boxes lie wholly outside their images, so the "
            "images look like copies already cropped to the face; pass crop='never' "
            "to use the images as they are (or crop='always' to drop those samples)"
        )
    fitted = np.stack([left, top, right - left, bottom - top], axis=1)
    fitted[already_cropped] = np.stack([np.zeros_like(width), np.zeros_like(height), width, height], axis=1)[
        already_cropped
    ]
    counts["boxes_clamped"] = int((keep & ~inside & ~already_cropped).sum())
    counts["dropped_box_outside_image"] = outside
    return fitted.astype(np.int32), keep, counts
