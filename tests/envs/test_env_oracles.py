"""Each task is solvable from observations alone: scripted oracles, canonical and transformed."""

import numpy as np
import pytest

from eqrobot.envs.oracles import OraclePolicy, make_oracle
from eqrobot.rollout import evaluate

TASKS = ["Reach", "Push", "PickAndPlace", "Stack", "Rotate", "Slide"]
SETTINGS = {
    "canonical": {},
    "task-rotation": {"task_rotation_range": 2.8973},  # Panda joint 1's full range (+-166 deg)
    "world-SE3": {"task_rotation_range": 2.8973, "world_transform": "random"},
}


@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("task", TASKS)
def test_oracle_fast(task, setting):
    n = 6 if task == "Stack" else 10
    res = evaluate("oracle", f"eqrobot/{task}-v0", episodes=n, seed=1000, env_kwargs=SETTINGS[setting])
    print(f"\n{task} {setting}: success {res['success_rate']:.2f} over {n}, failures {res['failures']}")
    assert res["success_rate"] >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("setting", list(SETTINGS))
@pytest.mark.parametrize("task", TASKS)
def test_oracle_100_episodes(task, setting):
    res = evaluate("oracle", f"eqrobot/{task}-v0", episodes=100, seed=0, env_kwargs=SETTINGS[setting])
    print(f"\n{task} {setting}: success {res['success_rate']:.2f} over 100, failures {res['failures']}")
    assert res["success_rate"] >= 0.95


def test_oracle_is_batched_and_spec_only():
    import gymnasium as gym

    env = gym.make("eqrobot/PickAndPlace-v0")
    try:
        obs, _ = env.reset(seed=0)
        from_env = OraclePolicy(env)
        from_name = make_oracle("eqrobot/PickAndPlaceDense-v0")
        a1, state = from_env.predict(obs)
        assert state is None and a1.shape == (4,) and a1.dtype == np.float32
        np.testing.assert_allclose(from_name.predict(obs)[0], a1)
        batch = {k: np.stack([v, v]) for k, v in obs.items()}
        ab, _ = from_env.predict(batch)
        assert ab.shape == (2, 4) and np.allclose(ab[0], a1)
        assert np.linalg.norm(a1[:3]) <= 1.0 + 1e-6
    finally:
        env.close()
    with pytest.raises(ValueError, match="unknown task"):
        make_oracle("Juggle")


def test_slide_oracle_needs_the_yaw_action():
    import gymnasium as gym

    env = gym.make("eqrobot/Slide-v0", control_yaw=False)
    try:
        with pytest.raises(ValueError, match="control_yaw=True"):
            OraclePolicy(env)
    finally:
        env.close()
