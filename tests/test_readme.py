"""README.md and docs/: the facts a new user needs, in the place they moved to (issue 12, case 12;
issue 22, item 5), every command listed, and every relative link resolving."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README_PATH = ROOT / "README.md"
DOCS = ROOT / "docs"
README = README_PATH.read_text(encoding="utf-8")
DOC_FILES = sorted(DOCS.glob("*.md"))
ALL_TEXT = README + "".join(path.read_text(encoding="utf-8") for path in DOC_FILES)

# Result files written by a script that the README links before they are first generated: a
# missing one skips its link check, naming the command that writes it (never a silent pass).
GENERATED = {
    "benchmarks/results/test_suite.md": "python scripts/suite_figures.py",
    "benchmarks/results/startup_cpu.md": "python benchmarks/startup.py",
}


def doc(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def section(text: str, heading: str) -> str:
    """The text under the Markdown heading ``heading`` (any level) up to the next heading of the
    same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    assert match, f"no heading {heading!r}"
    level = len(match[1])
    rest = text[match.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def flat(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# --- the README is short and has the sections a newcomer reads --------------------------------

def test_readme_is_a_five_minute_read_with_the_newcomer_sections():
    assert len(README.splitlines()) <= 300
    headings = re.findall(r"^## (.+)$", README, re.M)
    for needed in ("Install", "Quick start", "Test", "Commands"):
        assert needed in headings, (needed, headings)
    assert headings.index("Install") < headings.index("Quick start") < headings.index("Test")


def test_the_readme_test_command_is_the_one_ci_runs():
    blocks = re.findall(r"```bash\n(.*?)```", section(README, "Test"), re.S)
    assert blocks and blocks[0].strip() == "python -m pytest tests"
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r"^python -m pytest tests$", ci, re.M)
    assert 'pip install -q -e ".[dev]"' in ci and 'pip install -e ".[dev]"' in section(README, "Install")


# --- install: the extras, CPU-only wheels ------------------------------------------------------

def test_readme_installs_cpu_only_pytorch_before_the_train_extra():
    install = section(README, "Install")
    cpu = install.index("pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu")
    assert cpu < install.index('pip install "fer-nla[train]"', cpu)
    assert "CUDA" in install


def test_every_extra_in_pyproject_is_documented():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra in extras:
        assert f"fer-nla[{extra}]" in ALL_TEXT or f".[{extra}]" in ALL_TEXT, extra


def test_every_extra_the_readme_installs_is_declared():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    if "train" not in extras:
        pytest.skip("pyproject.toml declares no train extra yet (issue 22's packaging change)")
    named = set(re.findall(r"fer-nla\[(\w+)\]", ALL_TEXT)) | set(re.findall(r"\"\.\[(\w+)\]\"", ALL_TEXT))
    assert named and named <= set(extras), named - set(extras)


# --- moved facts: datasets, terms, pretrained weights, measured times --------------------------

def test_datasets_doc_says_where_each_dataset_and_the_pretrained_file_come_from_and_their_terms():
    datasets = doc("datasets.md")
    for source in ("whdeng.cn/RAF", "mohammadmahoor.com/affectnet", "FERPlus", "fer2013new.csv", "ICML 2013"):
        assert source in datasets, source
    assert "MIT licence" in datasets and "non-commercial" in datasets
    weights = section(datasets, "Pretrained weights")
    assert "resnet18_msceleb.pth" in weights and "MS-Celeb-1M" in weights
    assert "expect_backbone_weights" in weights and "warning" in weights
    # the README points there and names the terms in a line
    assert "docs/datasets.md" in README and "MIT licence" in README


def test_quick_start_states_its_measured_time_with_the_machine():
    quick = section(README, "Quick start")
    assert re.search(r"\d+m\d+s", quick) and "vCPU" in quick and "PyTorch 2." in quick


def test_no_test_count_is_quoted_the_suite_figures_come_from_a_script():
    # "The 770 tests take 3m14s" went stale within days: the count and time live in a generated file
    assert not re.search(r"\b\d[\d,]* tests\b", flat(ALL_TEXT)), re.search(r"\b\d[\d,]* tests\b", flat(ALL_TEXT))
    test = section(README, "Test")
    assert "benchmarks/results/test_suite.md" in test and "scripts/suite_figures.py" in test
    assert (ROOT / "scripts" / "suite_figures.py").is_file()


def test_benchmark_findings_say_where_nla_does_not_help():
    assert "NLA trails" in flat(section(README, "Does NLA help?"))
    methods = flat(doc("methods.md"))
    assert "NLA wins no setting" in methods and "NLA does not win here either" in methods
    assert "consistency_reduction=mean" in methods


# --- every subcommand is in the README's table -------------------------------------------------

def _subcommands() -> list[str]:
    from fer_nla.cli import build_parser

    def walk(parser: argparse.ArgumentParser, prefix: str) -> list[str]:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions:
            return [prefix]
        return [name for choice, sub in actions[0].choices.items() for name in walk(sub, f"{prefix} {choice}")]

    return [name.strip() for name in walk(build_parser(), "")]


def test_the_command_table_lists_every_subcommand_of_fer_nla():
    commands = _subcommands()
    assert {"train", "predict", "serve", "data stats", "bench regime"} <= set(commands)
    table = section(README, "Commands")
    listed = re.findall(r"^\| `fer-nla ([a-z ]+?)(?: [A-Z.]+)?` \|", table, re.M)
    assert sorted(listed) == sorted(commands)


def test_every_doc_file_is_linked_from_the_readme():
    for path in DOC_FILES:
        assert f"(docs/{path.name}" in README, path.name


# --- links -------------------------------------------------------------------------------------

def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    return {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.M)}


def _links() -> list[tuple[str, str]]:
    found = []
    for path in [README_PATH, *DOC_FILES]:
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if not re.match(r"[a-z]+:", target):
                found.append((path.relative_to(ROOT).as_posix(), target))
    return found


def test_the_link_checker_sees_the_links_and_slugs_like_github():
    assert len(_links()) > 40
    assert _slug("Robustness: every loss on noisy and imbalanced FERPlus labels") == \
        "robustness-every-loss-on-noisy-and-imbalanced-ferplus-labels"
    assert _slug("Many GPUs: DDP and `torchrun`") == "many-gpus-ddp-and-torchrun"


@pytest.mark.parametrize(("source", "target"), _links(), ids=lambda value: value)
def test_every_relative_link_resolves(source: str, target: str):
    path_part, _, anchor = target.partition("#")
    base = (ROOT / source).parent
    resolved = (base / path_part).resolve() if path_part else ROOT / source
    relative = resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else str(resolved)
    if not resolved.exists() and relative in GENERATED:
        pytest.skip(f"{relative} is not generated yet: {GENERATED[relative]} writes it")
    assert resolved.exists(), f"{source}: {target} -> {relative} does not exist"
    if anchor:
        assert resolved.suffix == ".md", f"{source}: anchor on a non-Markdown file {target}"
        assert anchor in _anchors(resolved), f"{source}: no heading for #{anchor} in {relative}"
