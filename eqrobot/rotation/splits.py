"""Named evaluation splits for rotation-generalization sweeps.

A split is a list of *bins*; each bin holds ``episodes_per_bin`` episodes, and every episode is a
fixed ``(seed, reset options)`` pair, so a split reproduces exactly:

- ``canonical``: one bin, task rotation 0 (what training saw).
- ``so2-sweep``: task rotation about gravity through the robot base, 24 bins at
  -180, -165, ..., 165 degrees. Bins beyond Panda joint 1's range (about +-166 deg) are evaluated
  too and flagged ``reachable=False``.
- ``so3-world``: random proper SE(3) world transforms (robot, table, objects, goal, gravity and
  camera all move), 6 bins by rotation angle (0-30, ..., 150-180 deg), a uniformly random axis and a
  random translation in a +-0.5 m cube per episode.
- ``so2+shift``: the ``so2-sweep`` bins plus a random horizontal translation (gravity-normal
  plane) of the whole scene, uniform in a disk of radius 5 cm.

Layouts are *paired*: episode ``i`` of every bin of every split uses the same env seed
``seed_for(seed, i)``, so a bin differs from the canonical bin only by the group element applied.
The group elements (angles of so3-world, shifts) come from their own generator seeded by
``(split, seed, bin, i)``: they do not depend on ``n_envs``, on the order of evaluation or on other
splits.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from eqrobot.geometry.so3 import rotation_angle

JOINT1_LIMIT_DEG = float(np.degrees(2.8973))
"""Panda joint 1 range, +-166.0 degrees (franka_panda/panda.urdf)."""

SEED_BASE = 1_000_003
"""Env seed of episode 0 at ``seed=0``; episode ``i`` uses ``SEED_BASE + 100_000 * seed + i``."""

MAX_EPISODES_PER_BIN = 100_000


def seed_for(seed: int, episode: int) -> int:
    """The env seed of episode ``episode`` (same in every bin and split: paired layouts)."""
    return SEED_BASE + 100_000 * int(seed) + int(episode)


def rodrigues_rotation(axis, angle_rad: float) -> np.ndarray:
    """Rodrigues: rotation by ``angle_rad`` about the unit vector ``axis``.

    Kept instead of :func:`eqrobot.geometry.so3.rotation_about_axis` (same rotation, other rounding:
    they differ in the last bits) so that the so3-world split's group elements, and with them every
    stored per-episode result, stay bit-identical."""
    k = np.asarray(axis, dtype=float)
    k = k / np.linalg.norm(k)
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle_rad) * K + (1.0 - np.cos(angle_rad)) * (K @ K)


@dataclass(frozen=True)
class SplitBin:
    """One cell of a split."""

    index: int
    label: str
    """Short human label, e.g. ``"+45"`` or ``"30-60"``."""
    angle_deg: float | None
    """Task-rotation angle for the angular splits (polar plots); rotation-angle bin centre for so3-world."""
    reachable: bool = True
    """False for task rotations beyond Panda joint 1's range: evaluated, but flagged."""
    lo_deg: float | None = None
    hi_deg: float | None = None


@dataclass(frozen=True)
class SplitEpisode:
    """One episode of a split: a deterministic ``(seed, options)`` reset."""

    split: str
    bin_index: int
    episode: int
    seed: int
    options: dict = field(default_factory=dict, compare=False, hash=False)

    def describe(self) -> dict:
        """JSON-friendly summary (angle, translation) of the reset options."""
        out: dict = {"split": self.split, "bin": self.bin_index, "episode": self.episode, "seed": self.seed}
        if "task_rotation" in self.options:
            out["task_rotation_deg"] = float(np.degrees(self.options["task_rotation"]))
        if "world_rotation" in self.options:
            out["world_rotation_deg"] = float(np.degrees(rotation_angle(self.options["world_rotation"])))
            out["world_rotation"] = np.asarray(self.options["world_rotation"]).tolist()
        if "world_translation" in self.options:
            out["world_translation"] = np.asarray(self.options["world_translation"]).tolist()
        return out


