"""Pieces shared by the equivariant SAC, TD3 and PPO policies.

* :func:`resolve_geometry_spec` reads the env's :class:`~eqrobot.geometry.spec.GeometrySpec` from
  ``observation_space.geometry_spec`` (or the ``geometry_spec`` policy kwarg) and checks it against
  the spaces, failing with a message that says what is wrong.
* :class:`SpecFlattenExtractor` turns the Dict observation into one flat array laid out by
  ``ArraySpec.concat({"observation": ..., "desired_goal": ...})`` (no parameters, no normalisation:
  any per-component scaling would break equivariance).
* :func:`make_net` builds an ``eqrobot.nn.EquivariantNet`` (or ``MLPNet``, or any class with that
  constructor signature) from SB3-style ``net_arch`` lists.
* :class:`InvariantCritic` is SB3's ``ContinuousCritic`` interface (``forward``, ``q1_forward``)
  with each Q-network an invariant network on observation + goal + action.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn

from eqrobot.geometry.spec import ArraySpec, GeometrySpec
from eqrobot.nn.grouped import can_group, grouped_forward
from eqrobot.policies.lean_acting import first_parameter, lean_predict, parameter_device
from eqrobot.policies.normalization import refuse_vec_normalize_while_building

DEFAULT_OBS_KEYS = ("observation", "desired_goal")
"""Observation dict keys fed to the networks, in this order. ``achieved_goal`` is left out by default:
in every eqrobot env it repeats fields already in ``observation``."""


class SpecError(ValueError):
    """The observation/action spaces and the geometry spec do not fit together."""


def resolve_geometry_spec(
    observation_space: spaces.Space,
    action_space: spaces.Space | None = None,
    geometry_spec: GeometrySpec | dict | None = None,
    obs_keys: tuple[str, ...] = DEFAULT_OBS_KEYS,
) -> GeometrySpec:
    """The geometry spec for these spaces: the explicit argument, else ``observation_space.geometry_spec``.

    Raises :class:`SpecError` naming the problem when there is no spec, when the observation is not a
    Dict holding ``obs_keys``, or when a spec part's dimension differs from its space's.
    """
    if geometry_spec is None:
        geometry_spec = getattr(observation_space, "geometry_spec", None)
    if geometry_spec is None:
        raise SpecError(
            "equivariant policies need the env's geometry spec, and this observation space has none: "
            "use an eqrobot env (it sets `observation_space.geometry_spec`) or pass "
            "policy_kwargs={'geometry_spec': GeometrySpec(...)}"
        )
    if isinstance(geometry_spec, dict):
        geometry_spec = GeometrySpec.from_dict(geometry_spec)
    if not isinstance(geometry_spec, GeometrySpec):
        raise SpecError(
            f"geometry_spec must be a GeometrySpec (or its to_dict()), got {type(geometry_spec).__name__}"
        )
    if not isinstance(observation_space, spaces.Dict):
        raise SpecError(
            f"equivariant policies expect a Dict observation with keys {list(obs_keys)}, got "
            f"{type(observation_space).__name__}"
        )
    parts = geometry_spec.parts()
    for key in obs_keys:
        if key not in observation_space.spaces:
            raise SpecError(f"observation has no key {key!r}; it has {list(observation_space.spaces)}")
        if key not in parts:
            raise SpecError(f"the geometry spec has no part {key!r}; it has {list(parts)}")
        space = observation_space.spaces[key]
        if not isinstance(space, spaces.Box) or len(space.shape) != 1 or space.shape[0] != parts[key].dim:
            raise SpecError(
                f"observation[{key!r}] is {space}, but its spec has {parts[key].dim} entries ({parts[key]})"
            )
    if action_space is None:
        return geometry_spec
    if not isinstance(action_space, spaces.Box) or action_space.shape != (geometry_spec.action.dim,):
        raise SpecError(f"action space {action_space} does not match the action spec {geometry_spec.action}")
    return geometry_spec


def input_spec(geometry_spec: GeometrySpec, obs_keys: tuple[str, ...] = DEFAULT_OBS_KEYS) -> ArraySpec:
    """The flat network input layout: ``obs_keys`` parts end to end, fields prefixed ``"<key>/"``."""
    return ArraySpec.concat({key: geometry_spec.parts()[key] for key in obs_keys})


class SpecFeaturesMixin:
    """``extract_features`` that keeps the policy's own dtype (SB3's ``preprocess_obs`` casts to
    float32), so a policy converted with ``.double()`` runs, and can be tested, in float64."""

    @property
    def device(self) -> torch.device:
        return parameter_device(self)

    def extract_features(self, obs, features_extractor=None):
        extractor = self.features_extractor if features_extractor is None else features_extractor
        dtype = first_parameter(self).dtype
        if not isinstance(obs, dict):
            raise SpecError(f"equivariant policies take Dict observations, got {type(obs).__name__}")
        return extractor({k: torch.as_tensor(v).to(dtype) for k, v in obs.items()})


DEFAULT_SCALES = {"point": 5.0}
"""Positions in units of 20 cm: with raw metres, relative positions (~0.05-0.7 m) give dot-product
invariants of 1e-3..0.5 and the actor needs large weights to output unit displacements; measured on
Reach (SAC+HER, same seed and budget): 100% success after 1,200 steps with this scale, 0-25% after
6,000 steps without."""


class SpecFlattenExtractor(BaseFeaturesExtractor):
    """Dict observation -> flat array laid out by :func:`input_spec` (parameter-free, equivariant).

    :param scales: optional per-field multipliers, keyed by field kind (``"point"``, ``"vector"``,
        ...) or field name (``"ee_velocity"`` or ``"observation/ee_velocity"``; names win over kinds),
        e.g. ``{"point": 5.0}`` (the default, :data:`DEFAULT_SCALES`; ``{}`` for none). One factor
        per *field* commutes with rotations and, applied to every point alike, with translations; a
        per-component normalisation would not. Set it with
        ``policy_kwargs={"features_extractor_kwargs": {"scales": ...}}``.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        geometry_spec: GeometrySpec | dict | None = None,
        obs_keys: tuple[str, ...] = DEFAULT_OBS_KEYS,
        scales: dict[str, float] | None = None,
    ):
        spec = resolve_geometry_spec(observation_space, None, geometry_spec, tuple(obs_keys))
        self.in_spec = input_spec(spec, tuple(obs_keys))
        super().__init__(observation_space, self.in_spec.dim)
        self.geometry_spec = spec
        self.obs_keys = tuple(obs_keys)
        self.scales = dict(DEFAULT_SCALES if scales is None else scales)
        point_scales = set()
        factors = torch.ones(self.in_spec.dim)
        for f in self.in_spec.fields:
            short = f.name.split("/", 1)[-1]
            factor = self.scales.get(f.name, self.scales.get(short, self.scales.get(f.kind, 1.0)))
            factors[f.slice] = float(factor)
            if f.kind == "point":
                point_scales.add(float(factor))
        if len(point_scales) > 1:
            raise ValueError(
                f"all point fields need the same scale (translations move them alike), got {point_scales}"
            )
        self.register_buffer("factors", factors, persistent=False)
        self._identity = bool((factors == 1).all())

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        x = torch.cat([observations[k] for k in self.obs_keys], dim=-1)
        return x if self._identity else x * self.factors.to(x.dtype)


