"""EquivariantVecNormalize: commutes with world motions (float64, random group elements), keeps SB3's
VecNormalize contract (inverse, goals, save/load, training flag, reward normalisation)."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from scipy.spatial.transform import Rotation
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize, sync_envs_normalization

from eqrobot.envs.core import make_geometry_spec
from eqrobot.envs.normalization import EquivariantVecNormalize

SPEC = make_geometry_spec("Push")  # points, vectors, a pseudovector, a frame, a scalar; goal = a point
KEYS = ("observation", "achieved_goal", "desired_goal")


class SpecOnlyEnv(gym.Env):
    """Spaces of a spec, random observations, reward -|step|: a VecEnv to wrap without a simulator."""

    def __init__(self, spec=SPEC):
        box = lambda n: spaces.Box(-np.inf, np.inf, (n,), np.float32)  # noqa: E731
        self.observation_space = spaces.Dict({k: box(spec.parts()[k].dim) for k in KEYS})
        self.observation_space.geometry_spec = spec
        self.action_space = spaces.Box(-1, 1, (spec.action.dim,), np.float32)
        self.spec_ = spec

    def _obs(self):
        return {k: v.astype(np.float32)[0] for k, v in random_obs(self.np_random, 1, self.spec_).items()}

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        return self._obs(), -float(np.abs(action).sum()), False, False, {}


def random_obs(rng, n, spec=SPEC):
    """Observations with every kind far from unit scale: points around (0.3, -0.2, 0.5) spread 0.4 m,
    vectors of different magnitudes per field, scalars offset; desired_goal != achieved_goal."""
    out = {}
    for key in KEYS:
        part = spec.parts()[key]
        x = np.zeros((n, part.dim))
        for f in part.fields:
            if f.kind == "point":
                x[:, f.slice] = np.array([0.3, -0.2, 0.5]) + 0.4 * rng.normal(size=(n, 3))
            elif f.kind == "frame":
                x[:, f.slice] = (
                    Rotation.random(n, random_state=rng.integers(1 << 31))
                    .as_matrix()
                    .transpose(0, 2, 1)
                    .reshape(n, 9)
                )
            elif f.kind == "scalar":
                x[:, f.slice] = 0.04 + 0.01 * rng.normal(size=(n, f.size))
            else:
                x[:, f.slice] = rng.uniform(0.01, 30.0) * rng.normal(size=(n, 3))
        out[key] = x
    return out


def transform(obs, R, t):
    return {k: SPEC.parts()[k].transform(v, R, t) for k, v in obs.items()}


def wrapped(cls=EquivariantVecNormalize, **kwargs):
    return cls(DummyVecEnv([SpecOnlyEnv]), **kwargs)


def group_element(rng):
    return Rotation.random(random_state=rng.integers(1 << 31)).as_matrix(), rng.uniform(-2, 2, 3)


def test_normalisation_commutes_with_world_motions():
    rng = np.random.default_rng(0)
    norm = wrapped(clip_obs=3.0)  # clip low enough that some vectors get limited (radially)
    norm.obs_rms.update(random_obs(rng, 500))
    obs = random_obs(rng, 64)
    for _ in range(5):
        R, t = group_element(rng)
        lhs = norm.normalize_obs(transform(obs, R, t))
        rhs = transform(norm.normalize_obs(obs), *norm.normalized_motion(R, t))
        for key in KEYS:
            assert lhs[key].dtype == np.float64
            np.testing.assert_allclose(lhs[key], rhs[key], atol=1e-12, err_msg=key)
    vectors = SPEC.observation["ee_velocity"].slice
    assert np.linalg.norm(norm.normalize_obs(obs)["observation"][:, vectors], axis=1).max() == pytest.approx(
        3.0
    )


def test_statistics_gathered_in_a_moved_scene_give_the_rotated_observation():
    rng = np.random.default_rng(1)
    stream = [random_obs(rng, 32) for _ in range(10)]
    obs = random_obs(rng, 16)
    for _ in range(3):
        R, t = group_element(rng)
        here, there = wrapped(), wrapped()
        for batch in stream:
            here.obs_rms.update(batch)
            there.obs_rms.update(transform(batch, R, t))
        lhs = there.normalize_obs(transform(obs, R, t))
        rhs = transform(here.normalize_obs(obs), R, None)
        for key in KEYS:
            np.testing.assert_allclose(lhs[key], rhs[key], atol=1e-9, err_msg=key)


def test_sb3_vecnormalize_fails_the_same_check():
    """The check above can fail: per-component statistics do not commute with rotations."""
    rng = np.random.default_rng(2)
    norm = wrapped(VecNormalize)
    for _ in range(5):
        batch = random_obs(rng, 100)
        for key in KEYS:
            norm.obs_rms[key].update(batch[key])
    obs = random_obs(rng, 8)
    R, t = group_element(rng)
    lhs = norm.normalize_obs(transform(obs, R, t))["observation"]
    rhs = transform(norm.normalize_obs(obs), R, t)["observation"]
    assert np.abs(lhs - rhs).max() > 0.1


def test_inverse_goals_and_one_point_scale():
    rng = np.random.default_rng(3)
    norm = wrapped(clip_obs=1e6)
    norm.obs_rms.update(random_obs(rng, 200))
    obs = random_obs(rng, 10)
    obs["achieved_goal"] = obs["observation"][:, SPEC.observation["object_position"].slice].copy()
    back = norm.unnormalize_obs(norm.normalize_obs(obs))
    for key in KEYS:
        np.testing.assert_allclose(back[key], obs[key], atol=1e-12)
    out = norm.normalize_obs(obs)
    # the goal's object_position is normalised exactly like the observation's
    np.testing.assert_array_equal(
        out["achieved_goal"], out["observation"][:, SPEC.observation["object_position"].slice]
    )
    # one scale for all points: the ratio of two point-to-point distances is preserved
    ee, obj = SPEC.observation["ee_position"].slice, SPEC.observation["object_position"].slice
    d_raw = np.linalg.norm(obs["observation"][:, ee] - obs["observation"][:, obj], axis=1)
    d_goal_raw = np.linalg.norm(obs["desired_goal"] - obs["observation"][:, obj], axis=1)
    d = np.linalg.norm(out["observation"][:, ee] - out["observation"][:, obj], axis=1)
    d_goal = np.linalg.norm(out["desired_goal"] - out["observation"][:, obj], axis=1)
    np.testing.assert_allclose(d / d_goal, d_raw / d_goal_raw, rtol=1e-10)
    # frames untouched; scalars standardised
    frame = SPEC.observation["object_orientation"].slice
    np.testing.assert_array_equal(out["observation"][:, frame], obs["observation"][:, frame])
    width = SPEC.observation["gripper_width"].slice
    assert abs(norm.normalize_obs(random_obs(rng, 5000))["observation"][:, width].mean()) < 0.1


def test_vecenv_contract_save_load_training_flag_reward(tmp_path):
    norm = wrapped(gamma=0.9)
    norm.seed(0)
    norm.reset()
    for _ in range(20):
        obs, reward, _, _ = norm.step(np.ones((1, SPEC.action.dim), np.float32))
    assert obs["observation"].dtype == np.float32
    assert norm.obs_rms.groups["points"].count > 20  # reset + steps updated the statistics
    np.testing.assert_allclose(norm.get_original_reward(), [-SPEC.action.dim])
    assert reward[0] != norm.get_original_reward()[0]  # norm_reward on
    path = tmp_path / "vecnormalize.pkl"
    norm.save(path)
    loaded = VecNormalize.load(path, DummyVecEnv([SpecOnlyEnv]))
    assert isinstance(loaded, EquivariantVecNormalize)
    probe = random_obs(np.random.default_rng(4), 3)
    for key in KEYS:
        np.testing.assert_array_equal(loaded.normalize_obs(probe)[key], norm.normalize_obs(probe)[key])
    loaded.training = False
    count = loaded.obs_rms.groups["points"].count
    loaded.reset()
    loaded.step(np.zeros((1, SPEC.action.dim), np.float32))
    assert loaded.obs_rms.groups["points"].count == count
    # an eval env gets the training env's statistics through SB3's own helper
    eval_env = wrapped(training=False, norm_reward=False)
    sync_envs_normalization(norm, eval_env)
    for key in KEYS:
        np.testing.assert_array_equal(eval_env.normalize_obs(probe)[key], norm.normalize_obs(probe)[key])


def test_clear_errors():
    with pytest.raises(ValueError, match="geometry spec"):
        EquivariantVecNormalize(DummyVecEnv([lambda: gym.make("CartPole-v1")]))
    with pytest.raises(ValueError, match="norm_obs_keys entry 'goal'"):
        wrapped(norm_obs_keys=["goal"])
