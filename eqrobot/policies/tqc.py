"""Equivariant TQC policy (sb3-contrib): the SAC policy's equivariant actor, invariant quantile critics.

Use it as ``TQC("EquivariantPolicy", env)`` after ``import eqrobot`` (with or without
``replay_buffer_class=HerReplayBuffer``), or pass :class:`EquivariantTQCPolicy` explicitly;
:class:`EquivariantTQC` also makes warm-up and noise isotropic, like
:class:`~eqrobot.policies.sac.EquivariantSAC`.

* Actor: :class:`~eqrobot.policies.sac.EquivariantSACActor` itself (TQC's actor is SAC's: a
  squashed Gaussian trained on ``alpha log pi - Q``), so ``pi(g.a | g.s) == pi(a | s)``.
* Critics: :class:`InvariantQuantileCritic`, ``n_critics`` invariant networks with ``n_quantiles``
  invariant scalar outputs each: every quantile satisfies ``Z_k(g.s, g.a) == Z_k(s, a)``. TQC's
  truncation (sort all quantiles, drop the top ones) acts on invariant numbers, so it keeps the
  target invariant.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from sb3_contrib import TQC
from sb3_contrib.tqc.policies import TQCPolicy
from stable_baselines3.common.type_aliases import Schedule
from torch import nn

from eqrobot.geometry.spec import GeometrySpec
from eqrobot.policies.common import (
    DEFAULT_OBS_KEYS,
    InvariantCritic,
    SpecFlattenExtractor,
    SpecPolicyMixin,
)
from eqrobot.policies.offpolicy import IsotropicExplorationMixin
from eqrobot.policies.sac import DEFAULT_NET_ARCH, EquivariantSACActor


class InvariantQuantileCritic(InvariantCritic):
    """TQC's critic interface on invariant networks: ``forward(obs, actions) -> (B, n_critics, n_quantiles)``.

    Also carries the attributes ``TQC.train`` reads: ``n_quantiles``, ``n_critics``, ``quantiles_total``.
    """

    def __init__(self, *args: Any, n_quantiles: int = 25, **kwargs: Any):
        if int(n_quantiles) < 1:
            raise ValueError(f"n_quantiles must be >= 1, got {n_quantiles}")
        kwargs.pop("n_outputs", None)
        super().__init__(*args, n_outputs=int(n_quantiles), **kwargs)
        self.n_quantiles = int(n_quantiles)
        self.quantiles_total = self.n_quantiles * self.n_critics

    def forward(self, obs, actions: torch.Tensor) -> torch.Tensor:
        return torch.stack(super().forward(obs, actions), dim=1)

    def q1_forward(self, obs, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("a quantile critic has no single Q head; use forward(obs, actions)")


class EquivariantTQCPolicy(SpecPolicyMixin, TQCPolicy):
    """TQC policy with an SE(3)-equivariant actor and invariant quantile critics.

    Extra keyword arguments (``policy_kwargs``) beyond sb3-contrib's ``TQCPolicy`` are those of
    :class:`~eqrobot.policies.sac.EquivariantSACPolicy`: ``geometry_spec``, ``net`` (``"equivariant"``
    or ``"mlp"`` or a class), ``net_kwargs``, ``obs_keys``. ``n_quantiles`` and ``n_critics`` are
    TQC's. ``net_arch`` is a list of equal hidden widths or ``dict(pi=[...], qf=[...])``;
    ``activation_fn``, ``log_std_init``, ``use_expln`` and ``clip_mean`` are accepted for signature
    compatibility and unused.
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
        n_quantiles: int = 25,
        n_critics: int = 2,
        share_features_extractor: bool = False,
        geometry_spec: GeometrySpec | dict | None = None,
        net: str | type = "equivariant",
        net_kwargs: dict[str, Any] | None = None,
        obs_keys: tuple[str, ...] = DEFAULT_OBS_KEYS,
    ):
        # set before the base __init__, which builds the actor and critics via make_actor/make_critic
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
            n_quantiles=n_quantiles,
            n_critics=n_critics,
            share_features_extractor=share_features_extractor,
        )

    def make_actor(self, features_extractor=None) -> EquivariantSACActor:
        kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return EquivariantSACActor(**kwargs, **self._net_args()).to(self.device)

    def make_critic(self, features_extractor=None) -> InvariantQuantileCritic:
        kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return InvariantQuantileCritic(**kwargs, **self._net_args()).to(self.device)


class EquivariantTQC(IsotropicExplorationMixin, TQC):
    """sb3-contrib TQC whose warm-up actions and optional action noise are isotropic (vectors uniform
    in the unit ball, noise limited radially; see :mod:`eqrobot.policies.offpolicy`). Same
    constructor as ``sb3_contrib.TQC``; ``TQC("EquivariantPolicy", env)`` works too and differs only
    there."""

    policy_aliases = {**TQC.policy_aliases, "EquivariantPolicy": EquivariantTQCPolicy}
