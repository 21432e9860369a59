"""The simulator's own equivariance error: how far physics alone puts a rollout and its rotated copy.

PyBullet is exactly equivariant in free flight but not in contact (friction cones, solver order):
this part of the rotation gap no network can remove, so it is measured and reported next to the
sweep. Every rollout goes through :func:`eqrobot.rollout.episodes.run_episodes`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from eqrobot.geometry.so3 import rot_z
from eqrobot.rollout.agents import check_agent_fits, resolve_agent
from eqrobot.rollout.episodes import Reset, make_episode_env, progress_bar, run_episodes
from eqrobot.rotation.splits import rodrigues_rotation, seed_for


class _ReplayAgent:
    """Feeds fixed action sequences, one per episode, in order (``reset`` moves to the next)."""

    def __init__(self, sequences: list[list[np.ndarray]]):
        self.sequences = sequences
        self.episode = -1
        self.t = 0

    def reset(self, seed=None):
        self.episode += 1
        self.t = 0

    def predict(self, obs, state=None, episode_start=None, deterministic=True):
        a = self.sequences[self.episode][self.t]
        self.t += 1
        return a[None], None


def _geometry_spec(env):
    spec = getattr(env.observation_space, "geometry_spec", None) or getattr(
        env.unwrapped, "geometry_spec", None
    )
    if spec is None:
        raise ValueError(
            "env has no geometry_spec (observation_space.geometry_spec or env.unwrapped.geometry_spec)"
        )
    return spec


def simulator_equivariance_gap(
    env_id: str,
    policy: Any,
    angles_deg: Sequence[float] = (-135.0, -90.0, -45.0, 45.0, 90.0, 135.0),
    episodes: int = 3,
    seed: int = 0,
    group: str = "task",
    env_kwargs: dict | None = None,
    progress: bool = False,
) -> dict:
    """How far physics alone puts a rollout and its rotated copy apart.

    For each episode (env seed ``seed_for(seed, i)``, the same layouts as the splits) the policy is
    rolled out closed-loop in the canonical scene. Then, for each group element ``g = (R, t)``, the
    same seed is reset with ``g`` applied and

    - *open loop*: fed the rotated actions ``R a_t`` of the canonical rollout. Any difference between
      ``g`` applied to the canonical final state and the rotated final state is the simulator's own
      equivariance error (contact and friction are not exactly rotation invariant in PyBullet);
    - *closed loop*: the policy runs again in the rotated scene. For an exactly equivariant policy the
      extra gap over open loop comes from the policy reacting to the physics gap (plus float noise);
      for a non-equivariant policy it is dominated by the policy.

    Args:
        group: ``"task"`` (task rotation about gravity through the robot base by each of
            ``angles_deg``) or ``"world"`` (random SE(3) world transforms, ``len(angles_deg)`` of them,
            with those rotation angles about random axes).

    Returns a JSON-friendly dict: per object-position field and overall, the mean and max (over
    episodes and group elements) final discrepancy in metres, open and closed loop, the initial
    discrepancy (should be ~1e-6: a sanity check of the group action), the success agreement, and a
    per-angle breakdown.
    """
    if group not in ("task", "world"):
        raise ValueError(f"group must be 'task' or 'world', got {group!r}")
    agent = resolve_agent(policy, env_id)
    probe = gym.make(env_id, **(env_kwargs or {}))
    try:
        spec = _geometry_spec(probe)
        check_agent_fits("policy", agent, probe.observation_space, probe.action_space)
    finally:
        probe.close()
    obs_spec = spec.observation
    # positions the spec's roles name: each object's, the robot's (end effector), and the static base
    objects = [f.name for f in obs_spec.by_role("object") if f.kind == "point"]
    tracked = objects + [f.name for f in obs_spec.by_role("robot") if f.kind == "point"]
    base = next((f.slice for f in obs_spec.by_role("static") if f.kind == "point"), None)
    n = int(episodes)
    seeds = [seed_for(seed, i) for i in range(n)]
    canon_opts = (
        {"task_rotation": 0.0}
        if group == "task"
        else {"world_rotation": np.eye(3), "world_translation": np.zeros(3)}
    )
    pbar = progress_bar(n * (1 + 2 * len(angles_deg)), "sim gap") if progress else None
    tick = None if pbar is None else (lambda _: pbar.update(1))
    vec = make_episode_env(env_id, env_kwargs)
    try:
        canon = run_episodes(
            vec, agent, [Reset(s, canon_opts) for s in seeds], record_actions=True, on_episode=tick
        )
        # group elements in (episode, angle) order: the world group draws them from one generator
        rng = np.random.default_rng([7, int(seed)])
        elements = []
        for ep in canon:
            obs0 = ep.initial_observation["observation"].astype(float)
            for a_deg in angles_deg:
                if group == "task":
                    R = rot_z(np.radians(a_deg))
                    b = obs0[base] if base is not None else np.zeros(3)  # rotate about gravity through it
                    t = b - R @ b
                    opts = {"task_rotation": float(np.radians(a_deg))}
                else:
                    R = rodrigues_rotation(rng.normal(size=3), np.radians(a_deg))
                    t = rng.uniform(-0.5, 0.5, size=3)
                    opts = {"world_rotation": R, "world_translation": t}
                elements.append((ep, float(a_deg), R, t, opts))
        replay = _ReplayAgent(
            [
                [spec.transform_action(a.astype(float), R).astype(np.float32) for a in ep.actions]
                for ep, _, R, _, _ in elements
            ]
        )
        resets = [Reset(ep.seed, opts) for ep, _, _, _, opts in elements]
        open_loop = run_episodes(vec, replay, resets, reset_agent=True, on_episode=tick)
        closed_loop = run_episodes(vec, agent, resets, on_episode=tick)
    finally:
        vec.close()
        if pbar is not None:
            pbar.close()

    per: list[dict] = []
    for k, ((ep, a_deg, R, t, _), op, cl) in enumerate(zip(elements, open_loop, closed_loop, strict=True)):
        expect0 = obs_spec.transform(ep.initial_observation["observation"].astype(float), R, t)
        expect_f = obs_spec.transform(ep.final_observation["observation"].astype(float), R, t)
        open_final = op.final_observation["observation"]
        closed_final = cl.final_observation["observation"]
        row = {
            "episode": k // max(1, len(angles_deg)),
            "seed": ep.seed,
            "angle_deg": a_deg,
            "initial_gap": float(np.abs(expect0 - op.initial_observation["observation"]).max()),
            "success_canonical": bool(ep.success),
            "success_open_loop": bool(op.success),
            "success_closed_loop": bool(cl.success),
        }
        for name in tracked:
            sl = obs_spec[name].slice
            row[f"open/{name}"] = float(np.linalg.norm(expect_f[sl] - open_final[sl]))
            row[f"closed/{name}"] = float(np.linalg.norm(expect_f[sl] - closed_final[sl]))
        per.append(row)
    return _gap_summary(env_id, group, n, seed, angles_deg, objects, tracked, per)


def _gap_summary(env_id, group, episodes, seed, angles_deg, objects, tracked, per) -> dict:
    def stats(key):
        v = np.array([r[key] for r in per], dtype=float)
        return {"mean": float(v.mean()), "max": float(v.max())} if len(v) else {"mean": None, "max": None}

    def agreement(key):
        return float(np.mean([r[key] == r["success_canonical"] for r in per])) if per else None

    out: dict = {
        "env_id": env_id,
        "group": group,
        "episodes": int(episodes),
        "seed": int(seed),
        "angles_deg": [float(a) for a in angles_deg],
        "objects": objects,
        "initial_gap_max": max((r["initial_gap"] for r in per), default=None),
        "open_loop": {name: stats(f"open/{name}") for name in tracked},
        "closed_loop": {name: stats(f"closed/{name}") for name in tracked},
        "success_agreement_open_loop": agreement("success_open_loop"),
        "success_agreement_closed_loop": agreement("success_closed_loop"),
        "rows": per,
    }
    if objects and per:
        allo = np.array([[r[f"open/{n}"] for n in objects] for r in per])
        allc = np.array([[r[f"closed/{n}"] for n in objects] for r in per])
        out["object_gap_open_loop"] = {"mean": float(allo.mean()), "max": float(allo.max())}
        out["object_gap_closed_loop"] = {"mean": float(allc.mean()), "max": float(allc.max())}
        out["per_angle"] = {}
        for a in sorted({float(x) for x in angles_deg}):
            gaps = [[r[f"open/{n}"] for n in objects] for r in per if r["angle_deg"] == a]
            out["per_angle"][f"{a:g}"] = {"open_mean": float(np.mean(gaps)), "open_max": float(np.max(gaps))}
    return out


def format_gap(gap: dict) -> str:
    """A few lines summarising :func:`simulator_equivariance_gap` for printing."""
    if not gap.get("rows"):
        return f"simulator equivariance gap on {gap['env_id']}: no episodes measured"
    lines = [
        f"simulator equivariance gap on {gap['env_id']} ({gap['group']} group, {gap['episodes']} episodes "
        f"x {len(gap['angles_deg'])} elements; initial-state gap {gap['initial_gap_max']:.1e})"
    ]
    if "object_gap_open_loop" in gap:
        o, c = gap["object_gap_open_loop"], gap["object_gap_closed_loop"]
        lines.append(
            f"  final object position, open loop (physics only): mean {o['mean'] * 1000:.2f} mm, "
            f"max {o['max'] * 1000:.2f} mm"
        )
        lines.append(
            f"  final object position, closed loop (policy re-run): mean {c['mean'] * 1000:.2f} mm, "
            f"max {c['max'] * 1000:.2f} mm"
        )
    if "ee_position" in gap["open_loop"]:
        e = gap["open_loop"]["ee_position"]
        lines.append(
            f"  final end-effector position, open loop: mean {e['mean'] * 1000:.2f} mm, "
            f"max {e['max'] * 1000:.2f} mm"
        )
    lines.append(
        f"  success agreement with canonical: open loop {gap['success_agreement_open_loop']:.2f}, "
        f"closed loop {gap['success_agreement_closed_loop']:.2f}"
    )
    return "\n".join(lines)
