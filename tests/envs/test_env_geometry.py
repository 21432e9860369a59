"""Symmetry groups: world SE(3) transforms and task rotations act on observations as the spec says.

Exact (float32 rounding) where PyBullet is exact (kinematics, contact-free motion); the contact-rich
rollouts measure and PRINT the simulator's own equivariance error (shared/DESIGN.md section 3).
"""

import gymnasium as gym
import numpy as np
import pytest

import eqrobot  # noqa: F401
from eqrobot.envs import ENV_IDS
from eqrobot.envs.oracles import make_oracle
from eqrobot.sim.transforms import random_rotation, rot_z

SPARSE_IDS = [i for i in ENV_IDS if "Dense" not in i]


def _max_err(spec, expected, got):
    return max(
        float(np.abs(expected[k] - got[k]).max()) for k in ("observation", "achieved_goal", "desired_goal")
    )


@pytest.mark.parametrize("env_id", SPARSE_IDS)
def test_world_transform_acts_on_reset_observation(env_id):
    env = gym.make(env_id)
    spec = env.unwrapped.geometry_spec
    rng = np.random.default_rng(1)
    try:
        for seed in range(3):
            obs0, _ = env.reset(seed=seed)
            R, t = random_rotation(rng), rng.uniform(-2, 2, 3)
            obs1, info = env.reset(seed=seed, options={"world_rotation": R, "world_translation": t})
            np.testing.assert_allclose(info["world_rotation"], R)
            np.testing.assert_allclose(info["world_translation"], t)
            assert _max_err(spec, spec.transform_obs(obs0, R, t), obs1) < 1e-6
            g = obs1["observation"][spec.observation["gravity_direction"].slice]
            np.testing.assert_allclose(g, -R[:, 2], atol=1e-7)
    finally:
        env.close()


@pytest.mark.parametrize("env_id", SPARSE_IDS)
def test_task_rotation_acts_on_reset_observation(env_id):
    env = gym.make(env_id)
    spec = env.unwrapped.geometry_spec
    try:
        obs0, _ = env.reset(seed=5)
        for theta in (0.7, -2.5, 2.8973):
            obs1, info = env.reset(seed=5, options={"task_rotation": theta})
            assert info["task_rotation"] == pytest.approx(theta)
            # a rotation about gravity through the base (at the origin): the whole observation rotates
            assert _max_err(spec, spec.transform_obs(obs0, rot_z(theta)), obs1) < 1e-6
    finally:
        env.close()


def test_contact_free_rollout_is_exactly_equivariant():
    """Reach, same action sequence rotated: the arm moves in free space, PyBullet is exact there."""
    env = gym.make("eqrobot/Reach-v0")
    spec = env.unwrapped.geometry_spec
    rng = np.random.default_rng(0)
    actions = 0.4 * rng.uniform(-1, 1, (25, 4))
    actions[:, 2] = np.abs(actions[:, 2])  # drift upwards: never touch the table
    R, t = random_rotation(rng), np.array([0.5, -1.0, 2.0])
    try:
        env.reset(seed=0)
        A = [env.step(a)[0] for a in actions]
        env.reset(seed=0, options={"world_rotation": R, "world_translation": t})
        B = [env.step(spec.transform_action(a, R))[0] for a in actions]
        env.reset(seed=0, options={"task_rotation": 1.3})
        C = [env.step(spec.transform_action(a, rot_z(1.3)))[0] for a in actions]
    finally:
        env.close()
    err_world = max(_max_err(spec, spec.transform_obs(a, R, t), b) for a, b in zip(A, B, strict=True))
    err_task = max(_max_err(spec, spec.transform_obs(a, rot_z(1.3)), c) for a, c in zip(A, C, strict=True))
    print(
        f"\ncontact-free Reach rollout (25 steps): world SE(3) error {err_world:.2e}, "
        f"task rotation {err_task:.2e}"
    )
    assert err_world < 1e-4 and err_task < 1e-4


@pytest.mark.parametrize("task", ["Push", "PickAndPlace"])
def test_contact_rich_rollout_reports_simulator_error(task):
    """Oracle episode in a scene and in its transformed copy, actions transformed: report the gap."""
    env = gym.make(f"eqrobot/{task}-v0")
    spec = env.unwrapped.geometry_spec
    oracle = make_oracle(task, env=env)
    rng = np.random.default_rng(3)
    R, t = random_rotation(rng), np.array([0.3, 0.2, -0.1])
    try:
        obs, _ = env.reset(seed=11)
        A, actions = [], []
        for _ in range(50):
            a = oracle.predict(obs)[0]
            actions.append(a)
            obs, *_ = env.step(a)
            A.append(obs)
        env.reset(seed=11, options={"world_rotation": R, "world_translation": t})
        B = [env.step(spec.transform_action(a, R))[0] for a in actions]
    finally:
        env.close()

    def gap(kinds, i):
        exp, got = spec.transform_obs(A[i], R, t)["observation"], B[i]["observation"]
        return max(float(np.abs(exp[f.slice] - got[f.slice]).max()) for f in spec.observation.of_kind(*kinds))

    pose = [gap(("point", "frame"), i) for i in range(50)]
    vel = [gap(("vector", "pseudovector"), i) for i in range(50)]
    pos = spec.observation["object_position"].slice
    obj_gap = float(
        np.linalg.norm(spec.transform_obs(A[-1], R, t)["observation"][pos] - B[-1]["observation"][pos])
    )
    print(
        f"\n{task}: simulator equivariance error, world SE(3) transform, open-loop replay of a 50-step "
        f"oracle episode: positions/frames max |err| after 1 step {pose[0]:.1e}, 10 steps "
        f"{max(pose[:10]):.1e}, 50 steps {max(pose):.1e}; velocities {max(vel):.1e}; "
        f"final object position gap {obj_gap * 100:.2f} cm"
    )
    assert np.isfinite(pose).all() and obj_gap < 0.3  # loose: PyBullet's contacts are not equivariant
