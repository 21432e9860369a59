"""Bad inputs give clear ValueError / RuntimeError naming the problem, never a PyBullet crash."""

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
