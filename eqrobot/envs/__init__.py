"""Gymnasium manipulation envs: a Panda on a round table, goal-conditioned, with a geometry spec.

``import eqrobot`` registers every id in :data:`ENV_IDS`; see ``docs/envs.md``.
"""

from eqrobot.envs.registration import ENV_IDS, ENV_TABLE, register_envs

__all__ = ["ENV_IDS", "ENV_TABLE", "RobotTaskEnv", "TASKS", "Task", "register_envs"]


def __getattr__(name):  # lazy: keep `import eqrobot` free of pybullet until an env is built
    if name == "RobotTaskEnv":
        from eqrobot.envs.core import RobotTaskEnv

        return RobotTaskEnv
    if name in ("TASKS", "Task"):
        from eqrobot.envs import tasks

        return getattr(tasks, name)
    raise AttributeError(f"module 'eqrobot.envs' has no attribute {name!r}")
