"""Atomic writes: an interrupted write leaves the old file, a finished one replaces it."""

import pytest

from eqrobot.files import atomic_write, atomic_write_bytes


def test_interrupted_write_keeps_the_old_file(tmp_path):
    path = atomic_write_bytes(tmp_path / "sub" / "f.bin", b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path) as fh:
            fh.write(b"half of the new")
            raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert [p.name for p in path.parent.iterdir()] == ["f.bin"]  # no temporary file left
    atomic_write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and len(list(path.parent.iterdir())) == 1
