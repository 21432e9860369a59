"""Training only: config, presets, train, checkpoints (library functions, no argv; ``eqrobot.cli``
wraps them). Running and evaluating what was trained is :mod:`eqrobot.rollout`'s job.

    from eqrobot.rl import TrainConfig, train_policy
    from eqrobot.rollout import evaluate
    run_dir = train_policy(TrainConfig(env_id="eqrobot/Reach-v0", algo="sac", policy="equivariant"))
    print(evaluate(run_dir, "eqrobot/Reach-v0", episodes=50))

(``train_policy`` is :func:`eqrobot.rl.train.train`; the short name is the submodule.) Names are
imported lazily (torch and SB3 load on first use).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "eqrobot.rl.config",
    "ALGOS": "eqrobot.rl.config",
    "POLICIES": "eqrobot.rl.config",
    "get_preset": "eqrobot.rl.presets",
    "train_policy": ("eqrobot.rl.train", "train"),
    "resolve_config": "eqrobot.rl.train",
    "read_eval_csv": "eqrobot.rl.train",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        target = _EXPORTS[name]
        module, attr = target if isinstance(target, tuple) else (target, name)
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'eqrobot.rl' has no attribute {name!r}")
