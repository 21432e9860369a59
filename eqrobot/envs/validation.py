"""Every input of :class:`~eqrobot.envs.RobotTaskEnv`, checked in one place.

Each check takes the input's name and value and returns the value normalised (float, int, bool,
array) or raises ``ValueError`` whose message names the input, the rule it broke and the fix. The
env calls these and nothing else, so a rule lives here once: constructor kwargs (:data:`ENV_KWARGS`),
reset seeds and options, actions, and the goals given to ``compute_reward``.

Two rules need a reason:

* Huge finite actions are accepted: the displacement is limited radially, so any finite vector acts
  as its direction at full length (``1e200`` in every entry moves the arm by ``max_step`` along the
  diagonal). Only NaN and inf are refused.
* Translations are limited to :data:`MAX_TRANSLATION` per component because observations are
  float32: at ``|x| = 1e6`` m a float32 resolves positions only to 6 cm. Within the limit (plus the
  scene's own extent) the float32 resolution stays below :data:`FLOAT32_TOLERANCE`.
"""

from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Mapping

import numpy as np

from eqrobot.envs.tasks import TASKS, Task
from eqrobot.sim import JOINT1_LIMIT
from eqrobot.sim.transforms import check_rotation

FLOAT32_TOLERANCE = 1e-4  # m: the coarsest float32 position resolution accepted in observations
SCENE_EXTENT = 2.0  # m: how far any observed point lies from the world translation (table, reach)
MAX_TRANSLATION = 1000.0  # m per component: float32 spacing at 1002 m is 6.1e-5 m <= FLOAT32_TOLERANCE
RESET_OPTIONS = ("task_rotation", "world_rotation", "world_translation")
REWARD_TYPES = ("sparse", "dense")
RENDER_MODES = (None, "rgb_array", "human")


def _type_name(value) -> str:
    return type(value).__name__


def check_choice(name: str, value, choices):
    if isinstance(value, np.ndarray) or value not in choices:  # (an array's `in` would be ambiguous)
        close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}{hint}")
    return value


def check_bool(name: str, value, none_ok: bool = False):
    """A real bool (or numpy bool): ``'false'`` or ``0`` are refused, never read as truthy/falsy."""
    if value is None and none_ok:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    allowed = "True, False or None" if none_ok else "True or False"
    raise ValueError(f"{name} must be {allowed}, got {_type_name(value)} {value!r}")


def check_real(
    name: str,
    value,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    low_open: bool = False,
    none_ok: bool = False,
    unit: str = "",
):
    """A finite real in ``[low, high]`` (``(low, high]`` with ``low_open``); bools and strings refused."""
    if value is None and none_ok:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        none = " or None" if none_ok else ""
        raise ValueError(f"{name} must be a number{none}, got {_type_name(value)} {value!r}")
    x = float(value)
    ok_low = x > low if low_open else x >= low
    if not (math.isfinite(x) and ok_low and x <= high):
        lo = "(" if low_open else "["
        raise ValueError(f"{name} must be a finite number in {lo}{low}, {high}]{unit}, got {x}")
    return x


