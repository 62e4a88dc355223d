"""The console script answers --version and --help, in-process and as an installed command."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

import fer_nla
from fer_nla.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"fer-nla {fer_nla.__version__}"
    assert fer_nla.__version__ != "0.0.0+unknown", "the package should be installed (pip install -e .)"


def test_help_lists_the_program(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "usage: fer-nla" in capsys.readouterr().out


def test_no_command_prints_help(capsys):
    assert main([]) == 0
    assert "usage: fer-nla" in capsys.readouterr().out


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "fer_nla", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"fer-nla {fer_nla.__version__}"


@pytest.mark.skipif(shutil.which("fer-nla") is None, reason="console script not on PATH")
def test_console_script():
    out = subprocess.run(["fer-nla", "--help"], capture_output=True, text=True, check=True)
    assert "usage: fer-nla" in out.stdout
