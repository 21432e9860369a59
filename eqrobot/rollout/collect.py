"""Transition collection for the dynamics models: any agent (or a per-episode mixture) in any env.

:func:`collect_transitions` records a stream of transitions (episodes cut at ``terminated or
truncated``, the stream cut at ``n_transitions``) with optional isotropic action noise and random
actions drawn in the episode's frame; :func:`from_replay_buffer` reads the real transitions out of an
SB3 replay buffer; :func:`collect_to_file` is what ``eqrobot dynamics collect`` runs. The stored
format is :class:`eqrobot.dynamics.data.Transitions`.

(Collection keeps its own step loop rather than :func:`eqrobot.rollout.episodes.run_episodes`: it
perturbs actions between agent and env, switches agents per episode and stops mid-episode.)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np

from eqrobot.dynamics.data import TRANSITION_ARRAYS, DatasetFormatError, Transitions
from eqrobot.geometry.so3 import random_rotation, rotation_about_axis
from eqrobot.geometry.spec import GeometrySpec
from eqrobot.policies.distributions import limit_action
from eqrobot.rollout.agents import RandomAgent, resolve_agent
from eqrobot.rollout.episodes import progress_bar

DEFAULT_POLICY_MIX = "oracle:0.3,oracle-push:0.5,random:0.2"
"""Grasping and pushing oracles with random episodes: the data covers contacts, carries and misses."""


def _agent(policy, env_id: str, seed: int):
    if policy is None:
        policy = "random"
    if isinstance(policy, (str, os.PathLike)) or hasattr(policy, "predict"):
        return resolve_agent(policy, env_id, seed=seed)
    raise TypeError(f"policy must be 'random', 'oracle', a model path or have .predict(obs), got {policy!r}")


def parse_policy_mix(policy) -> list[tuple[object, float]]:
    """``"oracle:0.4,oracle-push:0.4,random:0.2"`` or ``{"oracle": 0.5, ...}`` -> [(policy, weight)];
    a single policy -> [(policy, 1.0)]. The mixture is drawn per episode."""
    if isinstance(policy, dict):
        items = list(policy.items())
    elif isinstance(policy, str) and ("," in policy or ":" in policy) and not os.path.exists(policy):
        items = []
        for part in policy.split(","):
            name, _, w = part.strip().partition(":")
            try:
                items.append((name.strip(), float(w) if w else 1.0))
            except ValueError:
                raise ValueError(f"bad policy mixture entry {part!r} (expected NAME:WEIGHT)") from None
    else:
        return [(policy, 1.0)]
    total = sum(w for _, w in items)
    if not items or total <= 0 or any(w < 0 for _, w in items):
        raise ValueError(f"policy mixture {policy!r} needs non-negative weights with a positive sum")
    return [(p, w / total) for p, w in items]


def collect_transitions(
    env_id: str,
    n_transitions: int,
    policy="random",
    seed: int = 0,
    action_noise: float = 0.0,
    random_action_prob: float = 0.0,
    env_kwargs: dict | None = None,
    deterministic: bool = True,
    progress: bool = False,
    moves: str | None = None,
    move_seed: int | None = None,
    task_rotation_range: float = float(np.pi / 2),
) -> Transitions:
    """Run ``policy`` in ``env_id`` and record ``n_transitions`` transitions.

    ``policy``: ``"random"``, ``"oracle"`` (:class:`eqrobot.envs.oracles.OraclePolicy`; for Push
    ``"oracle-push"`` is its closed-hand pushing variant), a path to a trained SB3 model or eqrobot
    run folder, any object with ``predict(obs, deterministic=...) -> (action, state)``, or a
    mixture drawn per episode: ``"oracle:0.4,oracle-push:0.4,random:0.2"`` (or a dict).
    ``action_noise`` adds isotropic Gaussian noise of that std to each vector field of the action
    (and to scalars); ``random_action_prob`` replaces an action by a random one with that
    probability: both widen the state distribution beyond what the policy visits.
    ``env_kwargs`` go to ``gymnasium.make`` (e.g. ``task_rotation_range``, ``world_transform``).
    Episodes are cut at ``terminated or truncated``.

    The collector's own randomness (random actions, noise) is drawn in the episode's frame (the
    env's world rotation times its task rotation, from the reset ``info``), so it is equivariant like
    the oracles. With ``moves="world"`` (a random SE(3) element per episode, translation uniform in
    [-1, 1]^3) or ``moves="task"`` (a uniform rotation about gravity within
    ``task_rotation_range``), drawn from ``move_seed`` and passed as reset options, the tasks are the
    same as without ``moves`` for the same ``seed``: the two data sets are paired episode by episode
    (up to the simulator's own asymmetry in contacts).
    """
    env = gym.make(env_id, **(env_kwargs or {}))
    bar = None
    try:
        spec: GeometrySpec = env.unwrapped.geometry_spec
        mix = parse_policy_mix(policy)
        pols = [_agent(p, env_id, seed + 10 + k) for k, (p, _) in enumerate(mix)]
        weights = np.array([w for _, w in mix])
        rnd = RandomAgent(spec, seed + 1)
        rng = np.random.default_rng(seed + 2)
        if moves not in (None, "world", "task"):
            raise ValueError(f"moves must be None, 'world' or 'task', got {moves!r}")
        move_rng = np.random.default_rng(seed + 3 if move_seed is None else move_seed)
        vec_slices = [f.slice for f in spec.action.fields if f.kind in ("vector", "pseudovector")]

        def reset(**kw):
            opts = None
            if moves == "world":
                opts = {
                    "world_rotation": random_rotation(move_rng),
                    "world_translation": move_rng.uniform(-1.0, 1.0, 3),
                }
            elif moves == "task":
                opts = {"task_rotation": float(move_rng.uniform(-task_rotation_range, task_rotation_range))}
            o, info = env.reset(options=opts, **kw)
            Rw = np.asarray(info.get("world_rotation", np.eye(3)), dtype=np.float64)
            theta = float(info.get("task_rotation", 0.0))
            return o, Rw @ rotation_about_axis(np.array([0.0, 0.0, 1.0]), theta)

        def rotate(a, frame):
            a = np.array(a, dtype=np.float64)
            for sl in vec_slices:
                a[..., sl] = a[..., sl] @ frame.T
            return a

        cols = {k: [] for k in (*TRANSITION_ARRAYS, "episode", "step")}
        obs, frame = reset(seed=seed)
        ep, t = 0, 0
        pol = pols[rng.choice(len(pols), p=weights)]
        bar = progress_bar(n_transitions, f"collect {env_id}", unit="step") if progress else None
        for _ in range(n_transitions):
            if bar is not None:
                bar.update(1)
            if random_action_prob > 0 and rng.uniform() < random_action_prob:
                action = rotate(rnd.predict(obs)[0], frame)
            elif isinstance(pol, RandomAgent):
                action = rotate(pol.predict(obs)[0], frame)
            else:
                action, _ = pol.predict(obs, deterministic=deterministic)
            action = np.asarray(action, dtype=np.float64).reshape(spec.action.dim)
            if action_noise > 0:
                action = action + rotate(rng.normal(scale=action_noise, size=action.shape), frame)
            action = limit_action(action, spec.action)
            next_obs, _, terminated, truncated, _ = env.step(action.astype(np.float32))
            cols["observation"].append(obs["observation"])
            cols["achieved_goal"].append(obs["achieved_goal"])
            cols["desired_goal"].append(obs["desired_goal"])
            cols["action"].append(action)
            cols["next_observation"].append(next_obs["observation"])
            cols["next_achieved_goal"].append(next_obs["achieved_goal"])
            cols["episode"].append(ep)
            cols["step"].append(t)
            t += 1
            if terminated or truncated:
                obs, frame = reset()
                ep, t = ep + 1, 0
                pol = pols[rng.choice(len(pols), p=weights)]
                if hasattr(pol, "reset"):
                    pol.reset()
            else:
                obs = next_obs
        meta = {
            "env_id": env_id,
            "policy": os.fspath(policy) if isinstance(policy, (str, os.PathLike)) else type(policy).__name__,
            "seed": seed,
            "action_noise": action_noise,
            "random_action_prob": random_action_prob,
            "moves": moves,
            "env_kwargs": {
                k: (v if isinstance(v, (int, float, str, type(None))) else repr(v))
                for k, v in (env_kwargs or {}).items()
            },
        }
        return Transitions(
            spec,
            *(np.asarray(cols[k], dtype=np.float32) for k in TRANSITION_ARRAYS),
            episode=np.asarray(cols["episode"]),
            step=np.asarray(cols["step"]),
            meta=meta,
        )
    finally:
        env.close()
        if bar is not None:
            bar.close()


def from_replay_buffer(buffer, spec: GeometrySpec | None = None, atol: float = 1e-6) -> Transitions:
    """Transitions stored in an SB3 ``DictReplayBuffer`` or ``HerReplayBuffer`` (real, not relabelled).

    ``spec`` defaults to ``buffer.observation_space.geometry_spec``. Each env column of the buffer is
    read in chronological order; a trajectory is cut wherever ``dones`` is set or the next row does
    not continue the previous one (``next_observation[i] != observation[i + 1]``, e.g. where the
    ring buffer wrapped).
    """
    if spec is None:
        spec = getattr(getattr(buffer, "observation_space", None), "geometry_spec", None)
        if spec is None:
            raise ValueError("pass spec=...: the buffer's observation space carries no geometry_spec")
    obs, nxt = buffer.observations, getattr(buffer, "next_observations", None)
    if not isinstance(obs, dict) or nxt is None:
        raise TypeError(
            "from_replay_buffer needs a DictReplayBuffer/HerReplayBuffer with next_observations "
            "(optimize_memory_usage=False)"
        )
    size = buffer.buffer_size if buffer.full else buffer.pos
    order = (
        np.r_[buffer.pos : buffer.buffer_size, 0 : buffer.pos] if buffer.full else np.arange(size)
    ).astype(int)
    parts = []
    ep_offset = 0
    for e in range(buffer.n_envs):
        o = obs["observation"][order, e].reshape(len(order), -1)
        no = nxt["observation"][order, e].reshape(len(order), -1)
        if o.shape[1] != spec.observation.dim:
            raise DatasetFormatError(
                f"buffer observations have {o.shape[1]} entries, spec expects {spec.observation.dim}"
            )
        dones = buffer.dones[order, e].astype(bool)
        cont = np.zeros(len(order), dtype=bool)  # cont[i]: row i continues row i-1
        if len(order) > 1:
            cont[1:] = ~dones[:-1] & np.all(np.abs(no[:-1] - o[1:]) <= atol, axis=1)
        episode = np.cumsum(~cont) - 1 + ep_offset
        step = np.zeros(len(order), dtype=np.int32)
        for i in range(1, len(order)):
            step[i] = step[i - 1] + 1 if cont[i] else 0
        ep_offset = int(episode.max()) + 1 if len(order) else ep_offset
        parts.append(
            Transitions(
                spec,
                o,
                obs["achieved_goal"][order, e].reshape(len(order), -1),
                obs["desired_goal"][order, e].reshape(len(order), -1),
                limit_action(buffer.actions[order, e].reshape(len(order), -1), spec.action),
                no,
                nxt["achieved_goal"][order, e].reshape(len(order), -1),
                episode=episode,
                step=step,
                meta={"source": "replay_buffer", "env_column": e},
            )
        )
    out = Transitions.concatenate(parts) if len(parts) > 1 else parts[0]
    out.meta = {"source": "replay_buffer", "n_envs": buffer.n_envs}
    return out


@dataclass
class CollectConfig:
    """What ``eqrobot dynamics collect`` records (defaults: the data the dynamics benchmarks use)."""

    env: str = "eqrobot/Push-v0"
    """Env id."""
    transitions: int = 10_000
    """Transitions to record."""
    policy: str = DEFAULT_POLICY_MIX
    """random | oracle | oracle-push | SB3 zip/run folder | mixture NAME:W,... drawn per episode."""
    seed: int = 0
    """First env seed; also seeds the collector's own randomness."""
    action_noise: float = 0.3
    """Std of isotropic Gaussian noise added to every action."""
    random_action_prob: float = 0.15
    """Probability of replacing an action by a random one."""
    rotation_range: float = 0.0
    """Random task rotation half-width, degrees."""
    world_transform: Literal["random"] | None = None
    """``random``: a random SE(3) world per episode."""

    def __post_init__(self) -> None:
        if int(self.transitions) < 1:
            raise ValueError(f"transitions must be >= 1, got {self.transitions}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if not self.action_noise >= 0:
            raise ValueError(f"action_noise must be >= 0, got {self.action_noise}")
        if not 0.0 <= self.random_action_prob <= 1.0:
            raise ValueError(f"random_action_prob must be in [0, 1], got {self.random_action_prob}")
        if not 0.0 <= self.rotation_range <= 180.0:
            raise ValueError(f"rotation_range must be in [0, 180] degrees, got {self.rotation_range}")
        if self.world_transform not in (None, "random"):
            raise ValueError(f"world_transform must be 'random' or None, got {self.world_transform!r}")
        from eqrobot.rollout.evaluation import check_env_id

        check_env_id(self.env)
        parse_policy_mix(self.policy)  # a bad mixture fails now, not after the env is built


def collect_to_file(
    out: str | os.PathLike, config: CollectConfig | None = None, progress: bool = False
) -> dict:
    """Collect ``config.transitions`` transitions and write them to ``out`` (``.npz``)."""
    from eqrobot.rollout.evaluation import scene_kwargs

    c = config or CollectConfig()
    t0 = time.perf_counter()
    data = collect_transitions(
        c.env,
        c.transitions,
        policy=c.policy,
        seed=c.seed,
        action_noise=c.action_noise,
        random_action_prob=c.random_action_prob,
        env_kwargs=scene_kwargs(c.rotation_range, c.world_transform),
        progress=progress,
    )
    path = data.save(out)
    return {
        "path": str(path),
        "transitions": len(data),
        "episodes": int(len(data.episodes())),
        "seconds": time.perf_counter() - t0,
        "env_id": c.env,
    }
