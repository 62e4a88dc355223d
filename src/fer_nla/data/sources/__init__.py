"""One reader per dataset format; each exposes ``build(*, root, split, labels, num_classes,
seed, skip_bad_images, **options) -> FERDataset`` (see :mod:`fer_nla.data.registry`)."""
