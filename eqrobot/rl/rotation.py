"""Rotation-generalization evaluation: success of any number of policies on named rotated splits.

Library entry points (the ``eqrobot rotation`` CLI only parses arguments and calls these):

- :func:`evaluate_rotation` -> :class:`RotationResult` (``to_markdown``, ``to_json``, ``to_csv``,
  ``plot_polar``; ``RotationResult.from_json`` reads one back);
- :func:`simulator_equivariance_gap`: how far apart physics alone puts a rollout and its rotated
  copy (the part of the rotation gap no network can remove);
- :func:`save_videos`: one GIF per chosen task-rotation angle.

Splits (``canonical``, ``so2-sweep``, ``so3-world``, ``so2+shift``) live in
:mod:`eqrobot.rl.rotation_splits`. A policy is anything with an SB3-style
``predict(obs, deterministic=True) -> (action, state)`` that accepts a batched Dict observation
(SB3 models, :class:`eqrobot.envs.oracles.OraclePolicy`), or a path to a run folder / SB3 zip.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from eqrobot.rl.rotation_splits import (
    JOINT1_LIMIT_DEG,
    SPLITS,
    Split,
    SplitEpisode,
    axis_angle,
    get_split,
    resolve_splits,
    rot_z,
    seed_for,
)

__all__ = [
    "SPLITS",
    "BinResult",
    "RotationResult",
    "evaluate_rotation",
    "get_split",
    "load_policy",
    "save_videos",
    "simulator_equivariance_gap",
    "wilson_interval",
]

Z95 = 1.959963984540054


# ----------------------------------------------------------------------------------------------
# statistics
# ----------------------------------------------------------------------------------------------
def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95% by default); ``(nan, nan)`` for n = 0."""
    if n <= 0:
        return (math.nan, math.nan)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == n else min(1.0, centre + half)
    return (lo, hi)


@dataclass
class BinResult:
    """One (policy, split, bin) cell of a rotation table."""

    policy: str
    split: str
    bin: int
    label: str
    angle_deg: float | None
    reachable: bool
    episodes: int
    successes: int
    success_rate: float | None
    """None (never 0) when no episode reached this bin."""
    ci_low: float | None
    ci_high: float | None
    mean_return: float | None
    std_return: float | None
    note: str = ""

    @property
    def empty(self) -> bool:
        return self.episodes == 0

    def cell(self) -> str:
        """Markdown cell text: ``0.95 [0.76, 0.99]`` or a clearly marked empty cell."""
        if self.empty:
            return "**no episodes**" + (" (env refused)" if self.note.startswith("env refused") else "")
        return f"{self.success_rate:.2f} [{self.ci_low:.2f}, {self.ci_high:.2f}]"


def _summarize(policy: str, split: Split, records: list[dict]) -> list[BinResult]:
    rows = []
    for b in split.bins:
        recs = [r for r in records if r["bin"] == b.index]
        n = len(recs)
        k = int(sum(bool(r["success"]) for r in recs))
        rets = np.array([r["return"] for r in recs], dtype=float)
        lo, hi = wilson_interval(k, n)
        rows.append(
            BinResult(
                policy=policy,
                split=split.name,
                bin=b.index,
                label=b.label,
                angle_deg=b.angle_deg,
                reachable=b.reachable,
                episodes=n,
                successes=k,
                success_rate=(k / n) if n else None,
                ci_low=lo if n else None,
                ci_high=hi if n else None,
                mean_return=float(rets.mean()) if n else None,
                std_return=float(rets.std()) if n else None,
                note="" if n else "no episode reached this bin",
            )
        )
    return rows


