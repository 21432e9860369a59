"""Gymnasium / SB3 API conformance, registration, spaces and rendering for every id in ENV_IDS."""

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest

import eqrobot
from eqrobot.envs import ENV_IDS, ENV_TABLE
from eqrobot.geometry import GeometrySpec


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_check_env_gymnasium_and_sb3(env_id):
    from gymnasium.utils.env_checker import check_env as gym_check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unbounded Box warnings are expected
            gym_check_env(env.unwrapped, skip_render_check=True)
            sb3_check_env(env.unwrapped, warn=False)
    finally:
        env.close()


def test_registration_table_and_idempotence():
    assert len(ENV_IDS) == 12 and set(ENV_IDS) == set(ENV_TABLE)
    assert {"eqrobot/Reach-v0", "eqrobot/PushDense-v0", "eqrobot/Rotate-v0"} <= set(ENV_IDS)
    eqrobot.register_envs()
    eqrobot.register_envs()
    for env_id, (_, _, steps) in ENV_TABLE.items():
        assert gym.spec(env_id).max_episode_steps == steps


@pytest.mark.parametrize("env_id", ["eqrobot/Push-v0", "eqrobot/RotateDense-v0"])
def test_spaces_spec_and_info(env_id):
    env = gym.make(env_id)
    try:
        spec = env.unwrapped.geometry_spec
        assert isinstance(spec, GeometrySpec)
        assert env.observation_space.geometry_spec is spec
        assert env.unwrapped.observation_space.geometry_spec is spec
        # the spec travels with the space through pickling (SubprocVecEnv sends spaces over pipes)
        space = pickle.loads(pickle.dumps(env.observation_space))
        assert space.geometry_spec == spec
        obs, info = env.reset(seed=3)
        for key in ("observation", "achieved_goal", "desired_goal"):
            assert obs[key].dtype == np.float32 and obs[key].shape == (spec.parts()[key].dim,)
        assert env.action_space.shape == (spec.action.dim,)
        f = spec.observation.split(obs["observation"])
        np.testing.assert_allclose(f["gravity_direction"], [0, 0, -1])
        np.testing.assert_allclose(f["base_position"], [0, 0, 0])
        assert set(info) >= {"is_success", "task_rotation", "world_rotation", "world_translation"}
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert isinstance(info["is_success"], bool) and info["world_rotation"].shape == (3, 3)
        # batched compute_reward, as HER calls it
        ag = np.repeat(obs["achieved_goal"][None], 5, 0)
        dg = np.repeat(obs["desired_goal"][None], 5, 0)
        rb = env.unwrapped.compute_reward(ag, dg, [info] * 5)
        assert rb.shape == (5,) and np.allclose(rb, r)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_step_reward_matches_batched_compute_reward_exactly(env_id):
    """step() scores a step with a scalar fast path; HER relabels with the batched compute_reward.
    The two must agree bit for bit, on failing and on succeeding steps (an oracle drives the env;
    once it has succeeded, random actions are mixed in)."""
    from eqrobot.envs.oracles import make_oracle

    env = gym.make(env_id)
    u = env.unwrapped
    oracle = make_oracle(u.task.name, env)
    rng = np.random.default_rng(0)
    rows, successes = [], 0
    try:
        obs, _ = env.reset(seed=1)
        for _ in range(120):
            noisy = successes > 0 and rng.random() < 0.3
            action = env.action_space.sample() if noisy else oracle.predict(obs)[0]
            obs, r, term, trunc, info = env.step(action)
            rows.append((obs["achieved_goal"], obs["desired_goal"], r, info["is_success"]))
            successes += info["is_success"]
            if term or trunc:
                obs, _ = env.reset()
    finally:
        env.close()
    ag, dg, r, ok = (np.array(x) for x in zip(*rows, strict=True))
    assert 0 < successes < len(rows), "the rollout must hold both failing and succeeding steps"
    np.testing.assert_array_equal(u.compute_reward(ag, dg, None), r.astype(np.float32))
    np.testing.assert_array_equal(u.is_success(ag, dg), ok)


def test_dense_reward_is_minus_distance():
    env = gym.make("eqrobot/PushDense-v0")
    obs, _ = env.reset(seed=0)
    obs, r, *_ = env.step(np.zeros(4, np.float32))
    assert r == pytest.approx(-np.linalg.norm(obs["achieved_goal"] - obs["desired_goal"]), abs=1e-5)
    env.close()


def test_subproc_vec_env_workers_import_eqrobot():
    from stable_baselines3.common.vec_env import SubprocVecEnv

    # "spawn": a fresh interpreter that knows nothing of eqrobot until the "eqrobot:" prefix imports it
    venv = SubprocVecEnv([lambda: gym.make("eqrobot:eqrobot/Push-v0")], start_method="spawn")
    try:
        obs = venv.reset()
        assert obs["observation"].shape == (1, 31)
        obs, r, done, infos = venv.step(np.zeros((1, 4), np.float32))
        assert r.shape == (1,) and "is_success" in infos[0]
        assert venv.observation_space.geometry_spec.observation.dim == 31
    finally:
        venv.close()


def test_render_rgb_array_follows_world_transform():
    env = gym.make("eqrobot/Stack-v0", render_mode="rgb_array", render_width=96, render_height=72)
    try:
        env.reset(seed=0)
        img = env.render()
        assert img.shape == (72, 96, 3) and img.dtype == np.uint8 and img.std() > 5
        rng = np.random.default_rng(0)
        from eqrobot.geometry.so3 import random_rotation

        env.reset(
            seed=0, options={"world_rotation": random_rotation(rng), "world_translation": [1.0, 2.0, -3.0]}
        )
        img2 = env.render()
        # the camera moves with the world: same picture up to rasterisation noise
        assert np.abs(img.astype(float) - img2).mean() < 3.0
    finally:
        env.close()
        env.close()  # idempotent