class Split:
    """A named split: its bins and how to build each episode's reset options."""

    angular = False
    """True when bins are task-rotation angles (drawn on polar plots)."""

    def __init__(self, name: str, description: str, bins: Sequence[SplitBin]):
        self.name = name
        self.description = description
        self.bins: tuple[SplitBin, ...] = tuple(bins)

    def _rng(self, seed: int, bin_index: int, episode: int) -> np.random.Generator:
        key = zlib.crc32(self.name.encode())
        return np.random.default_rng([key, int(seed), int(bin_index), int(episode)])

    def options(self, bin_index: int, episode: int, seed: int = 0) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def episodes(self, episodes_per_bin: int, seed: int = 0) -> list[SplitEpisode]:
        """All episodes, bin-major: ``[(bin 0, ep 0), (bin 0, ep 1), ..., (bin 1, ep 0), ...]``."""
        if not 0 <= int(episodes_per_bin) <= MAX_EPISODES_PER_BIN:
            raise ValueError(
                f"episodes_per_bin must be in [0, {MAX_EPISODES_PER_BIN}], got {episodes_per_bin}"
            )
        if int(seed) < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        return [
            SplitEpisode(self.name, b.index, i, seed_for(seed, i), self.options(b.index, i, seed))
            for b in self.bins
            for i in range(int(episodes_per_bin))
        ]

    def __repr__(self) -> str:
        return f"Split({self.name!r}, {len(self.bins)} bins)"


class _Canonical(Split):
    def __init__(self):
        super().__init__(
            "canonical",
            "task rotation 0 and no world transform: what training saw",
            [SplitBin(0, "0", 0.0, True)],
        )

    def options(self, bin_index, episode, seed=0):
        return {"task_rotation": 0.0}


def _so2_bins(n: int = 24) -> list[SplitBin]:
    step = 360.0 / n
    bins = []
    for i in range(n):
        a = -180.0 + step * i
        bins.append(
            SplitBin(i, f"{a:+.0f}", a, abs(a) <= JOINT1_LIMIT_DEG + 1e-9, a - step / 2, a + step / 2)
        )
    return bins


class _SO2Sweep(Split):
    angular = True

    def __init__(self):
        super().__init__(
            "so2-sweep",
            "task rotation about gravity through the robot base, 24 bins over [-180, 180) deg "
            f"(|angle| > {JOINT1_LIMIT_DEG:.1f} deg: beyond Panda joint 1, flagged unreachable)",
            _so2_bins(),
        )

    def options(self, bin_index, episode, seed=0):
        return {"task_rotation": float(np.radians(self.bins[bin_index].angle_deg))}


class _SO2Shift(Split):
    angular = True

    def __init__(self, radius: float = 0.05):
        self.radius = radius
        super().__init__(
            "so2+shift",
            "so2-sweep bins plus a random horizontal translation of the whole scene "
            f"(world_translation uniform in a disk of radius {radius * 100:.0f} cm, "
            "in the gravity-normal plane)",
            _so2_bins(),
        )

    def options(self, bin_index, episode, seed=0):
        rng = self._rng(seed, bin_index, episode)
        r = self.radius * np.sqrt(rng.uniform())
        phi = rng.uniform(0.0, 2.0 * np.pi)
        return {
            "task_rotation": float(np.radians(self.bins[bin_index].angle_deg)),
            "world_rotation": np.eye(3),
            "world_translation": np.array([r * np.cos(phi), r * np.sin(phi), 0.0]),
        }


class _SO3World(Split):
    def __init__(self, n: int = 6, translation: float = 0.5):
        self.translation = translation
        step = 180.0 / n
        bins = [
            SplitBin(
                i, f"{step * i:.0f}-{step * (i + 1):.0f}", step * (i + 0.5), True, step * i, step * (i + 1)
            )
            for i in range(n)
        ]
        super().__init__(
            "so3-world",
            "random proper SE(3) world transforms (gravity included), binned by rotation angle; "
            f"axis uniform on the sphere, translation uniform in a +-{translation:g} m cube",
            bins,
        )

    def options(self, bin_index, episode, seed=0):
        rng = self._rng(seed, bin_index, episode)
        b = self.bins[bin_index]
        axis = rng.normal(size=3)
        angle = np.radians(rng.uniform(b.lo_deg, b.hi_deg))
        t = rng.uniform(-self.translation, self.translation, size=3)
        return {"world_rotation": rodrigues_rotation(axis, angle), "world_translation": t}


SPLITS: dict[str, Split] = {s.name: s for s in (_Canonical(), _SO2Sweep(), _SO3World(), _SO2Shift())}
"""Every named split, by name."""


def get_split(name: str) -> Split:
    """The split called ``name``; a clear error listing the valid names otherwise."""
    if isinstance(name, Split):
        return name
    try:
        return SPLITS[name]
    except KeyError:
        raise ValueError(f"unknown split {name!r}; valid splits are {list(SPLITS)} (or 'all')") from None


def resolve_splits(split: str | Sequence[str]) -> list[Split]:
    """``"all"``, one name, a comma-separated list or a sequence of names -> list of splits."""
    if isinstance(split, str):
        names = list(SPLITS) if split == "all" else [s.strip() for s in split.split(",") if s.strip()]
    else:
        names = list(split)
    if not names:
        raise ValueError(f"no split given; valid splits are {list(SPLITS)} (or 'all')")
    return [get_split(n) for n in names]
