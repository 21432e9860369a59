"""One resolver for everything that can act in an env: :func:`resolve_agent`.

An *agent* is anything with SB3's ``predict(obs, deterministic=True) -> (action, state)`` that takes
a single or batched Dict observation. :func:`resolve_agent` turns any of these into one:

- an object that already has ``predict`` (an SB3 model, :class:`~eqrobot.envs.oracles.OraclePolicy`);
- ``"oracle"`` (the env's scripted oracle; ``"oracle-push"``: Push's closed-hand variant) or
  ``"random"`` (:class:`RandomAgent`: uniform in the action's unit balls);
- an eqrobot run folder or checkpoint zip, or a plain SB3 zip
  (:func:`~eqrobot.rollout.checkpoints.load_model`);
- an rl-zoo3 run folder, or a zip inside one: env id from its ``args.yml``, and its
  ``vecnormalize.pkl`` applied to every observation (:class:`NormalizedAgent`);
- a dynamics-model checkpoint (``.pt``): an MPC planner
  (:class:`~eqrobot.dynamics.mpc.MPPIPlanner`) on the learned model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from eqrobot.geometry.spec import GeometrySpec
from eqrobot.rollout.checkpoints import CheckpointError, load_model
from eqrobot.rollout.zoo_runs import find_zoo_run, load_zoo_model, read_zoo_run

ORACLES = ("oracle", "oracle-push", "oracle-grasp")
DEFAULT_PLANNER_KWARGS = {"fixed_scalars": {"gripper": -1.0}}
"""A learned dynamics model plans with the gripper held closed, the setting the planner was
benchmarked with (docs/dynamics.md)."""


class RandomAgent:
    """Uniform actions: displacement uniform in the unit ball (isotropic), gripper uniform in [-1, 1]."""

    def __init__(self, spec: GeometrySpec, seed: int = 0):
        self.spec = spec
        self.rng = np.random.default_rng(seed)

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        batch = np.asarray(obs["observation"]).shape[:-1]
        a = np.zeros((*batch, self.spec.action.dim), dtype=np.float32)
        for f in self.spec.action.fields:
            if f.kind in ("vector", "pseudovector"):
                d = self.rng.normal(size=(*batch, 3))
                d /= np.linalg.norm(d, axis=-1, keepdims=True) + 1e-12
                d *= self.rng.uniform(size=(*batch, 1)) ** (1 / 3)
                a[..., f.slice] = d
            else:
                a[..., f.slice] = self.rng.uniform(-1, 1, size=(*batch, f.size))
        return a, None


class NormalizedAgent:
    """An SB3 model trained behind a ``VecNormalize``: observations are normalised with the saved
    running statistics (frozen, ``training=False``) before every ``predict``."""

    def __init__(self, model, vec_normalize):
        self.model = model
        self.vec_normalize = vec_normalize
        self.observation_space = model.observation_space
        self.action_space = model.action_space
        self.eqrobot_meta = getattr(model, "eqrobot_meta", {})

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        return self.model.predict(
            self.vec_normalize.normalize_obs(obs), state, episode_start, deterministic=deterministic
        )


def _env_spec(env_id: str | None, what: str) -> tuple[GeometrySpec, gym.Env]:
    if env_id is None:
        raise ValueError(f"agent {what!r} needs the env id (pass env_id=...)")
    env = gym.make(env_id)
    return env.unwrapped.geometry_spec, env


def _load_vec_normalize(path: Path, env_id: str, env_kwargs: dict):
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    try:
        vn = VecNormalize.load(str(path), DummyVecEnv([lambda: gym.make(env_id, **env_kwargs)]))
    except Exception as e:  # noqa: BLE001 - pickle / space-mismatch errors
        raise CheckpointError(
            f"{path}: the run was trained with VecNormalize but its statistics cannot be applied to "
            f"{env_id} ({type(e).__name__}: {e}); evaluating without them would feed the policy "
            "observations it never saw. Re-train with normalize: False or fix the env id."
        ) from e
    vn.training = False
    vn.norm_reward = False
    return vn


def resolve_agent(
    spec: Any,
    env_id: str | None = None,
    *,
    seed: int = 0,
    planner_kwargs: dict | None = None,
    device: str = "cpu",
):
    """An agent (``predict(obs, deterministic=True) -> (action, state)``) from any of the forms in
    the module docstring.

    ``env_id`` is needed by ``"oracle"``/``"random"``, checks that a checkpoint fits the env (same
    geometry spec) and lets SB3 rebuild HER models; an rl-zoo3 run brings its own. ``seed`` seeds
    :class:`RandomAgent`; ``planner_kwargs`` go to the MPC planner of a dynamics checkpoint
    (default :data:`DEFAULT_PLANNER_KWARGS`).

    :raises FileNotFoundError: a path that does not exist. :raises CheckpointError: a file that is
        not a loadable checkpoint, or one for another env layout, or VecNormalize statistics that
        cannot be applied. :raises TypeError: anything else.
    """
    if hasattr(spec, "predict"):
        return spec
    if isinstance(spec, str) and spec in (*ORACLES, "random") and not Path(spec).exists():
        geometry, env = _env_spec(env_id, spec)
        try:
            if spec == "random":
                return RandomAgent(geometry, seed)
            from eqrobot.envs.oracles import OraclePolicy

            if spec == "oracle":
                return OraclePolicy(env)
            return OraclePolicy(env, push_strategy=spec.split("-")[1])
        finally:
            env.close()
    if isinstance(spec, (str, os.PathLike)):
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(
                f"agent {str(spec)!r}: no such file or folder; expected 'oracle', 'random', an SB3 zip, "
                "an eqrobot or rl-zoo3 run folder, or a dynamics checkpoint (.pt)"
            )
        from eqrobot.dynamics.checkpoint import is_dynamics_checkpoint

        if is_dynamics_checkpoint(path):
            from eqrobot.dynamics.checkpoint import load_dynamics_model
            from eqrobot.dynamics.mpc import MPPIPlanner

            model = load_dynamics_model(path).eval()
            kwargs = DEFAULT_PLANNER_KWARGS if planner_kwargs is None else planner_kwargs
            return MPPIPlanner(model, model.geometry_spec, **kwargs)
        if find_zoo_run(path) is not None:
            run = read_zoo_run(path)
            model = load_zoo_model(run, device=device)
            if run.vecnormalize_path is None:
                return model
            return NormalizedAgent(
                model, _load_vec_normalize(run.vecnormalize_path, run.env_id, run.env_kwargs)
            )
        return load_model(path, env_id=env_id, device=device)
    raise TypeError(
        f"agent {spec!r} is neither an object with .predict(obs, deterministic=True) nor 'oracle', "
        "'random' or a path to an SB3 zip / run folder / dynamics checkpoint"
    )


def default_env_id(spec: Any) -> str | None:
    """The env an agent spec was trained on, if it says (eqrobot checkpoint metadata, an rl-zoo3
    ``args.yml``, a dynamics checkpoint's ``extra``), else None."""
    meta = getattr(spec, "eqrobot_meta", None)
    if meta is not None:
        return meta.get("env_id")
    if getattr(spec, "model", None) is not None and hasattr(spec.model, "checkpoint_extra"):
        return spec.model.checkpoint_extra.get("env_id")  # an MPC planner
    if not isinstance(spec, (str, os.PathLike)) or spec in (*ORACLES, "random"):
        return None
    path = Path(spec)
    if not path.exists():
        raise FileNotFoundError(f"agent {str(spec)!r}: no such file or folder")
    from eqrobot.dynamics.checkpoint import is_dynamics_checkpoint, load_dynamics_model

    if is_dynamics_checkpoint(path):
        return load_dynamics_model(path).checkpoint_extra.get("env_id")
    if find_zoo_run(path) is not None:
        return read_zoo_run(path).env_id
    from eqrobot.rollout.checkpoints import read_checkpoint_info

    _, _, meta = read_checkpoint_info(path)
    return (meta or {}).get("env_id")


def name_agents(agents) -> dict[str, Any]:
    """``{name: agent spec}`` from a mapping, one agent, or a list of agents / paths / ``NAME=PATH``."""
    if isinstance(agents, Mapping):
        if not agents:
            raise ValueError("no policy given")
        return dict(agents)
    if hasattr(agents, "predict") or isinstance(agents, (str, os.PathLike)):
        agents = [agents]
    out: dict[str, Any] = {}
    for i, p in enumerate(agents):
        if isinstance(p, str) and "=" in p and not Path(p).exists():
            name, p = p.split("=", 1)
        elif isinstance(p, (str, os.PathLike)):
            path = Path(p)
            name = path.name if path.is_dir() else path.stem
            if name == "model" and path.parent.name:
                name = path.parent.name
        else:
            name = type(p).__name__
        while name in out:
            name = f"{name}_{i}"
        out[name] = p
    if not out:
        raise ValueError("no policy given")
    return out


def _space_desc(space) -> str:
    if isinstance(space, gym.spaces.Dict):
        return "Dict(" + ", ".join(f"{k}: {v.shape}" for k, v in space.spaces.items()) + ")"
    return f"{type(space).__name__}{getattr(space, 'shape', '')}"


def check_agent_fits(name: str, agent, observation_space, action_space) -> None:
    """Raise a clear ValueError when an agent's spaces (if it has them) do not fit the env's."""
    obs_space = getattr(agent, "observation_space", None)
    act_space = getattr(agent, "action_space", None)
    problems = []
    if obs_space is not None:
        if isinstance(observation_space, gym.spaces.Dict) != isinstance(obs_space, gym.spaces.Dict):
            problems.append(
                f"observation space {_space_desc(obs_space)} vs env {_space_desc(observation_space)}"
            )
        elif isinstance(observation_space, gym.spaces.Dict):
            mine = {k: tuple(v.shape) for k, v in obs_space.spaces.items()}
            env = {k: tuple(v.shape) for k, v in observation_space.spaces.items()}
            if mine != env:
                problems.append(
                    f"observation space {_space_desc(obs_space)} vs env {_space_desc(observation_space)}"
                )
        elif tuple(obs_space.shape) != tuple(observation_space.shape):
            problems.append(f"observation shape {obs_space.shape} vs env {observation_space.shape}")
        spec_p = getattr(obs_space, "geometry_spec", None)
        spec_e = getattr(observation_space, "geometry_spec", None)
        if not problems and spec_p is not None and spec_e is not None and spec_p != spec_e:
            problems.append("geometry spec differs from the env's (same shapes, different field layout)")
    if act_space is not None and tuple(getattr(act_space, "shape", ())) != tuple(action_space.shape):
        problems.append(f"action space {_space_desc(act_space)} vs env {_space_desc(action_space)}")
    if problems:
        raise ValueError(
            f"policy {name!r} does not fit this env: "
            + "; ".join(problems)
            + ". Was it trained on another env? Pass the env it was trained on."
        )
