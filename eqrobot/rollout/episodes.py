"""The one episode loop: run an agent for a fixed list of seeded resets, one record per episode.

Every evaluation in eqrobot (``evaluate``, the oracle showcase, MPC planner episodes, rotation
sweeps, the simulator-gap measurement, GIFs) goes through :func:`run_episodes`:

- an episode is a :class:`Reset` (env seed + reset options), so a list of them reproduces exactly;
- envs run in an SB3 VecEnv (``DummyVecEnv`` for one env, ``SubprocVecEnv`` for several) whose
  workers are wrapped in :class:`EpisodeRecorder`: it takes its resets from a queue (SB3 VecEnvs
  auto-reset without seeds or options) and records, inside the worker, what the episode did
  (return, length, success, initial and final observation, and on request the actions applied and
  rendered frames, including the last one, before the VecEnv's auto-reset replaces it);
- results do not depend on the number of envs: episode ``k`` always gets reset ``k``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class Reset:
    """One episode's deterministic start: ``env.reset(seed=seed, options=options)``."""

    seed: int
    options: dict | None = field(default=None, compare=False, hash=False)


@dataclass
class Episode:
    """What one episode did."""

    index: int
    """Position of its :class:`Reset` in the list given to :func:`run_episodes`."""
    seed: int
    success: bool | None
    """``info["is_success"]`` at the last step; None when the env does not report it."""
    episode_return: float
    length: int
    initial_observation: dict
    final_observation: dict
    final_info: dict
    predict_seconds: list[float]
    """Time of the agent's ``predict`` at each step (a batch call counts in full for each env in
    the batch)."""
    actions: list[np.ndarray] | None = None
    frames: list[np.ndarray] | None = None

    @property
    def final_goal_distance(self) -> float | None:
        o = self.final_observation
        if "achieved_goal" not in o or "desired_goal" not in o:
            return None
        return float(np.linalg.norm(np.asarray(o["achieved_goal"]) - np.asarray(o["desired_goal"])))


class EpisodeRecorder(gym.Wrapper):
    """Resets from a queue of ``(index, seed, options)`` and records each episode (see the module
    docstring). Padding resets, once the queue is empty, get index -1 and are not recorded."""

    def __init__(self, env, record_actions: bool = False, frame_every: int = 0):
        super().__init__(env)
        self._queue: list = []
        self._current = -1
        self.record_actions = record_actions
        self.frame_every = int(frame_every)

    def set_schedule(self, schedule, record_actions: bool | None = None, frame_every: int | None = None):
        self._queue = list(schedule)
        self._current = -1
        if record_actions is not None:
            self.record_actions = record_actions
        if frame_every is not None:
            self.frame_every = int(frame_every)

    def _frame(self):
        return np.asarray(self.env.render())

    def reset(self, *, seed=None, options=None):
        if self._queue:
            self._current, seed, options = self._queue.pop(0)
        else:
            self._current, seed, options = -1, 0, None
        obs, info = self.env.reset(seed=seed, options=options)
        self._seed, self._return, self._length = seed, 0.0, 0
        self._initial = {k: np.array(v) for k, v in obs.items()} if isinstance(obs, dict) else np.array(obs)
        self._actions = [] if self.record_actions and self._current >= 0 else None
        self._frames = [self._frame()] if self.frame_every and self._current >= 0 else None
        info["eqrobot_episode"] = self._current
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self._return += float(reward)
        self._length += 1
        if self._actions is not None:
            self._actions.append(np.array(action))
        if self._frames is not None and self._length % self.frame_every == 0:
            self._frames.append(self._frame())
        info["eqrobot_episode"] = self._current
        if (terminated or truncated) and self._current >= 0:
            info["eqrobot_record"] = {
                "seed": self._seed,
                "return": self._return,
                "length": self._length,
                "initial_observation": self._initial,
                "actions": self._actions,
                "frames": self._frames,
            }
        return obs, reward, terminated, truncated, info


