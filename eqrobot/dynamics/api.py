"""Plain-argument entry points behind ``eqrobot dynamics collect|fit|eval`` (no argv parsing here).

>>> from eqrobot.dynamics import api
>>> api.collect("eqrobot/Push-v0", "runs/push.npz", n_transitions=20_000, policy="oracle")
>>> api.fit("runs/push.npz", "runs/push_eq.pt", kind="equivariant", steps=3000)
>>> api.evaluate("runs/push_eq.pt", env_id="eqrobot/Push-v0", n_episodes=20)   # MPC success, ms/step
>>> api.evaluate("runs/push_eq.pt", data="runs/push_test.npz")                   # rollout errors

Each returns a JSON-friendly dict (and writes files where a path is given).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from eqrobot.dynamics.data import Transitions, collect_transitions
from eqrobot.dynamics.models import (
    CHECKPOINT_FORMAT,
    DynamicsModel,
    load_model,
    make_model,
    matched_mlp,
    save_model,
)
from eqrobot.dynamics.mpc import MPPIPlanner
from eqrobot.dynamics.training import fit as fit_model
from eqrobot.dynamics.training import rollout_errors


def _env_kwargs(task_rotation_range: float = 0.0, world_transform=None) -> dict:
    kw = {}
    if task_rotation_range:
        kw["task_rotation_range"] = float(task_rotation_range)
    if world_transform is not None:
        kw["world_transform"] = world_transform
    return kw


def collect(
    env_id: str,
    out: str | os.PathLike,
    n_transitions: int = 10_000,
    policy="oracle:0.3,oracle-push:0.5,random:0.2",
    seed: int = 0,
    action_noise: float = 0.3,
    random_action_prob: float = 0.15,
    task_rotation_range: float = 0.0,
    world_transform=None,
    progress: bool = False,
) -> dict:
    """Collect ``n_transitions`` from ``env_id`` with ``policy`` and write them to ``out`` (``.npz``).

    ``policy``: ``"random"``, ``"oracle"``, ``"oracle-push"`` (Push's closed-hand oracle), an SB3
    model path or run folder, or a per-episode mixture ``"NAME:WEIGHT,..."``. The default mixes
    grasping and pushing oracles with random episodes, isotropic action noise and 15% random
    actions, so the data covers contacts, carries and misses alike."""
    t0 = time.perf_counter()
    data = collect_transitions(
        env_id,
        n_transitions,
        policy=policy,
        seed=seed,
        action_noise=action_noise,
        random_action_prob=random_action_prob,
        env_kwargs=_env_kwargs(task_rotation_range, world_transform),
        progress=progress,
    )
    path = data.save(out)
    return {
        "path": str(path),
        "transitions": len(data),
        "episodes": int(len(data.episodes())),
        "seconds": time.perf_counter() - t0,
        "env_id": env_id,
    }


def fit(
    data: str | os.PathLike | Transitions,
    out: str | os.PathLike,
    kind: str = "equivariant",
    horizon: int = 5,
    steps: int = 3000,
    batch_size: int = 256,
    lr: float = 2e-3,
    hidden: int = 64,
    layers: int = 2,
    vector_channels: int = 16,
    val_fraction: float = 0.1,
    max_transitions: int | None = None,
    match: str | os.PathLike | None = None,
    seed: int = 0,
    time_budget: float | None = None,
    verbose: bool = False,
) -> dict:
    """Train a dynamics model on a transitions file and save it to ``out`` (``.pt``).

    ``kind``: ``"equivariant"`` or ``"mlp"``; an MLP's nets match, net by net, the parameter counts
    of the equivariant model of the same ``hidden``/``layers``/``vector_channels`` (or of the
    checkpoint ``match``). ``max_transitions`` keeps the first that many (whole episodes first).
    """
    if not isinstance(data, Transitions):
        data = Transitions.load(data)
    if max_transitions is not None:
        data = data.head(int(max_transitions))
    torch.manual_seed(seed)
    cfg = dict(hidden=hidden, layers=layers, vector_channels=vector_channels)
    if kind == "equivariant":
        model = make_model(data.spec, "equivariant", data=data, **cfg)
    elif kind == "mlp":
        ref = load_model(match, data.spec) if match is not None else make_model(data.spec, data=data, **cfg)
        model = matched_mlp(ref, data)
    else:
        raise ValueError(f"kind must be 'equivariant' or 'mlp', got {kind!r}")
    res = fit_model(
        model,
        data,
        horizon=horizon,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        val_fraction=val_fraction,
        seed=seed,
        time_budget=time_budget,
        verbose=verbose,
    )
    extra = {
        "env_id": data.meta.get("env_id"),
        "fit": {k: v for k, v in res.as_dict().items() if k != "history"},
    }
    path = save_model(model, out, extra=extra)
    return {"path": str(path), "kind": kind, "params": model.n_params(), **res.as_dict()}


def is_dynamics_checkpoint(path) -> bool:
    """Whether ``path`` is a file written by :func:`~eqrobot.dynamics.models.save_model`."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001
        return False
    return isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT


def make_planner(model: str | os.PathLike | DynamicsModel, **planner_kwargs) -> MPPIPlanner:
    """An :class:`MPPIPlanner` (an SB3-like policy: ``predict(obs)``) from a model or checkpoint path.

    Use it wherever a policy goes, e.g. ``eqrobot.rl.rotation`` sweeps."""
    if not isinstance(model, torch.nn.Module):
        model = load_model(model)
    model.eval()
    return MPPIPlanner(model, model.geometry_spec, **planner_kwargs)


def run_planner_episodes(planner, env_id: str, n_episodes: int = 20, seed: int = 0, env_kwargs=None) -> dict:
    """Closed-loop episodes of any SB3-like policy; success rate, final goal distance, time per step."""
    import gymnasium as gym

    import eqrobot  # noqa: F401

    env = gym.make(env_id, **(env_kwargs or {}))
    successes, times, finals = [], [], []
    try:
        for ep in range(n_episodes):
            obs, info = env.reset(seed=seed + ep)
            if hasattr(planner, "reset"):
                planner.reset(seed=seed + ep)
            done, success = False, False
            while not done:
                t0 = time.perf_counter()
                action, _ = planner.predict(obs, deterministic=True)
                times.append(time.perf_counter() - t0)
                obs, _, terminated, truncated, info = env.step(action)
                success = bool(info.get("is_success", False))
                done = terminated or truncated
            successes.append(success)
            finals.append(float(np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"])))
    finally:
        env.close()
    return {
        "episodes": n_episodes,
        "success_rate": float(np.mean(successes)),
        "final_distance_m": float(np.mean(finals)),
        "ms_per_step": 1e3 * float(np.mean(times)),
        "ms_per_step_p95": 1e3 * float(np.percentile(times, 95)),
    }


def evaluate(
    model: str | os.PathLike | DynamicsModel,
    env_id: str | None = None,
    n_episodes: int = 20,
    seed: int = 0,
    data: str | os.PathLike | Transitions | None = None,
    horizons=(1, 10),
    planner_horizon: int = 8,
    n_samples: int = 128,
    iterations: int = 1,
    hold_gripper: float | None = None,
    task_rotation_range: float = 0.0,
    world_transform=None,
    out: str | os.PathLike | None = None,
) -> dict:
    """Evaluate a dynamics checkpoint.

    With ``data`` (a transitions file of the same spec): open-loop rollout errors at ``horizons``
    (:func:`~eqrobot.dynamics.training.rollout_errors`). With ``env_id`` (default: the env the model
    was trained on, if ``data`` is not given): MPC episodes in that env (success rate, final goal
    distance, planning ms per control step). ``hold_gripper``: keep the gripper command at this value
    instead of planning it (``-1``: push with a closed hand). ``out``: also write the dict as JSON.
    """
    if not isinstance(model, torch.nn.Module):
        model = load_model(model)
    model.eval()
    result: dict = {"params": model.n_params(), "kind": model.config.kind}
    if data is not None:
        if not isinstance(data, Transitions):
            data = Transitions.load(data, model.geometry_spec)
        result["rollout_errors"] = {str(k): v for k, v in rollout_errors(model, data, horizons).items()}
    if env_id is None and data is None:
        env_id = getattr(model, "checkpoint_extra", {}).get("env_id")
        if env_id is None:
            raise ValueError("pass env_id=...: the checkpoint does not name the env it was trained on")
    if env_id is not None:
        fixed = None if hold_gripper is None else {"gripper": float(hold_gripper)}
        planner = make_planner(
            model,
            horizon=planner_horizon,
            n_samples=n_samples,
            iterations=iterations,
            seed=seed,
            fixed_scalars=fixed,
        )
        result["mpc"] = {
            "env_id": env_id,
            **run_planner_episodes(
                planner, env_id, n_episodes, seed, _env_kwargs(task_rotation_range, world_transform)
            ),
        }
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
    return result
