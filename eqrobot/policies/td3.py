"""Equivariant TD3: deterministic SE(3)-equivariant actor, invariant critics, isotropic noise.

Stock SB3 TD3 touches actions per component in two places:

1. exploration: ``np.clip(a + noise, -1, 1)`` (and uniform-in-a-cube warm-up actions);
2. target policy smoothing: ``noise.clamp(-c, c)`` and ``(mu'(s') + noise).clamp(-1, 1)``.

:class:`EquivariantTD3` replaces both: the exploration noise is added and the sum limited radially
per vector field (:class:`~eqrobot.policies.offpolicy.IsotropicExplorationMixin`), and the target
smoothing noise is an isotropic Gaussian whose norm is limited to ``target_noise_clip`` per vector
field, the noisy target action limited radially to the unit ball (scalars keep the per-entry clamp,
which is invariant). Gaussian noise with one sigma per component is itself isotropic, so with these
limits the whole update commutes with rotations.

The actor (:class:`EquivariantTD3Actor`) outputs ``v * tanh(|v|) / |v|`` for each vector of its
``EquivariantNet`` (inside the unit ball) and ``tanh`` for scalars. ``TD3("EquivariantPolicy", env)``
also works (the policy networks are exactly equivariant and invariant either way), but only
``EquivariantTD3("EquivariantPolicy", env)`` keeps the noise isotropic; eqrobot's trainer uses it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3 import TD3
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.td3.policies import TD3Policy
from torch import nn

from eqrobot.geometry.spec import GeometrySpec
from eqrobot.policies.common import (
    DEFAULT_OBS_KEYS,
    SpecFeaturesMixin,
    SpecFlattenExtractor,
    SpecPolicyMixin,
    make_net,
)
from eqrobot.policies.distributions import RadialSquashedGaussianDistribution, limit_action, limit_norm
from eqrobot.policies.offpolicy import IsotropicExplorationMixin
from eqrobot.policies.sac import DEFAULT_NET_ARCH


class EquivariantTD3Actor(SpecFeaturesMixin, BasePolicy):
    """Deterministic actor: ``EquivariantNet`` -> radial tanh on vectors, tanh on scalars."""

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: SpecFlattenExtractor,
        features_dim: int,
        geometry_spec: GeometrySpec,
        net: str | type = "equivariant",
        net_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        **_ignored: Any,
    ):
        super().__init__(
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
            squash_output=True,
        )
        self.geometry_spec = geometry_spec
        self.net_arch = net_arch
        self.net_kind = net
        self.net_kwargs = net_kwargs
        self.features_dim = features_dim
        self._squash = RadialSquashedGaussianDistribution(geometry_spec.action)
        self.mu = make_net(features_extractor.in_spec, geometry_spec.action, net_arch, net, net_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            net_arch=self.net_arch,
            features_dim=self.features_dim,
            features_extractor=self.features_extractor,
            geometry_spec=self.geometry_spec,
            net=self.net_kind,
            net_kwargs=self.net_kwargs,
        )
        return data

    def forward(self, obs) -> torch.Tensor:
        return self._squash.squash(self.mu(self.extract_features(obs, self.features_extractor)))

    def _predict(self, observation, deterministic: bool = False) -> torch.Tensor:
        return self(observation)


class EquivariantTD3Policy(SpecPolicyMixin, TD3Policy):
    """TD3 policy with an SE(3)-equivariant deterministic actor and invariant critics.

    Extra ``policy_kwargs`` as :class:`~eqrobot.policies.sac.EquivariantSACPolicy`: ``geometry_spec``,
    ``net``, ``net_kwargs``, ``obs_keys``. ``net_arch``: equal widths, list or ``dict(pi=, qf=)``.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type = SpecFlattenExtractor,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        optimizer_class: type[torch.optim.Optimizer] = torch.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        n_critics: int = 2,
        share_features_extractor: bool = False,
        geometry_spec: GeometrySpec | dict | None = None,
        net: str | type = "equivariant",
        net_kwargs: dict[str, Any] | None = None,
        obs_keys: tuple[str, ...] = DEFAULT_OBS_KEYS,
    ):
        # set before the SB3 base __init__, which builds the actor and critics via make_actor/make_critic
        fe_kwargs = self._init_spec(
            observation_space,
            action_space,
            geometry_spec,
            net,
            net_kwargs,
            obs_keys,
            features_extractor_kwargs,
        )
        super().__init__(
            observation_space,
            action_space,
            lr_schedule,
            net_arch=list(DEFAULT_NET_ARCH) if net_arch is None else net_arch,
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=fe_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            n_critics=n_critics,
            share_features_extractor=share_features_extractor,
        )

    def make_actor(self, features_extractor=None) -> EquivariantTD3Actor:
        kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return EquivariantTD3Actor(**kwargs, **self._net_args()).to(self.device)


class EquivariantTD3(IsotropicExplorationMixin, TD3):
    """SB3 TD3 with isotropic exploration and target-smoothing noise (see the module docstring).

    Same constructor as ``stable_baselines3.TD3``. Falls back to stock behaviour when neither the
    policy nor the observation space carries a geometry spec.
    """

    policy_aliases = {**TD3.policy_aliases, "EquivariantPolicy": EquivariantTD3Policy}

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        spec = getattr(self.policy, "geometry_spec", None) or getattr(
            self.observation_space, "geometry_spec", None
        )
        if spec is None:
            return super().train(gradient_steps, batch_size)
        action_spec = spec.action
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])
        actor_losses, critic_losses = [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            with torch.no_grad():
                noise = torch.randn_like(replay_data.actions) * self.target_policy_noise
                noise = limit_norm(noise, action_spec, self.target_noise_clip)
                next_actions = limit_action(
                    self.actor_target(replay_data.next_observations) + noise, action_spec
                )
                next_q_values = torch.cat(
                    self.critic_target(replay_data.next_observations, next_actions), dim=1
                )
                next_q_values, _ = torch.min(next_q_values, dim=1, keepdim=True)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values
            current_q_values = self.critic(replay_data.observations, replay_data.actions)
            critic_loss = sum(F.mse_loss(q, target_q_values) for q in current_q_values)
            critic_losses.append(critic_loss.item())
            self.critic.optimizer.zero_grad()
            critic_loss.backward()
            self.critic.optimizer.step()
            if self._n_updates % self.policy_delay == 0:
                actor_loss = -self.critic.q1_forward(
                    replay_data.observations, self.actor(replay_data.observations)
                ).mean()
                actor_losses.append(actor_loss.item())
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
                polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
                polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if actor_losses:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
