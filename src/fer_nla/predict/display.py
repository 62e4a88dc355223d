"""A window that shows video frames as they are classified (``fer-nla predict --show``).

OpenCV's window (``cv2.imshow``) needs an OpenCV build with a GUI and a display: the
``opencv-python-headless`` wheel fer-nla installs has no GUI, so :func:`check_display` says
what to install before any frame is read, instead of OpenCV's "The function is not implemented".
"""

from __future__ import annotations

import os
import sys

import cv2
import numpy as np

from fer_nla.errors import InputError

QUIT_KEYS = (ord("q"), 27)  # q, Esc


def gui_backend() -> str:
    """The GUI backend of the installed OpenCV as its build information names it (``NONE``:
    a headless build)."""
    lines = cv2.getBuildInformation().splitlines()
    for k, line in enumerate(lines):
        if line.strip().startswith("GUI:"):
            value = line.split(":", 1)[1].strip()
            follow = lines[k + 1].split(":", 1)[0].strip() if not value and k + 1 < len(lines) else ""
            return value or follow or "NONE"
    return "NONE"


def check_display() -> None:
    """Raises :class:`InputError` when no window can open here: a headless OpenCV (what to
    install instead) or, on Linux, no ``DISPLAY``/``WAYLAND_DISPLAY`` (a server or SSH session)."""
    if gui_backend().upper() == "NONE":
        raise InputError("--show needs an OpenCV with a window system; fer-nla installs the headless one. "
                         "Install the desktop build: pip uninstall -y opencv-python-headless && "
                         "pip install opencv-python (or leave --show out and use --annotate DIR)")
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise InputError("--show needs a display, and none is set here (no DISPLAY or WAYLAND_DISPLAY: "
                         "a server or SSH session); use --annotate DIR to keep the drawn frames instead")


class Window:
    """Shows each drawn RGB frame (``HxWx3`` uint8); q or Esc in the window ends the run as
    Ctrl-C does. Check :func:`check_display` first."""

    def __init__(self, title: str = "fer-nla") -> None:
        self.title = title
        self.opened = False

    def __call__(self, frame_rgb: np.ndarray) -> None:
        cv2.imshow(self.title, cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        self.opened = True
        if cv2.waitKey(1) & 0xFF in QUIT_KEYS:
            raise KeyboardInterrupt

    def close(self) -> None:
        """Closes the window if one was opened (no frame drawn: nothing to close); a window the
        user already closed is no error."""
        if self.opened:
            try:
                cv2.destroyWindow(self.title)
            except cv2.error:
                pass
            self.opened = False