# --- networks -----------------------------------------------------------------------------

NET_KINDS = ("equivariant", "mlp")


def net_class(net: str | type) -> type:
    """``"equivariant"`` -> ``eqrobot.nn.EquivariantNet``, ``"mlp"`` -> ``eqrobot.nn.MLPNet``,
    a class -> itself."""
    if isinstance(net, type):
        return net
    from eqrobot import nn as eqnn

    if net == "equivariant":
        return eqnn.EquivariantNet
    if net == "mlp":
        return eqnn.MLPNet
    raise ValueError(f"unknown net {net!r}; expected one of {NET_KINDS} or an nn.Module class")


def make_net(
    in_spec: ArraySpec,
    out_spec: ArraySpec,
    arch: list[int] | None,
    net: str | type = "equivariant",
    net_kwargs: dict[str, Any] | None = None,
) -> nn.Module:
    """Build ``net(in_spec, out_spec, hidden=arch[0], layers=len(arch), **net_kwargs)``.

    ``arch`` is an SB3-style list of hidden widths; equivariant nets use one width for every layer, so
    only its first entry and its length are used (``[]`` means the net's own defaults).
    """
    kwargs = dict(net_kwargs or {})
    if arch:
        if len(set(arch)) > 1:
            raise ValueError(f"net_arch {arch}: equivariant nets use one hidden width for all layers")
        kwargs.setdefault("hidden", int(arch[0]))
        kwargs.setdefault("layers", len(arch))
    return net_class(net)(in_spec, out_spec, **kwargs)


