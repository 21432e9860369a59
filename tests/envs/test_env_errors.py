"""Bad inputs give clear ValueError / RuntimeError naming the problem, never a PyBullet crash."""

import warnings

import gymnasium as gym
import numpy as np
import pytest

import eqrobot  # noqa: F401
from eqrobot.envs import RobotTaskEnv


@pytest.fixture(scope="module")
def env():
    e = gym.make("eqrobot/Push-v0")
    yield e
    e.close()


def test_step_before_reset():
    e = RobotTaskEnv("Reach")
    with pytest.raises(RuntimeError, match="reset"):
        e.step(np.zeros(4))
    e.close()


@pytest.mark.parametrize(
    "action, match",
    [
        (np.zeros(3), r"shape \(4,\)"),
        (np.zeros((1, 4)), r"shape \(4,\)"),
        (np.array([0.1, np.nan, 0.0, 0.0]), "NaN or inf"),
        (np.array([np.inf, 0.0, 0.0, 0.0]), "NaN or inf"),
        (np.array(["a", "b", "c", "d"]), "numbers"),
        (None, "numbers|shape"),
    ],
)
def test_bad_actions(env, action, match):
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.unwrapped.step(action)


def test_any_finite_action_is_accepted_and_norm_limited(env):
    """Outside the nominal Box is fine: the displacement is rescaled by its norm, never clipped per axis."""
    env.reset(seed=0)
    o1, *_ = env.unwrapped.step(np.array([3.0, 0.0, 0.0, 0.0]))
    env.reset(seed=0)
    o2, *_ = env.unwrapped.step(np.array([1.0, 0.0, 0.0, 0.0]))
    np.testing.assert_array_equal(o1["observation"], o2["observation"])
    env.reset(seed=0)
    o3, *_ = env.unwrapped.step(np.array([2.0, 2.0, 0.0, 0.0]))  # per-axis clipping would give (1, 1)
    env.reset(seed=0)
    o4, *_ = env.unwrapped.step(np.array([0.7071067811865476, 0.7071067811865476, 0.0, 0.0]))
    np.testing.assert_allclose(o3["observation"], o4["observation"], atol=1e-7)


def test_unknown_kwarg_suggests_fix():
    with pytest.raises(ValueError, match="did you mean 'task_rotation_range'"):
        gym.make("eqrobot/Push-v0", task_rotation_rang=1.0)
    with pytest.raises(ValueError, match="unknown task"):
        RobotTaskEnv("Juggle")
    with pytest.raises(ValueError, match="reward_type"):
        RobotTaskEnv("Reach", reward_type="shaped")


@pytest.mark.parametrize(
    "options, match",
    [
        ({"world_rotation": np.eye(3) * 2}, "not orthonormal"),
        ({"world_rotation": np.diag([1.0, 1.0, -1.0])}, "reflections"),
        ({"world_rotation": np.eye(2)}, r"shape \(3, 3\)"),
        ({"world_rotation": np.full((3, 3), np.nan)}, "NaN"),
        ({"world_translation": [1.0, 2.0]}, r"shape \(3,\)"),
        ({"task_rotation": 3.0}, "joint 1's range"),
        ({"task_rotation": "left"}, "angle in radians"),
        ({"task_rotaton": 0.1}, "unknown reset option"),
    ],
)
def test_invalid_reset_options(env, options, match):
    with pytest.raises(ValueError, match=match):
        env.reset(seed=0, options=options)
    env.reset(seed=0)  # the env is still usable afterwards
    env.step(np.zeros(4))


def test_invalid_constructor_symmetry_arguments():
    with pytest.raises(ValueError, match="task_rotation_range"):
        RobotTaskEnv("Reach", task_rotation_range=3.5)
    with pytest.raises(ValueError, match="world_transform"):
        RobotTaskEnv("Reach", world_transform="spin")
    with pytest.raises(ValueError, match="reflections"):
        RobotTaskEnv("Reach", world_transform=(-np.eye(3), np.zeros(3)))


def test_human_render_mode_without_display_fails_cleanly(monkeypatch):
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the DISPLAY check is for Linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(RuntimeError, match="rgb_array"):
        gym.make("eqrobot/Reach-v0", render_mode="human")
    with pytest.raises(ValueError, match="render_mode"):
        RobotTaskEnv("Reach", render_mode="video")


# --- issue 12: one validation layer -------------------------------------------------------------


def test_closed_env_refuses_step_reset_render():
    env = gym.make("eqrobot/Reach-v0", render_mode="rgb_array")
    env.reset(seed=0)
    env.close()
    env.close()  # closing twice is fine
    for call in (lambda: env.step(np.zeros(4)), lambda: env.reset(seed=0), env.render):
        with pytest.raises(RuntimeError, match="env is closed; create a new one"):
            call()


