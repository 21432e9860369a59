"""Equivariant SAC policy: SE(3)-equivariant actor, invariant twin critics.

Use it as ``SAC("EquivariantPolicy", env)`` after ``import eqrobot`` (with or without
``replay_buffer_class=HerReplayBuffer``), or pass :class:`EquivariantSACPolicy` explicitly.

* Actor: one ``EquivariantNet`` maps observation + desired goal to the action's mean vectors and
  scalars plus one log-std per vector field and per scalar entry (invariant scalars), feeding a
  :class:`~eqrobot.policies.distributions.RadialSquashedGaussianDistribution` (vectors squashed by
  their norm, exact log-det-Jacobian). Sampled actions lie in the unit ball, so SB3's rescaling on
  ``Box(-1, 1)`` is the identity and no per-component clip ever touches them.
* Critics: :class:`~eqrobot.policies.common.InvariantCritic`, ``Q(g.s, g.a) == Q(s, a)``.

Everything else (target entropy, polyak updates, save/load) is stock SB3.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, SACPolicy
from torch import nn

from eqrobot.geometry.spec import ArraySpec, GeometrySpec
from eqrobot.policies.common import (
    DEFAULT_OBS_KEYS,
    SpecFeaturesMixin,
    SpecFlattenExtractor,
    SpecPolicyMixin,
    make_net,
)
from eqrobot.policies.distributions import RadialSquashedGaussianDistribution
from eqrobot.policies.offpolicy import IsotropicExplorationMixin
from eqrobot.policies.sac_update import FewerOpsSACUpdateMixin

DEFAULT_NET_ARCH = [128, 128]
"""Hidden width x layers of the invariant MLP inside each EquivariantNet (actor and critics)."""

LOG_STD_FIELD = "__log_std__"


def actor_out_spec(action_spec: ArraySpec, n_std: int) -> ArraySpec:
    """Action fields (means) followed by ``n_std`` invariant log-std scalars."""
    return ArraySpec(
        [(f.name, f.kind, f.size) for f in action_spec.fields] + [(LOG_STD_FIELD, "scalar", n_std)]
    )


class EquivariantSACActor(SpecFeaturesMixin, BasePolicy):
    """SAC actor: ``EquivariantNet`` -> (mean, per-field log-std) -> radially squashed Gaussian."""

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
        use_sde: bool = False,
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
        if use_sde:
            raise ValueError("gSDE (use_sde=True) is not supported by the equivariant SAC policy")
        self.geometry_spec = geometry_spec
        self.net_arch = net_arch
        self.net_kind = net
        self.net_kwargs = net_kwargs
        self.features_dim = features_dim
        self.action_dist = RadialSquashedGaussianDistribution(geometry_spec.action)
        self.action_dim = geometry_spec.action.dim
        self.net = make_net(
            features_extractor.in_spec,
            actor_out_spec(geometry_spec.action, self.action_dist.n_std),
            net_arch,
            net,
            net_kwargs,
        )

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

    def get_action_dist_params(self, obs) -> tuple[torch.Tensor, torch.Tensor, dict]:
        return self.dist_params_from_features(self.extract_features(obs, self.features_extractor))

    def dist_params_from_features(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """:meth:`get_action_dist_params` on features already extracted from the observation."""
        out = self.net(features)
        mean, log_std = out[..., : self.action_dim], out[..., self.action_dim :]
        return mean, torch.clamp(log_std, LOG_STD_MIN, LOG_STD_MAX), {}

    def forward(self, obs, deterministic: bool = False) -> torch.Tensor:
        mean, log_std, _ = self.get_action_dist_params(obs)
        return self.action_dist.actions_from_params(mean, log_std, deterministic=deterministic)

    def action_log_prob(self, obs) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std, _ = self.get_action_dist_params(obs)
        return self.action_dist.log_prob_from_params(mean, log_std)

    def action_log_prob_from_features(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`action_log_prob` on features already extracted from the observation (the SAC update
        shares one extraction between the actor and the critics)."""
        mean, log_std, _ = self.dist_params_from_features(features)
        return self.action_dist.log_prob_from_params(mean, log_std)

    def log_prob(self, obs, actions: torch.Tensor) -> torch.Tensor:
        """``log pi(a | s)`` of given actions (inverts the squash; used by tests and diagnostics)."""
        mean, log_std, _ = self.get_action_dist_params(obs)
        return self.action_dist.proba_distribution(mean, log_std).log_prob(actions)

    def _predict(self, observation, deterministic: bool = False) -> torch.Tensor:
        return self(observation, deterministic)


class EquivariantSACPolicy(SpecPolicyMixin, SACPolicy):
    """SAC policy with an SE(3)-equivariant actor and invariant critics.

    Extra keyword arguments (``policy_kwargs``) beyond SB3's ``SACPolicy``:

    :param geometry_spec: the env's GeometrySpec; default ``observation_space.geometry_spec``.
    :param net: ``"equivariant"`` (``eqrobot.nn.EquivariantNet``), ``"mlp"`` (``eqrobot.nn.MLPNet``, a
        non-equivariant ablation with the same distribution), or a class with that constructor.
    :param net_kwargs: extra constructor arguments for the nets (e.g. ``vector_channels``).
    :param obs_keys: observation dict keys fed to the nets (default observation + desired_goal).

    ``net_arch`` is a list of equal hidden widths (its first entry and length become the nets'
    ``hidden`` and ``layers``) or ``dict(pi=[...], qf=[...])``. ``activation_fn``, ``log_std_init``,
    ``use_expln`` and ``clip_mean`` are accepted for signature compatibility and unused.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        net_arch: list[int] | dict[str, list[int]] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        use_sde: bool = False,
        log_std_init: float = -3,
        use_expln: bool = False,
        clip_mean: float = 2.0,
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
            use_sde=use_sde,
            log_std_init=log_std_init,
            use_expln=use_expln,
            clip_mean=clip_mean,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=fe_kwargs,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
            n_critics=n_critics,
            share_features_extractor=share_features_extractor,
        )

    def make_actor(self, features_extractor=None) -> EquivariantSACActor:
        kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return EquivariantSACActor(**kwargs, **self._net_args()).to(self.device)


class EquivariantSAC(IsotropicExplorationMixin, FewerOpsSACUpdateMixin, SAC):
    """SB3 SAC whose warm-up actions and optional action noise are isotropic (vectors uniform in the
    unit ball, noise limited radially; see :mod:`eqrobot.policies.offpolicy`), and whose gradient
    step is SB3's in fewer ops (see :mod:`eqrobot.policies.sac_update`). Same constructor as
    ``stable_baselines3.SAC``; ``SAC("EquivariantPolicy", env)`` works too and differs only there."""

    policy_aliases = {**SAC.policy_aliases, "EquivariantPolicy": EquivariantSACPolicy}
