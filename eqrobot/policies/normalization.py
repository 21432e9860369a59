"""Refuse observations that SB3's per-component ``VecNormalize`` transformed.

``VecNormalize`` shifts points by a fixed mean and scales x, y, z differently: the observation of a
rotated scene is then no longer the rotated observation, and an equivariant policy trained on it
diverges (issue 13: critic loss 1e3-2e4, 0/10 on Reach). It leaves the observation *space*
unchanged, so the policy cannot see it there; and SB3 builds the policy with spaces only, after it
wrapped the env in the algorithm. So the check looks for the algorithm that is building the policy
(SAC/TD3/TQC/PPO ``_setup_model``, also inside ``.load(env=...)``) in the call stack and reads its
``_vec_normalize_env``. Policies built outside an algorithm are not checked.
"""

from __future__ import annotations

import sys

__all__ = ["VecNormalizeError", "check_no_vec_normalize", "refuse_vec_normalize_while_building"]


class VecNormalizeError(ValueError):
    """An equivariant policy was given observations normalised per component."""


def check_no_vec_normalize(vec_normalize_env) -> None:
    """Raise :class:`VecNormalizeError` if ``vec_normalize_env`` is a per-component ``VecNormalize``
    normalising observations (``EquivariantVecNormalize`` and ``norm_obs=False`` are fine)."""
    if vec_normalize_env is None or not getattr(vec_normalize_env, "norm_obs", False):
        return
    from eqrobot.envs.normalization import EquivariantVecNormalize

    if isinstance(vec_normalize_env, EquivariantVecNormalize):
        return
    raise VecNormalizeError(
        "the env is wrapped in SB3's VecNormalize, which normalises each observation component on its "
        "own and breaks the equivariance the equivariant policy relies on (shifted points, x/y/z scaled "
        "differently). Use eqrobot.envs.normalization.EquivariantVecNormalize(venv) instead, or "
        "VecNormalize(venv, norm_obs=False); in rl-zoo3 hyperparameters set `normalize: False` (and "
        "optionally `vec_env_wrapper: eqrobot.envs.normalization.EquivariantVecNormalize`)"
    )


def refuse_vec_normalize_while_building(max_depth: int = 30) -> None:
    """Call from a policy constructor: checks the SB3 algorithm found up the call stack, if any."""
    from stable_baselines3.common.base_class import BaseAlgorithm

    frame = sys._getframe(1)
    for _ in range(max_depth):
        if frame is None:
            return
        candidate = frame.f_locals.get("self")
        if isinstance(candidate, BaseAlgorithm):
            check_no_vec_normalize(getattr(candidate, "_vec_normalize_env", None))
            return
        frame = frame.f_back
