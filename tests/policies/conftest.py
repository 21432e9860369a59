"""A tiny goal-conditioned point-reaching env with a geometry spec, so policy tests need no PyBullet."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces

from eqrobot.geometry.spec import ArraySpec, GeometrySpec

OBS = ArraySpec(
    [
        ("gravity_direction", "vector"),
        ("base_position", "point"),
        ("ee_position", "point"),
        ("ee_velocity", "vector"),
        ("gripper_width", "scalar", 1),
        ("object_position", "point"),
        ("object_orientation", "frame"),
        ("object_angular_velocity", "pseudovector"),
    ]
)
GOAL = ArraySpec([("object_position", "point")])
ACTION = ArraySpec([("ee_displacement", "vector"), ("gripper", "scalar", 1)])
SPEC = GeometrySpec(OBS, GOAL, GOAL, ACTION)


class ToyReachEnv(gym.Env):
    """Move a point (the 'ee') to a goal; obs carries a few decorative fields of every kind."""

    metadata = {"render_modes": []}

    def __init__(self, max_steps: int = 20):
        self.max_steps = max_steps
        box = lambda n: spaces.Box(-np.inf, np.inf, (n,), np.float32)  # noqa: E731
        self.observation_space = spaces.Dict(
            {"observation": box(OBS.dim), "achieved_goal": box(GOAL.dim), "desired_goal": box(GOAL.dim)}
        )
        self.observation_space.geometry_spec = SPEC
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION.dim,), np.float32)
        self.geometry_spec = SPEC

    def _obs(self):
        o = np.zeros(OBS.dim)
        o[OBS["gravity_direction"].slice] = (0, 0, -1)
        o[OBS["ee_position"].slice] = self.ee
        o[OBS["ee_velocity"].slice] = self.vel
        o[OBS["gripper_width"].slice] = self.grip
        o[OBS["object_position"].slice] = self.obj
        o[OBS["object_orientation"].slice] = np.eye(3).T.reshape(9)
        return {
            "observation": o.astype(np.float32),
            "achieved_goal": self.ee.astype(np.float32),
            "desired_goal": self.goal.astype(np.float32),
        }

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.ee = self.np_random.uniform(-0.2, 0.2, 3)
        self.goal = self.np_random.uniform(-0.2, 0.2, 3)
        self.obj = self.np_random.uniform(-0.2, 0.2, 3)
        self.vel = np.zeros(3)
        self.grip = 0.04
        return self._obs(), {}

    def step(self, action):
        a = np.asarray(action, dtype=np.float64)
        d = a[:3] / max(1.0, np.linalg.norm(a[:3]))
        self.vel = 0.05 * d
        self.ee = self.ee + self.vel
        self.grip = 0.04 * (1 + np.clip(a[3], -1, 1)) / 2
        self.t += 1
        obs = self._obs()
        info = {"is_success": bool(np.linalg.norm(self.ee - self.goal) < 0.05)}
        reward = float(self.compute_reward(obs["achieved_goal"], obs["desired_goal"], info))
        return obs, reward, False, self.t >= self.max_steps, info

    def compute_reward(self, achieved_goal, desired_goal, info):
        d = np.linalg.norm(np.asarray(achieved_goal) - np.asarray(desired_goal), axis=-1)
        return -(d > 0.05).astype(np.float32)


@pytest.fixture
def toy_env():
    return ToyReachEnv()


@pytest.fixture
def toy_spec():
    return SPEC
