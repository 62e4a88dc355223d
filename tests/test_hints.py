"""Every hint an error gives names an option of the command that printed it.

Library errors name options by Python keyword (``root=...``, ``skip_bad_images=True``); each
subcommand's parser carries its own spelling and the command line rewrites the message. Here the
library errors that carry hints are raised for real, spelled for every subcommand, and each
``--flag`` in the result must be one that subcommand's parser accepts, each ``section.key=`` a
real config key.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fer_nla.bench.config import GridSpec
from fer_nla.cli import build_parser, main, spell_options
from fer_nla.config import Config, valid_keys
from fer_nla.data import build_dataset
from fer_nla.data.corrupt import imbalance_profile
from fer_nla.errors import InputError
from fer_nla.train.run_folder import RunFolder, check_resume_config
from fer_nla.runtime import resolve_device

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
CONFIG_KEY = re.compile(r"(?<![\w.])([a-z_]+\.[a-z_][a-z0-9_.]*)=")
FREE_MAPPINGS = ("data.options.", "loss.options.")


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    """``"data corrupt" -> parser`` for every leaf subcommand of ``fer-nla``."""
    found: dict[str, argparse.ArgumentParser] = {}

    def walk(parser: argparse.ArgumentParser, prefix: str) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found[prefix.strip()] = parser
        for action in subs:
            for name, child in action.choices.items():
                walk(child, f"{prefix} {name}")

    walk(build_parser(), "")
    return found


def _raised(call, *args, **kwargs) -> str:
    with pytest.raises(InputError) as err:
        call(*args, **kwargs)
    return str(err.value)


@pytest.fixture(scope="module")
def library_messages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The hint-carrying errors of the library, raised on tiny fabricated inputs."""
    tmp = tmp_path_factory.mktemp("hints")
    classes = tmp / "classes"
    for name in ("happiness", "sadness"):
        (classes / name).mkdir(parents=True)
        Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(classes / name / "a.png")
    (classes / "sadness" / "broken.png").write_bytes(b"not an image")
    (tmp / "fer2013.csv").write_text("emotion,pixels,Usage\n3,1 2 3,Training\n")
    messages = {
        "no root": _raised(build_dataset, "folder"),
        "missing root": _raised(build_dataset, "folder", root=tmp / "nowhere"),
        "one-set split": _raised(build_dataset, "folder", root=classes, split="valid"),
        "no label file": _raised(build_dataset, "rafdb", root=tmp),
        "rafdb valid": _raised(build_dataset, "rafdb", root=tmp, split="valid"),
        "affectnet valid": _raised(build_dataset, "affectnet", root=tmp, split="valid"),
        "undecodable image": _raised(lambda: [build_dataset("folder", root=classes).load_image(i) for i in range(3)]),
        "fer2013 bad row": _raised(build_dataset, "fer2013", root=tmp),
        "bad label mode": _raised(build_dataset, "synthetic", labels="single-vote", num_samples=4),
        "bad class count": _raised(build_dataset, "synthetic", num_classes=9, num_samples=4),
        "no mps": _raised(resolve_device, "mps"),
        "not a device": _raised(resolve_device, "gpu0"),
        "imbalance": _raised(imbalance_profile, [12, 12, 8, 7, 7, 7, 7], factor=100),
    }
    run = RunFolder(tmp / "run")
    messages["no last.pt"] = _raised(run.prepare, resume=True)
    run.root.mkdir()
    run.last.write_bytes(b"")
    messages["run exists"] = _raised(run.prepare, resume=False)
    saved = Config().to_dict()
    now = Config()
    now.data.labels, now.data.options = "distribution", {"num_samples": 64}
    messages["resume changed"] = _raised(check_resume_config, saved, now.to_dict(), run=run)
    return messages


def _config_keys(command: str) -> set[str]:
    keys = set(valid_keys())
    if command.startswith("bench"):
        keys |= {f"bench.{f.name}" for f in dataclasses.fields(GridSpec)}
    return keys


def test_every_hint_names_an_option_of_the_command_that_prints_it(library_messages):
    parsers = subcommand_parsers()
    assert {"train", "eval", "data stats", "data corrupt", "predict", "export", "audit",
            "bench robustness", "bench audit"} <= set(parsers)
    problems = []
    for command, parser in parsers.items():
        spelling = parser.get_default("spelling") or {}
        accepted, keys = set(parser._option_string_actions), _config_keys(command)
        for what, message in library_messages.items():
            text = spell_options(message, spelling)
            problems += [f"{command} / {what}: {flag} ({text})" for flag in FLAG.findall(text) if flag not in accepted]
            problems += [f"{command} / {what}: {key}= ({text})" for key in CONFIG_KEY.findall(text)
                         if key not in keys and not key.startswith(FREE_MAPPINGS)]
    assert not problems, "\n".join(problems)


