"""Running any agent in an env: one agent resolver, one episode loop, evaluation, collection, showcase.

    from eqrobot.rollout import resolve_agent, evaluate
    agent = resolve_agent("runs/Reach-sac-equivariant-s0-...", "eqrobot/Reach-v0")
    print(evaluate(agent, "eqrobot/Reach-v0", episodes=50))

- :mod:`~eqrobot.rollout.agents`: :func:`resolve_agent` ("oracle" | "random" | SB3 zip | eqrobot or
  rl-zoo3 run folder | dynamics checkpoint -> an object with ``predict``);
- :mod:`~eqrobot.rollout.checkpoints`: reading policy checkpoints (:func:`load_model`);
  :mod:`~eqrobot.rollout.zoo_runs`: rl-zoo3 run folders (env id, VecNormalize statistics);
- :mod:`~eqrobot.rollout.episodes`: :func:`run_episodes`, the one episode loop (seeded resets,
  reset options, per-episode records, parallel envs);
- :mod:`~eqrobot.rollout.evaluation`: :func:`evaluate` (any agent), :func:`evaluate_dynamics`;
- :mod:`~eqrobot.rollout.collect`: :func:`collect_transitions` for the dynamics models;
- :mod:`~eqrobot.rollout.showcase`: the oracle showcase of ``make demo``.

Names are imported lazily (torch and SB3 load on first use).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "resolve_agent": "eqrobot.rollout.agents",
    "RandomAgent": "eqrobot.rollout.agents",
    "NormalizedAgent": "eqrobot.rollout.agents",
    "check_agent_fits": "eqrobot.rollout.agents",
    "load_model": "eqrobot.rollout.checkpoints",
    "CheckpointError": "eqrobot.rollout.checkpoints",
    "read_zoo_run": "eqrobot.rollout.zoo_runs",
    "Reset": "eqrobot.rollout.episodes",
    "Episode": "eqrobot.rollout.episodes",
    "make_episode_env": "eqrobot.rollout.episodes",
    "run_episodes": "eqrobot.rollout.episodes",
    "evaluate": "eqrobot.rollout.evaluation",
    "evaluate_dynamics": "eqrobot.rollout.evaluation",
    "collect_transitions": "eqrobot.rollout.collect",
    "from_replay_buffer": "eqrobot.rollout.collect",
    "run_oracle_showcase": "eqrobot.rollout.showcase",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'eqrobot.rollout' has no attribute {name!r}")
