"""Evaluate any agent on an env (success, returns, lengths, timing), and dynamics models (rollout
errors on data, MPC episodes in an env)."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from eqrobot.rollout.agents import resolve_agent
from eqrobot.rollout.episodes import Episode, Reset, make_episode_env, run_episodes


def check_env_id(env_id: str) -> None:
    """A clear ValueError for an id Gymnasium does not know (listing eqrobot's ids)."""
    if env_id not in gym.registry:
        from eqrobot.envs import ENV_IDS

        raise ValueError(f"unknown env {env_id!r}; eqrobot envs: {', '.join(ENV_IDS)}")


def summarize_episodes(episodes: list[Episode], seconds: float | None = None) -> dict[str, Any]:
    """Success rate, returns, lengths, failed seeds, final goal distance and predict time."""
    steps = sum(e.length for e in episodes)
    times = [t for e in episodes for t in e.predict_seconds]
    dists = [d for e in episodes if (d := e.final_goal_distance) is not None]
    out = {
        "episodes": len(episodes),
        "success_rate": float(np.mean([bool(e.success) for e in episodes])),
        "mean_return": float(np.mean([e.episode_return for e in episodes])),
        "std_return": float(np.std([e.episode_return for e in episodes])),
        "mean_length": float(np.mean([e.length for e in episodes])),
        "steps": steps,
        "failures": [e.seed for e in episodes if not e.success],
        "final_distance_m": float(np.mean(dists)) if dists else None,
        "ms_per_step": 1e3 * float(np.mean(times)) if times else None,
        "ms_per_step_p95": 1e3 * float(np.percentile(times, 95)) if times else None,
    }
    if seconds is not None:
        out["steps_per_second"] = float(steps / max(seconds, 1e-9))
    return out


def evaluate(
    agent,
    env_id: str,
    episodes: int = 20,
    seed: int = 0,
    env_kwargs: dict[str, Any] | None = None,
    deterministic: bool = True,
    env=None,
    options: dict | None = None,
    reset_agent: bool = True,
) -> dict[str, Any]:
    """Run ``episodes`` episodes of any agent (see :func:`~eqrobot.rollout.agents.resolve_agent`:
    an SB3 model, ``"oracle"``, a run folder, an rl-zoo3 run, a dynamics checkpoint...).

    :param seed: episode ``i`` resets with ``seed + i``, so two agents see the same scenes.
    :param env_kwargs: passed to ``gymnasium.make`` (e.g. ``task_rotation_range``).
    :param env: reuse an already built env (then ``env_id``/``env_kwargs`` only label the result).
    :param options: reset options of every episode (e.g. ``{"task_rotation": 0.5}``).
    :param reset_agent: call ``agent.reset(seed=...)`` at each episode start where it has one.
    :return: ``success_rate`` (``info["is_success"]`` at each episode's last step), ``mean_return``,
        ``std_return``, ``mean_length``, ``failures`` (seeds of failed episodes),
        ``final_distance_m`` (achieved to desired goal at the end), ``ms_per_step`` (agent time),
        ``steps_per_second`` (env + agent), ``episodes``, ``seed``, ``env_id``.
    """
    if int(episodes) < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if env is None:
        check_env_id(env_id)
    agent = resolve_agent(agent, env_id)
    vec = make_episode_env(env_id, env_kwargs, env=env)
    start = time.perf_counter()
    try:
        eps = run_episodes(
            vec,
            agent,
            [Reset(seed + i, options) for i in range(int(episodes))],
            deterministic=deterministic,
            reset_agent=reset_agent,
        )
    finally:
        if env is None:
            vec.close()
    return {"env_id": env_id, "seed": seed, **summarize_episodes(eps, time.perf_counter() - start)}


def format_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    """A small fixed-width text table of result dicts (for the CLI)."""
    if not rows:
        return "(no results)"
    columns = columns or list(rows[0])

    def fmt(v):
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join([line, sep, *body])


# ----------------------------------------------------------------------------------------------
# dynamics models (what `eqrobot dynamics eval` runs)
# ----------------------------------------------------------------------------------------------
def scene_kwargs(rotation_range_deg: float = 0.0, world_transform: str | None = None) -> dict:
    """``gymnasium.make`` kwargs for a random task rotation of +-DEG and/or a random world."""
    kw: dict[str, Any] = {}
    if rotation_range_deg:
        kw["task_rotation_range"] = math.radians(float(rotation_range_deg))
    if world_transform is not None:
        kw["world_transform"] = world_transform
    return kw


@dataclass
class DynamicsEvalConfig:
    """How to evaluate a dynamics checkpoint (the ``eqrobot dynamics eval`` flags)."""

    env: str | None = None
    """Run MPC episodes here (default: the training env if no data is given)."""
    data: str | None = None
    """Transitions .npz for open-loop rollout errors."""
    episodes: int = 20
    """MPC episodes."""
    seed: int = 0
    """Episode i resets with seed + i; also seeds the planner."""
    planner_horizon: int = 8
    """Planning horizon (control steps)."""
    samples: int = 128
    """Sampled action sequences per planning iteration."""
    iterations: int = 1
    """MPPI iterations per control step."""
    hold_gripper: float | None = None
    """Fixed gripper command instead of planning it (-1: closed hand)."""
    rotation_range: float = 0.0
    """Random task rotation half-width, degrees."""
    world_transform: Literal["random"] | None = None
    """``random``: a random SE(3) world per episode."""

    def __post_init__(self) -> None:
        for name in ("episodes", "planner_horizon", "samples", "iterations"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.hold_gripper is not None and not -1.0 <= self.hold_gripper <= 1.0:
            raise ValueError(f"hold_gripper must be in [-1, 1], got {self.hold_gripper}")
        if not 0.0 <= self.rotation_range <= 180.0:
            raise ValueError(f"rotation_range must be in [0, 180] degrees, got {self.rotation_range}")
        if self.world_transform not in (None, "random"):
            raise ValueError(f"world_transform must be 'random' or None, got {self.world_transform!r}")
        if self.env is not None:
            check_env_id(self.env)


def evaluate_dynamics(
    model, config: DynamicsEvalConfig | None = None, horizons=(1, 10), out: str | os.PathLike | None = None
) -> dict:
    """Evaluate a dynamics checkpoint (path or model).

    With ``config.data`` (a transitions file of the same spec): open-loop rollout errors at
    ``horizons``. With ``config.env`` (default: the env the model was trained on, if no data is
    given): MPC episodes in that env (success rate, final goal distance, planning ms per control
    step). ``out``: also write the dict as JSON.
    """
    import torch

    from eqrobot.dynamics.checkpoint import load_dynamics_model
    from eqrobot.dynamics.data import Transitions
    from eqrobot.dynamics.mpc import MPPIPlanner
    from eqrobot.dynamics.training import rollout_errors

    c = config or DynamicsEvalConfig()
    if not isinstance(model, torch.nn.Module):
        model = load_dynamics_model(model)
    model.eval()
    result: dict = {"params": model.n_params(), "kind": model.config.kind}
    if c.data is not None:
        data = c.data if isinstance(c.data, Transitions) else Transitions.load(c.data, model.geometry_spec)
        result["rollout_errors"] = {str(k): v for k, v in rollout_errors(model, data, horizons).items()}
    env_id = c.env
    if env_id is None and c.data is None:
        env_id = getattr(model, "checkpoint_extra", {}).get("env_id")
        if env_id is None:
            raise ValueError("pass env=...: the checkpoint does not name the env it was trained on")
    if env_id is not None:
        planner = MPPIPlanner(
            model,
            model.geometry_spec,
            horizon=c.planner_horizon,
            n_samples=c.samples,
            iterations=c.iterations,
            seed=c.seed,
            fixed_scalars=None if c.hold_gripper is None else {"gripper": float(c.hold_gripper)},
        )
        res = evaluate(planner, env_id, c.episodes, c.seed, scene_kwargs(c.rotation_range, c.world_transform))
        keys = ("episodes", "success_rate", "final_distance_m", "ms_per_step", "ms_per_step_p95")
        result["mpc"] = {"env_id": env_id, **{k: res[k] for k in keys}}
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
    return result
