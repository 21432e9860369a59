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

Sources: :func:`collect_transitions` (any policy with an SB3-like ``predict``: ``"random"``,
``"oracle"``, a trained SB3 model or a path to one) and :func:`from_replay_buffer` (an SB3
``DictReplayBuffer``/``HerReplayBuffer``).
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eqrobot.geometry.spec import GeometrySpec

FORMAT_VERSION = 1
"""Version of the ``.npz`` layout written by :meth:`Transitions.save`."""

_ARRAYS = (
    "observation",
    "achieved_goal",
    "desired_goal",
    "action",
    "next_observation",
    "next_achieved_goal",
)


class DatasetFormatError(ValueError):
    """A transitions file of another format version or geometry spec, or not a transitions file."""


def limit_action(action: np.ndarray, spec: GeometrySpec) -> np.ndarray:
    """The action as the env applies it: every vector field scaled into the unit ball (radially),
    every scalar clipped to [-1, 1]. Works on ``(..., act_dim)`` numpy arrays."""
    out = np.array(action, dtype=np.float64 if np.asarray(action).dtype == np.float64 else np.float32)
    for f in spec.action.fields:
        block = out[..., f.slice]
        if f.kind in ("vector", "pseudovector"):
            norm = np.linalg.norm(block, axis=-1, keepdims=True)
            out[..., f.slice] = block / np.maximum(norm, 1.0)
        elif f.kind == "scalar":
            out[..., f.slice] = np.clip(block, -1.0, 1.0)
    return out


def spec_differences(a: GeometrySpec, b: GeometrySpec) -> list[str]:
    """Human-readable differences between two geometry specs (empty when equal)."""
    diffs = []
    for part, sa in a.parts().items():
        sb = b.parts()[part]
        if sa == sb:
            continue
        fa = {f.name: f for f in sa.fields}
        fb = {f.name: f for f in sb.fields}
        only_a = sorted(set(fa) - set(fb))
        only_b = sorted(set(fb) - set(fa))
        changed = sorted(n for n in set(fa) & set(fb) if fa[n] != fb[n])
        bits = []
        if only_a:
            bits.append(f"only in file: {only_a}")
        if only_b:
            bits.append(f"only in expected: {only_b}")
        if changed:
            bits.append(f"different kind/layout: {changed}")
        if not bits:
            bits.append("same fields in another order")
        diffs.append(f"{part}: " + "; ".join(bits))
    return diffs


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
            *(getattr(self, k)[index] for k in _ARRAYS),
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
                    + "; ".join(spec_differences(p.spec, spec))
                )
        episodes, offset = [], 0
        for p in parts:
            _, inv = np.unique(p.episode, return_inverse=True)
            episodes.append(inv.reshape(-1) + offset)
            offset += int(inv.max()) + 1 if len(p) else 0
        return Transitions(
            spec,
            *(np.concatenate([getattr(p, k) for p in parts]) for k in _ARRAYS),
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
        arrays = {k: np.asarray(getattr(self, k), dtype=np.float32) for k in _ARRAYS}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
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
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
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
                + "; ".join(spec_differences(file_spec, spec))
            )
        missing = [k for k in (*_ARRAYS, "episode", "step") if k not in data]
        if missing:
            raise DatasetFormatError(f"{path}: transitions file lacks arrays {missing}")
        return cls(
            file_spec,
            *(data[k] for k in _ARRAYS),
            episode=data["episode"],
            step=data["step"],
            meta=json.loads(str(data["meta"])) if "meta" in data else {},
        )


def load_transitions(path, spec: GeometrySpec | None = None) -> Transitions:
    """Shorthand for :meth:`Transitions.load`."""
    return Transitions.load(path, spec)


