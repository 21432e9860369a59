"""Equivariant actor-critic policy for PPO (and A2C): equivariant Gaussian actor, invariant value.

SB3's on-policy loop clips every action component to the Box before ``env.step`` unless the policy
says ``squash_output=True``, in which case it only applies ``unscale_action`` -- the identity on
eqrobot's ``Box(-1, 1)``. This policy always reports ``squash_output=True`` so that SB3 never clips a
vector per component, and offers two ways of keeping actions sensible:

* ``squash=False`` (default): an unbounded
  :class:`~eqrobot.policies.distributions.IsotropicGaussianDistribution` (one state-independent
  log-std per vector field and per scalar entry, SB3's PPO default); the env limits the displacement
  radially (``d / max(1, |d|)``) and clips the gripper scalar, the way stock PPO relies on clipping,
  but equivariantly. Closed-form entropy.
* ``squash=True``: the :class:`~eqrobot.policies.distributions.RadialSquashedGaussianDistribution`
  (actions inside the unit ball; ``entropy()`` is None, so PPO falls back to ``-log_prob``).

The value function is an invariant ``EquivariantNet`` with one scalar output.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from eqrobot.geometry.spec import ArraySpec, GeometrySpec
from eqrobot.policies.common import (
    DEFAULT_OBS_KEYS,
    SpecFeaturesMixin,
    SpecFlattenExtractor,
    SpecPolicyMixin,
    actor_critic_arch,
    make_net,
)
from eqrobot.policies.distributions import IsotropicGaussianDistribution, RadialSquashedGaussianDistribution

DEFAULT_PPO_NET_ARCH = [64, 64]


class EquivariantActorCriticPolicy(SpecPolicyMixin, SpecFeaturesMixin, BasePolicy):
    """PPO/A2C policy: ``EquivariantNet`` actor mean + per-field log-std parameters, invariant value net.

    :param net_arch: equal hidden widths, a list (actor and value alike) or ``dict(pi=[...], vf=[...])``.
    :param log_std_init: initial log-std of every vector field and scalar entry.
    :param squash: use the radially squashed Gaussian instead of the unbounded one (see module doc).
    :param geometry_spec, net, net_kwargs, obs_keys: as :class:`~eqrobot.policies.sac.EquivariantSACPolicy`.

    ``activation_fn``, ``ortho_init``, ``full_std``, ``use_expln``, ``squash_output`` and
    ``share_features_extractor`` are accepted for signature compatibility with SB3 and unused
    (the features extractor has no parameters). gSDE is not supported.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.Tanh,
        ortho_init: bool = True,
        use_sde: bool = False,
        log_std_init: float = 0.0,
        full_std: bool = True,
        use_expln: bool = False,
        squash_output: bool = False,
        features_extractor_class: type = SpecFlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        share_features_extractor: bool = True,
        normalize_images: bool = True,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        geometry_spec: GeometrySpec | dict | None = None,
        net: str | type = "equivariant",
        net_kwargs: dict[str, Any] | None = None,
        obs_keys: tuple[str, ...] = DEFAULT_OBS_KEYS,
        squash: bool = False,
    ):
        if use_sde:
            raise ValueError("gSDE (use_sde=True) is not supported by the equivariant PPO policy")
        fe_kwargs = self._init_spec(
            observation_space,
            action_space,
            geometry_spec,
            net,
            net_kwargs,
            obs_keys,
            features_extractor_kwargs,
        )
        spec = self.geometry_spec
        if optimizer_kwargs is None:
            optimizer_kwargs = {"eps": 1e-5} if optimizer_class is torch.optim.Adam else {}
        super().__init__(
            observation_space,
            action_space,
            features_extractor_class,
            fe_kwargs,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            squash_output=True,  # tells SB3 not to clip per component; see the module docstring
            normalize_images=normalize_images,
        )
        self.squash = squash
        self.log_std_init = log_std_init
        self.net_arch = list(DEFAULT_PPO_NET_ARCH) if net_arch is None else net_arch
        self.activation_fn = activation_fn
        self.ortho_init = ortho_init
        self.use_sde = False

        self.features_extractor = self.make_features_extractor()
        self.features_dim = self.features_extractor.features_dim
        in_spec = self.features_extractor.in_spec
        pi_arch, vf_arch = actor_critic_arch(self.net_arch, DEFAULT_PPO_NET_ARCH)
        dist_cls = RadialSquashedGaussianDistribution if squash else IsotropicGaussianDistribution
        self.action_dist = dist_cls(spec.action)
        self.action_net = make_net(in_spec, spec.action, pi_arch, net, self.net_kwargs)
        self.log_std = nn.Parameter(torch.full((self.action_dist.n_std,), float(log_std_init)))
        self.value_net = make_net(in_spec, ArraySpec([("value", "scalar", 1)]), vf_arch, net, self.net_kwargs)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            activation_fn=self.activation_fn,
            log_std_init=self.log_std_init,
            lr_schedule=self._dummy_schedule,
            ortho_init=self.ortho_init,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
            squash=self.squash,
        )
        return data

    def reset_noise(self, n_envs: int = 1) -> None:
        raise ValueError(
            "reset_noise() is only available with gSDE, which the equivariant policy does not use"
        )

    def _features(self, obs) -> torch.Tensor:
        return self.extract_features(obs, self.features_extractor)

    def _dist(self, features: torch.Tensor):
        return self.action_dist.proba_distribution(self.action_net(features), self.log_std)

    def forward(self, obs, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self._features(obs)
        dist = self._dist(features)
        actions = dist.get_actions(deterministic=deterministic)
        if self.squash:
            log_prob = dist.log_prob(actions, dist.gaussian_actions)
        else:
            log_prob = dist.log_prob(actions)
        return actions, self.value_net(features), log_prob

    def evaluate_actions(
        self, obs, actions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        features = self._features(obs)
        dist = self._dist(features)
        return self.value_net(features), dist.log_prob(actions), dist.entropy()

    def get_distribution(self, obs):
        return self._dist(self._features(obs))

    def predict_values(self, obs) -> torch.Tensor:
        return self.value_net(self._features(obs))

    def _predict(self, observation, deterministic: bool = False) -> torch.Tensor:
        return self.get_distribution(observation).get_actions(deterministic=deterministic)
