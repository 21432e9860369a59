
import numpy as np
import pytest

from eqrobot.dynamics.data import (
    FORMAT_VERSION,
    DatasetFormatError,
    Transitions,
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