# --- sources -----------------------------------------------------------------------------------
class RandomPolicy:
    """Uniform actions: displacement uniform in the unit ball (isotropic), gripper uniform in [-1, 1]."""

    def __init__(self, spec: GeometrySpec, seed: int = 0):
        self.spec = spec
        self.rng = np.random.default_rng(seed)

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        batch = np.asarray(obs["observation"]).shape[:-1]
        a = np.zeros((*batch, self.spec.action.dim), dtype=np.float32)
        for f in self.spec.action.fields:
            if f.kind in ("vector", "pseudovector"):
                d = self.rng.normal(size=(*batch, 3))
                d /= np.linalg.norm(d, axis=-1, keepdims=True) + 1e-12
                d *= self.rng.uniform(size=(*batch, 1)) ** (1 / 3)
                a[..., f.slice] = d
            else:
                a[..., f.slice] = self.rng.uniform(-1, 1, size=(*batch, f.size))
        return a, None


def _make_policy(policy, env, spec: GeometrySpec, seed: int):
    if policy is None or (isinstance(policy, str) and policy == "random"):
        return RandomPolicy(spec, seed)
    if isinstance(policy, str) and policy in ("oracle", "oracle-push", "oracle-grasp"):
        from eqrobot.envs.oracles import OraclePolicy

        if policy == "oracle":
            return OraclePolicy(env)
        return OraclePolicy(env, push_strategy=policy.split("-")[1])
    if isinstance(policy, (str, os.PathLike)):
        path = os.fspath(policy)
        if not os.path.exists(path) and not os.path.exists(path + ".zip"):
            raise FileNotFoundError(
                f"policy {policy!r}: not random, oracle, oracle-push or an existing SB3 model or run folder"
            )
        try:  # eqrobot run folders and zips with eqrobot policy classes (lazy: rl sits above dynamics)
            from eqrobot.rl.checkpoint import load_model as load_run
        except ImportError:
            load_run = None
        if load_run is not None:
            return load_run(path, env_id=getattr(getattr(env, "spec", None), "id", None))
        from stable_baselines3 import DDPG, PPO, SAC, TD3

        errors = []
        for cls in (SAC, TD3, DDPG, PPO):
            try:
                return cls.load(path, device="cpu")
            except Exception as e:  # noqa: BLE001 - try the next algorithm class
                errors.append(f"{cls.__name__}: {e}")
        raise ValueError(f"could not load SB3 model {path}: " + " | ".join(errors))
    if not hasattr(policy, "predict"):
        raise TypeError(
            f"policy must be 'random', 'oracle', a model path or have .predict(obs), got {policy!r}"
        )
    return policy


def parse_policy_mix(policy) -> list[tuple[object, float]]:
    """``"oracle:0.4,oracle-push:0.4,random:0.2"`` or ``{"oracle": 0.5, ...}`` -> [(policy, weight)];
    a single policy -> [(policy, 1.0)]. The mixture is drawn per episode."""
    if isinstance(policy, dict):
        items = list(policy.items())
    elif isinstance(policy, str) and ("," in policy or ":" in policy) and not os.path.exists(policy):
        items = []
        for part in policy.split(","):
            name, _, w = part.strip().partition(":")
            try:
                items.append((name.strip(), float(w) if w else 1.0))
            except ValueError:
                raise ValueError(f"bad policy mixture entry {part!r} (expected NAME:WEIGHT)") from None
    else:
        return [(policy, 1.0)]
    total = sum(w for _, w in items)
    if not items or total <= 0 or any(w < 0 for _, w in items):
        raise ValueError(f"policy mixture {policy!r} needs non-negative weights with a positive sum")
    return [(p, w / total) for p, w in items]


