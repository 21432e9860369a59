"""The one episode loop: seeded resets in order, per-episode records, parallel envs give the same."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from eqrobot.rollout.episodes import Reset, make_episode_env, run_episodes
from eqrobot.rollout.evaluation import evaluate

WALK_ID = "eqrobot_test/Walk-v0"


class WalkEnv(gym.Env):
    """A point that walks by its actions; the seed sets the start, ``options["length"]`` the length,
    success = ended right of the origin. Renders its position as an image."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        box = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
        self.observation_space = gym.spaces.Dict(
            {"observation": box, "achieved_goal": box, "desired_goal": box}
        )
        self.action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def _obs(self):
        x = np.array([self.x], np.float32)
        return {"observation": x, "achieved_goal": x, "desired_goal": np.zeros(1, np.float32)}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = float(self.np_random.uniform(-1, 1))
        self.t, self.length = 0, int((options or {}).get("length", 5))
        return self._obs(), {}

    def step(self, action):
        self.x += float(action[0])
        self.t += 1
        done = self.t >= self.length
        return self._obs(), -abs(self.x), False, done, {"is_success": self.x > 0}

    def render(self):
        img = np.zeros((4, 8, 3), np.uint8)
        img[..., 0] = self.t
        return img


gym.register(WALK_ID, entry_point=WalkEnv)


class Right:
    """Steps +0.1 and remembers the seeds it was reset with."""

    def __init__(self):
        self.resets = []

    def reset(self, seed=None):
        self.resets.append(seed)

    def predict(self, obs, deterministic=True):
        return np.full((len(obs["observation"]), 1), 0.1, np.float32), None


RESETS = [Reset(s, {"length": n}) for s, n in [(3, 4), (1, 7), (3, 2), (9, 5), (2, 6)]]


def test_records_follow_the_resets_and_do_not_depend_on_n_envs():
    one = make_episode_env(WALK_ID)
    two = make_episode_env(WALK_ID, n_envs=2)
    try:
        a = run_episodes(one, Right(), RESETS)
        b = run_episodes(two, Right(), RESETS)
    finally:
        one.close()
        two.close()
    assert [e.seed for e in a] == [3, 1, 3, 9, 2] and [e.length for e in a] == [4, 7, 2, 5, 6]
    for x, y in zip(a, b, strict=True):
        assert (x.index, x.seed, x.success, x.episode_return, x.length) == (
            y.index,
            y.seed,
            y.success,
            y.episode_return,
            y.length,
        )
        np.testing.assert_array_equal(x.final_observation["observation"], y.final_observation["observation"])
    # the same seed starts the same scene; the final state is the start plus the steps
    np.testing.assert_array_equal(
        a[0].initial_observation["observation"], a[2].initial_observation["observation"]
    )
    start = a[1].initial_observation["observation"][0]
    assert a[1].final_observation["observation"][0] == pytest.approx(start + 0.7, abs=1e-5)
    assert a[1].final_goal_distance == pytest.approx(abs(start + 0.7), abs=1e-5)
    assert len(a[1].predict_seconds) == 7


def test_actions_frames_and_agent_resets():
    vec = make_episode_env(WALK_ID, render_mode="rgb_array")
    agent = Right()
    try:
        eps = run_episodes(vec, agent, RESETS[:2], record_actions=True, frame_every=2, reset_agent=True)
    finally:
        vec.close()
    assert agent.resets == [3, 1]  # once per episode, in order, with its seed
    assert [len(e.actions) for e in eps] == [4, 7]
    # a frame at the reset and after every 2nd step, the last one (step 4) before the auto-reset
    assert [int(f[0, 0, 0]) for f in eps[0].frames] == [0, 2, 4]
    assert [int(f[0, 0, 0]) for f in eps[1].frames] == [0, 2, 4, 6]


def test_bad_action_shape_and_evaluate_summary():
    class Wrong(Right):
        def predict(self, obs, deterministic=True):
            return np.zeros(3, np.float32), None

    vec = make_episode_env(WALK_ID)
    try:
        with pytest.raises(ValueError, match="shape"):
            run_episodes(vec, Wrong(), RESETS[:1])
    finally:
        vec.close()
    res = evaluate(Right(), WALK_ID, episodes=6, seed=10, options={"length": 3})
    assert res["episodes"] == 6 and res["mean_length"] == 3.0 and res["steps"] == 18
    assert set(res["failures"]) <= set(range(10, 16))
    assert res["success_rate"] == pytest.approx(1 - len(res["failures"]) / 6)
    with pytest.raises(ValueError, match="episodes must be >= 1"):
        evaluate(Right(), WALK_ID, episodes=0)