def _make_recorded_env(env_id: str, env_kwargs: dict | None, render_mode: str | None = None):
    from eqrobot.envs import register_envs

    register_envs()  # subprocess workers started without fork have not registered the ids yet
    kwargs = dict(env_kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    return EpisodeRecorder(gym.make(env_id, **kwargs))


def make_episode_env(
    env_id: str | None = None,
    env_kwargs: dict | None = None,
    n_envs: int = 1,
    start_method: str | None = None,
    render_mode: str | None = None,
    env: gym.Env | None = None,
):
    """A VecEnv of ``n_envs`` recorded envs for :func:`run_episodes` (or one around ``env``).

    ``n_envs > 1`` runs the envs in subprocesses (``SubprocVecEnv``; on Linux started with
    ``fork`` unless ``start_method`` says otherwise: the workers only step PyBullet, and fork starts
    them ~10x faster than forkserver)."""
    import multiprocessing
    import sys

    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if int(n_envs) < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    if env is not None:
        if n_envs != 1:
            raise ValueError("a given env runs alone: n_envs must be 1")
        return DummyVecEnv([lambda: EpisodeRecorder(env)])
    fns = [functools.partial(_make_recorded_env, env_id, env_kwargs, render_mode) for _ in range(n_envs)]
    if n_envs == 1:
        return DummyVecEnv(fns)
    if (
        start_method is None
        and sys.platform.startswith("linux")
        and "fork" in multiprocessing.get_all_start_methods()
    ):
        start_method = "fork"
    return SubprocVecEnv(fns, start_method=start_method)


def run_episodes(
    vec,
    agent,
    resets: Sequence[Reset],
    deterministic: bool = True,
    record_actions: bool = False,
    frame_every: int = 0,
    reset_agent: bool = False,
    on_episode: Callable[[Episode], Any] | None = None,
) -> list[Episode]:
    """Run every reset once, round-robin over ``vec``'s envs (from :func:`make_episode_env`).

    ``record_actions``: keep the actions applied; ``frame_every = k > 0``: keep a rendered frame at
    the reset and after every k-th step (the env must render ``rgb_array``). ``reset_agent``: call
    ``agent.reset(seed=reset.seed)`` at each episode start (MPC planners: forget the warm start,
    reseed the sampler); only with one env, where episodes do not overlap. ``on_episode`` is
    called with each finished episode (progress bars). Returns the episodes in ``resets`` order.
    """
    n_envs = vec.num_envs
    resets = list(resets)
    if reset_agent and n_envs != 1 and hasattr(agent, "reset"):
        raise ValueError("reset_agent needs one env: with several, episodes overlap in one batch")
    schedules: list[list] = [[] for _ in range(n_envs)]
    for k, r in enumerate(resets):
        schedules[k % n_envs].append((k, int(r.seed), r.options))
    for i in range(n_envs):
        vec.env_method("set_schedule", schedules[i], record_actions, frame_every, indices=[i])
    agent_reset = getattr(agent, "reset", None) if reset_agent else None
    if agent_reset is not None and resets:
        agent_reset(seed=int(resets[0].seed))
    obs = vec.reset()
    records: dict[int, Episode] = {}
    predict_s: list[list[float]] = [[] for _ in range(n_envs)]
    expected_shape = (n_envs, *vec.action_space.shape)
    while len(records) < len(resets):
        t0 = time.perf_counter()
        action, _ = agent.predict(obs, deterministic=deterministic)
        dt = time.perf_counter() - t0
        for times in predict_s:
            times.append(dt)
        action = np.asarray(action)
        if action.shape != expected_shape:
            raise ValueError(
                f"policy returned actions of shape {action.shape} for a batch of {n_envs} observations; "
                f"expected {expected_shape}"
            )
        obs, _, dones, infos = vec.step(action)
        for i in np.flatnonzero(dones):
            rec = infos[i].get("eqrobot_record")
            k = int(infos[i].get("eqrobot_episode", -1))
            if rec is not None and k >= 0:
                ep = Episode(
                    index=k,
                    seed=int(rec["seed"]),
                    success=None if "is_success" not in infos[i] else bool(infos[i]["is_success"]),
                    episode_return=float(rec["return"]),
                    length=int(rec["length"]),
                    initial_observation=rec["initial_observation"],
                    final_observation=infos[i].get("terminal_observation"),
                    final_info={
                        key: v
                        for key, v in infos[i].items()
                        if key not in ("eqrobot_record", "terminal_observation")
                    },
                    predict_seconds=predict_s[i],
                    actions=rec["actions"],
                    frames=rec["frames"],
                )
                records[k] = ep
                if on_episode is not None:
                    on_episode(ep)
                if agent_reset is not None and k + 1 < len(resets):
                    agent_reset(seed=int(resets[k + 1].seed))
            predict_s[i] = []
    return [records[k] for k in range(len(resets))]


def progress_bar(total: int, desc: str, unit: str = "ep"):
    """A tqdm bar on stderr; when stderr is not a terminal (a log file), at most one line every 30 s
    (and the last), the rule training uses, instead of one line per update."""
    import sys

    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, mininterval=0.5 if tty else 30.0, file=sys.stderr)
