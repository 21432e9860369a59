"""Replay augmentation: every sampled batch moved by random group elements through the geometry spec.

The cheap alternative to an equivariant network (the way image RL augments with random crops):
train any policy on transitions of rotated scenes it never visited. Each transition of a sampled
batch gets its own group element ``g = (R, t)``, applied through the env's
:class:`~eqrobot.geometry.spec.GeometrySpec` (:meth:`ArraySpec.transform`, the one implementation of
the group action: points ``R p + t``, vectors and pseudovectors ``R v``, frame columns ``R c``,
scalars unchanged) to

* the observation dict (observation, achieved_goal, desired_goal) and the next one, with the same g;
* the action (its vector part rotates, scalars stay);
* not the reward, the done flag or the n-step discount: those are invariant.

Groups (:data:`GROUPS`):

* ``so2`` — the task rotation: a uniform angle about the gravity axis through the robot base,
  both read from the transition's own observation (its static vector and static point), so it
  is the same physical rotation as ``env.reset(options={"task_rotation": angle})`` also in a
  transformed world. Right-handed about "up" (minus gravity).
* ``se3`` — the world transform: a uniform rotation and a translation uniform in
  ``[-translation_range, translation_range]^3`` m of everything, gravity included; the distribution
  of ``world_transform="random"`` envs for the default range of 1 m.

Why this is exact for the transition and not just "similar": the env's physics commute with these
motions in free space (shared/DESIGN.md section 3: to 1e-15), the reward depends only on invariant
distances, and the env limits the displacement by its norm, which commutes with rotations. A rotated
vector of norm > 1 (an MLP's cube-shaped action box has corners at sqrt(3)) is stored limited to the
unit ball, ``d / |d|``: the action the env executes either way, and one inside the action box.

With HER the augmented buffer transforms *after* relabelling, so each relabelled reward still
belongs to its (rotated) goal. :func:`augmented_buffer_class` maps SB3's ReplayBuffer,
DictReplayBuffer and HerReplayBuffer, and eqrobot's FastHerReplayBuffer, to the drop-in subclasses
here; every SB3 off-policy algorithm takes them as ``replay_buffer_class`` with
``replay_buffer_kwargs={"augment": "so2", ...}``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer

from eqrobot.geometry.so3 import random_rotation, rotation_about_axis
from eqrobot.geometry.spec import GeometrySpec
from eqrobot.policies.distributions import limit_action
from eqrobot.rl.her import FastHerReplayBuffer

GROUPS = ("so2", "se3")


def gravity_and_base_fields(observation_spec):
    """The observation's static vector (the gravity direction) and static point (the robot base),
    found by role and kind; ValueError unless there is exactly one of each."""
    static = observation_spec.by_role("static")
    found = {kind: [f for f in static if f.kind == kind] for kind in ("vector", "point")}
    if any(len(fields) != 1 for fields in found.values()):
        raise ValueError(
            "so2 augmentation rotates about the gravity axis through the robot base and reads both from "
            "the observation: it needs exactly one static vector (gravity direction) and one static point "
            f"(base position); its static fields are {[(f.name, f.kind) for f in static]}. Use group='se3'"
        )
    return found["vector"][0], found["point"][0]


class SpecAugmentation:
    """Draws group elements for a batch and applies them to transitions (numpy arrays or torch tensors).

    :param geometry_spec: the env's GeometrySpec.
    :param group: ``"so2"`` or ``"se3"`` (see the module docstring).
    :param rotation_range: half-width (rad) of the uniform ``so2`` angle; default the full circle.
    :param translation_range: half-width (m) of the uniform ``se3`` translation per axis.
    :param seed: seed of the numpy Generator that draws the elements (picklable, so a saved replay
        buffer resumes the same stream).
    """

    def __init__(
        self,
        geometry_spec: GeometrySpec,
        group: str = "so2",
        rotation_range: float = np.pi,
        translation_range: float = 1.0,
        seed: int | None = None,
    ):
        if group not in GROUPS:
            raise ValueError(f"unknown augmentation group {group!r}; valid: {', '.join(GROUPS)}")
        if not isinstance(geometry_spec, GeometrySpec):
            raise TypeError(
                f"geometry_spec must be a GeometrySpec, got {type(geometry_spec).__name__}: pass the env's "
                "`observation_space.geometry_spec`"
            )
        if not 0.0 <= rotation_range <= np.pi or translation_range < 0.0:
            raise ValueError(
                f"need 0 <= rotation_range <= pi and translation_range >= 0, got {rotation_range}, "
                f"{translation_range}"
            )
        if group == "so2":
            self._gravity, self._base = gravity_and_base_fields(geometry_spec.observation)
        self.geometry_spec = geometry_spec
        self.group = group
        self.rotation_range = float(rotation_range)
        self.translation_range = float(translation_range)
        self.rng = np.random.default_rng(seed)

    def elements(self, observation) -> tuple[np.ndarray, np.ndarray]:
        """Random ``(R (B, 3, 3), t (B, 3))`` in float64, one per row of the flat ``observation``."""
        n = observation.shape[0]
        if self.group == "se3":
            t = self.rng.uniform(-self.translation_range, self.translation_range, size=(n, 3))
            return random_rotation(self.rng, n), t
        obs = _to_numpy(observation)
        up = -obs[:, self._gravity.slice]
        base = obs[:, self._base.slice]
        angle = self.rng.uniform(-self.rotation_range, self.rotation_range, size=n)
        R = rotation_about_axis(up, angle)
        return R, base - np.einsum("bij,bj->bi", R, base)  # p -> R (p - base) + base

    def transform(self, observations, actions, next_observations, rotation, translation):
        """``(g.obs, g.action, g.next_obs)`` for given elements; dicts for Dict observations, else
        flat arrays laid out by the observation spec."""
        spec = self.geometry_spec
        if isinstance(observations, dict):
            obs = spec.transform_obs(observations, rotation, translation)
            next_obs = spec.transform_obs(next_observations, rotation, translation)
        else:
            obs = spec.observation.transform(observations, rotation, translation)
            next_obs = spec.observation.transform(next_observations, rotation, translation)
        return obs, limit_action(spec.transform_action(actions, rotation), spec.action), next_obs

    def __call__(self, samples):
        """An SB3 ``(Dict)ReplayBufferSamples`` with freshly drawn elements applied (see the module doc)."""
        flat = (
            samples.observations["observation"]
            if isinstance(samples.observations, dict)
            else samples.observations
        )
        R, t = self.elements(flat)
        obs, actions, next_obs = self.transform(
            samples.observations, samples.actions, samples.next_observations, R, t
        )
        return samples._replace(observations=obs, actions=actions, next_observations=next_obs)


def _to_numpy(x) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x.astype(np.float64)
    return x.detach().cpu().double().numpy()


class ReplayAugmentationMixin:
    """Put before an SB3 replay buffer class: ``sample`` returns augmented batches.

    Extra constructor keywords: ``augment`` (``"so2"`` / ``"se3"``), ``geometry_spec`` (default
    ``observation_space.geometry_spec``), ``augment_kwargs`` (for :class:`SpecAugmentation`:
    ``rotation_range``, ``translation_range``, ``seed``; the seed defaults to a draw from numpy's
    global generator, which SB3 seeds with the model's seed).
    """

    def __init__(
        self,
        *args: Any,
        augment: str = "so2",
        geometry_spec: GeometrySpec | dict | None = None,
        augment_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        spec = (
            geometry_spec
            if geometry_spec is not None
            else getattr(self.observation_space, "geometry_spec", None)
        )
        if spec is None:
            raise ValueError(
                "replay augmentation needs the env's geometry spec, and this observation space has none: "
                "use an eqrobot env or pass replay_buffer_kwargs={'geometry_spec': ...}"
            )
        if isinstance(spec, dict):
            spec = GeometrySpec.from_dict(spec)
        options = dict(augment_kwargs or {})
        options.setdefault("seed", int(np.random.randint(2**31 - 1)))
        self.augmentation = SpecAugmentation(spec, augment, **options)

    def sample(self, batch_size: int, env=None):
        if env is not None:
            raise ValueError(
                "replay augmentation needs raw observations, but this model normalises them (VecNormalize): "
                "a per-component normalisation does not commute with rotations; train without VecNormalize"
            )
        return self.augmentation(super().sample(batch_size, env))


class AugmentedReplayBuffer(ReplayAugmentationMixin, ReplayBuffer):
    """SB3 ``ReplayBuffer`` (flat observations laid out by the observation spec) with augmentation."""


class AugmentedDictReplayBuffer(ReplayAugmentationMixin, DictReplayBuffer):
    """SB3 ``DictReplayBuffer`` with augmentation."""


class AugmentedHerReplayBuffer(ReplayAugmentationMixin, HerReplayBuffer):
    """SB3 ``HerReplayBuffer`` with augmentation, applied after the goals are relabelled."""


class AugmentedFastHerReplayBuffer(ReplayAugmentationMixin, FastHerReplayBuffer):
    """:class:`~eqrobot.rl.her.FastHerReplayBuffer` with augmentation: the same batches as
    :class:`AugmentedHerReplayBuffer` under the same seeds, without SB3's full-buffer scan per sample."""


_AUGMENTED = {
    ReplayBuffer: AugmentedReplayBuffer,
    DictReplayBuffer: AugmentedDictReplayBuffer,
    HerReplayBuffer: AugmentedHerReplayBuffer,
    FastHerReplayBuffer: AugmentedFastHerReplayBuffer,
}


def augmented_buffer_class(base: type) -> type:
    """The augmented version of SB3's ReplayBuffer, DictReplayBuffer or HerReplayBuffer.

    Other buffer classes need a named subclass (``class MyAugmented(ReplayAugmentationMixin, MyBuffer)``,
    defined at module level so that saved buffers unpickle); this raises a TypeError saying so.
    """
    if isinstance(base, type) and issubclass(base, ReplayAugmentationMixin):
        return base
    if base in _AUGMENTED:
        return _AUGMENTED[base]
    raise TypeError(
        f"no augmented version of {getattr(base, '__name__', base)!r}; known: "
        f"{', '.join(b.__name__ for b in _AUGMENTED)}. Define one at module level: "
        "class MyAugmentedBuffer(ReplayAugmentationMixin, YourBuffer)"
    )
