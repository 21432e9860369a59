"""Training only: config, presets, train, checkpoints (library functions, no argv; ``eqrobot.cli``
wraps them). Running and evaluating what was trained is :mod:`eqrobot.rollout`'s job.

    from eqrobot.rl import TrainConfig
    from eqrobot.rl.train import train
    from eqrobot.rollout import evaluate

    run_dir = train(TrainConfig(env_id="eqrobot/Reach-v0", algo="sac", policy="equivariant"))
    print(evaluate(run_dir, "eqrobot/Reach-v0", episodes=50))

(``train`` is reached through its module, :mod:`eqrobot.rl.train`: a package attribute of the same
name as the submodule would be shadowed by it.) Names are imported lazily (torch and SB3 load on
first use).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "eqrobot.rl.config",
    "ALGOS": "eqrobot.rl.config",
    "POLICIES": "eqrobot.rl.config",
    "get_preset": "eqrobot.rl.presets",
    "resolve_config": "eqrobot.rl.train",
    "read_eval_csv": "eqrobot.rl.train",
    "TrainingInterrupted": "eqrobot.rl.train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'eqrobot.rl' has no attribute {name!r}")
