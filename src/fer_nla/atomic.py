"""Atomic file writes: the one helper every file fer-nla writes goes through.

A file is written to a temporary file in the same folder, flushed to disk, given the
permissions an ordinary ``open(path, "w")`` would give it (``0o666`` less the umask; a
temporary file from :func:`tempfile.mkstemp` is ``0o600``, which would hide checkpoints and
reports from the user's group), then moved over ``path`` with :func:`os.replace`. A crash or
a kill at any point leaves either the old file or the new one, never a torn one, and the
temporary file is removed when the write fails.

>>> with atomic_write(Path("runs/a/best.pt")) as handle:
...     torch.save(payload, handle)
>>> write_text_atomic(Path("runs/a/report.md"), text)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _umask() -> int:
    """The process umask (read by setting and restoring it: POSIX offers no plain getter)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | Path, *, text: bool = False, encoding: str = "utf-8", newline: str | None = None) -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing (binary, or ``text`` with
    ``encoding``/``newline``); on a clean exit it is synced and replaces ``path``.

    The parent folder is created. Raises whatever the write raises (``OSError`` for a full
    disk or a read-only folder), after removing the temporary file; ``path`` is then untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # POSIX; on Windows the file keeps the folder's ACL
            os.fchmod(fd, 0o666 & ~_umask())
        mode = "w" if text else "wb"
        with os.fdopen(fd, mode, encoding=encoding if text else None, newline=newline if text else None) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`); returns ``path``."""
    with atomic_write(path, text=True, encoding=encoding) as handle:
        handle.write(text)
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`); returns ``path``."""
    with atomic_write(path) as handle:
        handle.write(data)
    return Path(path)
