"""Datasets of transitions for the dynamics models.

A :class:`Transitions` holds flat, spec'd arrays in time order::

    observation       (N, obs_dim)   s_t
    achieved_goal     (N, ag_dim)
    desired_goal      (N, dg_dim)
    action            (N, act_dim)   a_t, as applied (displacement norm-limited to the unit ball)
    next_observation  (N, obs_dim)   s_{t+1}
    next_achieved_goal(N, ag_dim)
    episode           (N,)  int64    an id per contiguous trajectory
    step              (N,)  int32    index of the transition within its trajectory

Row ``i + 1`` continues row ``i`` when both carry the same episode id (then
``observation[i + 1] == next_observation[i]``); :meth:`Transitions.window_starts` finds every
window of ``horizon`` consecutive transitions for the multi-step rollout loss.

Files are ``.npz`` with a ``format_version`` and the env's :class:`GeometrySpec` as JSON; loading a
file written by another format version, or for another spec than the one asked for, raises a
:class:`DatasetFormatError` that says what differs.

This module is the format only (no envs, no policies): transitions are collected by
:func:`eqrobot.rollout.collect.collect_transitions` (any agent in any env) and read out of SB3 replay
buffers by :func:`eqrobot.rollout.collect.from_replay_buffer`.
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eqrobot.files import atomic_write
from eqrobot.geometry.spec import GeometrySpec, spec_differences

FORMAT_VERSION = 1
"""Version of the ``.npz`` layout written by :meth:`Transitions.save`."""

TRANSITION_ARRAYS = (
    "observation",
    "achieved_goal",
    "desired_goal",
    "action",
    "next_observation",
    "next_achieved_goal",
)


class DatasetFormatError(ValueError):
    """A transitions file of another format version or geometry spec, or not a transitions file."""


@dataclass
class Transitions:
    """Flat spec'd transitions in time order (see the module docstring)."""

    spec: GeometrySpec
    observation: np.ndarray
    achieved_goal: np.ndarray
    desired_goal: np.ndarray
    action: np.ndarray
    next_observation: np.ndarray
    next_achieved_goal: np.ndarray
    episode: np.ndarray
    step: np.ndarray
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.observation)
        dims = {
            "observation": self.spec.observation.dim,
            "next_observation": self.spec.observation.dim,
            "achieved_goal": self.spec.achieved_goal.dim,
            "next_achieved_goal": self.spec.achieved_goal.dim,
            "desired_goal": self.spec.desired_goal.dim,
            "action": self.spec.action.dim,
        }
        for name, dim in dims.items():
            arr = getattr(self, name)
            if arr.ndim != 2 or arr.shape != (n, dim):
                raise ValueError(f"{name} has shape {arr.shape}, expected ({n}, {dim}) for this spec")
        self.episode = np.asarray(self.episode, dtype=np.int64).reshape(n)
        self.step = np.asarray(self.step, dtype=np.int32).reshape(n)

    def __len__(self) -> int:
        return len(self.observation)

    def __repr__(self) -> str:
        return (
            f"Transitions(n={len(self)}, episodes={len(np.unique(self.episode))}, "
            f"obs_dim={self.spec.observation.dim}, meta={self.meta})"
        )

    # --- windows and subsets ---------------------------------------------------------------
    def window_starts(self, horizon: int) -> np.ndarray:
        """Indices ``i`` such that rows ``i .. i + horizon - 1`` are one contiguous trajectory."""
        n = len(self)
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        if n < horizon:
            return np.zeros(0, dtype=np.int64)
        # cont[i]: row i+1 continues row i
        cont = (self.episode[1:] == self.episode[:-1]) & (self.step[1:] == self.step[:-1] + 1)
        if horizon == 1:
            return np.arange(n, dtype=np.int64)
        # windows of horizon-1 consecutive "continues" flags
        c = np.concatenate([[0], np.cumsum(~cont)])
        starts = np.arange(n - horizon + 1)
        ok = c[starts + horizon - 1] - c[starts] == 0
        return starts[ok].astype(np.int64)

    def select(self, index: np.ndarray) -> Transitions:
        """Rows ``index`` (keep them in time order to keep windows)."""
        return Transitions(
            self.spec,
            *(getattr(self, k)[index] for k in TRANSITION_ARRAYS),
            episode=self.episode[index],
            step=self.step[index],
            meta=dict(self.meta),
        )

    def episodes(self) -> np.ndarray:
        """The distinct episode ids, in first-appearance order."""
        _, first = np.unique(self.episode, return_index=True)
        return self.episode[np.sort(first)]

    def split(self, fraction: float, seed: int = 0) -> tuple[Transitions, Transitions]:
        """Split by whole episodes: ``(first, second)`` with about ``fraction`` of rows in the first."""
        eps = self.episodes()
        rng = np.random.default_rng(seed)
        perm = rng.permutation(eps)
        k = int(round(fraction * len(perm)))
        first = np.isin(self.episode, perm[:k])
        return self.select(np.flatnonzero(first)), self.select(np.flatnonzero(~first))

    def head(self, n: int) -> Transitions:
        """The first ``n`` rows (whole data set when ``n >= len``)."""
        return self.select(np.arange(min(n, len(self))))

    def transform(self, rotation, translation=None) -> Transitions:
        """The same transitions seen in a rigidly moved world (``x -> R x + t``)."""
        s = self.spec
        return Transitions(
            s,
            s.observation.transform(self.observation, rotation, translation),
            s.achieved_goal.transform(self.achieved_goal, rotation, translation),
            s.desired_goal.transform(self.desired_goal, rotation, translation),
            s.action.transform(self.action, rotation, None),
            s.observation.transform(self.next_observation, rotation, translation),
            s.achieved_goal.transform(self.next_achieved_goal, rotation, translation),
            episode=self.episode.copy(),
            step=self.step.copy(),
            meta=dict(self.meta),
        )

    @staticmethod
    def concatenate(parts: list[Transitions]) -> Transitions:
        """Join data sets of the same spec; episode ids are renumbered so they stay distinct."""
        if not parts:
            raise ValueError("nothing to concatenate")
        spec = parts[0].spec
        for p in parts[1:]:
            if p.spec != spec:
                raise DatasetFormatError(
                    "cannot concatenate transitions of different specs: "
                    + "; ".join(spec_differences(p.spec, spec, "part", "first part"))
                )
        episodes, offset = [], 0
        for p in parts:
            _, inv = np.unique(p.episode, return_inverse=True)
            episodes.append(inv.reshape(-1) + offset)
            offset += int(inv.max()) + 1 if len(p) else 0
        return Transitions(
            spec,
            *(np.concatenate([getattr(p, k) for p in parts]) for k in TRANSITION_ARRAYS),
            episode=np.concatenate(episodes),
            step=np.concatenate([p.step for p in parts]),
            meta={"parts": [p.meta for p in parts]},
        )

    # --- files -----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write a compressed ``.npz`` (atomically: a partial file never replaces a good one)."""
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_suffix(path.suffix + ".npz") if path.suffix else path.with_suffix(".npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {k: np.asarray(getattr(self, k), dtype=np.float32) for k in TRANSITION_ARRAYS}
        with atomic_write(path) as fh:
            np.savez_compressed(
                fh,
                format_version=np.int64(FORMAT_VERSION),
                kind=np.str_("eqrobot.dynamics.Transitions"),
                spec=np.str_(json.dumps(self.spec.to_dict())),
                meta=np.str_(json.dumps(self.meta, default=str)),
                episode=self.episode,
                step=self.step,
                **arrays,
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, spec: GeometrySpec | None = None) -> Transitions:
        """Read a file written by :meth:`save`; with ``spec``, require the file to match it."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except FileNotFoundError:
            raise
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
            raise DatasetFormatError(f"{path}: not a readable transitions file ({e})") from e
        if "format_version" not in data or "spec" not in data:
            raise DatasetFormatError(f"{path}: not an eqrobot transitions file (no format_version/spec)")
        version = int(data["format_version"])
        if version != FORMAT_VERSION:
            raise DatasetFormatError(
                f"{path}: transitions format version {version}, this eqrobot reads version {FORMAT_VERSION}; "
                "collect the data again"
            )
        file_spec = GeometrySpec.from_dict(json.loads(str(data["spec"])))
        if spec is not None and file_spec != spec:
            raise DatasetFormatError(
                f"{path}: geometry spec differs from the expected one: "
                + "; ".join(spec_differences(file_spec, spec, "file", "expected"))
            )
        missing = [k for k in (*TRANSITION_ARRAYS, "episode", "step") if k not in data]
        if missing:
            raise DatasetFormatError(f"{path}: transitions file lacks arrays {missing}")
        return cls(
            file_spec,
            *(data[k] for k in TRANSITION_ARRAYS),
            episode=data["episode"],
            step=data["step"],
            meta=json.loads(str(data["meta"])) if "meta" in data else {},
        )


def load_transitions(path, spec: GeometrySpec | None = None) -> Transitions:
    """Shorthand for :meth:`Transitions.load`."""
    return Transitions.load(path, spec)
