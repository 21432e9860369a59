"""Isotropic exploration for SB3's off-policy algorithms.

Stock ``OffPolicyAlgorithm._sample_action`` explores with ``action_space.sample()`` (uniform in the
Box: a cube, not rotation invariant) during warm-up and adds action noise followed by
``np.clip(a + noise, -1, 1)`` per component. :class:`IsotropicExplorationMixin` replaces both, for the
fields of the env's action spec: warm-up vectors are uniform in the unit ball (scalars uniform in
[-1, 1]), and noisy actions are limited radially (``d / max(1, |d|)``) instead of clipped per axis.
The policy itself is equivariant either way; this makes the *data collection* commute with rotations
too, so a rotated world produces rotated training data in distribution.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy

from eqrobot.geometry.spec import ArraySpec
from eqrobot.policies.common import set_training_mode_cached
from eqrobot.policies.distributions import _vector_blocks, limit_action
from eqrobot.policies.lean_acting import LeanPredict


def uniform_action(action_spec: ArraySpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` actions with each 3-vector block uniform in the unit ball and each scalar uniform in [-1, 1]."""
    out = rng.uniform(-1.0, 1.0, size=(n, action_spec.dim))
    starts, _ = _vector_blocks(action_spec)
    for s in starts:
        d = rng.normal(size=(n, 3))
        d /= np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12)
        out[:, s : s + 3] = d * rng.uniform(0.0, 1.0, size=(n, 1)) ** (1.0 / 3.0)
    return out.astype(np.float32)


def action_spec_of(model) -> ArraySpec | None:
    """The action ArraySpec of a model's policy or observation space, or None."""
    spec = getattr(model.policy, "geometry_spec", None) or getattr(
        model.observation_space, "geometry_spec", None
    )
    return None if spec is None else spec.action


class IsotropicExplorationMixin:
    """Mix into an SB3 ``OffPolicyAlgorithm`` subclass (before it in the MRO)."""

    def _setup_model(self) -> None:
        super()._setup_model()
        # SB3's stock policies (the MLP baseline) get eqrobot's cheap set_training_mode and lean
        # predict too, so throughput ratios between the two policies compare networks, not bookkeeping
        self.policy.set_training_mode = CachedTrainingMode(self.policy)
        if type(self.policy).predict is BasePolicy.predict:  # stock policies: eqrobot's lean acting too
            self.policy.predict = LeanPredict(self.policy)

    def _sample_action(self, learning_starts: int, action_noise=None, n_envs: int = 1):
        spec = action_spec_of(self)
        if (
            spec is None
            or not isinstance(self.action_space, spaces.Box)
            or spec.dim != self.action_space.shape[0]
        ):
            return super()._sample_action(learning_starts, action_noise, n_envs)
        if self.num_timesteps < learning_starts and not (self.use_sde and self.use_sde_at_warmup):
            unscaled_action = uniform_action(spec, n_envs, self.action_space.np_random)
        else:
            unscaled_action, _ = self.predict(self._last_obs, deterministic=False)
        scaled_action = self.policy.scale_action(unscaled_action)
        if action_noise is not None:
            scaled_action = limit_action(scaled_action + action_noise(), spec)
        return self.policy.unscale_action(scaled_action), scaled_action


class CachedTrainingMode:
    """``policy.set_training_mode`` as :func:`set_training_mode_cached` (a plain object, not a bound
    method, so the policy still pickles and deep-copies)."""

    def __init__(self, policy):
        self.policy = policy

    def __call__(self, mode: bool) -> None:
        set_training_mode_cached(self.policy, mode)
