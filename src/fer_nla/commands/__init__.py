"""Subcommands of the ``fer-nla`` command line, one module each (see ``fer_nla.cli``).

Each subcommand's parser sets ``spelling``: how its user spells the options that library
errors name by Python keyword (``root=...`` -> ``--root PATH`` or ``data.root=PATH``); see
:func:`fer_nla.cli.spell_options`.
"""

# The commands that read a dataset from flags (data stats/corrupt, eval).
DATASET_FLAGS: dict[str, str] = {"root": "--root {}", "split": "--split {}", "labels": "--labels {}",
                                 "num_classes": "--num-classes {}", "skip_bad_images": "--skip-bad-images",
                                 "seed": "--seed {}"}
# The commands that read it from config keys (bench, audit; train has shortcut flags for some).
DATASET_KEYS: dict[str, str] = {"root": "data.root={}", "split": "data.train_split={}", "labels": "data.labels={}",
                                "num_classes": "data.num_classes={}", "skip_bad_images": "data.skip_bad_images={}",
                                "seed": "train.seed={}"}
