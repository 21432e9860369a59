"""Rotation-split evaluation as Ray tasks: the episodes of every bin spread over the workers.

Each task loads the policy from its run folder (or ``"oracle"``) and builds its own env inside the
worker (live envs do not pickle), then plays a chunk of the split's fixed ``(seed, options)``
episodes with the same episode loop as ``eqrobot rotation``. An episode's outcome depends only on
its seed and options, so the per-episode records equal those of
:func:`evaluate_rotation` (``eqrobot rotation``) for the same split seed, however the episodes are
chunked (tests/experiments/test_sweep_ray.py checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eqrobot.experiments.config import EvaluationSpec


def _rollout_chunk(source: str, env_id: str, env_kwargs: dict | None, episodes: list) -> list[dict]:
    """Play ``episodes`` (SplitEpisode objects) with the policy at ``source``; one record each."""
    import torch

    from eqrobot.rollout.agents import resolve_agent
    from eqrobot.rollout.episodes import Reset, make_episode_env, run_episodes

    torch.set_num_threads(1)
    agent = resolve_agent(source, env_id)
    vec = make_episode_env(env_id, env_kwargs, 1)
    try:
        done = run_episodes(vec, agent, [Reset(e.seed, e.options) for e in episodes])
    finally:
        vec.close()
    if any(ep.success is None for ep in done):
        raise ValueError(f"{env_id}: the env's info has no 'is_success': cannot score episodes")
    return [
        {
            "split": e.split,
            "bin": e.bin_index,
            "episode": e.episode,
            "seed": e.seed,
            "success": bool(ep.success),
            "return": ep.episode_return,
            "length": ep.length,
        }
        for ep, e in zip(done, episodes, strict=True)
    ]


def _chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def evaluate_on_splits(
    policies: Mapping[str, str],
    env_id: str,
    evaluation: EvaluationSpec,
    env_kwargs: dict | None = None,
) -> dict[str, Any]:
    """``{policy name: RotationResult}`` for policies given as run folders / zips / ``"oracle"``.

    Needs a running Ray (see :func:`eqrobot.experiments.cluster.ray_session`). All policies'
    tasks are submitted at once, so the cluster stays busy across policies.
    """
    import ray

    from eqrobot.rotation.results import RotationResult, jsonable, summarize_bins
    from eqrobot.rotation.splits import JOINT1_LIMIT_DEG, resolve_splits
    from eqrobot.rotation.sweep import _refused_bins

    splits = resolve_splits(list(evaluation.splits))
    refused = _refused_bins(env_id, env_kwargs, splits, evaluation.seed)
    episodes = [
        e
        for s in splits
        for e in s.episodes(evaluation.episodes_per_bin, evaluation.seed)
        if (s.name, e.bin_index) not in refused
    ]
    remote = ray.remote(num_cpus=1)(_rollout_chunk)
    pending = {
        name: [
            remote.remote(str(src), env_id, env_kwargs, c)
            for c in _chunks(episodes, evaluation.episodes_per_task)
        ]
        for name, src in policies.items()
    }
    by_key = {(s.name, b.index): b for s in splits for b in s.bins}
    results = {}
    for name, refs in pending.items():
        records = [r for chunk in ray.get(refs) for r in chunk]
        for r, ep in zip(records, episodes, strict=True):
            r["policy"] = name
            r["reachable"] = by_key[(r["split"], r["bin"])].reachable
            r.update({k: v for k, v in ep.describe().items() if k not in r})
        rows = []
        for s in splits:
            cells = summarize_bins(name, s, [r for r in records if r["split"] == s.name])
            for c in cells:
                if (s.name, c.bin) in refused:
                    c.note = "env refused the reset: " + refused[(s.name, c.bin)]
            rows.extend(cells)
        results[name] = RotationResult(
            env_id=env_id,
            policies=[name],
            splits=[s.name for s in splits],
            episodes_per_bin=int(evaluation.episodes_per_bin),
            seed=int(evaluation.seed),
            rows=rows,
            episodes=records,
            meta={
                "n_envs": 1,
                "env_kwargs": jsonable(env_kwargs or {}),
                "deterministic": True,
                "joint1_limit_deg": JOINT1_LIMIT_DEG,
                "policy_sources": {name: str(policies[name])},
                "ray_tasks": len(pending[name]),
            },
        )
    return results