def actor_critic_arch(
    net_arch: list[int] | dict[str, list[int]] | None, default: list[int]
) -> tuple[list, list]:
    """``(actor_arch, critic_arch)`` from an SB3 ``net_arch`` (list shared, or dict with pi and qf/vf)."""
    if net_arch is None:
        return list(default), list(default)
    if isinstance(net_arch, dict):
        critic = net_arch.get("qf", net_arch.get("vf"))
        if "pi" not in net_arch or critic is None:
            raise ValueError(f"net_arch dict needs keys 'pi' and 'qf' (or 'vf'), got {list(net_arch)}")
        return list(net_arch["pi"]), list(critic)
    return list(net_arch), list(net_arch)


class SpecPolicyMixin:
    """What every eqrobot SB3 policy keeps: the geometry spec it reads, the network family that builds
    its parts, and those choices saved with the policy so ``SAC.load``/``PPO.load`` rebuild it."""

    def _init_spec(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        geometry_spec: GeometrySpec | dict | None,
        net: str | type,
        net_kwargs: dict[str, Any] | None,
        obs_keys: tuple[str, ...],
        features_extractor_kwargs: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """Resolve and store the spec and network choices; returns the features-extractor kwargs."""
        obs_keys = tuple(obs_keys)
        refuse_vec_normalize_while_building()  # SB3's per-component VecNormalize breaks equivariance
        self.geometry_spec = resolve_geometry_spec(observation_space, action_space, geometry_spec, obs_keys)
        self.net_kind = net
        self.net_kwargs = dict(net_kwargs or {})
        self.obs_keys = obs_keys
        return {
            "geometry_spec": self.geometry_spec,
            "obs_keys": obs_keys,
            **(features_extractor_kwargs or {}),
        }

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            geometry_spec=self.geometry_spec,
            net=self.net_kind,
            net_kwargs=self.net_kwargs,
            obs_keys=self.obs_keys,
        )
        return data

    def set_training_mode(self, mode: bool) -> None:
        """SB3's ``set_training_mode`` without its cost (see :func:`set_training_mode_cached`)."""
        set_training_mode_cached(self, mode)

    @property
    def device(self) -> torch.device:
        return parameter_device(self)

    fast_predict: bool = True
    """Act through :func:`~eqrobot.policies.lean_acting.lean_predict` (set False on the policy or
    class for SB3's own ``predict``, e.g. to compare)."""

    def predict(self, observation, state=None, episode_start=None, deterministic: bool = False):
        """SB3's ``BasePolicy.predict``, the same actions bit for bit, through
        :func:`~eqrobot.policies.lean_acting.lean_predict` where it applies (Dict observations of
        numpy arrays); anything else goes to SB3."""
        out = lean_predict(self, observation, state, deterministic) if self.fast_predict else None
        return super().predict(observation, state, episode_start, deterministic) if out is None else out

    def _net_args(self) -> dict[str, Any]:
        return {"geometry_spec": self.geometry_spec, "net": self.net_kind, "net_kwargs": self.net_kwargs}

    def make_critic(self, features_extractor=None) -> InvariantCritic:
        """Invariant Q-networks (SAC, TD3); SB3's off-policy policies call this."""
        kwargs = self._update_features_extractor(self.critic_kwargs, features_extractor)
        return InvariantCritic(**kwargs, **self._net_args()).to(self.device)