@pytest.mark.parametrize(
    "huge, direction",
    [
        ([1e200, 1e200, 1e200, 0.0], [1.0, 1.0, 1.0]),
        ([-1e160, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0]),
        ([1e308, -1e308, 1e308, 0.0], [1.0, -1.0, 1.0]),
    ],
)
def test_huge_finite_action_acts_as_its_direction_at_full_length(env, huge, direction):
    """The radial limit must not overflow: |a|^2 = inf used to scale the step to 0 (the arm stood still)."""
    unit = np.asarray(direction) / np.linalg.norm(direction)
    split = env.unwrapped.geometry_spec.observation.split
    o_start, _ = env.reset(seed=0)
    o_huge, *_ = env.unwrapped.step(np.array(huge))
    env.reset(seed=0)
    o_unit, *_ = env.unwrapped.step(np.array([*unit, 0.0]))
    np.testing.assert_allclose(o_huge["observation"], o_unit["observation"], atol=1e-6)
    moved = split(o_huge["observation"])["ee_position"] - split(o_start["observation"])["ee_position"]
    assert moved @ unit > 0.02, moved  # it moved along the direction, several cm


def _first_reset_cases():
    return [
        ({"seed": -1}, "seed"),
        ({"seed": "abc"}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": True}, "seed"),
        ({"options": "task_rotation"}, "options"),
        ({"options": ["task_rotation"]}, "options"),
        ({"options": {"task_rotation": 9.0}}, "task_rotation"),
        ({"options": {"task_rotation": True}}, "task_rotation"),
        ({"options": {"world_translation": [1e6, 0.0, 0.0]}}, "world_translation"),
    ]


@pytest.mark.parametrize("kwargs, name", _first_reset_cases())
def test_refused_first_reset_leaves_the_env_usable(kwargs, name):
    env = gym.make("eqrobot/Push-v0")
    try:
        with pytest.raises(ValueError, match=name):
            env.reset(**kwargs)
        obs, _ = env.reset(seed=0)
        obs, *_ = env.step(np.zeros(4))
        assert np.isfinite(obs["observation"]).all()
    finally:
        env.close()


def test_refused_reset_mid_episode_changes_nothing():
    """The episode (physics and the env's RNG) continues bit for bit as if the bad reset never came."""
    runs = []
    for interrupt in (False, True):
        env = gym.make("eqrobot/Push-v0", task_rotation_range=1.0, world_transform="random")
        env.reset(seed=5)
        env.step(np.array([0.3, 0.2, -0.1, 0.5]))
        if interrupt:
            with pytest.raises(ValueError, match="world_rotation"):
                env.reset(seed=7, options={"world_rotation": np.eye(3) * 2})
        obs, *_ = env.step(np.array([0.3, 0.2, -0.1, 0.5]))
        nxt, _ = env.reset()  # the RNG was not reseeded by the refused call
        runs.append((obs["observation"], nxt["observation"]))
        env.close()
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwarg, value",
    [
        ("render_width", -5),  # aborted the process (std::bad_alloc) before
        ("render_width", 0),  # returned an empty image
        ("render_height", 10**6),
        ("render_width", 480.0),
        ("terminate_on_success", "false"),  # read as True
        ("terminate_on_success", 1),
        ("control_yaw", "yes"),
        ("max_step", float("nan")),
        ("max_step", -0.05),
        ("max_step", "0.05"),
        ("distance_threshold", float("nan")),
        ("distance_threshold", 0.0),
        ("angle_threshold", -1.0),
        ("task_rotation_range", "abc"),
        ("task_rotation_range", None),
        ("task_rotation_range", float("inf")),
        ("timestep", 0.0),
        ("n_substeps", 2.5),
        ("n_substeps", 0),
        ("solver_iterations", True),
        ("reward_type", None),
        ("render_mode", "humann"),
        ("world_transform", (np.eye(3), [1e6, 0.0, 0.0])),
        ("task", 3),
    ],
)
def test_every_constructor_kwarg_is_checked_by_type_and_range(kwarg, value):
    with pytest.raises(ValueError, match=kwarg if kwarg != "world_transform" else "world_transform trans"):
        gym.make("eqrobot/Reach-v0", **{kwarg: value})


def test_every_constructor_kwarg_has_a_check():
    """The table in validation.py covers the constructor's whole signature, nothing more, nothing less."""
    import inspect

    from eqrobot.envs.validation import ENV_KWARGS

    params = [p for p in inspect.signature(RobotTaskEnv).parameters if p != "unknown"]
    assert list(ENV_KWARGS) == params


def test_translation_limit_follows_from_float32_resolution():
    from eqrobot.envs.validation import FLOAT32_TOLERANCE, MAX_TRANSLATION, SCENE_EXTENT

    assert np.spacing(np.float32(MAX_TRANSLATION + SCENE_EXTENT)) <= FLOAT32_TOLERANCE
    assert np.spacing(np.float32(2 * MAX_TRANSLATION + SCENE_EXTENT)) > FLOAT32_TOLERANCE  # not loose
    with pytest.raises(ValueError, match=r"1000 m.*resolve positions there only to 0.062 m"):
        RobotTaskEnv("Reach", world_transform=(np.eye(3), [1e6, 0.0, 0.0]))
    env = RobotTaskEnv("Reach", world_transform=(np.eye(3), [999.0, -999.0, 999.0]))
    try:
        obs, _ = env.reset(seed=0)
        base = env.geometry_spec.observation.split(obs["observation"])["base_position"]
        np.testing.assert_allclose(base, [999.0, -999.0, 999.0], atol=FLOAT32_TOLERANCE)
    finally:
        env.close()


