"""eqrobot: PyBullet manipulation environments with typed geometry, and SE(3)-equivariant networks.

Importing the package registers every env id in :data:`eqrobot.envs.ENV_IDS` with Gymnasium
(idempotently), so ``gymnasium.make("eqrobot/Push-v0")`` works after ``import eqrobot``.
"""

__version__ = "0.1.0"

from eqrobot.envs.registration import ENV_IDS, register_envs  # noqa: E402

register_envs()

# `SAC("EquivariantPolicy", env)` etc.: lazy SB3 policy aliases (imports neither torch nor SB3 now).
from eqrobot.policies.aliases import register_sb3_aliases  # noqa: E402

register_sb3_aliases()

__all__ = ["ENV_IDS", "register_envs", "__version__"]
