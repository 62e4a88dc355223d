"""The canonical label space: eight emotions in one fixed order, and 7-class subsets.

Every reader maps its dataset's own class order into this space, and class names travel
with the data into every output. The order is FERPlus's: index ``k`` means ``EMOTIONS[k]``
everywhere in fer-nla. Each dataset's own codes are listed below (``*_CODES``) and turned
into lookup tables by :func:`code_table`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

EMOTIONS: tuple[str, ...] = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
)

SEVEN_CLASSES: tuple[str, ...] = EMOTIONS[:7]  # every emotion but contempt
EIGHT_CLASSES: tuple[str, ...] = EMOTIONS


def class_names(num_classes: int) -> tuple[str, ...]:
    """Names of the canonical 7- or 8-class label space, in index order."""
    if num_classes == 7:
        return SEVEN_CLASSES
    if num_classes == 8:
        return EIGHT_CLASSES
    raise ValueError(f"num_classes must be 7 or 8 for the canonical emotions, got {num_classes}")


def index_of(name: str, names: tuple[str, ...] = EMOTIONS) -> int:
    """Index of an emotion name (case-insensitive, 'happy'/'angry'/... accepted)."""
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return names.index(key)
    except ValueError:
        raise ValueError(f"unknown emotion {name!r}; expected one of {', '.join(names)}") from None


_ALIASES = {
    "happy": "happiness",
    "happiness": "happiness",
    "sad": "sadness",
    "angry": "anger",
    "surprised": "surprise",
    "surprise": "surprise",
    "disgusted": "disgust",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "contemptuous": "contempt",
    "neutrality": "neutral",
}


# Each dataset's own label codes -> canonical emotion names.
RAFDB_CODES: Mapping[int, str] = {
    1: "surprise", 2: "fear", 3: "disgust", 4: "happiness", 5: "sadness", 6: "anger", 7: "neutral",
}
FER2013_CODES: Mapping[int, str] = {
    0: "anger", 1: "disgust", 2: "fear", 3: "happiness", 4: "sadness", 5: "surprise", 6: "neutral",
}
# AffectNet codes 8..10 (none, uncertain, no-face) are not emotions and are dropped by its reader.
AFFECTNET_CODES: Mapping[int, str] = {
    0: "neutral", 1: "happiness", 2: "sadness", 3: "surprise", 4: "fear", 5: "disgust", 6: "anger",
    7: "contempt",
}


def code_table(codes: Mapping[int, str], names: tuple[str, ...]) -> np.ndarray:
    """Lookup array ``table[code] -> index in names`` (``-1`` for codes outside ``names``)."""
    table = np.full(max(codes) + 1, -1, dtype=np.int64)
    for code, emotion in codes.items():
        if emotion in names:
            table[code] = names.index(emotion)
    return table