def set_training_mode_cached(policy, mode: bool) -> None:
    """SB3's ``policy.set_training_mode(mode)`` (``Module.train`` on every submodule) without its cost.

    SB3 calls it twice per env step (acting, then training), and ``Module.train`` recurses with
    one ``__setattr__`` per submodule: 266k calls in a 3,000-step SAC run. The module list never
    changes after the SB3 base ``__init__`` builds the nets, so it is collected once and each flag
    set directly. Used by eqrobot's policies and, through the algorithm classes, by SB3's stock MLP
    policies too (their nets have no dropout or batch norm either; the flag is set all the same)."""
    modules = policy.__dict__.get("_all_modules")
    if modules is None:
        modules = policy.__dict__["_all_modules"] = tuple(policy.modules())
    for module in modules:
        module.__dict__["training"] = mode
    policy.__dict__["training"] = mode


class InvariantCritic(SpecFeaturesMixin, BaseModel):
    """``n_critics`` invariant Q-networks ``Q(s, a)`` on the flat observation+goal+action array.

    Same interface as SB3's ``ContinuousCritic``: ``forward(obs, actions) -> tuple of (B, n_outputs)``
    (``n_outputs=1`` for SAC/TD3) and ``q1_forward``. With an ``EquivariantNet`` each
    ``Q(g.s, g.a) == Q(s, a)`` for every rigid motion ``g`` (points translate, vectors rotate, scalars stay).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Box,
        net_arch: list[int],
        features_extractor: SpecFlattenExtractor,
        features_dim: int,
        geometry_spec: GeometrySpec,
        n_critics: int = 2,
        share_features_extractor: bool = False,
        net: str | type = "equivariant",
        net_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        n_outputs: int = 1,
        **_ignored: Any,
    ):
        super().__init__(
            observation_space,
            action_space,
            features_extractor=features_extractor,
            normalize_images=normalize_images,
        )
        self.share_features_extractor = share_features_extractor
        self.n_critics = n_critics
        self.q_in_spec = ArraySpec.concat(
            {
                **{k: geometry_spec.parts()[k] for k in features_extractor.obs_keys},
                "action": geometry_spec.action,
            }
        )
        out = ArraySpec([("q", "scalar", n_outputs)])  # n_outputs > 1: TQC's quantiles
        self.q_networks: list[nn.Module] = []
        for idx in range(n_critics):
            q_net = make_net(self.q_in_spec, out, net_arch, net, net_kwargs)
            self.add_module(f"qf{idx}", q_net)
            self.q_networks.append(q_net)
        # the Q-networks share their input: evaluate them as one batched net where possible
        self.grouped = can_group(self.q_networks)

    def forward(self, obs, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with torch.set_grad_enabled(not self.share_features_extractor and torch.is_grad_enabled()):
            features = self.extract_features(obs, self.features_extractor)
        return self.q_values(features, actions)

    def q_values(self, features: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """:meth:`forward` on ``features`` already extracted from the observation (the SAC update
        extracts them once per batch for the actor and all critic passes; see
        :func:`same_features`)."""
        x = torch.cat([features, actions], dim=1)
        if self.grouped:
            return grouped_forward(self.q_networks, x)
        return tuple(q(x) for q in self.q_networks)

    def q1_forward(self, obs, actions: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            features = self.extract_features(obs, self.features_extractor)
        return self.q_networks[0](torch.cat([features, actions], dim=1))


def same_features(*models) -> bool:
    """True when every model's ``extract_features`` gives the same tensor for the same observation:
    all parameter-free :class:`SpecFlattenExtractor` with the same keys and scales, and models of
    one dtype. Then features extracted once can be fed to each (bit for bit what each computes)."""
    extractors = [getattr(m, "features_extractor", None) for m in models]
    if not all(isinstance(e, SpecFlattenExtractor) for e in extractors):
        return False
    first = extractors[0]
    params = [first_parameter(m) for m in models]
    if any(p is None for p in params) or len({p.dtype for p in params}) > 1:
        return False
    return all(
        e.obs_keys == first.obs_keys
        and e._identity == first._identity
        and torch.equal(e.factors, first.factors)
        and not any(True for _ in e.parameters())
        for e in extractors
    )
