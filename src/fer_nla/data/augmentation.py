"""Which of the recipe's random training augmentations run: one record for the config
(``data.flip``, ``data.erasing``, ``data.gaussian_noise``, ``data.affine``), the per-image
transform (:func:`fer_nla.data.transforms.train_transform`), the on-device batch augmentation
(:class:`fer_nla.data.batch_augment.BatchAugment`) and the frozen-stage cache's check."""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields


@dataclass(frozen=True)
class Augmentation:
    """The augmentation switches. The defaults are the NLA reference recipe's: random horizontal
    flip, random erasing (scale 0.02-0.3) and Gaussian pixel noise (variance 30 on half of the
    images) on, random rotation/shift/scale (``affine``, the built-in model's recipe) off."""

    flip: bool = True
    erasing: bool = True
    gaussian_noise: bool = True
    affine: bool = False

    def switched_on(self) -> list[str]:
        """The names of the augmentations that run, in field order (``[]``: none, every epoch
        sees the same images)."""
        return [field.name for field, on in zip(fields(self), astuple(self)) if on]


NO_AUGMENTATION = Augmentation(flip=False, erasing=False, gaussian_noise=False, affine=False)
