"""Silence what PyBullet's C code prints (its build time on import, ``argv[0]=`` on every connect),
which would otherwise interleave with users' tables and progress bars."""

from __future__ import annotations

import ctypes
import os
import sys
from contextlib import contextmanager

try:
    _libc = ctypes.CDLL(None)
except OSError:  # pragma: no cover - no C library handle on this platform
    _libc = None


def _flush_c_stdout() -> None:
    # C stdio buffers its streams when it is not a terminal; flush it while it still points at devnull
    if _libc is not None:
        try:
            _libc.fflush(None)
        except (AttributeError, OSError):  # pragma: no cover
            pass


@contextmanager
def c_stdout_silenced():
    """Point file descriptors 1 and 2 at /dev/null for the duration (Python-level output included)."""
    streams = []
    for stream in (sys.stdout, sys.stderr):
        try:
            streams.append((stream, stream.fileno()))
        except (AttributeError, ValueError, OSError):  # a replaced stream without a real fd
            continue
    for stream, _ in streams:
        stream.flush()
    saved = [(fd, os.dup(fd)) for _, fd in streams]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for fd, _ in saved:
            os.dup2(devnull, fd)
        yield
    finally:
        _flush_c_stdout()
        for fd, copy in saved:
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)
