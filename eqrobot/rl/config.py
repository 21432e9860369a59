"""The training configuration: one dataclass, every field documented (CleanRL style).

Fields left ``None`` are filled from :mod:`eqrobot.rl.presets` for the (env, algo, policy) triple by
:func:`eqrobot.rl.train.resolve_config`; the resolved config is what ``config.json`` in a run folder
holds, so a run can be reproduced or resumed from it alone.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALGOS = ("sac", "td3", "ppo", "tqc")
"""Algorithms :func:`eqrobot.rl.train.train` knows (``tqc`` is sb3-contrib's TQC)."""

OFF_POLICY_ALGOS = ("sac", "td3", "tqc")
"""The algorithms with a replay buffer (HER, demos, replay augmentation)."""

AUGMENTATIONS = ("so2", "se3")
"""Replay augmentation groups (:mod:`eqrobot.rl.augmentation`)."""

POLICIES = ("equivariant", "mlp")
"""``equivariant``: eqrobot's SE(3)-equivariant actor + invariant critics; ``mlp``: SB3's stock
``MultiInputPolicy`` with the same hyperparameters (the baseline)."""


@dataclass
class TrainConfig:
    """Everything :func:`eqrobot.rl.train.train` needs; ``None`` means "take the preset"."""

    env_id: str = field(default="eqrobot/Reach-v0", metadata={"flag": "--env"})
    """Gymnasium id of the env (one of ``eqrobot.ENV_IDS``)."""
    algo: str = field(default="sac", metadata={"choices": ALGOS})
    """RL algorithm: ``sac``, ``td3``, ``ppo`` or ``tqc`` (sb3-contrib)."""
    policy: str = field(default="equivariant", metadata={"choices": POLICIES})
    """``equivariant`` (eqrobot policies) or ``mlp`` (SB3's stock MultiInputPolicy)."""
    steps: int | None = None
    """Total env steps to train for (summed over the parallel envs; demos not included)."""
    seed: int = 0
    """Seed for torch, numpy, the envs and the evaluation episodes."""
    n_envs: int = 1
    """Parallel training envs (off-policy: ``gradient_steps`` updates per ``train_freq`` steps of
    ALL envs together, so more envs = fewer updates per env step = faster, less sample-efficient)."""
    vec_env: str = field(default="dummy", metadata={"choices": ("dummy", "subproc")})
    """``dummy`` (one process) or ``subproc`` (a process per env; pays off for n_envs >= 2)."""
    demos: int = 0
    """Oracle episodes put into the replay buffer before learning (off-policy algorithms only)."""
    rotation_range_deg: float = field(default=0.0, metadata={"flag": "--rotation-range", "metavar": "DEG"})
    """Half-width (degrees) of the random task rotation about gravity at each training reset."""
    eval_rotation_range_deg: float | None = field(
        default=None, metadata={"flag": "--eval-rotation-range", "metavar": "DEG"}
    )
    """Task rotation half-width for the periodic evaluation; None = same as training."""
    augment: str | None = field(default=None, metadata={"choices": AUGMENTATIONS})
    """Replay augmentation (off-policy algorithms): every sampled batch is moved by random group
    elements, one per transition, through the geometry spec (observations, goals, actions, next
    observations; rewards kept). ``so2``: rotations about the gravity axis through the robot base;
    ``se3``: rotations and translations of everything, gravity included. None: off. Combine with
    ``rotation_range_deg`` to also rotate the task at each reset. See :mod:`eqrobot.rl.augmentation`."""
    her: bool | None = None
    """Hindsight experience replay for off-policy algorithms (preset: on for sparse goal envs)."""
    eval_freq: int | None = None
    """Env steps between evaluations (and checkpoints); 0 disables periodic evaluation."""
    eval_episodes: int = 20
    """Episodes per evaluation (deterministic policy, fixed seeds ``seed + 10_000 + i``)."""
    out: str = "runs"
    """Folder under which the run folder is created."""
    run_name: str | None = None
    """Run folder name; default ``<Task>-<algo>-<policy>-s<seed>-<UTC time>``."""
    resume: str | None = field(default=None, metadata={"metavar": "RUN"})
    """A run folder to continue (its saved config is used; ``steps`` here, if set, is the new total)."""
    hyperparams: dict[str, Any] = field(default_factory=dict, metadata={"flag": "--hp"})
    """SB3 algorithm constructor arguments; override the preset's key by key."""
    policy_kwargs: dict[str, Any] = field(default_factory=dict, metadata={"flag": "--policy-kwarg"})
    """SB3 ``policy_kwargs``; override the preset's key by key."""
    env_kwargs: dict[str, Any] = field(default_factory=dict, metadata={"flag": "--env-kwarg"})
    """Extra keyword arguments for ``gymnasium.make`` (training and evaluation envs)."""
    save_replay_buffer: bool = True
    """Write ``replay_buffer.pkl`` with each checkpoint (needed for an exact ``resume``)."""
    progress_bar: bool = field(default=True, metadata={"flag": "--progress"})
    """Show a tqdm bar with the current training and evaluation success rates."""
    torch_threads: int = field(default=1, metadata={"flag": "--threads"})
    """``torch.set_num_threads`` for the run (small nets: 1 is fastest and shares cores fairly)."""
    device: str = "cpu"
    """Torch device."""
    verbose: int = 0
    """SB3 verbosity."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown TrainConfig fields {unknown}; valid fields: {sorted(names)}")
        return cls(**d)

    def save(self, path: str | Path) -> None:
        from eqrobot.rl.checkpoint import atomic_write_bytes

        atomic_write_bytes(Path(path), (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode())

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))
