"""The training configuration: one dataclass, every field documented (CleanRL style).

Fields left ``None`` are filled from :mod:`eqrobot.rl.presets` for the (env, algo, policy) triple by
:func:`eqrobot.rl.train.resolve_config`; the resolved config is what ``config.json`` in a run folder
holds, so a run can be reproduced or resumed from it alone.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALGOS = ("sac", "td3", "ppo", "tqc")
"""Algorithms :func:`eqrobot.rl.train.train` knows (``tqc`` is sb3-contrib's TQC)."""

OFF_POLICY_ALGOS = ("sac", "td3", "tqc")
"""The algorithms with a replay buffer (HER, demos, replay augmentation)."""

AUGMENTATIONS = ("so2", "se3")
"""Replay augmentation groups (:mod:`eqrobot.rl.augmentation`)."""

POLICIES = ("equivariant", "mlp", "mlp-tuned")
"""``equivariant``: eqrobot's SE(3)-equivariant actor + invariant critics; ``mlp``: SB3's stock
``MultiInputPolicy`` with the same hyperparameters (the plain baseline); ``mlp-tuned``: the same
stock policy with the settings a search chose for it (SAC and TQC; ``eqrobot.rl.presets.TUNED_MLP``)."""


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
    """Write ``replay_buffer.pkl`` with each checkpoint (needed for an exact ``resume``; without it a
    resume starts from an empty buffer, refilled with the demos)."""
    progress_bar: bool = field(default=True, metadata={"flag": "--progress"})
    """Show a tqdm bar with the current training and evaluation success rates."""
    torch_threads: int = field(default=1, metadata={"flag": "--threads"})
    """``torch.set_num_threads`` for the run (small nets: 1 is fastest and shares cores fairly)."""
    device: str = "cpu"
    """Torch device."""
    verbose: int = 0
    """SB3 verbosity."""

    def check(self) -> None:
        """Raise ValueError naming the field (and its flag) whose value is of the wrong type or range."""
        ints = {"seed": 0, "n_envs": 1, "demos": 0, "eval_episodes": 1, "torch_threads": 1, "verbose": 0}
        optional_ints = {"steps": 1, "eval_freq": 0}
        for name, low in {**ints, **optional_ints}.items():
            value = getattr(self, name)
            if value is None and name in optional_ints:
                continue
            if not _is_int(value) or value < low:
                raise ValueError(f"{_where(name)}: expected an integer >= {low}, got {value!r}")
        if self.seed >= 2**31:
            raise ValueError(f"{_where('seed')}: expected an integer < 2**31, got {self.seed}")
        for name in ("rotation_range_deg", "eval_rotation_range_deg"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or not 0 <= value <= 180):
                raise ValueError(f"{_where(name)}: expected degrees in [0, 180], got {value!r}")
        for name, choices in (("algo", ALGOS), ("policy", POLICIES), ("vec_env", ("dummy", "subproc"))):
            if getattr(self, name) not in choices:
                raise ValueError(f"unknown {name} {getattr(self, name)!r}; valid: {', '.join(choices)}")
        for name in ("hyperparams", "policy_kwargs", "env_kwargs"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{_where(name)}: expected a dict, got {getattr(self, name)!r}")

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
        from eqrobot.files import atomic_write_bytes

        atomic_write_bytes(Path(path), (json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n").encode())

    @classmethod
    def load(cls, path: str | Path) -> TrainConfig:
        try:
            data = json.loads(Path(path).read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"{path}: corrupt JSON ({e})") from e
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a JSON object of TrainConfig fields")
        try:
            return cls.from_dict(data)
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e


def _where(name: str) -> str:
    """``"eval_freq (--eval-freq)"``: the field and the command-line flag that sets it."""
    from eqrobot.flags import flag_name

    f = next(f for f in dataclasses.fields(TrainConfig) if f.name == name)
    return f"{name} ({flag_name(f)})"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# --- keyword arguments checked against a constructor's signature --------------------------------
_POSITIVE = (lambda v: v > 0, "> 0")
_AT_LEAST_1 = (lambda v: v >= 1, ">= 1")
_NON_NEGATIVE = (lambda v: v >= 0, ">= 0")
_UNIT = (lambda v: 0 <= v <= 1, "in [0, 1]")

VALUE_RANGES: dict[str, tuple[collections.abc.Callable[[Any], bool], str]] = {
    "learning_rate": _POSITIVE,
    "buffer_size": _AT_LEAST_1,
    "batch_size": _AT_LEAST_1,
    "n_steps": _AT_LEAST_1,
    "n_epochs": _AT_LEAST_1,
    "learning_starts": _NON_NEGATIVE,
    "gradient_steps": (lambda v: v >= 1 or v == -1, ">= 1 (or -1: as many as env steps)"),
    "train_freq": (
        lambda v: v >= 1 if not isinstance(v, (list, tuple)) else v[0] >= 1 and v[1] in ("step", "episode"),
        ">= 1, or [N, 'step'|'episode']",
    ),
    "policy_delay": _AT_LEAST_1,
    "target_update_interval": _AT_LEAST_1,
    "gamma": _UNIT,
    "gae_lambda": _UNIT,
    "tau": (lambda v: 0 < v <= 1, "in (0, 1]"),
    "clip_range": _POSITIVE,
    "max_grad_norm": _POSITIVE,
    "vf_coef": _NON_NEGATIVE,
    "target_policy_noise": _NON_NEGATIVE,
    "target_noise_clip": _NON_NEGATIVE,
    "action_noise_sigma": _NON_NEGATIVE,
    "net_arch": (
        lambda v: all(n >= 1 for n in (v if isinstance(v, list) else [n for ns in v.values() for n in ns])),
        "layer sizes >= 1",
    ),
    "ent_coef": (
        lambda v: v >= 0 if not isinstance(v, str) else v == "auto" or _auto_float(v),
        ">= 0, 'auto' or 'auto_<initial value>'",
    ),
}
"""Range checks for values that already have the annotated type (numbers must also be finite)."""


def _auto_float(text: str) -> bool:
    try:
        return text.startswith("auto_") and float(text[5:]) > 0
    except ValueError:
        return False


def _annotation(fn, param: inspect.Parameter) -> Any:
    """The parameter's annotation as a type; ``Any`` where a string annotation cannot be evaluated."""
    ann = param.annotation
    if ann is inspect.Parameter.empty:
        return Any
    if isinstance(ann, str):
        try:
            ann = eval(ann, dict(vars(inspect.getmodule(fn)) if inspect.getmodule(fn) else {}))  # noqa: S307
        except Exception:  # names imported only for type checkers: cannot check, accept
            return Any
    return ann


def matches(value: Any, tp: Any) -> bool:
    """Does ``value`` fit the annotation ``tp``? (unknown or exotic annotations: yes)"""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(matches(value, a) for a in args)
    if tp is None or tp is type(None):
        return value is None
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return _is_int(value)
    if tp is float:
        return _is_number(value)
    if origin is list or tp is list:
        return (
            isinstance(value, list) and all(matches(v, args[0]) for v in value)
            if args
            else isinstance(value, list)
        )
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            return False
        if not args or (len(args) == 2 and args[1] is Ellipsis):
            return all(matches(v, args[0]) for v in value) if args else True
        return len(value) == len(args) and all(matches(v, a) for v, a in zip(value, args, strict=True))
    if origin is dict or tp is dict:
        return isinstance(value, dict)
    if origin is collections.abc.Callable or tp is collections.abc.Callable:
        return callable(value)
    if origin is type:
        return isinstance(value, type) and (
            not args or not isinstance(args[0], type) or issubclass(value, args[0])
        )
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def describe(tp: Any) -> str:
    """An annotation in words for error messages (``int``, ``float | Callable``, ...)."""
    if isinstance(tp, type) and typing.get_origin(tp) is None:
        return tp.__name__
    return str(tp).replace("typing.", "").replace("collections.abc.", "")


def check_kwargs(
    fn,
    kwargs: dict[str, Any],
    what: str,
    *,
    reserved: set[str] = frozenset(),
    extra: dict[str, Any] | None = None,
) -> None:
    """Raise ValueError unless every item of ``kwargs`` is a parameter of ``fn`` with a value of its
    annotated type and in :data:`VALUE_RANGES`; ``what`` names the source (``"--hp"``).

    ``reserved``: parameters eqrobot sets itself (refused); ``extra``: eqrobot's own keys -> type."""
    params = {
        k: p for k, p in inspect.signature(fn).parameters.items() if k not in ("self", "args", "kwargs")
    }
    takes_any = any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in inspect.signature(fn).parameters.values()
    )
    valid = sorted(k for k in [*params, *(extra or {})] if k not in reserved and not k.startswith("_"))
    owner = getattr(fn, "__qualname__", str(fn)).removesuffix(".__init__")
    for key, value in kwargs.items():
        if key in reserved:
            raise ValueError(f"{what} {key}: set by eqrobot itself (from the config), not a {what} key")
        if key in (extra or {}):
            tp = extra[key]
        elif key in params and not key.startswith("_"):
            tp = _annotation(fn, params[key])
        elif takes_any:
            continue
        else:
            raise ValueError(
                f"{what} {key}={value!r}: {owner} has no parameter {key!r}; valid: {', '.join(valid)}"
            )
        if not matches(value, tp):
            raise ValueError(f"{what} {key}={value!r}: expected {describe(tp)} ({owner})")
        if key in VALUE_RANGES and not isinstance(value, bool) and not callable(value):
            ok, text = VALUE_RANGES[key]
            try:
                good = ok(value)
            except (TypeError, IndexError):
                good = False
            if not good:
                raise ValueError(f"{what} {key}={value!r}: expected a value {text}")