# ----------------------------------------------------------------------------------------------
# result container and outputs
# ----------------------------------------------------------------------------------------------
@dataclass
class RotationResult:
    """Per-bin success of every policy on every evaluated split (plus the raw episodes)."""

    env_id: str
    policies: list[str]
    splits: list[str]
    episodes_per_bin: int
    seed: int
    rows: list[BinResult]
    episodes: list[dict] = field(default_factory=list)
    """One record per episode: policy, split, bin, episode, seed, success, return, length, options."""
    meta: dict = field(default_factory=dict)

    # --- queries ------------------------------------------------------------------------------
    def cells(self, policy: str | None = None, split: str | None = None) -> list[BinResult]:
        return [
            r
            for r in self.rows
            if (policy is None or r.policy == policy) and (split is None or r.split == split)
        ]

    def success(self, policy: str, split: str) -> dict[str, float | None]:
        """Bin label -> success rate (None for a bin no episode reached)."""
        return {r.label: r.success_rate for r in self.cells(policy, split)}

    def overall(self, policy: str, split: str, reachable_only: bool = True) -> BinResult:
        """All episodes of a split pooled into one cell (reachable bins only by default)."""
        recs = [
            e
            for e in self.episodes
            if e["policy"] == policy and e["split"] == split and (e["reachable"] or not reachable_only)
        ]
        n = len(recs)
        k = int(sum(bool(e["success"]) for e in recs))
        rets = np.array([e["return"] for e in recs], dtype=float)
        lo, hi = wilson_interval(k, n)
        return BinResult(
            policy,
            split,
            -1,
            "all",
            None,
            True,
            n,
            k,
            k / n if n else None,
            lo if n else None,
            hi if n else None,
            float(rets.mean()) if n else None,
            float(rets.std()) if n else None,
            "" if n else "no episodes",
        )

    def retention(self, policy: str, split: str, reference: str = "canonical") -> dict[str, float | None]:
        """Bin label -> success rate / the policy's pooled success on ``reference``.

        None where the bin or the reference has no episodes or the reference success is 0.
        """
        ref = self.overall(policy, reference, reachable_only=False).success_rate
        out = {}
        for r in self.cells(policy, split):
            out[r.label] = None if (r.success_rate is None or not ref) else r.success_rate / ref
        return out

    # --- outputs ------------------------------------------------------------------------------
    def to_markdown(self, returns: bool = True) -> str:
        """One table per split: rows are bins, columns are policies (success [95% CI], mean return)."""
        lines = [
            f"Rotation generalization on `{self.env_id}` ({self.episodes_per_bin} episodes per bin, "
            f"seed {self.seed}). Success rate [95% Wilson CI]"
            + ("; mean return in parentheses." if returns else ".")
        ]
        for split in self.splits:
            s = SPLITS.get(split)
            lines.append("")
            lines.append(f"### {split}" + (f": {s.description}" if s is not None else ""))
            lines.append("")
            lines.append("| bin | " + " | ".join(self.policies) + " |")
            lines.append("|---|" + "---|" * len(self.policies))
            bins = self.cells(self.policies[0], split) if self.policies else []
            for b in bins:
                label = b.label + ("" if b.reachable else " (unreachable)")
                cells = []
                for p in self.policies:
                    c = next(r for r in self.rows if r.policy == p and r.split == split and r.bin == b.bin)
                    text = c.cell()
                    if returns and not c.empty:
                        text += f" ({c.mean_return:.1f})"
                    cells.append(text)
                lines.append(f"| {label} | " + " | ".join(cells) + " |")
            notes = sorted({f"{r.label}: {r.note}" for r in self.cells(split=split) if r.empty and r.note})
            if len(bins) > 1:
                cells = []
                for p in self.policies:
                    c = self.overall(p, split)
                    cells.append(c.cell())
                lines.append("| **all reachable** | " + " | ".join(cells) + " |")
            for note in notes:
                lines.append(f"\nBin {note}.")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {
            "env_id": self.env_id,
            "policies": list(self.policies),
            "splits": list(self.splits),
            "episodes_per_bin": self.episodes_per_bin,
            "seed": self.seed,
            "rows": [asdict(r) for r in self.rows],
            "episodes": self.episodes,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict) -> RotationResult:
        return cls(
            env_id=d["env_id"],
            policies=list(d["policies"]),
            splits=list(d["splits"]),
            episodes_per_bin=int(d["episodes_per_bin"]),
            seed=int(d["seed"]),
            rows=[BinResult(**r) for r in d["rows"]],
            episodes=list(d.get("episodes", [])),
            meta=dict(d.get("meta", {})),
        )

    def to_json(self, path: str | os.PathLike) -> Path:
        """Write the whole result (cells, raw episodes, meta); NaN-free, so any JSON parser reads it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(_jsonable(self.to_dict()), indent=1, allow_nan=False))
        os.replace(tmp, path)
        return path

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> RotationResult:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_csv(self, path: str | os.PathLike) -> Path:
        """One line per (policy, split, bin); empty cells have blank rates and ``episodes`` = 0."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = list(BinResult.__dataclass_fields__)
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["env_id", *names])
            w.writeheader()
            for r in self.rows:
                d = asdict(r)
                w.writerow({"env_id": self.env_id, **{k: ("" if v is None else v) for k, v in d.items()}})
        return path

    def plot_polar(self, path: str | os.PathLike, title: str | None = None) -> Path:
        """Polar plot of success vs task-rotation angle, one curve (with 95% CI band) per policy.

        One panel per angular split present (``so2-sweep``, ``so2+shift``); the sector beyond Panda
        joint 1's range is shaded; bins without episodes are drawn as gaps. Non-angular splits
        (``canonical``, ``so3-world``) are drawn as a bar chart panel next to them.
        """
        import matplotlib

        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        angular = [s for s in self.splits if s in SPLITS and SPLITS[s].angular]
        other = [s for s in self.splits if s not in angular]
        n_panels = len(angular) + (1 if other else 0)
        if n_panels == 0:
            raise ValueError("nothing to plot: the result holds no split")
        fig = plt.figure(figsize=(5.2 * n_panels, 5.0))
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for k, split in enumerate(angular):
            ax = fig.add_subplot(1, n_panels, k + 1, projection="polar")
            ax.set_theta_zero_location("E")
            lim = np.radians(JOINT1_LIMIT_DEG)
            ax.fill_between(
                np.linspace(lim, 2 * np.pi - lim, 50),
                0,
                1.05,
                color="0.85",
                zorder=0,
                label=f"beyond joint 1 (|a| > {JOINT1_LIMIT_DEG:.0f} deg)",
            )
            for j, p in enumerate(self.policies):
                cells = sorted(self.cells(p, split), key=lambda r: r.angle_deg)
                th = np.radians([c.angle_deg for c in cells])
                r = np.array([np.nan if c.empty else c.success_rate for c in cells], dtype=float)
                lo = np.array([np.nan if c.empty else c.ci_low for c in cells], dtype=float)
                hi = np.array([np.nan if c.empty else c.ci_high for c in cells], dtype=float)
                # close the curve
                th, r, lo, hi = (np.append(a, a[0] + (2 * np.pi if a is th else 0)) for a in (th, r, lo, hi))
                color = colors[j % len(colors)]
                style = ("-", "--", ":", "-.")[j % 4]
                marker = ("o", "s", "^", "d")[j % 4]
                ax.plot(
                    th, r, linestyle=style, marker=marker, color=color, label=p, markersize=3, linewidth=1.5
                )
                ax.fill_between(th, lo, hi, color=color, alpha=0.12)
                if any(c.empty for c in cells):
                    ax.plot(
                        [np.radians(c.angle_deg) for c in cells if c.empty],
                        [0.0] * sum(c.empty for c in cells),
                        "x",
                        color=color,
                    )
            ax.set_ylim(0, 1.05)
            ax.set_title(f"{split}: success vs task rotation", fontsize=10)
            if k == 0:
                ax.legend(loc="lower left", bbox_to_anchor=(-0.15, -0.2), fontsize=7)
        if other:
            ax = fig.add_subplot(1, n_panels, n_panels)
            groups = [(s, c) for s in other for c in self.cells(self.policies[0], s)]
            x = np.arange(len(groups))
            width = 0.8 / max(1, len(self.policies))
            for j, p in enumerate(self.policies):
                vals, errs = [], [[], []]
                for s, c0 in groups:
                    c = next(r for r in self.rows if r.policy == p and r.split == s and r.bin == c0.bin)
                    v = 0.0 if c.empty else c.success_rate
                    vals.append(v)
                    errs[0].append(0.0 if c.empty else v - c.ci_low)
                    errs[1].append(0.0 if c.empty else c.ci_high - v)
                ax.bar(
                    x + j * width,
                    vals,
                    width,
                    yerr=errs,
                    label=p,
                    color=colors[j % len(colors)],
                    capsize=2,
                    hatch=None,
                )
                for xi, (s, c0) in zip(x, groups, strict=False):
                    c = next(r for r in self.rows if r.policy == p and r.split == s and r.bin == c0.bin)
                    if c.empty:
                        ax.text(xi + j * width, 0.02, "n/a", ha="center", fontsize=6, rotation=90)
            ax.set_xticks(x + width * (len(self.policies) - 1) / 2)
            ax.set_xticklabels([f"{s}\n{c.label}" for s, c in groups], fontsize=7, rotation=45)
            ax.set_ylim(0, 1.05)
            ax.set_ylabel("success rate")
            ax.set_title("non-angular splits (so3-world: rotation angle)", fontsize=10)
        fig.suptitle(title or f"{self.env_id}: rotation generalization", fontsize=11)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.floating, float)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


