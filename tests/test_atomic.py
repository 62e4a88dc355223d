"""The one atomic-write helper: whole files or the old file, the umask's permissions, no litter."""

from __future__ import annotations

import os
import stat

import pytest

from fer_nla.atomic import atomic_write, write_bytes_atomic, write_text_atomic


def test_written_files_get_the_umask_permissions_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "report.md", "hello")
    finally:
        os.umask(old)
    assert path.read_text() == "hello"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path):
    path = write_bytes_atomic(tmp_path / "best.pt", b"old")
    with pytest.raises(RuntimeError):
        with atomic_write(path) as handle:
            handle.write(b"half of the new")
            raise RuntimeError("killed")
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]


def test_parent_folders_are_created_and_text_mode_keeps_newlines_as_asked(tmp_path):
    path = tmp_path / "a" / "b" / "rows.csv"
    with atomic_write(path, text=True, newline="") as handle:
        handle.write("x\r\ny\n")
    assert path.read_bytes() == b"x\r\ny\n"