def test_the_commands_spell_the_dataset_options_their_own_way(library_messages):
    parsers = subcommand_parsers()

    def spelled(command: str, what: str) -> str:
        return spell_options(library_messages[what], parsers[command].get_default("spelling"))

    assert "pass --skip-bad-images to drop" in spelled("data stats", "undecodable image")
    assert "pass data.skip_bad_images=true to drop" in spelled("train", "undecodable image")
    assert "pass --skip-bad-images to drop" in spelled("eval", "undecodable image")
    assert "pass --root PATH pointing at" in spelled("data corrupt", "no root")
    assert "pass --root PATH pointing at" in spelled("train", "no root")
    assert "pass data.root=PATH pointing at" in spelled("bench robustness", "no root")
    assert "(not 'valid'); ask for 'train'" in spelled("eval", "one-set split")
    assert "--imbalance 100 (largest/smallest class)" in spelled("data corrupt", "imbalance")
    assert "pass --resume to continue it or choose another --out DIR" in spelled("train", "run exists")
    assert "data.labels: saved 'majority', now 'distribution'" in spelled("train", "resume changed")


def test_no_message_is_cut_inside_a_word(library_messages):
    # The old log line cut the reader's message at 120 characters: "(split='tra)".
    for what, message in library_messages.items():
        assert message.count("'") % 2 == 0 and message.count("(") == message.count(")"), (what, message)


def test_no_message_slices_text_at_a_fixed_width():
    """An f-string field ending in ``[:N]`` cuts whatever text it holds mid-word (it printed
    ``(split='tra)``); messages keep whole clauses instead."""
    src = Path(__file__).resolve().parents[1] / "src" / "fer_nla"
    sliced = re.compile(r"\[:\d+\](?:!r)?\}")
    offenders = [f"{path.relative_to(src)}:{number}: {line.strip()}"
                 for path in src.rglob("*.py")
                 for number, line in enumerate(path.read_text().splitlines(), start=1) if sliced.search(line)]
    assert not offenders, "\n".join(offenders)


def test_train_prints_the_hint_in_its_own_spelling(tmp_path, capsys):
    classes = tmp_path / "classes"
    for i, name in enumerate(("happiness", "sadness")):
        (classes / name).mkdir(parents=True)
        for j in range(4):
            Image.fromarray(np.full((16, 16, 3), 30 * i + j, np.uint8)).save(classes / name / f"{j}.png")
    for name in ("happiness", "sadness"):
        (classes / name / "9.png").write_bytes(b"not an image")  # in train or validation, read either way
    status = main(["train", "--out", str(tmp_path / "run"), "--dataset", "folder", "--root", str(classes),
                   "--no-progress", "--epochs", "1", "--batch-size", "4", "model.arch=cnn_small",
                   "data.image_size=16", "data.val_split=carve", "data.val_fraction=0.3", "train.tensorboard=false"])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert "9.png: cannot" in err and "pass data.skip_bad_images=true to drop" in err
    assert "--skip-bad-images" not in err and "skip_bad_images=True" not in err


def test_spell_options_leaves_config_keys_and_unknown_keywords_alone():
    spelling = {"root": "--root {}", "num_classes": "--num-classes {}"}
    text = "pass root='/x' or data.root=/y; data.num_classes=8 stays; num_classes=8 and foo=1 too"
    assert spell_options(text, spelling) == (
        "pass --root /x or data.root=/y; data.num_classes=8 stays; --num-classes 8 and foo=1 too")
    assert spell_options("device='cuda:1' and skip_bad_images=True", {
        "device": "train.device={}", "skip_bad_images": "data.skip_bad_images={}"}) == (
        "train.device=cuda:1 and data.skip_bad_images=true")


def test_source_modules_spell_no_dataset_flag():
    """Library modules name dataset options by keyword; only commands/ and cli.py spell flags."""
    src = Path(__file__).resolve().parents[1] / "src" / "fer_nla"
    flags = re.compile(r"--(root|split|labels|num-classes|skip-bad-images|seed|resume|out|device|imbalance)\b")
    offenders = []
    for path in src.rglob("*.py"):
        if path.parent.name == "commands" or path.name == "cli.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if flags.search(line) and "fer-nla " not in line and "``--" not in line and not line.lstrip().startswith("#"):
                offenders.append(f"{path.relative_to(src)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
