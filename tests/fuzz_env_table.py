"""The env's fuzz table (issue 12): constructor kwargs, reset seeds and options, actions,
``compute_reward`` goals, a closed env and rendering, for one env id (see ``tests/fuzz_cases.py``)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
from fuzz_cases import Case


# --- sanity checks -------------------------------------------------------------------------
def obs_problem(env, obs) -> str | None:
    if not isinstance(obs, dict) or set(obs) != {"observation", "achieved_goal", "desired_goal"}:
        return f"observation is not the goal dict: {type(obs).__name__}"
    for key, x in obs.items():
        if not np.isfinite(x).all():
            return f"{key} holds NaN or inf"
    if not env.observation_space.contains(obs):
        return "observation outside observation_space (shape or dtype)"
    return None


def usable_problem(env) -> str | None:
    """None if the env still resets and steps to finite observations, else what went wrong."""
    try:
        obs, _ = env.reset(seed=0)
        obs, reward, *_ = env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    except Exception as exc:  # noqa: BLE001
        return f"env unusable afterwards ({type(exc).__name__}: {exc})"
    problem = obs_problem(env, obs)
    if problem is None and not math.isfinite(reward):
        problem = f"reward {reward}"
    return None if problem is None else f"env unusable afterwards ({problem})"


# --- the env's table -----------------------------------------------------------------------
NAN, INF = float("nan"), float("inf")

#: constructor kwarg -> bad values (each must be refused, naming the kwarg)
BAD_KWARGS = {
    "reward_type": ["shaped", None, 1],
    "render_mode": ["video", "humann", ""],
    "task_rotation_range": ["abc", None, -0.1, 3.5, NAN, INF, True, [0.1]],
    "world_transform": [
        "spin",
        (np.eye(3),),
        (-np.eye(3), np.zeros(3)),
        (np.eye(3), [1e6, 0, 0]),
        (np.eye(3) * 2, np.zeros(3)),
        (np.eye(3), [NAN, 0, 0]),
        (np.eye(3), [0, 0]),
    ],
    "terminate_on_success": ["false", 1, None, "True"],
    "control_yaw": ["yes", 0],
    "timestep": [0.0, -0.004, NAN, "0.004", 10.0],
    "n_substeps": [0, -1, 2.5, "10", 10**6],
    "solver_iterations": [0, 2.5, True],
    "max_step": [NAN, -0.05, 0.0, INF, "0.05", 5.0],
    "distance_threshold": [NAN, 0.0, -1.0, INF, "0.05"],
    "angle_threshold": [NAN, -1.0, 0.0, 4.0],
    "render_width": [-5, 0, 480.0, 10**6, "480", True],
    "render_height": [-5, 0, 360.5, 10**6],
    "task": ["Juggle", 3, None],
    "task_rotation_rang": [1.0],  # a typo: unknown kwargs are refused too
}
#: valid edge values (each must be accepted and give a working env)
GOOD_KWARGS = [
    {"render_width": 1, "render_height": 1, "render_mode": "rgb_array"},
    {"max_step": 1.0, "terminate_on_success": np.bool_(True)},
    {"task_rotation_range": 2.8973, "world_transform": "random"},
    {"world_transform": (np.eye(3), [999.0, -999.0, 999.0])},
    {"distance_threshold": 10.0, "angle_threshold": math.pi, "n_substeps": 1},
]


#: bad kwargs that gymnasium.make itself cannot take: a non-str render_mode makes it raise
#: AttributeError ('int' object has no attribute 'endswith', gymnasium 1.4 envs/registration.py)
#: before the env sees it; the env's own check is fuzzed by constructing it directly
DIRECT_BAD_KWARGS = {"render_mode": [1, b"human"]}


def _kwarg_cases(env_id, bad_kwargs):
    def bad(kwarg, value):
        def run():
            gym.make(env_id, **{kwarg: value}).close()

        return Case("kwarg", f"{kwarg}={value!r}"[:80], run, names=(kwarg,))

    def good(kwargs):
        def run():
            env = gym.make(env_id, **kwargs)
            try:
                return usable_problem(env)
            finally:
                env.close()

        return Case("kwarg", f"ok {kwargs}"[:80], run, expect_error=False, sane=lambda problem: problem)

    def direct(kwarg, value):
        from eqrobot.envs import RobotTaskEnv

        def run():
            RobotTaskEnv(gym.spec(env_id).kwargs["task"], **{kwarg: value}).close()

        return Case("kwarg", f"RobotTaskEnv {kwarg}={value!r}", run, names=(kwarg,))

    cases = [bad(k, v) for k, values in bad_kwargs.items() for v in values]
    cases += [direct(k, v) for k, values in DIRECT_BAD_KWARGS.items() for v in values]
    return cases + [good(kw) for kw in GOOD_KWARGS]


BAD_SEEDS = [-1, "abc", 1.5, True, [1, 2], np.float64(3.0)]
GOOD_SEEDS = [None, 0, np.int64(7), 2**70]
#: (the word a clear message must contain, bad options)
BAD_OPTIONS = [
    ("options", "task_rotation"),
    ("options", ["task_rotation"]),
    ("options", 5),
    ("option", {"task_rotaton": 0.1}),
    *[
        ("world_rotation", {"world_rotation": v})
        for v in (np.eye(3) * 2, np.diag([1.0, 1, -1]), np.full((3, 3), NAN), np.eye(2), "abc")
    ],
    *[
        ("world_translation", {"world_translation": v})
        for v in ([1e6, 0, 0], [NAN, 0, 0], [1.0, 2.0], "abc", [INF, 0, 0])
    ],
    *[("task_rotation", {"task_rotation": v}) for v in (3.0, -9.0, NAN, INF, "left", True, [0.1])],
]
_TILT = np.array([[0.36, 0.48, -0.8], [-0.8, 0.6, 0.0], [0.48, 0.64, 0.6]])  # a proper rotation
GOOD_OPTIONS = [
    None,
    {},
    {"task_rotation": 0.5},
    {"task_rotation": None},
    {"world_rotation": _TILT, "world_translation": [999.0, 0.0, -999.0]},
]


def _reset_cases(env):
    def after():
        return usable_problem(env)

    def sane(result):
        return obs_problem(env, result[0])

    cases = [
        Case("reset", f"seed={s!r}", lambda s=s: env.reset(seed=s), ("seed",), after=after) for s in BAD_SEEDS
    ]
    cases += [
        Case(
            "reset",
            f"ok seed={s!r}",
            lambda s=s: env.reset(seed=s),
            expect_error=False,
            sane=sane,
            after=after,
        )
        for s in GOOD_SEEDS
    ]
    cases += [
        Case("reset", f"options={o!r}"[:80], lambda o=o: env.reset(seed=0, options=o), (word,), after=after)
        for word, o in BAD_OPTIONS
    ]

    def first_reset(kwargs):
        """A refused FIRST reset must leave a fresh env usable (PassiveEnvChecker did not)."""
        fresh = []

        def run():
            fresh.append(gym.make(env.spec.id))
            fresh[0].reset(**kwargs)

        def after_fresh():
            try:
                return usable_problem(fresh[0])
            finally:
                fresh[0].close()

        word = "seed" if "seed" in kwargs else "options"
        return Case("reset", f"first reset {kwargs}", run, (word, "task_rotation"), after=after_fresh)

    cases += [
        first_reset(kw)
        for kw in ({"seed": -1}, {"options": "task_rotation"}, {"options": {"task_rotation": 9.0}})
    ]
    cases += [
        Case(
            "reset",
            f"ok options={o!r}"[:80],
            lambda o=o: env.reset(seed=0, options=o),
            expect_error=False,
            sane=sane,
            after=after,
        )
        for o in GOOD_OPTIONS
    ]
    return cases


def _action_cases(env):
    n = env.action_space.shape[0]

    def after():
        return usable_problem(env)

    def step(action):
        env.reset(seed=0)
        return env.step(action)

    def sane_step(result):
        obs, reward, *_ = result
        return obs_problem(env, obs) or (None if math.isfinite(reward) else f"reward {reward}")

    def same_as(unit):
        """A huge action must act as its direction at full length."""

        def check(result):
            problem = sane_step(result)
            if problem:
                return problem
            ref = step(np.asarray(unit, dtype=np.float64))[0]["observation"]
            if not np.allclose(result[0]["observation"], ref, atol=1e-6):
                return "huge action did not act as its direction at full length"
            return None

        return check

    zeros = [0.0] * n
    bad = {
        "shape (n-1,)": np.zeros(n - 1),
        "shape (n+1,)": np.zeros(n + 1),
        "shape (1, n)": np.zeros((1, n)),
        "scalar": 0.5,
        "None": None,
        "strings": ["a"] * n,
        "NaN": [NAN] + zeros[1:],
        "inf": [INF] + zeros[1:],
        "-inf in gripper": zeros[:3] + [-INF] + zeros[4:],
        "object": np.array([object()] * n),
    }
    cases = [Case("action", k, lambda a=a: step(a), ("action",), after=after) for k, a in bad.items()]
    unit = np.ones(3) / math.sqrt(3)
    good = {
        "1e200 everywhere": ([1e200] * n, same_as([*unit, 1.0] + [1.0] * (n - 4))),
        "-1e160 in x": ([-1e160] + zeros[1:], same_as([-1.0] + zeros[1:])),
        "1e30 in y": ([0.0, 1e30] + zeros[2:], same_as([0.0, 1.0] + zeros[2:])),
        "ints": ([1] + [0] * (n - 1), sane_step),
        "list of floats": (zeros, sane_step),
        "float16": (np.full(n, 0.5, dtype=np.float16), sane_step),
    }
    cases += [
        Case("action", f"ok {k}", lambda a=a: step(a), expect_error=False, sane=s, after=after)
        for k, (a, s) in good.items()
    ]
    return cases


def _reward_cases(env):
    u = env.unwrapped
    dim = u.geometry_spec.desired_goal.dim
    goal = env.reset(seed=0)[0]["desired_goal"].astype(np.float64)
    batch = np.repeat(goal[None], 4, 0)
    nan, inf = batch.copy(), batch.copy()
    nan[1, -1], inf[2, 0] = NAN, INF

    def both(achieved, desired):
        return u.compute_reward(achieved, desired, None), u.is_success(achieved, desired)

    bad = {
        "width dim-1": (batch[:, :-1], batch[:, :-1]),
        "width dim+1": (np.pad(batch, ((0, 0), (0, 1))), np.pad(batch, ((0, 0), (0, 1)))),
        "desired width dim+1": (batch, np.pad(batch, ((0, 0), (0, 1)))),
        "0-d": (np.float64(0.0), np.float64(0.0)),
        "NaN achieved": (nan, batch),
        "inf desired": (batch, inf),
        "-inf achieved": (-inf, batch),
        "strings": ([["a"] * dim], batch[:1]),
        "batch 4 vs 3": (batch, batch[:3]),
        "None": (None, batch),
    }
    cases = [
        Case("compute_reward", k, lambda a=a, d=d: both(a, d), ("achieved_goal", "desired_goal"))
        for k, (a, d) in bad.items()
    ]

    def sane(shape):
        def check(result):
            reward, success = result
            if reward.shape != shape or success.shape != shape:
                return f"shapes {reward.shape}, {success.shape} != {shape}"
            if not np.isfinite(reward).all() or (reward > 0).any():
                return f"rewards {reward}"
            return None

        return check

    good = {
        "batch": (batch, batch, (4,)),
        "single": (goal, goal, ()),
        "3-d batch": (np.repeat(batch[None], 2, 0), np.repeat(batch[None], 2, 0), (2, 4)),
        "float32 lists": (batch.astype(np.float32).tolist(), batch.tolist(), (4,)),
        "broadcast one desired": (batch, goal, (4,)),
    }
    cases += [
        Case("compute_reward", f"ok {k}", lambda a=a, d=d: both(a, d), expect_error=False, sane=sane(shape))
        for k, (a, d, shape) in good.items()
    ]
    return cases


def _closed_and_render_cases(env_id):
    def closed(call):
        def run():
            env = gym.make(env_id, render_mode="rgb_array")
            env.reset(seed=0)
            env.close()
            return call(env)

        return run

    cases = [
        Case(
            "closed",
            "step after close",
            closed(lambda e: e.step(np.zeros(e.action_space.shape))),
            ("closed",),
        ),
        Case("closed", "reset after close", closed(lambda e: e.reset(seed=0)), ("closed",)),
        Case("closed", "render after close", closed(lambda e: e.render()), ("closed",)),
    ]

    def render(kwargs, before_reset=False):
        def run():
            env = gym.make(env_id, **kwargs)
            try:
                if not before_reset:
                    env.reset(seed=0)
                return env.render(), kwargs
            finally:
                env.close()

        return run

    def image_ok(result):
        image, kwargs = result
        if kwargs.get("render_mode") is None:
            return None if image is None else "render_mode=None returned an image"
        shape = (kwargs.get("render_height", 360), kwargs.get("render_width", 480), 3)
        if image is None or image.shape != shape or image.dtype != np.uint8:
            return f"image {None if image is None else (image.shape, image.dtype)} != {shape} uint8"
        if image.std() == 0:
            return "blank image"
        return None

    small = {"render_mode": "rgb_array", "render_width": 64, "render_height": 48}
    cases.append(Case("render", f"ok {small}", render(small), expect_error=False, sane=image_ok))
    cases.append(Case("render", "ok render_mode=None", render({}), expect_error=False, sane=image_ok))
    # Gymnasium's OrderEnforcing refuses a render before the first reset (naming reset)
    cases.append(Case("render", "before reset", render(small, before_reset=True), ("reset",)))
    from eqrobot.sim.display import display_problem

    if display_problem() is not None:
        cases.append(
            Case(
                "render",
                "human without a display",
                render({"render_mode": "human"}),
                ("render_mode", "display"),
            )
        )
    return cases


def env_cases(env_id, env, bad_kwargs=None):
    """Every case for one env id; ``env`` is a ``gym.make(env_id)`` shared by the reset, action and
    compute_reward cases (each checks that the env still works afterwards)."""
    return [
        *_kwarg_cases(env_id, BAD_KWARGS if bad_kwargs is None else bad_kwargs),
        *_reset_cases(env),
        *_action_cases(env),
        *_reward_cases(env),
        *_closed_and_render_cases(env_id),
    ]
