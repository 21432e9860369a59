"""Transitions out of an SB3 replay buffer."""

import json

import numpy as np
from gymnasium import spaces

from eqrobot.dynamics.toy import toy_spec, toy_transitions
from eqrobot.rollout.collect import from_replay_buffer


def test_from_replay_buffer():
    push_spec = toy_spec(1)
    push_data = toy_transitions(push_spec, n_episodes=4, length=25, seed=0)
    from stable_baselines3.common.buffers import DictReplayBuffer

    o = push_spec.observation.dim
    g = push_spec.desired_goal.dim
    space = spaces.Dict(
        {
            "observation": spaces.Box(-np.inf, np.inf, (o,), np.float32),
            "achieved_goal": spaces.Box(-np.inf, np.inf, (g,), np.float32),
            "desired_goal": spaces.Box(-np.inf, np.inf, (g,), np.float32),
        }
    )
    space.geometry_spec = push_spec
    buf = DictReplayBuffer(60, space, spaces.Box(-1, 1, (4,), np.float32), device="cpu", n_envs=1)
    d = push_data.head(75)  # 3 episodes of 25, the ring buffer wraps
    for i in range(len(d)):
        buf.add(
            {
                "observation": d.observation[i : i + 1],
                "achieved_goal": d.achieved_goal[i : i + 1],
                "desired_goal": d.desired_goal[i : i + 1],
            },
            {
                "observation": d.next_observation[i : i + 1],
                "achieved_goal": d.next_achieved_goal[i : i + 1],
                "desired_goal": d.desired_goal[i : i + 1],
            },
            d.action[i : i + 1],
            np.zeros(1),
            np.array([d.step[i] == 24]),
            [{}],
        )
    t = from_replay_buffer(buf)
    assert len(t) == 60
    np.testing.assert_array_equal(t.observation, d.observation[15:])
    # rows 15..24 are the tail of episode 0, then two whole episodes
    assert len(np.unique(t.episode)) == 3
    assert len(t.window_starts(25)) == 2
    json.dumps(t.meta)
