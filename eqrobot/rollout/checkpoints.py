"""Reading SB3 policy checkpoints: eqrobot run folders and zips, plain SB3 zips.

An eqrobot checkpoint is a plain SB3 zip (``SAC.load(path)`` works after ``import eqrobot``) with one
extra member, ``eqrobot.json``: the algorithm, policy, env id and geometry spec it was trained with.
SB3 ignores the extra member; :func:`load_model` uses it to pick the algorithm class and to refuse a
checkpoint whose observation/action layout differs from the env it is asked to run on. (Writing
checkpoints is training's job: :mod:`eqrobot.rl.checkpoint`.)

In an eqrobot run folder, ``state.json`` names the current checkpoint, a folder
``checkpoints/<step>/`` holding ``model.zip``, ``replay_buffer.pkl`` and ``checkpoint.json`` (each
file's size and SHA-256, checked on load): see docs/checkpoints.md. Run folders of the older layout
(``model.zip`` at the top) load too. Damage is named: truncated, bad CRC, a checksum mismatch.
(rl-zoo3 run folders: :mod:`eqrobot.rollout.zoo_runs`.)
"""

from __future__ import annotations

import hashlib
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym

META_NAME = "eqrobot.json"
MODEL_NAME = "model.zip"
BUFFER_NAME = "replay_buffer.pkl"
CONFIG_NAME = "config.json"
STATE_NAME = "state.json"
CHECKPOINTS_DIR = "checkpoints"
UNIT_NAME = "checkpoint.json"


class CheckpointError(ValueError):
    """A policy checkpoint that cannot be loaded, or not for this env; the message says why."""


def algo_classes() -> dict[str, type]:
    """Algorithm name -> the SB3 class eqrobot trains and loads it with."""
    from stable_baselines3 import PPO

    from eqrobot.policies.sac import EquivariantSAC
    from eqrobot.policies.td3 import EquivariantTD3
    from eqrobot.policies.tqc import EquivariantTQC

    return {"sac": EquivariantSAC, "td3": EquivariantTD3, "tqc": EquivariantTQC, "ppo": PPO}


# --- eqrobot run folders (written by eqrobot.rl.checkpoint) -------------------------------------
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


def env_geometry_spec(env_id: str, env_kwargs: dict | None = None):
    """The geometry spec of a freshly made ``env_id`` (checks the id first, with a clear error)."""
    from eqrobot.envs import ENV_IDS

    if env_id not in gym.registry:
        raise ValueError(f"unknown env {env_id!r}; eqrobot envs: {', '.join(ENV_IDS)}")
    env = gym.make(env_id, **(env_kwargs or {}))
    try:
        return env.unwrapped.geometry_spec
    finally:
        env.close()


def check_checkpoint_layout(zip_path: Path, meta: dict | None, env_id: str | None) -> None:
    if env_id is None or not meta or meta.get("geometry_spec") is None:
        return
    from eqrobot.geometry.spec import GeometrySpec, spec_differences

    saved = GeometrySpec.from_dict(meta["geometry_spec"])
    diffs = spec_differences(saved, env_geometry_spec(env_id), "checkpoint", "env")
    if diffs:
        raise CheckpointError(
            f"{zip_path} was trained on {meta.get('env_id', 'another env')!r}, whose observation/action "
            f"layout differs from {env_id!r}: " + "; ".join(diffs)
        )


def load_sb3_zip(cls, zip_path: Path, data: dict, env_id, env, device, load_kwargs: dict):
    """``cls.load`` with HER handled (SB3 needs an env to rebuild a HER buffer) and clear errors."""
    uses_her = "HerReplayBuffer" in json.dumps(data.get("replay_buffer_class", ""))
    if env is None and env_id is not None and uses_her:
        from stable_baselines3.common.vec_env import DummyVecEnv

        env = DummyVecEnv([lambda: gym.make(env_id)])
    custom = dict(load_kwargs.pop("custom_objects", {}) or {})
    if env is None and uses_her:
        # inference only: SB3 would need an env to rebuild the HER buffer; give it a tiny plain one
        custom.update({"replay_buffer_class": None, "replay_buffer_kwargs": {}, "buffer_size": 1})
    try:
        return cls.load(zip_path, env=env, device=device, custom_objects=custom or None, **load_kwargs)
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


def load_model(
    path_or_run_dir: str | Path,
    env_id: str | None = None,
    env=None,
    device: str = "cpu",
    **load_kwargs: Any,
):
    """Load an eqrobot (or plain SB3) checkpoint from a zip or an eqrobot run folder.

    :param env_id: check that the checkpoint fits this env (same geometry spec) and, for HER models,
        build an env for SB3 to attach the replay buffer to. Envs with the same spec (e.g. Reach and
        ReachDense) are accepted.
    :param env: a (Vec)Env to attach (for further training); overrides ``env_id``'s env.
    :raises FileNotFoundError: no such path. :raises CheckpointError: corrupt zip, not an SB3
        checkpoint, unknown algorithm, or a checkpoint for an env with another layout.
    """
    zip_path, data, meta = read_checkpoint_info(path_or_run_dir)
    cls = algo_classes()[_infer_algo(data, meta, zip_path)]
    check_checkpoint_layout(zip_path, meta, env_id)
    model = load_sb3_zip(cls, zip_path, data, env_id, env, device, load_kwargs)
    model.eqrobot_meta = meta or {}
    return model
