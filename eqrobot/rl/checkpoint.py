"""Writing checkpoints: atomic writes and self-describing SB3 zips.

A checkpoint is a plain SB3 zip (``SAC.load(path)`` works after ``import eqrobot``) with one extra
member, ``eqrobot.json``: the algorithm, policy, env id and geometry spec it was trained with.
Reading them (:func:`eqrobot.rollout.checkpoints.load_model`, which uses that member to pick the
algorithm class and to refuse a checkpoint for another observation/action layout) sits below
training in :mod:`eqrobot.rollout`, so that evaluation never imports the training code.

Every file is written to ``<name>.tmp`` in the same folder, flushed, fsynced and moved over the old
one with ``os.replace``: a crash or Ctrl-C mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

from eqrobot.rollout.checkpoints import META_NAME


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (tmp file in the same folder + fsync + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save_model(model, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """``model.save`` into memory, add ``eqrobot.json``, write atomically. Returns the path."""
    buf = io.BytesIO()
    model.save(buf)
    meta = dict(meta or {})
    spec = getattr(model.observation_space, "geometry_spec", None) or getattr(
        model.policy, "geometry_spec", None
    )
    if spec is not None and "geometry_spec" not in meta:
        meta["geometry_spec"] = spec.to_dict()
    meta.setdefault("num_timesteps", int(model.num_timesteps))
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr(META_NAME, json.dumps(meta, indent=2, sort_keys=True))
    path = Path(path)
    atomic_write_bytes(path, buf.getvalue())
    return path


def save_replay_buffer(model, path: str | Path) -> Path | None:
    """Pickle the replay buffer atomically (off-policy models only; returns None otherwise)."""
    if getattr(model, "replay_buffer", None) is None:
        return None
    buf = io.BytesIO()
    model.save_replay_buffer(buf)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)
