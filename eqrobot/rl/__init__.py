"""Training, evaluation and checkpoints (library functions, no argv; ``eqrobot.cli`` wraps them).

    from eqrobot.rl import TrainConfig, train_policy, evaluate_policy, load_model
    run_dir = train_policy(TrainConfig(env_id="eqrobot/Reach-v0", algo="sac", policy="equivariant"))
    print(evaluate_policy(load_model(run_dir), "eqrobot/Reach-v0", episodes=50))

(``train_policy``/``evaluate_policy`` are :func:`eqrobot.rl.train.train` and
:func:`eqrobot.rl.evaluate.evaluate`; the short names are the submodules.) Names are imported
lazily (torch and SB3 load on first use).
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
    "evaluate_policy": ("eqrobot.rl.evaluate", "evaluate"),
    "load_model": "eqrobot.rl.checkpoint",
    "CheckpointError": "eqrobot.rl.checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        target = _EXPORTS[name]
        module, attr = target if isinstance(target, tuple) else (target, name)
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'eqrobot.rl' has no attribute {name!r}")
