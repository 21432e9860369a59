"""Checkpoints: atomic writes, self-describing SB3 zips, and :func:`load_model` with clear errors.

A checkpoint is a plain SB3 zip (``SAC.load(path)`` works after ``import eqrobot``) with one extra
member, ``eqrobot.json``: the algorithm, policy, env id and geometry spec it was trained with. SB3
ignores the extra member; :func:`load_model` uses it to pick the algorithm class and to refuse a
checkpoint whose observation/action layout differs from the env it is asked to run on.

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

META_NAME = "eqrobot.json"
MODEL_NAME = "model.zip"
BUFFER_NAME = "replay_buffer.pkl"
CONFIG_NAME = "config.json"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded, or not for this env; the message says why."""


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


def algo_classes() -> dict[str, type]:
    """Algorithm name -> the SB3 class eqrobot trains and loads it with."""
    from stable_baselines3 import PPO

    from eqrobot.policies.sac import EquivariantSAC
    from eqrobot.policies.td3 import EquivariantTD3
    from eqrobot.policies.tqc import EquivariantTQC

    return {"sac": EquivariantSAC, "td3": EquivariantTD3, "tqc": EquivariantTQC, "ppo": PPO}


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


def read_checkpoint_info(path: str | Path) -> tuple[Path, dict[str, Any], dict[str, Any] | None]:
    """``(zip_path, sb3_data, eqrobot_meta or None)`` for a zip or a run folder.

    Raises FileNotFoundError or :class:`CheckpointError` (not a zip, no SB3 ``data``, corrupt JSON)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint zip or run folder")
    if path.is_dir():
        zip_path = path / MODEL_NAME
        if not zip_path.exists():
            contents = sorted(p.name for p in path.iterdir())[:10]
            raise CheckpointError(
                f"{path} is a folder without {MODEL_NAME}; is it a run folder? (it holds {contents})"
            )
    else:
        zip_path = path
    if not zipfile.is_zipfile(zip_path):
        raise CheckpointError(f"{zip_path}: not a zip file (corrupt, truncated, or not an SB3 checkpoint)")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            names = zf.namelist()
            if "data" not in names:
                raise CheckpointError(
                    f"{zip_path}: a zip, but not an SB3 checkpoint (no 'data' member; has {names})"
                )
            data = json.loads(zf.read("data"))
            meta = json.loads(zf.read(META_NAME)) if META_NAME in names else None
    except (zipfile.BadZipFile, json.JSONDecodeError, OSError, KeyError) as e:
        raise CheckpointError(f"{zip_path}: corrupt checkpoint ({type(e).__name__}: {e})") from e
    if meta is None and path.is_dir() and (path / CONFIG_NAME).exists():
        cfg = json.loads((path / CONFIG_NAME).read_text())
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

    import eqrobot  # noqa: F401

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
    import eqrobot  # noqa: F401  (policy aliases, env ids)

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
