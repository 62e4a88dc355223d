"""README facts a new user needs before the first command (issue 12, case 12)."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_readme_says_where_each_dataset_and_the_pretrained_file_come_from_and_their_terms():
    for source in ("whdeng.cn/RAF", "mohammadmahoor.com/affectnet", "FERPlus", "fer2013new.csv", "ICML 2013"):
        assert source in README, source
    assert "MIT licence" in README and "non-commercial" in README
    assert "resnet18_msceleb.pth" in README and "MS-Celeb-1M" in README
    assert "expect_backbone_weights" in README and "warning" in README


def test_readme_installs_cpu_only_pytorch_and_states_measured_times_with_the_machine():
    assert "--index-url https://download.pytorch.org/whl/cpu" in README
    quick = README[README.index("## Quick start"):README.index("## Test")]
    assert re.search(r"\d+m\d+s", quick) and "vCPU" in quick
    tests = README[README.index("## Test"):README.index("## The loss in a training step")]
    assert re.search(r"The \d+ tests take \d+m\d+s", tests)
