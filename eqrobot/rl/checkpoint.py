"""Checkpoints: self-describing SB3 zips, run-folder checkpoints as one atomic unit, clear load errors.

A model zip is a plain SB3 zip (``SAC.load(path)`` works after ``import eqrobot``) with one extra
member, ``eqrobot.json``: the algorithm, policy, env id and geometry spec it was trained with. SB3
ignores it; :func:`load_model` uses it to pick the algorithm class and to refuse a checkpoint whose
observation/action layout differs from the env it is asked to run on.

In a run folder, one checkpoint is one folder ``checkpoints/<name>/`` holding ``model.zip``,
``replay_buffer.pkl`` (off-policy) and ``checkpoint.json`` (step count and each file's size and
SHA-256). It is written under a temporary name and renamed into place when complete; then the
run's ``state.json`` (status, and which checkpoint is current) is replaced atomically. That replace
is the commit: after a crash or SIGKILL at any moment, ``state.json`` names a complete checkpoint
whose three files agree, or the previous one. Run folders of the older layout (``model.zip`` and
``replay_buffer.pkl`` at the top) still load.

Loading unpickles: SB3 zips hold pickled members and ``replay_buffer.pkl`` is a pickle, so load
only checkpoints from sources you trust (docs/checkpoints.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import struct
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

META_NAME = "eqrobot.json"
MODEL_NAME = "model.zip"
BUFFER_NAME = "replay_buffer.pkl"
CONFIG_NAME = "config.json"
STATE_NAME = "state.json"
CHECKPOINTS_DIR = "checkpoints"
UNIT_NAME = "checkpoint.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded, or not for this env; the message says why."""


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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (tmp file in the same folder + fsync + ``os.replace``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only there if the write failed or was interrupted


def algo_classes() -> dict[str, type]:
    """Algorithm name -> the SB3 class eqrobot trains and loads it with."""
    from stable_baselines3 import PPO

    from eqrobot.policies.sac import EquivariantSAC
    from eqrobot.policies.td3 import EquivariantTD3
    from eqrobot.policies.tqc import EquivariantTQC

    return {"sac": EquivariantSAC, "td3": EquivariantTD3, "tqc": EquivariantTQC, "ppo": PPO}


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


def read_state(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's ``state.json`` (None if there is none)."""
    path = Path(run_dir) / STATE_NAME
    return _read_json(path) if path.exists() else None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: corrupt JSON ({e})") from e
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


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


def checkpoint_folder(run_dir: str | Path) -> Path | None:
    """The folder holding the run's current ``model.zip``: the committed unit, or the run folder
    itself for the older layout; None if the run has no checkpoint."""
    run_dir = Path(run_dir)
    state = read_state(run_dir) or {}
    if state.get("checkpoint"):
        if (
            not isinstance(state["checkpoint"], str)
            or Path(state["checkpoint"]).is_absolute()
            or ".." in state["checkpoint"]
        ):
            raise CheckpointError(
                f"{run_dir / STATE_NAME}: 'checkpoint' must be a path inside the run folder"
            )
        folder = run_dir / state["checkpoint"]
        if not (folder / MODEL_NAME).exists():
            raise CheckpointError(f"{run_dir}: state.json names {state['checkpoint']}, which is missing")
        return folder
    return run_dir if (run_dir / MODEL_NAME).exists() else None


def verify_file(folder: Path, name: str) -> Path:
    """``folder/name`` after checking it against the size and SHA-256 in ``checkpoint.json``."""
    path = folder / name
    unit_path = folder / UNIT_NAME
    if not unit_path.exists():  # older layout: nothing recorded to check against
        return path
    files = _read_json(unit_path).get("files")
    expected = files.get(name) if isinstance(files, dict) else None
    if not isinstance(expected, dict) or not {"size", "sha256"} <= set(expected):
        raise CheckpointError(f"{folder}: the checkpoint holds no {name}")
    data = path.read_bytes()
    if len(data) < expected["size"]:
        raise CheckpointError(f"{path}: truncated ({len(data)} of {expected['size']} bytes)")
    if len(data) != expected["size"] or hashlib.sha256(data).hexdigest() != expected["sha256"]:
        raise CheckpointError(
            f"{path}: corrupt (its SHA-256 differs from the one recorded when it was saved)"
        )
    return path


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


# --- reading zips --------------------------------------------------------------------------------
def _zip_problem(zip_path: Path) -> str | None:
    """Why ``zip_path`` is not an intact zip (empty, not a zip, truncated, bad CRC), or None."""
    size = zip_path.stat().st_size
    if size == 0:
        return "empty file (0 bytes)"
    with open(zip_path, "rb") as f:
        head = f.read(4)
        f.seek(max(0, size - 65_557))  # the end record (22 bytes) + at most a 64 KiB comment
        tail = f.read()
    if head != b"PK\x03\x04":
        return f"not a zip file (it starts with {head!r})"
    # A complete zip ends with its end-of-central-directory record, right after the central
    # directory it points to. A zip nested in a member (SB3's policy.pth is a torch zip) has such a
    # record too, but its offsets do not point at the record itself: it cannot pass for the outer one.
    base = size - len(tail)
    for i in range(len(tail) - 22, -1, -1):
        if tail[i : i + 4] != b"PK\x05\x06":
            continue
        cd_size, cd_offset, comment_len = struct.unpack("<IIH", tail[i + 12 : i + 22])
        ends_file = i + 22 + comment_len == len(tail)
        consistent = cd_offset == 0xFFFFFFFF or cd_offset + cd_size == base + i  # (0xFFFFFFFF: ZIP64)
        if ends_file and consistent:
            break
        if ends_file:
            return "corrupt: its end-of-zip record points outside the file (damaged bytes)"
        if consistent:
            return f"corrupt: {len(tail) - i - 22 - comment_len} unexpected bytes after the end of the zip"
    else:
        return (
            f"truncated: {size} bytes and no end-of-zip record (an interrupted write or copy, "
            "or damaged last bytes)"
        )
    try:
        with zipfile.ZipFile(zip_path) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        return f"corrupt zip ({e})"
    except Exception as e:  # zlib.error on damaged compressed data
        return f"corrupt: a member cannot be decompressed ({type(e).__name__}: {e})"
    if bad is not None:
        return f"corrupt: member {bad!r} fails its CRC check (damaged bytes)"
    return None


def read_checkpoint_info(path: str | Path) -> tuple[Path, dict[str, Any], dict[str, Any] | None]:
    """``(zip_path, sb3_data, eqrobot_meta or None)`` for a zip, a run folder or a checkpoint folder.

    Raises FileNotFoundError or :class:`CheckpointError` (truncated, corrupt, not SB3)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint zip or run folder")
    if path.is_dir():
        folder = checkpoint_folder(path)
        if folder is None:
            contents = sorted(p.name for p in path.iterdir())[:10]
            raise CheckpointError(
                f"{path} is a folder without {MODEL_NAME} or a checkpoint; is it a run folder? "
                f"(it holds {contents})"
            )
        zip_path = verify_file(folder, MODEL_NAME)
    else:
        zip_path = path
    problem = _zip_problem(zip_path)
    if problem:
        raise CheckpointError(f"{zip_path}: {problem}")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            names = zf.namelist()
            if "data" not in names:
                raise CheckpointError(
                    f"{zip_path}: a zip, but not an SB3 checkpoint (no 'data' member; has {names[:8]})"
                )
            data = json.loads(zf.read("data"))
            meta = json.loads(zf.read(META_NAME)) if META_NAME in names else None
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError, OSError, KeyError) as e:
        raise CheckpointError(f"{zip_path}: corrupt checkpoint ({type(e).__name__}: {e})") from e
    if meta is None and path.is_dir() and (path / CONFIG_NAME).exists():
        cfg = _read_json(path / CONFIG_NAME)
        meta = {"algo": cfg.get("algo"), "policy": cfg.get("policy"), "env_id": cfg.get("env_id")}
    return zip_path, data, meta


def _infer_algo(data: dict[str, Any], meta: dict[str, Any] | None, zip_path: Path) -> str:
    known = algo_classes()
    algo = (meta or {}).get("algo")
    if algo is None:
        blob = json.dumps(data.get("policy_class", "")).lower()
        candidates = [a for a in ("sac", "td3", "ppo", "tqc") if f"{a}." in blob or f".{a}" in blob]
        if not candidates and "actorcriticpolicy" in blob:
            candidates = ["ppo"]
        if len(candidates) != 1:
            raise CheckpointError(
                f"{zip_path}: cannot tell which algorithm wrote this checkpoint; known: {', '.join(known)}"
            )
        algo = candidates[0]
    if algo not in known:
        raise CheckpointError(f"{zip_path}: unknown algo {algo!r}; known: {', '.join(known)}")
    return algo


def spec_differences(saved: dict, current: dict) -> list[str]:
    """Human-readable differences between two ``GeometrySpec.to_dict()`` dicts."""
    out = []
    for part in sorted(set(saved) | set(current)):
        a = [(f["name"], f["kind"], f["size"]) for f in saved.get(part, [])]
        b = [(f["name"], f["kind"], f["size"]) for f in current.get(part, [])]
        if a != b:
            out.append(f"{part}: checkpoint {a} vs env {b}")
    return out


def env_geometry_spec(env_id: str, env_kwargs: dict | None = None):
    import gymnasium as gym

    env = gym.make(env_id, **(env_kwargs or {}))
    try:
        return env.unwrapped.geometry_spec
    finally:
        env.close()


def load_model(
    path_or_run_dir: str | Path,
    env_id: str | None = None,
    env=None,
    device: str = "cpu",
    **load_kwargs: Any,
):
    """Load an eqrobot (or plain SB3) checkpoint from a zip or a run folder.

    :param env_id: check that the checkpoint fits this env (same geometry spec) and, for HER models,
        build an env for SB3 to attach the replay buffer to. Envs with the same spec (e.g. Reach and
        ReachDense) are accepted.
    :param env: a (Vec)Env to attach (for further training); overrides ``env_id``'s env.
    :raises FileNotFoundError: no such path. :raises CheckpointError: corrupt zip, not an SB3
        checkpoint, unknown algorithm, or a checkpoint for an env with another layout.
    """
    zip_path, data, meta = read_checkpoint_info(path_or_run_dir)
    algo = _infer_algo(data, meta, zip_path)
    cls = algo_classes()[algo]
    if env_id is not None and meta and meta.get("geometry_spec") is not None:
        import gymnasium as gym

        if env_id not in gym.registry:
            from eqrobot.envs import ENV_IDS

            raise ValueError(f"unknown env {env_id!r}; eqrobot envs: {', '.join(ENV_IDS)}")
        diffs = spec_differences(meta["geometry_spec"], env_geometry_spec(env_id).to_dict())
        if diffs:
            raise CheckpointError(
                f"{zip_path} was trained on {meta.get('env_id', 'another env')!r}, whose observation/action "
                f"layout differs from {env_id!r}: " + "; ".join(diffs)
            )
    uses_her = "HerReplayBuffer" in json.dumps(data.get("replay_buffer_class", ""))
    if env is None and env_id is not None and uses_her:
        import gymnasium as gym
        from stable_baselines3.common.vec_env import DummyVecEnv

        env = DummyVecEnv([lambda: gym.make(env_id)])
    custom = dict(load_kwargs.pop("custom_objects", {}) or {})
    if env is None and uses_her:
        # inference only: SB3 would need an env to rebuild the HER buffer; give it a tiny plain one
        custom.update({"replay_buffer_class": None, "replay_buffer_kwargs": {}, "buffer_size": 1})
    try:
        model = cls.load(zip_path, env=env, device=device, custom_objects=custom or None, **load_kwargs)
    except (CheckpointError, FileNotFoundError):
        raise
    except ValueError as e:
        if "does not match" in str(e) or "Observation spaces" in str(e) or "Action spaces" in str(e):
            raise CheckpointError(f"{zip_path} does not fit the env: {e}") from e
        raise CheckpointError(f"{zip_path}: could not load ({e})") from e
    except Exception as e:  # torch/pickle errors on a damaged member
        raise CheckpointError(
            f"{zip_path}: corrupt or incompatible checkpoint ({type(e).__name__}: {e})"
        ) from e
    model.eqrobot_meta = meta or {}
    return model