# ----------------------------------------------------------------------------------------------
# policies
# ----------------------------------------------------------------------------------------------
def load_policy(policy: Any, env_id: str | None = None):
    """A policy object from a policy, an SB3 zip path, an eqrobot run folder, a dynamics-model
    checkpoint (planned with MPC), or ``"oracle"``
    (the env's scripted :class:`~eqrobot.envs.oracles.OraclePolicy`)."""
    if hasattr(policy, "predict"):
        return policy
    if isinstance(policy, str) and policy == "oracle" and not Path(policy).exists():
        if env_id is None:
            raise ValueError("policy 'oracle' needs the env id")
        from eqrobot.envs.oracles import OraclePolicy

        env = gym.make(env_id)
        try:
            return OraclePolicy(env)
        finally:
            env.close()
    if isinstance(policy, (str, os.PathLike)):
        path = Path(policy)
        if not path.exists():
            raise FileNotFoundError(f"policy {str(policy)!r}: no such run folder or SB3 zip")
        from eqrobot.dynamics.api import is_dynamics_checkpoint, make_planner

        if is_dynamics_checkpoint(path):
            # a learned dynamics model plans through MPC; it holds the gripper closed, the setting
            # the planner was benchmarked with (docs/dynamics.md)
            return make_planner(path, fixed_scalars={"gripper": -1.0})
        try:
            from eqrobot.rl.checkpoint import load_model
        except ImportError:  # the training code has not landed: plain SB3 zips still work
            load_model = None
        if load_model is not None:
            return load_model(path, env_id=env_id) if env_id is not None else load_model(path)
        return _load_sb3_zip(path, env_id)
    raise TypeError(
        f"policy {policy!r} is neither an object with .predict(obs, deterministic=True) nor a path "
        "to an SB3 zip / run folder"
    )


