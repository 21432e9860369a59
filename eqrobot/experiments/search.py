"""Ranking the agents of a hyperparameter search sweep: which one learned best, and by how much.

A trial's *score* is its mean evaluation success over its last ``window`` evaluations: one
20-episode evaluation moves by 0.05 per episode, and averaging the end of the curve keeps a lucky
last point from choosing the winner. An agent's score is the mean over its seeds; the per-seed
scores are kept so the spread shows. Ties go to the agent that first reached 90% (median over
seeds), then to the faster one. The criterion is fixed before the search runs, and the same one
ranks every agent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eqrobot.experiments.curves import first_step_at, median_with_never

SCORE_WINDOW = 5
"""Evaluations averaged into a trial's score (5 x 2,500 steps: the last 10k of a 30k run)."""


def trial_score(success: list[float], window: int = SCORE_WINDOW) -> float:
    """Mean success over the last ``window`` evaluations (all of them if there are fewer)."""
    if not success:
        raise ValueError("a trial without evaluations has no score")
    if window < 1:
        raise ValueError(f"window must be >= 1 evaluation, got {window}")
    return float(np.mean(success[-window:]))


def describe_agent(agent) -> dict[str, Any]:
    """The settings that tell search configurations apart (an :class:`AgentSpec`'s overrides)."""
    return {
        "algo": agent.algo,
        "policy": agent.policy,
        "hyperparams": dict(agent.hyperparams),
        "policy_kwargs": dict(agent.policy_kwargs),
        "augment": agent.augment,
    }


def rank_agents(runs: list[dict], agents: dict[str, Any], window: int = SCORE_WINDOW) -> list[dict]:
    """One row per agent of ``agents`` (name -> AgentSpec) with finished runs, best first.

    ``runs`` are :func:`eqrobot.experiments.report.collect_runs` rows. Raises ValueError when the
    runs of one agent differ in budget or env: a ranking compares like with like."""
    rows = []
    for name, spec in agents.items():
        members = sorted((r for r in runs if r["agent"] == name), key=lambda r: r["seed"])
        if not members:
            continue
        if len({(r["env_id"], r["steps"], r["demos"]) for r in members}) > 1:
            raise ValueError(f"agent {name!r} has runs with different envs, budgets or demos; rank one grid")
        scores = [trial_score(r["success"], window) for r in members]
        hits = [first_step_at(r["steps_axis"], r["success"]) for r in members]
        rows.append(
            {
                "agent": name,
                **describe_agent(spec),
                "env": members[0]["env_id"],
                "budget": members[0]["steps"],
                "seeds": [r["seed"] for r in members],
                "score_per_seed": scores,
                "score": float(np.mean(scores)),
                "final_success": float(np.mean([r["success"][-1] for r in members])),
                "best_eval": float(max(max(r["success"]) for r in members)),
                "steps_to_90_per_seed": hits,
                "steps_to_90_median": median_with_never(hits),
                "train_steps_per_s": float(np.mean([r["train_steps_per_s"] for r in members])),
            }
        )
    never = float("inf")
    rows.sort(
        key=lambda r: (
            -r["score"],
            never if r["steps_to_90_median"] is None else r["steps_to_90_median"],
            -r["train_steps_per_s"],
        )
    )
    for rank, r in enumerate(rows, 1):
        r["rank"] = rank
    return rows
