import json

import numpy as np
import pytest
from gymnasium import spaces

from eqrobot.dynamics.data import (
    FORMAT_VERSION,
    DatasetFormatError,
    Transitions,
    from_replay_buffer,
    limit_action,
)
from eqrobot.dynamics.toy import toy_spec
from eqrobot.geometry.so3 import random_rotation


def test_save_load_round_trip(tmp_path, push_data, push_spec):
    path = push_data.save(tmp_path / "d.npz")
    back = Transitions.load(path, push_spec)
    assert back.spec == push_spec
    for k in ("observation", "action", "next_observation", "desired_goal", "episode", "step"):
        np.testing.assert_array_equal(getattr(back, k), getattr(push_data, k))
    assert back.meta["source"] == "toy"


def test_windows_stay_inside_episodes(push_data):
    starts = push_data.window_starts(5)
    assert len(starts) == 40 * (25 - 4)
    for s in starts[:50]:
        assert len(set(push_data.episode[s : s + 5])) == 1
        np.testing.assert_array_equal(
            push_data.observation[s + 1 : s + 5], push_data.next_observation[s : s + 4]
        )


def test_spec_mismatch_fails_clearly(tmp_path, push_data):
    path = push_data.save(tmp_path / "d.npz")
    with pytest.raises(DatasetFormatError, match="geometry spec differs.*object1_position"):
        Transitions.load(path, toy_spec(2))


def test_version_mismatch_fails_clearly(tmp_path, push_data):
    path = push_data.save(tmp_path / "d.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["format_version"] = np.int64(FORMAT_VERSION + 1)
    np.savez(tmp_path / "old.npz", **arrays)
    with pytest.raises(
        DatasetFormatError, match=f"version {FORMAT_VERSION + 1}.*reads version {FORMAT_VERSION}"
    ):
        Transitions.load(tmp_path / "old.npz")


def test_corrupt_or_foreign_file_fails_clearly(tmp_path, push_data):
    path = push_data.save(tmp_path / "d.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DatasetFormatError, match="not a readable transitions file"):
        Transitions.load(bad)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DatasetFormatError, match="not an eqrobot transitions file"):
        Transitions.load(tmp_path / "other.npz")


def test_split_transform_concatenate(push_data, push_spec):
    a, b = push_data.split(0.25, seed=0)
    assert len(a) + len(b) == len(push_data)
    assert not set(a.episode) & set(b.episode)
    R = random_rotation(np.random.default_rng(0))
    moved = push_data.transform(R, np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(moved.action[:, :3], push_data.action[:, :3] @ R.T, atol=1e-6)
    both = Transitions.concatenate([a, b])
    assert len(both) == len(push_data) and len(both.window_starts(5)) == len(push_data.window_starts(5))


def test_limit_action_is_radial(push_spec):
    a = np.array([[3.0, 4.0, 0.0, 2.0], [0.1, 0.2, 0.0, -0.5]])
    out = limit_action(a, push_spec)
    np.testing.assert_allclose(out[0], [0.6, 0.8, 0.0, 1.0])
    np.testing.assert_allclose(out[1], a[1])


def test_from_replay_buffer(push_data, push_spec):
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
