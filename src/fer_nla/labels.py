"""The canonical label space: eight emotions in one fixed order, and 7-class subsets.

Every reader maps its dataset's own class order into this space, and class names travel
with the data into every output. The order is FERPlus's (which AffectNet shares for its
first eight codes): index ``k`` means ``EMOTIONS[k]`` everywhere in fer-nla.
"""

from __future__ import annotations

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