def collect_transitions(
    env_id: str,
    n_transitions: int,
    policy="random",
    seed: int = 0,
    action_noise: float = 0.0,
    random_action_prob: float = 0.0,
    env_kwargs: dict | None = None,
    deterministic: bool = True,
    progress: bool = False,
    moves: str | None = None,
    move_seed: int | None = None,
    task_rotation_range: float = float(np.pi / 2),
) -> Transitions:
    """Run ``policy`` in ``env_id`` and record ``n_transitions`` transitions.

    ``policy``: ``"random"``, ``"oracle"`` (:class:`eqrobot.envs.oracles.OraclePolicy`; for Push
    ``"oracle-push"`` is its closed-hand pushing variant), a path to a trained SB3 model or eqrobot
    run folder, any object with ``predict(obs, deterministic=...) -> (action, state)``, or a
    mixture drawn per episode: ``"oracle:0.4,oracle-push:0.4,random:0.2"`` (or a dict).
    ``action_noise`` adds isotropic Gaussian noise of that std to each vector field of the action
    (and to scalars); ``random_action_prob`` replaces an action by a random one with that
    probability: both widen the state distribution beyond what the policy visits.
    ``env_kwargs`` go to ``gymnasium.make`` (e.g. ``task_rotation_range``, ``world_transform``).
    Episodes are cut at ``terminated or truncated``.

    The collector's own randomness (random actions, noise) is drawn in the episode's frame (the
    env's world rotation times its task rotation, from the reset ``info``), so it is equivariant like
    the oracles. With ``moves="world"`` (a random SE(3) element per episode, translation uniform in
    [-1, 1]^3) or ``moves="task"`` (a uniform rotation about gravity within
    ``task_rotation_range``), drawn from ``move_seed`` and passed as reset options, the tasks are the
    same as without ``moves`` for the same ``seed``: the two data sets are paired episode by episode
    (up to the simulator's own asymmetry in contacts).
    """
    import gymnasium as gym

    import eqrobot  # noqa: F401 - registers the env ids

    env = gym.make(env_id, **(env_kwargs or {}))
    try:
        spec: GeometrySpec = env.unwrapped.geometry_spec
        mix = parse_policy_mix(policy)
        pols = [_make_policy(p, env, spec, seed + 10 + k) for k, (p, _) in enumerate(mix)]
        weights = np.array([w for _, w in mix])
        rnd = RandomPolicy(spec, seed + 1)
        rng = np.random.default_rng(seed + 2)
        if moves not in (None, "world", "task"):
            raise ValueError(f"moves must be None, 'world' or 'task', got {moves!r}")
        move_rng = np.random.default_rng(seed + 3 if move_seed is None else move_seed)
        vec_slices = [f.slice for f in spec.action.fields if f.kind in ("vector", "pseudovector")]

        def reset(**kw):
            opts = None
            if moves == "world":
                from eqrobot.geometry.so3 import random_rotation

                opts = {
                    "world_rotation": random_rotation(move_rng),
                    "world_translation": move_rng.uniform(-1.0, 1.0, 3),
                }
            elif moves == "task":
                opts = {"task_rotation": float(move_rng.uniform(-task_rotation_range, task_rotation_range))}
            o, info = env.reset(options=opts, **kw)
            from eqrobot.geometry.so3 import rotation_about_axis

            Rw = np.asarray(info.get("world_rotation", np.eye(3)), dtype=np.float64)
            theta = float(info.get("task_rotation", 0.0))
            return o, Rw @ rotation_about_axis(np.array([0.0, 0.0, 1.0]), theta)

        def rotate(a, frame):
            a = np.array(a, dtype=np.float64)
            for sl in vec_slices:
                a[..., sl] = a[..., sl] @ frame.T
            return a

        cols = {k: [] for k in (*_ARRAYS, "episode", "step")}
        obs, frame = reset(seed=seed)
        ep, t = 0, 0
        pol = pols[rng.choice(len(pols), p=weights)]
        it = range(n_transitions)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, desc=f"collect {env_id}")
        for _ in it:
            if random_action_prob > 0 and rng.uniform() < random_action_prob:
                action = rotate(rnd.predict(obs)[0], frame)
            elif isinstance(pol, RandomPolicy):
                action = rotate(pol.predict(obs)[0], frame)
            else:
                action, _ = pol.predict(obs, deterministic=deterministic)
            action = np.asarray(action, dtype=np.float64).reshape(spec.action.dim)
            if action_noise > 0:
                action = action + rotate(rng.normal(scale=action_noise, size=action.shape), frame)
            action = limit_action(action, spec)
            next_obs, _, terminated, truncated, _ = env.step(action.astype(np.float32))
            cols["observation"].append(obs["observation"])
            cols["achieved_goal"].append(obs["achieved_goal"])
            cols["desired_goal"].append(obs["desired_goal"])
            cols["action"].append(action)
            cols["next_observation"].append(next_obs["observation"])
            cols["next_achieved_goal"].append(next_obs["achieved_goal"])
            cols["episode"].append(ep)
            cols["step"].append(t)
            t += 1
            if terminated or truncated:
                obs, frame = reset()
                ep, t = ep + 1, 0
                pol = pols[rng.choice(len(pols), p=weights)]
                if hasattr(pol, "reset"):
                    pol.reset()
            else:
                obs = next_obs
        meta = {
            "env_id": env_id,
            "policy": os.fspath(policy) if isinstance(policy, (str, os.PathLike)) else type(policy).__name__,
            "seed": seed,
            "action_noise": action_noise,
            "random_action_prob": random_action_prob,
            "moves": moves,
            "env_kwargs": {
                k: (v if isinstance(v, (int, float, str, type(None))) else repr(v))
                for k, v in (env_kwargs or {}).items()
            },
        }
        return Transitions(
            spec,
            *(np.asarray(cols[k], dtype=np.float32) for k in _ARRAYS),
            episode=np.asarray(cols["episode"]),
            step=np.asarray(cols["step"]),
            meta=meta,
        )
    finally:
        env.close()


