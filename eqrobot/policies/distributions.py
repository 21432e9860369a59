"""Rotation-equivariant action distributions over a typed action :class:`~eqrobot.geometry.spec.ArraySpec`.

SB3's ``DiagGaussianDistribution`` has one std per action *component* and
``SquashedDiagGaussianDistribution`` squashes each component with ``tanh``: both break rotation
equivariance of a vector action (shared/DESIGN.md section 2). The classes here follow SB3's
``Distribution`` interface (``proba_distribution``, ``log_prob``, ``entropy``, ``sample``, ``mode``,
``actions_from_params``, ``log_prob_from_params``) but are built from the action spec:

* every ``vector``/``pseudovector`` field (and each column of a ``frame`` field) gets ONE isotropic
  std, so its density is a function of ``|a - mu|`` only and ``log pi(R a | R s) == log pi(a | s)``;
* every ``scalar`` entry gets its own std (scalars are invariant, anything goes).

:class:`IsotropicGaussianDistribution` is unbounded (PPO: the env limits the vector radially).
:class:`RadialSquashedGaussianDistribution` (SAC, and PPO with ``squash=True``) maps a Gaussian
sample ``u`` of a vector field to ``a = u * tanh(|u|) / |u|`` (inside the unit ball, equivariant) and
each scalar entry to ``tanh(u)``, with the exact log-det-Jacobian of the map::

    log|det J(u)| = log(1 - tanh(r)^2) + 2 log(tanh(r) / r),   r = |u|

(one radial and two tangential stretch factors), computed stably near ``r = 0`` and for large ``r``.

The std parameters are passed as ``log_std`` of shape ``(batch, n_std)`` (or ``(n_std,)``), one
entry per vector field and per scalar entry in spec order; see :func:`std_layout`.
"""

from __future__ import annotations

import math

import torch
from stable_baselines3.common.distributions import Distribution
from torch.distributions import Normal

from eqrobot.geometry.spec import ArraySpec
from eqrobot.policies.squashed_sample import RadialSquashedSample

_LOG2 = math.log(2.0)


def std_layout(action_spec: ArraySpec) -> tuple[list[str], torch.Tensor]:
    """Names of the std parameters of an action spec and, for each action component, its std index.

    Returns ``(names, index)``: ``names[k]`` labels std parameter ``k`` (``"<field>"`` for a vector
    field, ``"<field>[i]"`` for scalar entry ``i``, ``"<field>[c]"`` for frame column ``c``) and
    ``index`` is a LongTensor of length ``action_spec.dim`` mapping each component to its parameter.
    """
    if len(action_spec) == 0:
        raise ValueError("action spec is empty: nothing to build a distribution over")
    names: list[str] = []
    index: list[int] = []
    for f in action_spec.fields:
        if f.kind == "point":
            raise ValueError(
                f"action field {f.name!r} is a point: actions must be vectors/pseudovectors/frames/scalars "
                "(a point action is not translation-equivariant as a displacement)"
            )
        if f.kind in ("vector", "pseudovector"):
            index += [len(names)] * 3
            names.append(f.name)
        elif f.kind == "frame":
            for c in range(3):
                index += [len(names)] * 3
                names.append(f"{f.name}[{c}]")
        else:  # scalar
            for i in range(f.size):
                index.append(len(names))
                names.append(f"{f.name}[{i}]" if f.size > 1 else f.name)
    return names, torch.tensor(index, dtype=torch.long)


def _vector_blocks(action_spec: ArraySpec) -> tuple[list[int], list[int]]:
    """(start indices of every 3-vector block, indices of every scalar component)."""
    starts: list[int] = []
    scalars: list[int] = []
    for f in action_spec.fields:
        if f.kind == "scalar":
            scalars += list(range(f.start, f.start + f.size))
        else:
            starts += list(range(f.start, f.start + f.size, 3))
    return starts, scalars


