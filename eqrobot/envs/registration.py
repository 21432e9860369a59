"""Gymnasium registration of every eqrobot env id: ONE table, registered idempotently.

Ids: ``eqrobot/<Task>-v0`` (sparse reward) and ``eqrobot/<Task>Dense-v0`` (dense reward). This module
imports nothing heavy: the entry point is a string, so ``import eqrobot`` stays cheap and
``gymnasium.make("eqrobot:eqrobot/Push-v0")`` works in fresh SubprocVecEnv workers.
"""

from __future__ import annotations

# task name -> max episode steps (TimeLimit)
_TASK_STEPS = {"Reach": 50, "Push": 50, "PickAndPlace": 50, "Stack": 100, "Rotate": 50, "Slide": 100}
_REWARDS = {"": "sparse", "Dense": "dense"}
_ENTRY_POINT = "eqrobot.envs.core:RobotTaskEnv"

#: env id -> (task, reward_type, max_episode_steps)
ENV_TABLE: dict[str, tuple[str, str, int]] = {
    f"eqrobot/{task}{suffix}-v0": (task, reward, steps)
    for suffix, reward in _REWARDS.items()
    for task, steps in _TASK_STEPS.items()
}

ENV_IDS: tuple[str, ...] = tuple(ENV_TABLE)


def register_envs() -> None:
    """Register every id in :data:`ENV_IDS` with Gymnasium; safe to call many times."""
    import gymnasium

    for env_id, (task, reward, steps) in ENV_TABLE.items():
        if env_id in gymnasium.registry:
            continue
        gymnasium.register(
            id=env_id,
            entry_point=_ENTRY_POINT,
            kwargs={"task": task, "reward_type": reward},
            max_episode_steps=steps,
            # Gymnasium's PassiveEnvChecker marks its first reset as checked before calling it, so a
            # refused first reset (a bad seed or option) left every later step() failing inside the
            # checker with a TypeError. The env checks its own inputs (eqrobot.envs.validation);
            # gymnasium.utils.env_checker.check_env still runs the full check on demand.
            disable_env_checker=True,
        )
