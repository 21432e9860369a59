"""Writing checkpoints: self-describing SB3 zips, and run-folder checkpoints as one atomic unit.

A model zip is a plain SB3 zip (``SAC.load(path)`` works after ``import eqrobot``) with one extra
member, ``eqrobot.json``: the algorithm, policy, env id and geometry spec it was trained with
(reading them: :func:`eqrobot.rollout.checkpoints.load_model`, below training, so that evaluation
never imports the training code).

In a run folder, one checkpoint is one folder ``checkpoints/<name>/`` holding ``model.zip``,
``replay_buffer.pkl`` (off-policy) and ``checkpoint.json`` (step count and each file's size and
SHA-256). It is written under a temporary name and renamed into place when complete; then the
run's ``state.json`` (status, and which checkpoint is current) is replaced atomically. That replace
is the commit: after a crash or SIGKILL at any moment, ``state.json`` names a complete checkpoint
whose three files agree, or the previous one. See docs/checkpoints.md, also for which files
unpickle (load only checkpoints from sources you trust).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import signal
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from eqrobot.files import atomic_write_bytes
from eqrobot.rollout.checkpoints import (
    BUFFER_NAME,
    CHECKPOINTS_DIR,
    META_NAME,
    MODEL_NAME,
    STATE_NAME,
    UNIT_NAME,
    CheckpointError,
    verify_file,
)

__all__ = [
    "append_eval_row",
    "commit_state",
    "load_replay_buffer",
    "read_eval_csv",
    "save_model",
    "write_checkpoint",
]


@contextlib.contextmanager
def sigint_deferred():
    """Hold back SIGINT for a few milliseconds of commit work (delivered right after; POSIX only)."""
    block = hasattr(signal, "pthread_sigmask")
    if block:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if block:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def model_zip_bytes(model, meta: dict[str, Any] | None = None) -> bytes:
    """``model.save`` into memory with ``eqrobot.json`` added (the geometry spec, the step count)."""
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
    return buf.getvalue()


def save_model(model, path: str | Path, meta: dict[str, Any] | None = None) -> Path:
    """One self-describing SB3 zip, written atomically. Returns the path."""
    path = Path(path)
    atomic_write_bytes(path, model_zip_bytes(model, meta))
    return path


# --- run-folder checkpoints ----------------------------------------------------------------------
def _write_fsynced(path: Path, data: bytes) -> dict[str, Any]:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _fsync_dir(path: Path) -> None:
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def commit_state(run_dir: Path, state: dict[str, Any]) -> None:
    """Replace ``state.json`` atomically (with SIGINT held back, so it is never half-done)."""
    state = {**state, "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    with sigint_deferred():
        atomic_write_bytes(Path(run_dir) / STATE_NAME, (json.dumps(state, indent=2) + "\n").encode())


def write_checkpoint(
    run_dir: Path, model, meta: dict[str, Any], state: dict[str, Any], save_buffer: bool = True
) -> Path:
    """Write model + replay buffer + ``checkpoint.json`` as one unit, then commit ``state``.

    ``state`` (status, total_steps, ...) goes into ``state.json`` with ``checkpoint`` (the unit's
    path relative to the run folder) and ``num_timesteps``. Older units are removed after the commit.
    If this raises (or is interrupted), ``state.json`` still names the previous checkpoint."""
    run_dir = Path(run_dir)
    root = run_dir / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    step = int(model.num_timesteps)
    name = f"step-{step:012d}"
    k = 1
    while (root / name).exists():  # same step again (e.g. interrupted right after a periodic one)
        name = f"step-{step:012d}.{k}"
        k += 1
    tmp = root / f".tmp-{name}"
    try:
        tmp.mkdir()
        files = {MODEL_NAME: _write_fsynced(tmp / MODEL_NAME, model_zip_bytes(model, meta))}
        if save_buffer and getattr(model, "replay_buffer", None) is not None:
            buf = io.BytesIO()
            model.save_replay_buffer(buf)
            files[BUFFER_NAME] = _write_fsynced(tmp / BUFFER_NAME, buf.getvalue())
        unit = {"num_timesteps": step, "files": files}
        _write_fsynced(tmp / UNIT_NAME, (json.dumps(unit, indent=2) + "\n").encode())
        _fsync_dir(tmp)
        with sigint_deferred():
            os.rename(tmp, root / name)
            _fsync_dir(root)
            commit_state(run_dir, {**state, "checkpoint": f"{CHECKPOINTS_DIR}/{name}", "num_timesteps": step})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for old in root.iterdir():  # superseded units and leftovers of interrupted writes
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    for old in (MODEL_NAME, BUFFER_NAME):  # a run folder of the older layout, resumed: superseded too
        (run_dir / old).unlink(missing_ok=True)
    return root / name


def load_replay_buffer(model, folder: Path) -> bool:
    """Load the checkpoint's replay buffer into ``model`` (False if the checkpoint has none)."""
    import pickle
    import warnings

    if not (folder / BUFFER_NAME).exists():
        return False
    path = verify_file(folder, BUFFER_NAME)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.load_replay_buffer(path)
    except (EOFError, pickle.UnpicklingError, ValueError) as e:
        raise CheckpointError(f"{path}: unreadable replay buffer ({type(e).__name__}: {e})") from e
    return True


EVAL_CSV = "eval.csv"
EVAL_COLUMNS = [
    "step",
    "success_rate",
    "mean_return",
    "mean_length",
    "train_success_rate",
    "wall_time_s",
    "train_steps_per_s",
]


# --- eval.csv: one row per evaluation ---------------------------------------------------------------
def append_eval_row(path: Path, row: dict[str, Any]) -> None:
    new = not path.exists()
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=EVAL_COLUMNS)
        if new:
            w.writeheader()
        w.writerow({k: ("" if row.get(k) is None else row[k]) for k in EVAL_COLUMNS})
        f.flush()
        os.fsync(f.fileno())


def read_eval_csv(path: str | Path) -> list[dict[str, float]]:
    """Rows of a run's ``eval.csv`` as dicts of floats (empty cells -> nan)."""
    with open(path, newline="") as f:
        return [
            {k: float(v) if v != "" else float("nan") for k, v in row.items()} for row in csv.DictReader(f)
        ]


def drop_eval_rows_after(path: Path, step: int) -> None:
    """On resume: rows measured after the checkpoint being resumed are measured again; drop them."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    keep = [r for r in rows if float(r["step"]) <= step]
    if len(keep) != len(rows):
        out = io.StringIO()
        w = csv.DictWriter(out, fieldnames=EVAL_COLUMNS)
        w.writeheader()
        w.writerows(keep)
        atomic_write_bytes(path, out.getvalue().encode())