@pytest.mark.parametrize(
    "env_id, achieved, desired, name",
    [
        (
            "eqrobot/Push-v0",
            np.zeros((5, 4)),
            np.zeros((5, 4)),
            r"achieved_goal must have shape \(\.\.\., 3\)",
        ),
        (
            "eqrobot/Push-v0",
            np.zeros((5, 3)),
            np.zeros((5, 2)),
            r"desired_goal must have shape \(\.\.\., 3\)",
        ),
        ("eqrobot/Rotate-v0", np.zeros((5, 3)), np.zeros((5, 3)), r"achieved_goal .*object_orientation\(9\)"),
        ("eqrobot/Rotate-v0", np.zeros(12), np.zeros(11), "desired_goal must have shape"),
        ("eqrobot/Push-v0", np.zeros(()), np.zeros(3), "achieved_goal"),
        ("eqrobot/Push-v0", np.full((2, 3), np.nan), np.zeros((2, 3)), "achieved_goal contains NaN or inf"),
        ("eqrobot/Push-v0", np.zeros((2, 3)), np.full((2, 3), np.inf), "desired_goal contains NaN or inf"),
        (
            "eqrobot/Rotate-v0",
            np.zeros((2, 12)),
            np.pad(np.full((2, 1), np.inf), ((0, 0), (3, 8))),
            "desired_goal",
        ),
        ("eqrobot/Push-v0", [["a", "b", "c"]], np.zeros((1, 3)), "achieved_goal must be an array of numbers"),
        ("eqrobot/Push-v0", np.zeros((4, 3)), np.zeros((5, 3)), "do not broadcast"),
    ],
)
def test_compute_reward_checks_goals_against_the_spec(env_id, achieved, desired, name):
    env = gym.make(env_id)
    try:
        for fn in (env.unwrapped.compute_reward, env.unwrapped.is_success):
            with pytest.raises(ValueError, match=name):
                fn(achieved, desired, None) if fn.__name__ == "compute_reward" else fn(achieved, desired)
    finally:
        env.close()


def test_human_render_mode_with_dead_x_server_fails_cleanly(monkeypatch):
    """DISPLAY set, no X server: PyBullet's GUI used to exit(1) silently; now a clear RuntimeError."""
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("the X server probe is for Linux")
    from eqrobot.sim.display import display_problem

    monkeypatch.setenv("DISPLAY", ":97")
    if display_problem() is None:
        pytest.skip("an X server answers at :97 here")
    with pytest.raises(RuntimeError, match=r"no X server answers at DISPLAY=':97'.*rgb_array"):
        gym.make("eqrobot/Reach-v0", render_mode="human")


def test_check_env_passes_headless(monkeypatch):
    """Gymnasium's full check_env (render check included) passes without a display (issue 13 item 5)."""
    from gymnasium.utils.env_checker import check_env

    monkeypatch.delenv("DISPLAY", raising=False)
    assert "human" in RobotTaskEnv.metadata["render_modes"]  # gym.make must not swap in HumanRendering
    env = gym.make("eqrobot/Push-v0")
    try:
        assert env.metadata["render_modes"] == ["rgb_array"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unbounded Box and "env is wrapped" warnings
            check_env(env.unwrapped)
            check_env(env)
    finally:
        env.close()
    with pytest.raises(RuntimeError, match="DISPLAY is not set"):
        gym.make("eqrobot/Push-v0", render_mode="human")


_SUBPROC_SCRIPT = """
import sys
import numpy as np


def main(env_id, start_method):
    import gymnasium as gym
    from stable_baselines3.common.vec_env import SubprocVecEnv

    import eqrobot  # noqa: F401  (imported only here: spawned workers never run this line)

    vec = SubprocVecEnv([lambda: gym.make(env_id) for _ in range(2)], start_method=start_method)
    try:
        vec.reset()
        obs, *_ = vec.step(np.zeros((2, 4), dtype=np.float32))
        assert np.isfinite(obs["observation"]).all()
    finally:
        vec.close()
    print("ok", env_id)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
"""


@pytest.mark.parametrize("start_method", ["spawn", pytest.param("forkserver", marks=pytest.mark.slow)])
def test_module_prefixed_ids_resolve_in_fresh_subprocvecenv_workers(tmp_path, start_method):
    """`eqrobot:eqrobot/<Task>-v0` (the form the docs show) makes a fresh worker import eqrobot.

    With the plain id the same script's workers die with NamespaceNotFound (checked by hand: the
    parent then sees only ConnectionResetError), since nothing imports eqrobot in them.
    """
    import os
    import subprocess
    import sys

    script = tmp_path / "train.py"
    script.write_text(_SUBPROC_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run(
        [sys.executable, str(script), "eqrobot:eqrobot/Push-v0", start_method],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert out.returncode == 0 and "ok eqrobot:eqrobot/Push-v0" in out.stdout, out.stderr[-3000:]