def _tanhc(r: torch.Tensor) -> torch.Tensor:
    """tanh(r) / r, smooth and exact to float precision at r -> 0."""
    small = r < 1e-3
    r_safe = torch.where(small, torch.ones_like(r), r)
    return torch.where(small, 1.0 - r * r / 3.0, torch.tanh(r_safe) / r_safe)


def _log_tanhc(r: torch.Tensor) -> torch.Tensor:
    """log(tanh(r) / r) for r >= 0, stable near 0 (Taylor) and for large r."""
    small = r < 1e-2
    r_safe = torch.where(small, torch.ones_like(r), r)
    # log tanh(r) = log(1 - e^{-2r}) - log(1 + e^{-2r})
    big = torch.log(-torch.expm1(-2.0 * r_safe)) - torch.log1p(torch.exp(-2.0 * r_safe)) - torch.log(r_safe)
    r2 = r * r
    return torch.where(small, -r2 / 3.0 + 7.0 / 90.0 * r2 * r2, big)


def _log_one_minus_tanh_sq(r: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(r)^2) = 2 (log 2 - r - softplus(-2 r)), stable for any r."""
    return 2.0 * (_LOG2 - r - torch.nn.functional.softplus(-2.0 * r))


def _atanhc(rho: torch.Tensor) -> torch.Tensor:
    """atanh(rho) / rho for 0 <= rho < 1, smooth at 0."""
    small = rho < 1e-3
    rho_safe = torch.where(small, torch.ones_like(rho) * 0.5, rho)
    return torch.where(small, 1.0 + rho * rho / 3.0, torch.atanh(rho_safe) / rho_safe)


def _norm(v: torch.Tensor) -> torch.Tensor:
    """Euclidean norm over the last axis with a finite gradient at 0."""
    return torch.sqrt((v * v).sum(-1).clamp_min(1e-24))


class IsotropicGaussianDistribution(Distribution):
    """Gaussian over a typed action: one isotropic std per vector field, one std per scalar entry.

    ``proba_distribution(mean, log_std)`` takes ``mean`` ``(B, dim)`` and ``log_std`` ``(B, n_std)``
    or ``(n_std,)`` (see :func:`std_layout`). The density depends on a vector field only through
    ``|a - mean|``, so it is rotation invariant whenever ``mean`` rotates with the state.
    """

    def __init__(self, action_spec: ArraySpec):
        super().__init__()
        self.action_spec = action_spec
        self.std_names, self._index = std_layout(action_spec)
        self.n_std = len(self.std_names)
        self.action_dim = action_spec.dim
        self.mean_actions: torch.Tensor | None = None
        self.log_std: torch.Tensor | None = None

    def expand_log_std(self, log_std: torch.Tensor) -> torch.Tensor:
        """Per-component log-std ``(..., dim)`` from per-field parameters ``(..., n_std)``."""
        if log_std.shape[-1] != self.n_std:
            raise ValueError(
                f"log_std has {log_std.shape[-1]} entries, "
                f"the action spec needs {self.n_std} ({self.std_names})"
            )
        return log_std.index_select(-1, self._index.to(log_std.device))

    def proba_distribution_net(self, *args, **kwargs):
        raise NotImplementedError(
            "equivariant distributions take their parameters from an EquivariantNet head; "
            "see eqrobot.policies.networks"
        )

    def proba_distribution(
        self, mean_actions: torch.Tensor, log_std: torch.Tensor
    ) -> IsotropicGaussianDistribution:
        full = self.expand_log_std(log_std)
        full = full.expand_as(mean_actions) if full.dim() < mean_actions.dim() else full
        self.mean_actions, self.log_std = mean_actions, log_std
        # no argument validation: its checks (finite, positive scale, support) cost more ops than the
        # density itself, twice per SAC update; the parameters come from our own nets
        self.distribution = Normal(mean_actions, full.exp(), validate_args=False)
        return self

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.distribution.log_prob(actions).sum(-1)

    def entropy(self) -> torch.Tensor | None:
        return self.distribution.entropy().sum(-1)

    def sample(self) -> torch.Tensor:
        return self.distribution.rsample()

    def mode(self) -> torch.Tensor:
        return self.distribution.mean

    def actions_from_params(self, mean_actions, log_std, deterministic: bool = False) -> torch.Tensor:
        self.proba_distribution(mean_actions, log_std)
        return self.get_actions(deterministic=deterministic)

    def log_prob_from_params(self, mean_actions, log_std) -> tuple[torch.Tensor, torch.Tensor]:
        actions = self.actions_from_params(mean_actions, log_std)
        return actions, self.log_prob(actions)


class RadialSquashedGaussianDistribution(IsotropicGaussianDistribution):
    """:class:`IsotropicGaussianDistribution` pushed through the radial squash (SAC's bounded actions).

    Each 3-vector block ``u`` maps to ``u * tanh(|u|) / |u|`` (strictly inside the unit ball, same
    direction, so it commutes with rotations); each scalar entry maps to ``tanh(u)``. The log-density
    includes the exact log-det-Jacobian. ``entropy()`` returns None (no closed form; SB3 then uses
    ``-log_prob`` as its estimate, as for its own squashed Gaussian).

    :param epsilon: keeps ``|a|`` (and ``|a_scalar|``) below ``1 - epsilon`` when inverting the squash
        in :meth:`log_prob` of given actions.
    """

    def __init__(self, action_spec: ArraySpec, epsilon: float = 1e-6):
        super().__init__(action_spec)
        self.epsilon = epsilon
        starts, scalars = _vector_blocks(action_spec)
        self._vec_idx = torch.tensor([[s, s + 1, s + 2] for s in starts], dtype=torch.long).reshape(-1, 3)
        self._sca_idx = torch.tensor(scalars, dtype=torch.long)
        # vectors first, then scalars (every eqrobot env): slices instead of gathers and scatters
        self._n_vec_prefix = len(starts) if starts == list(range(0, 3 * len(starts), 3)) else None
        if self._n_vec_prefix is not None and scalars != list(range(3 * len(starts), action_spec.dim)):
            self._n_vec_prefix = None
        self.gaussian_actions: torch.Tensor | None = None

    # --- the squash and its inverse -------------------------------------------------------
    def squash(self, u: torch.Tensor) -> torch.Tensor:
        """Radial tanh on every vector block, tanh on every scalar entry."""
        n = self._n_vec_prefix
        if n is not None:  # the same elementwise maths on slices
            v = u[..., : 3 * n].unflatten(-1, (n, 3))
            parts = [(v * _tanhc(_norm(v))[..., None]).flatten(-2)] if n else []
            if len(self._sca_idx):
                parts.append(torch.tanh(u[..., 3 * n :]))
            return torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        out = torch.empty_like(u)
        if len(self._vec_idx):
            v = u[..., self._vec_idx]  # (..., n_vec, 3)
            r = _norm(v)
            out[..., self._vec_idx] = v * _tanhc(r)[..., None]
        if len(self._sca_idx):
            out[..., self._sca_idx] = torch.tanh(u[..., self._sca_idx])
        return out

    def unsquash(self, a: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`squash`, with norms clipped to ``1 - epsilon``."""
        out = torch.empty_like(a)
        if len(self._vec_idx):
            v = a[..., self._vec_idx]
            rho = _norm(v)
            scale = torch.clamp(rho, max=1.0 - self.epsilon) / rho  # radial clip (no-op inside the ball)
            out[..., self._vec_idx] = v * (scale * _atanhc(rho * scale))[..., None]
        if len(self._sca_idx):
            s = a[..., self._sca_idx].clamp(-1.0 + self.epsilon, 1.0 - self.epsilon)
            out[..., self._sca_idx] = torch.atanh(s)
        return out

    def log_det_jacobian(self, u: torch.Tensor) -> torch.Tensor:
        """``log|det d squash / du|`` summed over the action, shape ``(...,)``."""
        n = self._n_vec_prefix
        total = torch.zeros(u.shape[:-1], dtype=u.dtype, device=u.device)
        if len(self._vec_idx):
            v = u[..., : 3 * n].unflatten(-1, (n, 3)) if n is not None else u[..., self._vec_idx]
            r = _norm(v)
            total = total + (_log_one_minus_tanh_sq(r) + 2.0 * _log_tanhc(r)).sum(-1)
        if len(self._sca_idx):
            s = u[..., 3 * n :] if n is not None else u[..., self._sca_idx]
            total = total + _log_one_minus_tanh_sq(s.abs()).sum(-1)
        return total

    # --- SB3 interface ------------------------------------------------------------------
    def log_prob(self, actions: torch.Tensor, gaussian_actions: torch.Tensor | None = None) -> torch.Tensor:
        if gaussian_actions is None:
            gaussian_actions = self.unsquash(actions)
        return super().log_prob(gaussian_actions) - self.log_det_jacobian(gaussian_actions)

    def entropy(self) -> torch.Tensor | None:
        return None

    def sample(self) -> torch.Tensor:
        self.gaussian_actions = super().sample()
        return self.squash(self.gaussian_actions)

    def mode(self) -> torch.Tensor:
        self.gaussian_actions = super().mode()
        return self.squash(self.gaussian_actions)

    def log_prob_from_params(self, mean_actions, log_std) -> tuple[torch.Tensor, torch.Tensor]:
        if (
            self._n_vec_prefix is not None
            and torch.is_grad_enabled()
            and (mean_actions.requires_grad or log_std.requires_grad)
        ):  # the same forward ops as one autograd node (SAC's actor update; see squashed_sample.py)
            self.proba_distribution(mean_actions, log_std)
            dist = self.distribution
            actions, log_prob, self.gaussian_actions = RadialSquashedSample.apply(
                dist.loc, dist.scale, self._n_vec_prefix
            )
            return actions, log_prob
        actions = self.actions_from_params(mean_actions, log_std)
        return actions, self.log_prob(actions, self.gaussian_actions)


def limit_action(action, action_spec: ArraySpec):
    """Limit an action the equivariant way: every 3-vector block to the unit ball (``d / max(1, |d|)``),
    every scalar entry to [-1, 1]. Works on numpy arrays and torch tensors of shape ``(..., dim)``;
    returns a new array. This is what :class:`~eqrobot.policies.td3.EquivariantTD3` uses instead of
    SB3's per-component ``clip(-1, 1)``.
    """
    import numpy as np

    starts, scalars = _vector_blocks(action_spec)
    if isinstance(action, np.ndarray):
        out = np.array(action, copy=True)
        for s in starts:
            v = out[..., s : s + 3]
            n = np.linalg.norm(v, axis=-1, keepdims=True)
            out[..., s : s + 3] = v / np.maximum(1.0, n)
        if scalars:
            out[..., scalars] = np.clip(out[..., scalars], -1.0, 1.0)
        return out
    out = action.clone()
    for s in starts:
        v = action[..., s : s + 3]
        n = torch.linalg.vector_norm(v, dim=-1, keepdim=True)
        out[..., s : s + 3] = v / torch.clamp(n, min=1.0)
    if scalars:
        out[..., scalars] = action[..., scalars].clamp(-1.0, 1.0)
    return out


def limit_norm(noise, action_spec: ArraySpec, max_norm: float):
    """Limit each 3-vector block of ``noise`` to norm ``max_norm`` and each scalar entry to
    ``[-max_norm, max_norm]`` (the isotropic version of SB3's ``noise.clamp(-c, c)``)."""
    return limit_action(noise / max_norm, action_spec) * max_norm
