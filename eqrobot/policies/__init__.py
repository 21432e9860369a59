"""SE(3)-equivariant stable-baselines3 policies and equivariant action distributions.

After ``import eqrobot``, ``SAC("EquivariantPolicy", env)``, ``TD3("EquivariantPolicy", env)``,
``PPO("EquivariantPolicy", env)`` and sb3-contrib's ``TQC("EquivariantPolicy", env)`` build the classes
below (the env's observation space carries the geometry spec). :class:`EquivariantSAC` /
:class:`EquivariantTD3` / :class:`EquivariantTQC` additionally make exploration noise isotropic.
Names are imported lazily so that ``import eqrobot.policies`` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "EquivariantSACPolicy": "eqrobot.policies.sac",
    "EquivariantSACActor": "eqrobot.policies.sac",
    "EquivariantSAC": "eqrobot.policies.sac",
    "EquivariantTD3Policy": "eqrobot.policies.td3",
    "EquivariantTD3Actor": "eqrobot.policies.td3",
    "EquivariantTD3": "eqrobot.policies.td3",
    "EquivariantTQCPolicy": "eqrobot.policies.tqc",
    "EquivariantTQC": "eqrobot.policies.tqc",
    "InvariantQuantileCritic": "eqrobot.policies.tqc",
    "EquivariantActorCriticPolicy": "eqrobot.policies.ppo",
    "InvariantCritic": "eqrobot.policies.common",
    "SpecFlattenExtractor": "eqrobot.policies.common",
    "SpecError": "eqrobot.policies.common",
    "resolve_geometry_spec": "eqrobot.policies.common",
    "IsotropicGaussianDistribution": "eqrobot.policies.distributions",
    "RadialSquashedGaussianDistribution": "eqrobot.policies.distributions",
    "limit_action": "eqrobot.policies.distributions",
}

__all__ = sorted(_EXPORTS) + ["register_sb3_aliases"]

from eqrobot.policies.aliases import register_sb3_aliases  # noqa: E402  (no torch import)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'eqrobot.policies' has no attribute {name!r}")


def __dir__():
    return __all__
