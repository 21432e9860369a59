"""Training, evaluation and checkpoints (library functions, no argv; ``eqrobot.cli`` wraps them).

    from eqrobot.rl import TrainConfig, train, evaluate, load_model
    run_dir = train(TrainConfig(env_id="eqrobot/Reach-v0", algo="sac", policy="equivariant"))
    print(evaluate(load_model(run_dir), "eqrobot/Reach-v0", episodes=50))

Names are imported lazily (torch and SB3 load on first use).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TrainConfig": "eqrobot.rl.config",
    "ALGOS": "eqrobot.rl.config",
    "POLICIES": "eqrobot.rl.config",
    "get_preset": "eqrobot.rl.presets",
    "train": "eqrobot.rl.train",
    "resolve_config": "eqrobot.rl.train",
    "read_eval_csv": "eqrobot.rl.train",
    "evaluate": "eqrobot.rl.evaluate",
    "load_model": "eqrobot.rl.checkpoint",
    "CheckpointError": "eqrobot.rl.checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'eqrobot.rl' has no attribute {name!r}")
