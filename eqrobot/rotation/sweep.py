"""Rotation sweeps: success of any number of agents on named rotated splits, side by side.

:func:`evaluate_rotation` runs the episodes (through :func:`eqrobot.rollout.episodes.run_episodes`)
and returns a :class:`~eqrobot.rotation.results.RotationResult`; :func:`run_rotation` is what
``eqrobot rotation`` calls: the sweep plus its files (tables, JSON, CSV, polar plot, GIFs, and the
simulator's own equivariance gap).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym

from eqrobot.rollout.agents import check_agent_fits, name_agents, resolve_agent
from eqrobot.rollout.episodes import EpisodeRecorder, Reset, make_episode_env, progress_bar, run_episodes
from eqrobot.rollout.evaluation import check_env_id
from eqrobot.rotation.results import BinResult, RotationResult, jsonable, summarize_bins
from eqrobot.rotation.splits import JOINT1_LIMIT_DEG, Split, resolve_splits, seed_for


def _refused_bins(env_id: str, env_kwargs: dict | None, splits: Sequence[Split], seed: int) -> dict:
    """Reset one env (in this process, so errors read clearly) with the options of every split's
    first reachable bin and of every unreachable bin.

    Returns ``{(split, bin): reason}`` for bins the env refuses (these become marked empty cells).
    """
    refused: dict = {}
    env = EpisodeRecorder(gym.make(env_id, **(env_kwargs or {})))
    try:
        for s in splits:
            first = next(x.index for x in s.bins if x.reachable)
            for b in s.bins:
                if b.reachable and b.index != first:
                    continue
                try:
                    env.env.reset(seed=seed_for(seed, 0), options=s.options(b.index, 0, seed))
                except (ValueError, gym.error.Error) as e:
                    if b.reachable:  # a reachable bin must work: that is a real error
                        raise ValueError(
                            f"env {env_id} refused the reset options of split {s.name!r} bin {b.label}: {e}"
                        ) from e
                    refused[(s.name, b.index)] = str(e).splitlines()[0]
    finally:
        env.close()
    return refused


def evaluate_rotation(
    policies: Mapping[str, Any] | Sequence[Any] | Any,
    env_id: str,
    split: str | Sequence[str] = "so2-sweep",
    episodes_per_bin: int = 10,
    n_envs: int = 1,
    seed: int = 0,
    progress: bool = True,
    env_kwargs: dict | None = None,
    deterministic: bool = True,
    start_method: str | None = None,
) -> RotationResult:
    """Evaluate agents side by side on one or more named splits.

    Args:
        policies: ``{name: agent}``; an agent is anything :func:`~eqrobot.rollout.agents.resolve_agent`
            takes (an object with SB3-style ``predict`` on a batched Dict observation, ``"oracle"``,
            a path to an SB3 zip / eqrobot or rl-zoo3 run folder / dynamics checkpoint). A bare
            agent or a list is named by position / path (``NAME=PATH`` names it explicitly).
        env_id: a registered env id, e.g. ``"eqrobot/Push-v0"``.
        split: a split name (:data:`~eqrobot.rotation.splits.SPLITS`), a list of names, a
            comma-separated string, or ``"all"``.
        episodes_per_bin: episodes in every bin (same env seeds in every bin: paired layouts).
        n_envs: episodes run in parallel in this many envs (SB3 ``SubprocVecEnv`` when > 1);
            results do not depend on it.
        seed: selects a disjoint block of env seeds and group elements; same seed, same episodes.
        progress: progress bar over episodes (throttled when stderr is a log file).
        env_kwargs: extra ``gymnasium.make`` kwargs (e.g. ``{"reward_type": "dense"}``).
        deterministic: passed to ``predict``.
        start_method: multiprocessing start method of the workers (n_envs > 1); None: ``"fork"`` on
            Linux (fast; the workers only step PyBullet), else SB3's default.

    Returns:
        :class:`RotationResult` with one :class:`BinResult` per (policy, split, bin). A bin the env
        refuses (e.g. a task rotation beyond joint 1, if the env forbids it) is a marked empty cell.

    Raises:
        ValueError: unknown split or env (the message lists them), a policy whose observation/action
            spaces do not fit the env, or an env that refuses a reachable bin's reset options.
    """
    splits = resolve_splits(split)
    if int(n_envs) < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    n_envs = int(n_envs)
    check_env_id(env_id)
    named = name_agents(policies)
    resolved = {name: resolve_agent(p, env_id) for name, p in named.items()}

    probe = gym.make(env_id, **(env_kwargs or {}))
    try:
        obs_space, act_space = probe.observation_space, probe.action_space
    finally:
        probe.close()
    for name, agent in resolved.items():
        check_agent_fits(name, agent, obs_space, act_space)

    refused = _refused_bins(env_id, env_kwargs, splits, seed)
    todo = [
        e for s in splits for e in s.episodes(episodes_per_bin, seed) if (s.name, e.bin_index) not in refused
    ]
    by_key = {(s.name, b.index): b for s in splits for b in s.bins}

    rows: list[BinResult] = []
    ep_records: list[dict] = []
    pbar = progress_bar(len(todo) * len(resolved), f"rotation {env_id}") if progress else None
    vec = make_episode_env(env_id, env_kwargs, min(n_envs, max(1, len(todo))), start_method)
    try:
        for name, agent in resolved.items():
            if pbar is not None:
                pbar.set_postfix_str(name, refresh=False)
            episodes = run_episodes(
                vec,
                agent,
                [Reset(e.seed, e.options) for e in todo],
                deterministic=deterministic,
                on_episode=None if pbar is None else (lambda _: pbar.update(1)),
            )
            recs = []
            for ep, spec in zip(episodes, todo, strict=True):
                if ep.success is None:
                    raise ValueError("the env's info has no 'is_success': cannot score episodes")
                rec = {
                    "split": spec.split,
                    "bin": spec.bin_index,
                    "episode": spec.episode,
                    "seed": spec.seed,
                    "success": ep.success,
                    "return": ep.episode_return,
                    "length": ep.length,
                    "policy": name,
                    "reachable": by_key[(spec.split, spec.bin_index)].reachable,
                }
                rec.update({k: v for k, v in spec.describe().items() if k not in rec})
                recs.append(rec)
            ep_records.extend(recs)
            for s in splits:
                cells = summarize_bins(name, s, [r for r in recs if r["split"] == s.name])
                for c in cells:
                    if (s.name, c.bin) in refused:
                        c.note = "env refused the reset: " + refused[(s.name, c.bin)]
                rows.extend(cells)
    finally:
        vec.close()
        if pbar is not None:
            pbar.close()
    return RotationResult(
        env_id=env_id,
        policies=list(resolved),
        splits=[s.name for s in splits],
        episodes_per_bin=int(episodes_per_bin),
        seed=int(seed),
        rows=rows,
        episodes=ep_records,
        meta={
            "n_envs": n_envs,
            "env_kwargs": jsonable(env_kwargs or {}),
            "deterministic": deterministic,
            "joint1_limit_deg": JOINT1_LIMIT_DEG,
        },
    )


def run_rotation(
    policies: Mapping[str, Any] | Sequence[Any] | Any,
    env_id: str,
    split: str | Sequence[str] = "so2-sweep",
    episodes_per_bin: int = 10,
    n_envs: int = 1,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    video_angles: Sequence[float] | None = None,
    sim_gap_episodes: int = 0,
    progress: bool = True,
    env_kwargs: dict | None = None,
) -> RotationResult:
    """:func:`evaluate_rotation` plus its outputs, for the CLI.

    Writes, when ``out_dir`` is given: ``rotation.md``, ``rotation.json``, ``rotation.csv`` and
    ``rotation_polar.png``; with ``video_angles``, ``videos/<policy>/*.gif``; with
    ``sim_gap_episodes > 0``, the simulator equivariance gap of every policy (task group, the
    default angles) into ``result.meta["sim_gap"]`` and the JSON. Returns the result (print
    ``result.to_markdown()``).
    """
    from eqrobot.rotation.sim_gap import format_gap, simulator_equivariance_gap
    from eqrobot.rotation.videos import save_videos

    check_env_id(env_id)
    named = name_agents(policies)
    loaded = {name: resolve_agent(p, env_id) for name, p in named.items()}
    result = evaluate_rotation(
        loaded,
        env_id,
        split,
        episodes_per_bin,
        n_envs=n_envs,
        seed=seed,
        progress=progress,
        env_kwargs=env_kwargs,
    )
    result.meta["policy_sources"] = {
        n: str(p) if isinstance(p, (str, os.PathLike)) else type(p).__name__ for n, p in named.items()
    }
    if sim_gap_episodes > 0:
        result.meta["sim_gap"] = {
            name: simulator_equivariance_gap(
                env_id, agent, episodes=sim_gap_episodes, seed=seed, env_kwargs=env_kwargs, progress=progress
            )
            for name, agent in loaded.items()
        }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        md = result.to_markdown()
        for name, gap in result.meta.get("sim_gap", {}).items():
            md += f"\n{name}: " + format_gap(gap) + "\n"
        (out / "rotation.md").write_text(md)
        result.to_json(out / "rotation.json")
        result.to_csv(out / "rotation.csv")
        result.plot_polar(out / "rotation_polar.png")
        if video_angles:
            for name, agent in loaded.items():
                save_videos(
                    agent, env_id, video_angles, out / "videos" / name, seed=seed, env_kwargs=env_kwargs
                )
    return result