def _load_sb3_zip(path: Path, env_id: str | None = None):
    """Plain SB3 loading (used when :mod:`eqrobot.rl.checkpoint` is not available)."""
    import zipfile

    import stable_baselines3 as sb3

    import eqrobot  # noqa: F401  (registers the 'EquivariantPolicy' aliases, if any)

    if path.is_dir():
        path = path / "model.zip"
    try:
        with zipfile.ZipFile(path) as zf:
            data = json.loads(zf.read("data"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, FileNotFoundError) as e:
        raise ValueError(f"{path}: not a readable SB3 zip ({e})") from e
    policy_class = json.dumps(data.get("policy_class", "")).lower()
    algos = [a for a in ("SAC", "TD3", "DDPG", "PPO", "A2C") if a.lower() in policy_class] or [
        "SAC",
        "TD3",
        "PPO",
    ]

    def load(algo):
        cls = getattr(sb3, algo)
        try:
            return cls.load(path, device="cpu")
        except AssertionError as e:  # HER replay buffers need the env at load time
            if env_id is None or "HerReplayBuffer" not in str(e):
                raise
            from stable_baselines3.common.vec_env import DummyVecEnv

            try:
                return cls.load(path, env=DummyVecEnv([lambda: gym.make(env_id)]), device="cpu")
            except ValueError as e2:
                raise ValueError(f"{path} does not fit {env_id}: {e2}") from e2

    errors = []
    for algo in algos:
        try:
            return load(algo)
        except ValueError as e:
            if "does not fit" in str(e):
                raise
            errors.append(f"{algo}: {e}")
        except Exception as e:  # noqa: BLE001 - try the next algorithm
            errors.append(f"{algo}: {e}")
    raise ValueError(f"{path}: could not load with any SB3 algorithm ({'; '.join(errors)})")


def _space_desc(space) -> str:
    if isinstance(space, gym.spaces.Dict):
        return "Dict(" + ", ".join(f"{k}: {v.shape}" for k, v in space.spaces.items()) + ")"
    return f"{type(space).__name__}{getattr(space, 'shape', '')}"


def check_policy_fits(name: str, policy, observation_space, action_space) -> None:
    """Raise a clear ValueError when a policy's spaces (if it has them) do not fit the env's."""
    obs_space = getattr(policy, "observation_space", None)
    act_space = getattr(policy, "action_space", None)
    problems = []
    if obs_space is not None:
        if isinstance(observation_space, gym.spaces.Dict) != isinstance(obs_space, gym.spaces.Dict):
            problems.append(
                f"observation space {_space_desc(obs_space)} vs env {_space_desc(observation_space)}"
            )
        elif isinstance(observation_space, gym.spaces.Dict):
            mine = {k: tuple(v.shape) for k, v in obs_space.spaces.items()}
            env = {k: tuple(v.shape) for k, v in observation_space.spaces.items()}
            if mine != env:
                problems.append(
                    f"observation space {_space_desc(obs_space)} vs env {_space_desc(observation_space)}"
                )
        elif tuple(obs_space.shape) != tuple(observation_space.shape):
            problems.append(f"observation shape {obs_space.shape} vs env {observation_space.shape}")
        spec_p = getattr(obs_space, "geometry_spec", None)
        spec_e = getattr(observation_space, "geometry_spec", None)
        if not problems and spec_p is not None and spec_e is not None and spec_p != spec_e:
            problems.append("geometry spec differs from the env's (same shapes, different field layout)")
    if act_space is not None and tuple(getattr(act_space, "shape", ())) != tuple(action_space.shape):
        problems.append(f"action space {_space_desc(act_space)} vs env {_space_desc(action_space)}")
    if problems:
        raise ValueError(
            f"policy {name!r} does not fit this env: "
            + "; ".join(problems)
            + ". Was it trained on another env? Pass the env it was trained on."
        )


# ----------------------------------------------------------------------------------------------
# scheduled vector rollouts
# ----------------------------------------------------------------------------------------------
class _ScheduledResets(gym.Wrapper):
    """Resets from a fixed queue of ``(episode_id, seed, options)``; padding episodes get id -1.

    Lets SB3 VecEnvs (which auto-reset without seeds/options) replay an exact list of episodes.
    """

    def __init__(self, env, schedule=()):
        super().__init__(env)
        self._queue = list(schedule)
        self._current = -1

    def set_schedule(self, schedule) -> None:
        self._queue = list(schedule)
        self._current = -1

    def reset(self, *, seed=None, options=None):
        if self._queue:
            self._current, seed, options = self._queue.pop(0)
        else:
            self._current, seed, options = -1, 0, None
        obs, info = self.env.reset(seed=seed, options=options)
        info["eqrobot_episode"] = self._current
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["eqrobot_episode"] = self._current
        return obs, reward, terminated, truncated, info


def _make_env(env_id: str, env_kwargs: dict | None, render_mode: str | None = None):
    import eqrobot  # noqa: F401  (registers the ids in subprocess workers)

    kwargs = dict(env_kwargs or {})
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    return _ScheduledResets(gym.make(env_id, **kwargs))


def _make_vec_env(env_id: str, env_kwargs: dict | None, n_envs: int, start_method: str | None = None):
    import multiprocessing
    import sys

    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    fns = [functools.partial(_make_env, env_id, env_kwargs) for _ in range(n_envs)]
    if n_envs == 1:
        return DummyVecEnv(fns)
    if (
        start_method is None
        and sys.platform.startswith("linux")
        and "fork" in multiprocessing.get_all_start_methods()
    ):
        # the workers only step PyBullet (no torch): fork starts them ~10x faster than forkserver
        start_method = "fork"
    return SubprocVecEnv(fns, start_method=start_method)


def _check_options(env_id: str, env_kwargs: dict | None, splits: Sequence[Split], seed: int) -> dict:
    """Reset one env (in this process, so errors read clearly) with the options of every split's
    first bin and of every unreachable bin.

    Returns ``{(split, bin): reason}`` for bins the env refuses (these become marked empty cells).
    """
    refused: dict = {}
    env = _make_env(env_id, env_kwargs)
    try:
        for s in splits:
            for b in s.bins:
                if b.reachable and b.index != next(x.index for x in s.bins if x.reachable):
                    continue
                try:
                    env.env.reset(seed=seed_for(seed, 0), options=s.options(b.index, 0, seed))
                except (ValueError, gym.error.Error) as e:
                    if b.reachable:  # a reachable bin must work: that is a real error
                        raise ValueError(
                            f"env {env_id} refused the reset options of split {s.name!r} bin {b.label}: {e}"
                        ) from e
                    refused[(s.name, b.index)] = str(e).splitlines()[0]
    finally:
        env.close()
    return refused


def _rollout_episodes(
    vec, policy, episodes: list[SplitEpisode], n_envs: int, pbar=None, deterministic: bool = True
) -> list[dict]:
    """Run every episode once (round-robin over the workers); one record per episode."""
    schedules: list[list] = [[] for _ in range(n_envs)]
    for k, ep in enumerate(episodes):
        schedules[k % n_envs].append((k, ep.seed, ep.options))
    for i in range(n_envs):
        vec.env_method("set_schedule", schedules[i], indices=[i])
    obs = vec.reset()
    records: dict[int, dict] = {}
    returns = np.zeros(n_envs)
    lengths = np.zeros(n_envs, dtype=int)
    n_todo = len(episodes)
    while len(records) < n_todo:
        action, _ = policy.predict(obs, deterministic=deterministic)
        action = np.asarray(action)
        if action.shape != (n_envs, *vec.action_space.shape):
            raise ValueError(
                f"policy returned actions of shape {action.shape} for a batch of {n_envs} observations; "
                f"expected {(n_envs, *vec.action_space.shape)}"
            )
        obs, rewards, dones, infos = vec.step(action)
        returns += rewards
        lengths += 1
        for i in np.flatnonzero(dones):
            k = int(infos[i].get("eqrobot_episode", -1))
            if k >= 0:
                ep = episodes[k]
                success = infos[i].get("is_success")
                if success is None:
                    raise ValueError("the env's info has no 'is_success': cannot score episodes")
                records[k] = {
                    "split": ep.split,
                    "bin": ep.bin_index,
                    "episode": ep.episode,
                    "seed": ep.seed,
                    "success": bool(success),
                    "return": float(returns[i]),
                    "length": int(lengths[i]),
                }
                if pbar is not None:
                    pbar.update(1)
            returns[i] = 0.0
            lengths[i] = 0
    return [records[k] for k in range(n_todo)]


def evaluate_rotation(
    policies: Mapping[str, Any] | Sequence[Any] | Any,
    env_id: str,
    split: str | Sequence[str] = "so2-sweep",
    episodes_per_bin: int = 10,
    n_envs: int = 1,
    seed: int = 0,
    progress: bool = True,
    env_kwargs: dict | None = None,
    deterministic: bool = True,
    start_method: str | None = None,
) -> RotationResult:
    """Evaluate policies side by side on one or more named splits.

    Args:
        policies: ``{name: policy_or_path}``; a policy is anything with SB3-style
            ``predict(obs, deterministic=True)`` taking a batched Dict observation (SB3 model,
            ``OraclePolicy``), or a path to an SB3 zip / eqrobot run folder. A bare policy or a list
            is named by position / path.
        env_id: a registered env id, e.g. ``"eqrobot/Push-v0"``.
        split: a split name (:data:`SPLITS`), a list of names, a comma-separated string, or ``"all"``.
        episodes_per_bin: episodes in every bin (same env seeds in every bin: paired layouts).
        n_envs: episodes run in parallel in this many envs (SB3 ``SubprocVecEnv`` when > 1);
            results do not depend on it.
        seed: selects a disjoint block of env seeds and group elements; same seed, same episodes.
        progress: tqdm progress bar over episodes.
        env_kwargs: extra ``gymnasium.make`` kwargs (e.g. ``{"reward_type": "dense"}``).
        deterministic: passed to ``predict``.
        start_method: multiprocessing start method of the ``SubprocVecEnv`` workers (n_envs > 1);
            None: ``"fork"`` on Linux (fast; the workers only step PyBullet), else SB3's default.

    Returns:
        :class:`RotationResult` with one :class:`BinResult` per (policy, split, bin). A bin the env
        refuses (e.g. a task rotation beyond joint 1, if the env forbids it) is a marked empty cell.

    Raises:
        ValueError: unknown split (the message lists them), a policy whose observation/action spaces
            do not fit the env, or an env that refuses a reachable bin's reset options.
    """
    splits = resolve_splits(split)
    if int(n_envs) < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    n_envs = int(n_envs)
    named = _name_policies(policies)
    resolved = {name: load_policy(p, env_id) for name, p in named.items()}

    import eqrobot  # noqa: F401

    probe = gym.make(env_id, **(env_kwargs or {}))
    try:
        obs_space, act_space = probe.observation_space, probe.action_space
    finally:
        probe.close()
    for name, pol in resolved.items():
        check_policy_fits(name, pol, obs_space, act_space)

    refused = _check_options(env_id, env_kwargs, splits, seed)
    all_eps = []
    for s in splits:
        all_eps.extend(e for e in s.episodes(episodes_per_bin, seed) if (s.name, e.bin_index) not in refused)

    rows: list[BinResult] = []
    ep_records: list[dict] = []
    pbar = None
    if progress:
        from tqdm.auto import tqdm

        pbar = tqdm(total=len(all_eps) * len(resolved), desc=f"rotation {env_id}", unit="ep")
    vec = _make_vec_env(env_id, env_kwargs, min(n_envs, max(1, len(all_eps))), start_method)
    try:
        for name, pol in resolved.items():
            if pbar is not None:
                pbar.set_postfix_str(name)
            recs = _rollout_episodes(vec, pol, all_eps, vec.num_envs, pbar, deterministic) if all_eps else []
            by_key = {(s.name, b.index): b for s in splits for b in s.bins}
            for r, ep in zip(recs, all_eps, strict=False):
                r["policy"] = name
                r["reachable"] = by_key[(r["split"], r["bin"])].reachable
                r.update({k: v for k, v in ep.describe().items() if k not in r})
            ep_records.extend(recs)
            for s in splits:
                cells = _summarize(name, s, [r for r in recs if r["split"] == s.name])
                for c in cells:
                    if (s.name, c.bin) in refused:
                        c.note = "env refused the reset: " + refused[(s.name, c.bin)]
                rows.extend(cells)
    finally:
        vec.close()
        if pbar is not None:
            pbar.close()
    return RotationResult(
        env_id=env_id,
        policies=list(resolved),
        splits=[s.name for s in splits],
        episodes_per_bin=int(episodes_per_bin),
        seed=int(seed),
        rows=rows,
        episodes=ep_records,
        meta={
            "n_envs": n_envs,
            "env_kwargs": _jsonable(env_kwargs or {}),
            "deterministic": deterministic,
            "joint1_limit_deg": JOINT1_LIMIT_DEG,
        },
    )


def _name_policies(policies) -> dict[str, Any]:
    """``{name: policy}`` from a mapping, one policy, or a list of policies / paths / ``NAME=PATH``."""
    if isinstance(policies, Mapping):
        if not policies:
            raise ValueError("no policy given")
        return dict(policies)
    if hasattr(policies, "predict") or isinstance(policies, (str, os.PathLike)):
        policies = [policies]
    out: dict[str, Any] = {}
    for i, p in enumerate(policies):
        if isinstance(p, str) and "=" in p and not Path(p).exists():
            name, p = p.split("=", 1)
        elif isinstance(p, (str, os.PathLike)):
            path = Path(p)
            name = path.name if path.is_dir() else path.stem
            if name == "model" and path.parent.name:
                name = path.parent.name
        else:
            name = type(p).__name__
        while name in out:
            name = f"{name}_{i}"
        out[name] = p
    if not out:
        raise ValueError("no policy given")
    return out


# ----------------------------------------------------------------------------------------------
# the simulator's own equivariance error
# ----------------------------------------------------------------------------------------------
def _single(obs: dict) -> dict:
    return {k: np.asarray(v) for k, v in obs.items()}


def _run_closed_loop(env, policy, obs, deterministic=True):
    actions = []
    while True:
        a, _ = policy.predict(obs, deterministic=deterministic)
        a = np.asarray(a, dtype=np.float32).reshape(env.action_space.shape)
        actions.append(a)
        obs, _, terminated, truncated, info = env.step(a)
        if terminated or truncated:
            return obs, actions, info


def _geometry_spec(env):
    spec = getattr(env.observation_space, "geometry_spec", None) or getattr(
        env.unwrapped, "geometry_spec", None
    )
    if spec is None:
        raise ValueError(
            "env has no geometry_spec (observation_space.geometry_spec or env.unwrapped.geometry_spec)"
        )
    return spec


def simulator_equivariance_gap(
    env_id: str,
    policy: Any,
    angles_deg: Sequence[float] = (-135.0, -90.0, -45.0, 45.0, 90.0, 135.0),
    episodes: int = 3,
    seed: int = 0,
    group: str = "task",
    env_kwargs: dict | None = None,
    progress: bool = False,
) -> dict:
    """How far physics alone puts a rollout and its rotated copy apart.

    For each episode (env seed ``seed_for(seed, i)``, the same layouts as the splits) the policy is
    rolled out closed-loop in the canonical scene. Then, for each group element ``g = (R, t)``, the
    same seed is reset with ``g`` applied and

    - *open loop*: fed the rotated actions ``R a_t`` of the canonical rollout. Any difference between
      ``g`` applied to the canonical final state and the rotated final state is the simulator's own
      equivariance error (contact and friction are not exactly rotation invariant in PyBullet);
    - *closed loop*: the policy runs again in the rotated scene. For an exactly equivariant policy the
      extra gap over open loop comes from the policy reacting to the physics gap (plus float noise);
      for a non-equivariant policy it is dominated by the policy.

    Args:
        group: ``"task"`` (task rotation about gravity through the robot base by each of
            ``angles_deg``) or ``"world"`` (random SE(3) world transforms, ``len(angles_deg)`` of them,
            with those rotation angles about random axes).

    Returns a JSON-friendly dict: per object-position field and overall, the mean and max (over
    episodes and group elements) final discrepancy in metres, open and closed loop, the initial
    discrepancy (should be ~1e-6: a sanity check of the group action), the success agreement, and a
    per-angle breakdown.
    """
    if group not in ("task", "world"):
        raise ValueError(f"group must be 'task' or 'world', got {group!r}")
    import eqrobot  # noqa: F401

    pol = load_policy(policy, env_id)
    env = gym.make(env_id, **(env_kwargs or {}))
    spec = _geometry_spec(env)
    check_policy_fits("policy", pol, env.observation_space, env.action_space)
    obs_spec = spec.observation
    objects = [f.name for f in obs_spec.of_kind("point") if f.name not in ("base_position", "ee_position")]
    tracked = objects + (["ee_position"] if "ee_position" in obs_spec else [])
    rng = np.random.default_rng([7, int(seed)])
    per: list[dict] = []
    it = range(int(episodes))
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="sim gap", unit="ep")
    try:
        for i in it:
            s = seed_for(seed, i)
            canon_opts = (
                {"task_rotation": 0.0}
                if group == "task"
                else {"world_rotation": np.eye(3), "world_translation": np.zeros(3)}
            )
            obs0, _ = env.reset(seed=s, options=canon_opts)
            obs0 = _single(obs0)
            final_c, actions, info_c = _run_closed_loop(env, pol, obs0)
            final_c = _single(final_c)
            for a_deg in angles_deg:
                if group == "task":
                    R = rot_z(np.radians(a_deg))
                    b = (
                        obs0["observation"][obs_spec["base_position"].slice].astype(float)
                        if "base_position" in obs_spec
                        else np.zeros(3)
                    )
                    t = b - R @ b
                    opts = {"task_rotation": float(np.radians(a_deg))}
                else:
                    R = axis_angle(rng.normal(size=3), np.radians(a_deg))
                    t = rng.uniform(-0.5, 0.5, size=3)
                    opts = {"world_rotation": R, "world_translation": t}
                expect0 = obs_spec.transform(obs0["observation"].astype(float), R, t)
                expect_f = obs_spec.transform(final_c["observation"].astype(float), R, t)
                obs_r, _ = env.reset(seed=s, options=opts)
                init_gap = float(np.abs(expect0 - obs_r["observation"]).max())
                info_o = {}
                for a in actions:
                    obs_r, _, term, trunc, info_o = env.step(
                        spec.transform_action(a.astype(float), R).astype(np.float32)
                    )
                open_final = _single(obs_r)["observation"]
                obs_r, _ = env.reset(seed=s, options=opts)
                closed_final, _, info_cl = _run_closed_loop(env, pol, _single(obs_r))
                closed_final = _single(closed_final)["observation"]
                row = {
                    "episode": i,
                    "seed": s,
                    "angle_deg": float(a_deg),
                    "initial_gap": init_gap,
                    "success_canonical": bool(info_c.get("is_success", False)),
                    "success_open_loop": bool(info_o.get("is_success", False)),
                    "success_closed_loop": bool(info_cl.get("is_success", False)),
                }
                for name in tracked:
                    sl = obs_spec[name].slice
                    row[f"open/{name}"] = float(np.linalg.norm(expect_f[sl] - open_final[sl]))
                    row[f"closed/{name}"] = float(np.linalg.norm(expect_f[sl] - closed_final[sl]))
                per.append(row)
    finally:
        env.close()

    def stats(key):
        v = np.array([r[key] for r in per], dtype=float)
        return {"mean": float(v.mean()), "max": float(v.max())} if len(v) else {"mean": None, "max": None}

    out: dict = {
        "env_id": env_id,
        "group": group,
        "episodes": int(episodes),
        "seed": int(seed),
        "angles_deg": [float(a) for a in angles_deg],
        "objects": objects,
        "initial_gap_max": max((r["initial_gap"] for r in per), default=None),
        "open_loop": {name: stats(f"open/{name}") for name in tracked},
        "closed_loop": {name: stats(f"closed/{name}") for name in tracked},
        "success_agreement_open_loop": float(
            np.mean([r["success_open_loop"] == r["success_canonical"] for r in per])
        )
        if per
        else None,
        "success_agreement_closed_loop": float(
            np.mean([r["success_closed_loop"] == r["success_canonical"] for r in per])
        )
        if per
        else None,
        "rows": per,
    }
    if objects:
        allo = np.array([[r[f"open/{n}"] for n in objects] for r in per])
        allc = np.array([[r[f"closed/{n}"] for n in objects] for r in per])
        out["object_gap_open_loop"] = {"mean": float(allo.mean()), "max": float(allo.max())}
        out["object_gap_closed_loop"] = {"mean": float(allc.mean()), "max": float(allc.max())}
        out["per_angle"] = {
            f"{a:g}": {
                "open_mean": float(
                    np.mean([[r[f"open/{n}"] for n in objects] for r in per if r["angle_deg"] == a])
                ),
                "open_max": float(
                    np.max([[r[f"open/{n}"] for n in objects] for r in per if r["angle_deg"] == a])
                ),
            }
            for a in sorted({float(x) for x in angles_deg})
        }
    return out