def from_replay_buffer(buffer, spec: GeometrySpec | None = None, atol: float = 1e-6) -> Transitions:
    """Transitions stored in an SB3 ``DictReplayBuffer`` or ``HerReplayBuffer`` (real, not relabelled).

    ``spec`` defaults to ``buffer.observation_space.geometry_spec``. Each env column of the buffer is
    read in chronological order; a trajectory is cut wherever ``dones`` is set or the next row does
    not continue the previous one (``next_observation[i] != observation[i + 1]``, e.g. where the
    ring buffer wrapped).
    """
    if spec is None:
        spec = getattr(getattr(buffer, "observation_space", None), "geometry_spec", None)
        if spec is None:
            raise ValueError("pass spec=...: the buffer's observation space carries no geometry_spec")
    obs, nxt = buffer.observations, getattr(buffer, "next_observations", None)
    if not isinstance(obs, dict) or nxt is None:
        raise TypeError(
            "from_replay_buffer needs a DictReplayBuffer/HerReplayBuffer with next_observations "
            "(optimize_memory_usage=False)"
        )
    size = buffer.buffer_size if buffer.full else buffer.pos
    order = (
        np.r_[buffer.pos : buffer.buffer_size, 0 : buffer.pos] if buffer.full else np.arange(size)
    ).astype(int)
    parts = []
    ep_offset = 0
    for e in range(buffer.n_envs):
        o = obs["observation"][order, e].reshape(len(order), -1)
        no = nxt["observation"][order, e].reshape(len(order), -1)
        if o.shape[1] != spec.observation.dim:
            raise DatasetFormatError(
                f"buffer observations have {o.shape[1]} entries, spec expects {spec.observation.dim}"
            )
        dones = buffer.dones[order, e].astype(bool)
        cont = np.zeros(len(order), dtype=bool)  # cont[i]: row i continues row i-1
        if len(order) > 1:
            cont[1:] = ~dones[:-1] & np.all(np.abs(no[:-1] - o[1:]) <= atol, axis=1)
        episode = np.cumsum(~cont) - 1 + ep_offset
        step = np.zeros(len(order), dtype=np.int32)
        for i in range(1, len(order)):
            step[i] = step[i - 1] + 1 if cont[i] else 0
        ep_offset = int(episode.max()) + 1 if len(order) else ep_offset
        parts.append(
            Transitions(
                spec,
                o,
                obs["achieved_goal"][order, e].reshape(len(order), -1),
                obs["desired_goal"][order, e].reshape(len(order), -1),
                limit_action(buffer.actions[order, e].reshape(len(order), -1), spec),
                no,
                nxt["achieved_goal"][order, e].reshape(len(order), -1),
                episode=episode,
                step=step,
                meta={"source": "replay_buffer", "env_column": e},
            )
        )
    out = Transitions.concatenate(parts) if len(parts) > 1 else parts[0]
    out.meta = {"source": "replay_buffer", "n_envs": buffer.n_envs}
    return out
