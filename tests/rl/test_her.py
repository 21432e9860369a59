"""FastHerReplayBuffer (eqrobot.rl.her) samples exactly SB3's HerReplayBuffer batches."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv

import eqrobot  # noqa: F401  (registers the envs)
from eqrobot.rl.her import FastHerReplayBuffer


def _buffers(venv, buffer_size, **kwargs):
    kw = dict(
        buffer_size=buffer_size, observation_space=venv.observation_space, action_space=venv.action_space,
        env=venv, n_envs=venv.num_envs, n_sampled_goal=4, goal_selection_strategy="future", **kwargs,
    )  # fmt: skip
    return HerReplayBuffer(**kw), FastHerReplayBuffer(**kw)


def _assert_same_batch(a, b):
    for name in ("actions", "dones", "rewards"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and torch.equal(x, y), name
    for name in ("observations", "next_observations"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.keys() == y.keys()
        for key in x:
            assert x[key].dtype == y[key].dtype and torch.equal(x[key], y[key]), (name, key)


@pytest.mark.parametrize(("n_envs", "buffer_size", "copy_info_dict"), [(1, 140, False), (2, 90, True)])
def test_samples_equal_sb3(n_envs, buffer_size, copy_info_dict):
    venv = DummyVecEnv([lambda: gym.make("eqrobot/Reach-v0", max_episode_steps=23)] * n_envs)
    sb3, fast = _buffers(venv, buffer_size, copy_info_dict=copy_info_dict)
    venv.seed(0)
    obs = venv.reset()
    rng = np.random.default_rng(0)
    with pytest.raises(RuntimeError, match="before the end of the first episode"):
        fast.sample(8)
    compared = 0
    for step in range(4 * buffer_size):  # the buffer wraps around several times, mid-episode
        action = rng.uniform(-1, 1, (n_envs, *venv.action_space.shape)).astype(np.float32)
        next_obs, reward, done, infos = venv.step(action)
        stored_next = {k: v.copy() for k, v in next_obs.items()}
        for i, d in enumerate(done):
            if d:
                for k in stored_next:
                    stored_next[k][i] = infos[i]["terminal_observation"][k]
        for buf in (sb3, fast):
            buf.add(obs, stored_next, action, reward, done, infos)
        obs = next_obs
        if step >= 30 and step % 7 == 0:
            for batch_size in (64, 5):
                np.random.seed(step)
                want = sb3.sample(batch_size)
                state = np.random.get_state()[1].copy()
                np.random.seed(step)
                got = fast.sample(batch_size)
                assert np.array_equal(np.random.get_state()[1], state), "different random draws"
                _assert_same_batch(want, got)
                compared += 1
    assert compared > 50
    venv.close()