def format_gap(gap: dict) -> str:
    """A few lines summarising :func:`simulator_equivariance_gap` for printing."""
    if not gap.get("rows"):
        return f"simulator equivariance gap on {gap['env_id']}: no episodes measured"
    lines = [
        f"simulator equivariance gap on {gap['env_id']} ({gap['group']} group, {gap['episodes']} episodes "
        f"x {len(gap['angles_deg'])} elements; initial-state gap {gap['initial_gap_max']:.1e})"
    ]
    if "object_gap_open_loop" in gap:
        o, c = gap["object_gap_open_loop"], gap["object_gap_closed_loop"]
        lines.append(
            f"  final object position, open loop (physics only): mean {o['mean'] * 1000:.2f} mm, "
            f"max {o['max'] * 1000:.2f} mm"
        )
        lines.append(
            f"  final object position, closed loop (policy re-run): mean {c['mean'] * 1000:.2f} mm, "
            f"max {c['max'] * 1000:.2f} mm"
        )
    if "ee_position" in gap["open_loop"]:
        e = gap["open_loop"]["ee_position"]
        lines.append(
            f"  final end-effector position, open loop: mean {e['mean'] * 1000:.2f} mm, "
            f"max {e['max'] * 1000:.2f} mm"
        )
    lines.append(
        f"  success agreement with canonical: open loop {gap['success_agreement_open_loop']:.2f}, "
        f"closed loop {gap['success_agreement_closed_loop']:.2f}"
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# videos
# ----------------------------------------------------------------------------------------------
def save_videos(
    policy: Any,
    env_id: str,
    angles_deg: Sequence[float],
    out_dir: str | os.PathLike,
    seed: int = 0,
    episode: int = 0,
    fps: int = 12,
    frame_skip: int = 2,
    env_kwargs: dict | None = None,
) -> list[Path]:
    """One GIF per task-rotation angle (same layout seed as the splits' episode ``episode``)."""
    import imageio.v3 as iio

    import eqrobot  # noqa: F401

    pol = load_policy(policy, env_id)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    env = gym.make(env_id, render_mode="rgb_array", **(env_kwargs or {}))
    check_policy_fits("policy", pol, env.observation_space, env.action_space)
    paths = []
    try:
        for a in angles_deg:
            obs, _ = env.reset(seed=seed_for(seed, episode), options={"task_rotation": float(np.radians(a))})
            frames = [env.render()]
            k = 0
            while True:
                act, _ = pol.predict(obs, deterministic=True)
                obs, _, term, trunc, info = env.step(
                    np.asarray(act, dtype=np.float32).reshape(env.action_space.shape)
                )
                k += 1
                if k % frame_skip == 0:
                    frames.append(env.render())
                if term or trunc:
                    break
            tag = "ok" if info.get("is_success") else "fail"
            p = out / f"{env_id.replace('/', '_')}_rot{a:+.0f}_{tag}.gif"
            iio.imwrite(p, np.stack(frames), duration=int(1000 / fps), loop=0)
            paths.append(p)
    finally:
        env.close()
    return paths


# ----------------------------------------------------------------------------------------------
# everything at once (what `eqrobot rotation` calls)
# ----------------------------------------------------------------------------------------------
def run_rotation(
    policies: Mapping[str, Any] | Sequence[Any] | Any,
    env_id: str,
    split: str | Sequence[str] = "so2-sweep",
    episodes_per_bin: int = 10,
    n_envs: int = 1,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    video_angles: Sequence[float] | None = None,
    sim_gap_episodes: int = 0,
    progress: bool = True,
    env_kwargs: dict | None = None,
) -> RotationResult:
    """:func:`evaluate_rotation` plus its outputs, for the CLI.

    Writes, when ``out_dir`` is given: ``rotation.md``, ``rotation.json``, ``rotation.csv`` and
    ``rotation_polar.png``; with ``video_angles``, ``videos/<policy>/*.gif``; with
    ``sim_gap_episodes > 0``, the simulator equivariance gap of every policy (task group, the
    default angles) into ``result.meta["sim_gap"]`` and the JSON. Returns the result (print
    ``result.to_markdown()``).
    """
    named = _name_policies(policies)
    loaded = {name: load_policy(p, env_id) for name, p in named.items()}
    result = evaluate_rotation(
        loaded,
        env_id,
        split,
        episodes_per_bin,
        n_envs=n_envs,
        seed=seed,
        progress=progress,
        env_kwargs=env_kwargs,
    )
    result.meta["policy_sources"] = {
        n: str(p) if isinstance(p, (str, os.PathLike)) else type(p).__name__ for n, p in named.items()
    }
    if sim_gap_episodes > 0:
        result.meta["sim_gap"] = {
            name: simulator_equivariance_gap(
                env_id, pol, episodes=sim_gap_episodes, seed=seed, env_kwargs=env_kwargs
            )
            for name, pol in loaded.items()
        }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        md = result.to_markdown()
        for name, gap in result.meta.get("sim_gap", {}).items():
            md += f"\n{name}: " + format_gap(gap) + "\n"
        (out / "rotation.md").write_text(md)
        result.to_json(out / "rotation.json")
        result.to_csv(out / "rotation.csv")
        result.plot_polar(out / "rotation_polar.png")
        if video_angles:
            for name, pol in loaded.items():
                save_videos(
                    pol, env_id, video_angles, out / "videos" / name, seed=seed, env_kwargs=env_kwargs
                )
    return result
