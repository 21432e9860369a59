"""Can PyBullet's GUI open a window here? Asked before connecting, because when it cannot, PyBullet
calls ``exit()`` from C (while its output is silenced, so the process just ends with status 1)."""

from __future__ import annotations

import ctypes
import os
import sys


def display_problem() -> str | None:
    """Why ``render_mode='human'`` cannot open a window on this machine, or None when it can.

    On Linux PyBullet's window needs an X server: ``DISPLAY`` must be set and Xlib must connect to
    it (the same ``XOpenDisplay`` call PyBullet makes). Other platforms use native windows: None.
    """
    if not sys.platform.startswith("linux"):
        return None
    display = os.environ.get("DISPLAY")
    if not display:
        return "DISPLAY is not set"
    try:
        xlib = ctypes.CDLL("libX11.so.6")
    except OSError:
        return "libX11 (the X client library PyBullet's window loads) is not installed"
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    handle = xlib.XOpenDisplay(display.encode())
    if not handle:
        return f"no X server answers at DISPLAY={display!r}"
    xlib.XCloseDisplay(handle)
    return None


def check_display() -> None:
    """Raise RuntimeError naming the cause and the fix when a PyBullet window cannot open."""
    problem = display_problem()
    if problem is not None:
        raise RuntimeError(
            f"render_mode='human' opens a PyBullet window and needs a display ({problem}); "
            "use render_mode='rgb_array' on headless machines"
        )