def check_int(name: str, value, low: int, high: int):
    """An integer in ``[low, high]``; floats (even 480.0), bools and strings refused."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {_type_name(value)} {value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be an int in [{low}, {high}], got {value}")
    return int(value)


def check_translation(name: str, t) -> np.ndarray:
    """A float64 (3,) translation, finite, each component within :data:`MAX_TRANSLATION`."""
    try:
        t = np.asarray(t, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be 3 numbers, got {t!r}") from exc
    if t.shape != (3,) or not np.all(np.isfinite(t)):
        raise ValueError(f"{name} must be a finite array of shape (3,), got {t!r}")
    far = float(np.abs(t).max())
    if far > MAX_TRANSLATION:
        resolution = float(np.spacing(np.float32(far + SCENE_EXTENT)))
        raise ValueError(
            f"{name} {t.tolist()} is beyond +-{MAX_TRANSLATION:g} m per component: float32 observations "
            f"resolve positions there only to {resolution:.2g} m (limit {FLOAT32_TOLERANCE:g} m); "
            "move the world origin closer to the scene"
        )
    return t


def check_world_transform(name: str, value):
    """None, ``"random"`` or a pair ``(R (3x3 rotation), t (3,))`` -> ``(R, t)`` as float64 arrays."""
    if value is None or (isinstance(value, str) and value == "random"):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 2:
        R = check_rotation(value[0], f"{name} rotation")
        return R, check_translation(f"{name} translation", value[1])
    raise ValueError(f"{name} must be None, 'random' or a pair (R (3x3), t (3,)), got {value!r}")


def check_task(name: str, value):
    """A task name -> a fresh Task instance; a Task instance passes through."""
    if isinstance(value, Task):
        return value
    if isinstance(value, str) and value in TASKS:
        return TASKS[value]()
    if isinstance(value, str):
        close = difflib.get_close_matches(value, list(TASKS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown {name} {value!r}{hint}; choose one of {list(TASKS)}")
    raise ValueError(f"{name} must be a task name or a Task instance, got {_type_name(value)} {value!r}")


def _real(low, high, **kw):
    return lambda name, v: check_real(name, v, low, high, **kw)


#: constructor kwarg -> check(name, value) -> normalised value. The order is the constructor's.
ENV_KWARGS = {
    "task": check_task,
    "reward_type": lambda name, v: check_choice(name, v, REWARD_TYPES),
    "render_mode": lambda name, v: check_choice(name, v, RENDER_MODES),
    "task_rotation_range": _real(0.0, JOINT1_LIMIT, unit=" rad (Panda joint 1's range)"),
    "world_transform": check_world_transform,
    "terminate_on_success": check_bool,
    "control_yaw": lambda name, v: check_bool(name, v, none_ok=True),
    "timestep": _real(0.0, 0.1, low_open=True, unit=" s"),
    "n_substeps": lambda name, v: check_int(name, v, 1, 1000),
    "solver_iterations": lambda name, v: check_int(name, v, 1, 10_000),
    "max_step": _real(0.0, 1.0, low_open=True, unit=" m"),
    "distance_threshold": _real(0.0, 10.0, low_open=True, none_ok=True, unit=" m"),
    "angle_threshold": _real(0.0, math.pi, low_open=True, none_ok=True, unit=" rad"),
    # TinyRenderer allocates width x height; a negative size aborts the process (std::bad_alloc)
    "render_width": lambda name, v: check_int(name, v, 1, 4096),
    "render_height": lambda name, v: check_int(name, v, 1, 4096),
}


def check_env_kwargs(kwargs: dict, unknown: dict) -> dict:
    """All constructor kwargs checked (unknown names first, with a did-you-mean), normalised."""
    if unknown:
        valid = list(ENV_KWARGS)
        msgs = []
        for k in unknown:
            close = difflib.get_close_matches(str(k), valid, n=1)
            msgs.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise ValueError(f"unknown env kwarg(s) {', '.join(msgs)}; valid kwargs are {valid}")
    return {name: ENV_KWARGS[name](name, value) for name, value in kwargs.items()}


# --- reset ------------------------------------------------------------------------------
def check_seed(seed):
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be None or a non-negative int, got {_type_name(seed)} {seed!r}")
    return int(seed)


def check_reset_options(options) -> tuple[float | None, tuple | None]:
    """Reset options -> (task rotation or None, (R, t) or None); nothing is changed on failure."""
    if options is None:
        return None, None
    if not isinstance(options, Mapping):
        raise ValueError(
            f"options must be None or a dict with keys from {list(RESET_OPTIONS)}, got "
            f"{_type_name(options)} {options!r}; e.g. options={{'task_rotation': 0.5}}"
        )
    bad = [k for k in options if k not in RESET_OPTIONS]
    if bad:
        raise ValueError(f"unknown reset option(s) {bad}; valid options are {list(RESET_OPTIONS)}")
    theta = options.get("task_rotation")
    if theta is not None:
        if isinstance(theta, (bool, np.bool_)) or not isinstance(theta, numbers.Real):
            raise ValueError(f"task_rotation must be an angle in radians, got {_type_name(theta)} {theta!r}")
        theta = float(theta)
        if not (math.isfinite(theta) and abs(theta) <= JOINT1_LIMIT):
            raise ValueError(
                f"task_rotation {theta} rad is outside Panda joint 1's range "
                f"[-{JOINT1_LIMIT}, {JOINT1_LIMIT}]"
            )
    world = None
    if "world_rotation" in options or "world_translation" in options:
        R = options.get("world_rotation")
        t = options.get("world_translation")
        world = (
            check_rotation(np.eye(3) if R is None else R, "world_rotation"),
            check_translation("world_translation", np.zeros(3) if t is None else t),
        )
    return theta, world


# --- step -------------------------------------------------------------------------------
def check_action(action, n: int, layout: str) -> list[float]:
    """The action as a list of ``n`` Python floats; ``layout`` names the fields for the message."""
    try:
        a = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"action must be an array of {n} numbers [{layout}], got {action!r}") from exc
    if a.shape != (n,):
        raise ValueError(f"action must have shape ({n},) = [{layout}], got shape {a.shape}")
    values = a.tolist()
    if not all(map(math.isfinite, values)):  # ~20x cheaper than np.isfinite(a).all() at this size
        raise ValueError(f"action contains NaN or inf: {values}; check the policy's output")
    return values


# --- compute_reward ---------------------------------------------------------------------
def as_goals(achieved_goal, desired_goal, dim: int, layout: str):
    """Both goal batches as float64 arrays whose last axis is the spec's ``dim``."""
    pair = []
    for name, g in (("achieved_goal", achieved_goal), ("desired_goal", desired_goal)):
        try:
            g = np.asarray(g, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be an array of numbers of shape (..., {dim}), got {g!r}") from exc
        if g.ndim == 0 or g.shape[-1] != dim:
            raise ValueError(f"{name} must have shape (..., {dim}) = [{layout}], got shape {g.shape}")
        pair.append(g)
    return pair


def goal_difference(achieved, desired):
    """``achieved - desired`` (broadcast), refusing non-finite goals; one reduction on the happy path."""
    try:
        diff = achieved - desired
    except ValueError as exc:
        raise ValueError(
            f"achieved_goal {achieved.shape} and desired_goal {desired.shape} do not broadcast; "
            "pass batches of the same shape"
        ) from exc
    if not np.isfinite(diff).all():
        for name, g in (("achieved_goal", achieved), ("desired_goal", desired)):
            if not np.isfinite(g).all():
                raise ValueError(f"{name} contains NaN or inf; goals must be finite")
        raise ValueError("achieved_goal - desired_goal overflows float64; goals must be finite positions")
    return diff
