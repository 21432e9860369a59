"""EquivariantVecNormalize: SB3's ``VecNormalize`` contract, with statistics that respect the geometry spec.

SB3's ``VecNormalize`` standardises every component on its own: it shifts points by a fixed mean and
scales x, y and z differently, so a rotated scene no longer gives a rotated observation and an
equivariant policy fed it learns nothing useful (issue 13: critic loss 1e3-2e4, 0/10 on Reach).
This wrapper normalises per *field* of the env's geometry spec instead:

============  ===============================================================================
kind          normalisation (statistics are running, as in VecNormalize)
============  ===============================================================================
point         ``(p - c) / s``: ``c`` the running centroid of all points, ``s`` ONE scalar,
              the points' RMS spread ``sqrt(trace(cov) / 3)``; the same ``c, s`` for every
              point field of every key, so distances between points keep their ratios
vector        ``v / s_f``, ``s_f = sqrt(E|v|^2 / 3)`` per field (pseudovectors alike); then
              limited to norm ``clip_obs`` radially (never per component)
frame         untouched (already unit columns)
scalar        standardised per component, clipped to ``[-clip_obs, clip_obs]``, as VecNormalize
============  ===============================================================================

Fields with the same name in several keys (``object_position`` in ``observation``,
``achieved_goal`` and ``desired_goal``) share one statistic, so goals stay consistent with the
observation. Under a world motion ``x -> R x + t`` every statistic is invariant except the centroid,
which moves with the scene; hence ``normalize(g . obs) == g' . normalize(obs)`` with
``g' = (R, (t + (R - I) c) / s)`` (see :meth:`EquivariantVecNormalize.normalized_motion`), and exactly
``R . normalize(obs)`` once the statistics were gathered in the moved scene. The equivariant networks
take points relative to the base, so the translation part never reaches them. The map is invertible
(SB3 stores terminal observations through ``unnormalize_obs``), which a per-sample anchor would not be.

Everything else is SB3's: ``training``, ``norm_reward``, ``gamma``, ``save``/``VecNormalize.load``
(pickle; rl-zoo3's file name is ``vecnormalize.pkl``), ``sync_envs_normalization`` for eval envs, and
HER (``HerReplayBuffer`` stores unnormalised goals, computes rewards on them, then normalises the
relabelled dict through ``normalize_obs``).
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from eqrobot.geometry.spec import Field, GeometrySpec

__all__ = ["EquivariantObsStats", "EquivariantVecNormalize"]

_POINTS = "points"  # the one statistic every point field shares


class EquivariantObsStats:
    """Running statistics of a goal-conditioned observation dict, grouped by the geometry spec.

    ``groups[name]`` is a ``RunningMeanStd``: shape ``(3,)`` for the shared point group and for each
    vector/pseudovector field name, ``(size,)`` for each scalar field name. Frames have none.
    """

    def __init__(self, geometry_spec: GeometrySpec, keys: tuple[str, ...]):
        parts = geometry_spec.parts()
        self.keys = tuple(keys)
        self.fields: dict[str, tuple[Field, ...]] = {key: parts[key].fields for key in self.keys}
        seen: dict[str, Field] = {}
        self.groups: dict[str, RunningMeanStd] = {}
        self.kinds: dict[str, str] = {}
        for key in self.keys:
            for f in self.fields[key]:
                if f.kind == "frame":
                    continue
                other = seen.setdefault(f.name, f)
                if (other.kind, other.size) != (f.kind, f.size):
                    raise ValueError(
                        f"field {f.name!r} is a {other.kind}[{other.size}] in one observation key and a "
                        f"{f.kind}[{f.size}] in another: fields sharing a name share statistics"
                    )
                group = self.group_of(f)
                if group not in self.groups:
                    # RunningMeanStd's prior (mean 0, var 1) would not move with the scene: weight it ~0
                    shape = (f.size if f.kind == "scalar" else 3,)
                    self.groups[group] = RunningMeanStd(epsilon=1e-12, shape=shape)
                    self.kinds[group] = f.kind

    @staticmethod
    def group_of(field: Field) -> str:
        return _POINTS if field.kind == "point" else field.name

    def _samples(self, obs: dict) -> dict[str, list[np.ndarray]]:
        out: dict[str, list[np.ndarray]] = {g: [] for g in self.groups}
        for key in self.keys:
            x = np.asarray(obs[key], dtype=np.float64)
            for f in self.fields[key]:
                if f.kind != "frame":
                    out[self.group_of(f)].append(x[..., f.slice].reshape(-1, f.size))
        return out

    def update(self, obs: dict) -> None:
        """Fold a batch of observation dicts ``{key: (n, dim)}`` into the statistics."""
        for group, arrays in self._samples(obs).items():
            self.groups[group].update(np.concatenate(arrays, axis=0))

    def scale(self, group: str, epsilon: float) -> float | np.ndarray:
        """The divisor of a group: ONE scalar for points and vectors, per component for scalars."""
        rms = self.groups[group]
        if group == _POINTS:  # RMS spread about the centroid: trace of the covariance, rotation invariant
            return float(np.sqrt(rms.var.sum() / 3.0 + epsilon))
        if self.kinds[group] == "scalar":
            return np.sqrt(rms.var + epsilon)
        # vectors are not centred (a mean vector would pick a direction): E|v|^2 = sum(var + mean^2)
        return float(np.sqrt((rms.var + rms.mean**2).sum() / 3.0 + epsilon))

    @property
    def centroid(self) -> np.ndarray:
        """The running mean of all point fields (the point normalised positions are taken from)."""
        return self.groups[_POINTS].mean if _POINTS in self.groups else np.zeros(3)


class EquivariantVecNormalize(VecNormalize):
    """A ``VecNormalize`` whose observation statistics follow the env's geometry spec (module docstring).

    Args:
        venv: the vectorized env; its observation space must be a Dict carrying ``geometry_spec``
            (every eqrobot env does), or pass ``geometry_spec``.
        training, norm_obs, norm_reward, clip_reward, gamma, epsilon: as SB3's ``VecNormalize``.
        clip_obs: bound for standardised scalars (per component) and for normalised vectors (norm).
        norm_obs_keys: the observation keys to normalise (default: every key the spec describes).
        geometry_spec: the spec, if the observation space does not carry it.

    Use it where ``VecNormalize`` goes: ``SAC("EquivariantPolicy", EquivariantVecNormalize(venv))``, or
    in an rl-zoo3 hyperparameter file ``vec_env_wrapper: eqrobot.envs.normalization.EquivariantVecNormalize``
    with ``normalize: False`` (docs/rl_zoo3.md says what rl-zoo3 then does and does not save).
    """

    def __init__(
        self,
        venv: VecEnv,
        training: bool = True,
        norm_obs: bool = True,
        norm_reward: bool = True,
        clip_obs: float = 10.0,
        clip_reward: float = 10.0,
        gamma: float = 0.99,
        epsilon: float = 1e-8,
        norm_obs_keys: list[str] | None = None,
        geometry_spec: GeometrySpec | dict | None = None,
    ):
        space = venv.observation_space
        spec = geometry_spec if geometry_spec is not None else getattr(space, "geometry_spec", None)
        if spec is None:  # a wrapper rebuilt the space: the env itself still has it
            try:
                spec = venv.get_attr("geometry_spec", [0])[0]
            except AttributeError:
                pass
        if spec is None:
            raise ValueError(
                "EquivariantVecNormalize needs the env's geometry spec and the observation space has "
                "none: wrap an eqrobot env (its observation space carries `geometry_spec`) or pass "
                "geometry_spec=GeometrySpec(...)"
            )
        spec = GeometrySpec.from_dict(spec) if isinstance(spec, dict) else spec
        if not isinstance(space, spaces.Dict):
            raise ValueError(
                f"EquivariantVecNormalize normalises Dict observations laid out by a geometry spec, got "
                f"{type(space).__name__}; do not flatten the observation before this wrapper"
            )
        parts = spec.parts()
        keys = (
            [k for k in space.spaces if k in parts and k != "action"]
            if norm_obs_keys is None
            else norm_obs_keys
        )
        for key in keys:
            if key not in space.spaces or key not in parts:
                raise ValueError(
                    f"norm_obs_keys entry {key!r} is not both an observation key {list(space.spaces)} "
                    f"and a geometry spec part {list(parts)}"
                )
            if space.spaces[key].shape != (parts[key].dim,):
                raise ValueError(
                    f"observation[{key!r}] has shape {space.spaces[key].shape}, "
                    f"its spec has {parts[key].dim} entries"
                )
        super().__init__(
            venv,
            training=training,
            norm_obs=norm_obs,
            norm_reward=norm_reward,
            clip_obs=clip_obs,
            clip_reward=clip_reward,
            gamma=gamma,
            epsilon=epsilon,
            norm_obs_keys=list(keys),
        )
        self.geometry_spec = spec
        # Not a dict: VecNormalize's step_wait/reset then call `obs_rms.update(obs)` with the whole dict.
        self.obs_rms = EquivariantObsStats(spec, tuple(keys))

    def reset(self) -> dict:
        # VecNormalize.reset asserts its statistics are one RunningMeanStd; otherwise the same steps
        obs = self.venv.reset()
        self.old_obs = obs
        self.returns = np.zeros(self.num_envs)
        if self.training and self.norm_obs:
            self.obs_rms.update(obs)
        return self.normalize_obs(obs)

    # --- the two maps -----------------------------------------------------------------------
    def normalize_obs(self, obs: dict) -> dict:
        """Normalise a dict ``{key: (..., dim)}`` with the current statistics (does not update them)."""
        out = {k: np.array(v, copy=True) for k, v in self._check_obs(obs).items()}
        if not self.norm_obs:
            return out
        stats, eps, clip = self.obs_rms, self.epsilon, self.clip_obs
        c = stats.centroid
        for key in stats.keys:
            x = np.asarray(obs[key], dtype=np.float64)
            y = x.copy()
            for f in stats.fields[key]:
                if f.kind == "frame":
                    continue
                block = x[..., f.slice]
                s = stats.scale(stats.group_of(f), eps)
                if f.kind == "point":
                    y[..., f.slice] = (block - c) / s
                elif f.kind == "scalar":
                    y[..., f.slice] = np.clip((block - stats.groups[f.name].mean) / s, -clip, clip)
                else:
                    v = block / s
                    norm = np.linalg.norm(v, axis=-1, keepdims=True)
                    y[..., f.slice] = v * np.minimum(1.0, clip / np.maximum(norm, 1e-12))
            # float32 like VecNormalize (the spaces' dtype); float64 input stays float64 (for tests)
            out[key] = y if np.asarray(obs[key]).dtype == np.float64 else y.astype(np.float32)
        return out

    def unnormalize_obs(self, obs: dict) -> dict:
        """Inverse of :meth:`normalize_obs` (exact for points, frames and unclipped values)."""
        out = {k: np.array(v, copy=True) for k, v in self._check_obs(obs).items()}
        if not self.norm_obs:
            return out
        stats, eps = self.obs_rms, self.epsilon
        c = stats.centroid
        for key in stats.keys:
            y = np.asarray(obs[key], dtype=np.float64)
            x = y.copy()
            for f in stats.fields[key]:
                if f.kind == "frame":
                    continue
                s = stats.scale(stats.group_of(f), eps)
                block = y[..., f.slice]
                if f.kind == "point":
                    x[..., f.slice] = block * s + c
                elif f.kind == "scalar":
                    x[..., f.slice] = block * s + stats.groups[f.name].mean
                else:
                    x[..., f.slice] = block * s
            out[key] = x
        return out

    def normalized_motion(self, rotation, translation=None) -> tuple[np.ndarray, np.ndarray]:
        """``(R, t')``: how normalised observations move when the scene moves by ``(R, t)`` and the
        statistics stay fixed: points by ``R p + t'`` with ``t' = (t + (R - I) c) / s``, vectors by R."""
        R = np.asarray(rotation, dtype=np.float64)
        t = np.zeros(3) if translation is None else np.asarray(translation, dtype=np.float64)
        c = self.obs_rms.centroid
        s = self.obs_rms.scale(_POINTS, self.epsilon) if _POINTS in self.obs_rms.groups else 1.0
        return R, (t + R @ c - c) / s

    def _check_obs(self, obs) -> dict:
        if not isinstance(obs, dict):
            raise TypeError(f"EquivariantVecNormalize normalises observation dicts, got {type(obs).__name__}")
        return obs
