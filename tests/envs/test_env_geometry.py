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
from eqrobot.geometry.so3 import random_rotation, rot_z

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


# --- the observation table ------------------------------------------------------------------------
def test_one_table_row_adds_a_field_to_both_spec_and_observation():
    from eqrobot.envs.observation import OBSERVATION_TABLE, ObservationReader, ObservationRow

    env = gym.make("eqrobot/Stack-v0").unwrapped
    try:
        env.reset(seed=2)
        bodies = {name: body for name, body, _ in env._objects}
        extra = ObservationRow("height", "scalar", "object", lambda state: (state[0][2],))
        table = (*OBSERVATION_TABLE, extra)
        reader = ObservationReader(env.sim, env.robot, bodies, control_yaw=False, table=table)
        reader.reset()
        x = reader.read()
        spec = reader.spec
        assert x.shape == (spec.dim,) and spec.dim == env.geometry_spec.observation.dim + 2
        for obj in ("object1", "object2"):
            height = spec[f"{obj}_height"]
            assert (height.role, height.obj, height.attribute) == ("object", obj, "height")
            assert x[height.slice][0] == x[spec[f"{obj}_position"].slice][2]
        # every field the env declares reads the same numbers in the extended layout
        obs = env._get_obs()["observation"]
        for f in env.geometry_spec.observation:
            np.testing.assert_array_equal(x[spec[f.name].slice], obs[f.slice])
        bad = ObservationRow("ee_speed", "scalar", "robot", lambda robot: (0.0, 1.0))
        n_before_objects = [r.role for r in OBSERVATION_TABLE].index("object")
        wrong_size = (*OBSERVATION_TABLE[:n_before_objects], bad, *OBSERVATION_TABLE[n_before_objects:])
        with pytest.raises(ValueError, match="'ee_speed'.*returned 2"):
            ObservationReader(env.sim, env.robot, bodies, False, wrong_size).reset()
        with pytest.raises(ValueError, match="ordered by role"):
            ObservationReader(env.sim, env.robot, bodies, False, (*OBSERVATION_TABLE, bad))
    finally:
        env.close()


@pytest.mark.parametrize("env_id", SPARSE_IDS)
def test_spec_roles_match_the_scene(env_id):
    env = gym.make(env_id)
    try:
        spec = env.unwrapped.geometry_spec
        objects = spec.observation.objects()
        assert list(objects) == [o.name for o in env.unwrapped.task.objects]
        assert {f.name for f in spec.observation.by_role("static")} == {"gravity_direction", "base_position"}
        obs, _ = env.reset(seed=0)
        obs2, *_ = env.step(env.action_space.sample())
        for f in spec.observation.by_role("static"):  # static: constant within the episode
            np.testing.assert_array_equal(obs["observation"][f.slice], obs2["observation"][f.slice])
        for g in spec.desired_goal:  # goal fields keep the role of the observation field they copy
            o = spec.observation[g.name]
            assert (g.kind, g.role, g.obj) == (o.kind, o.role, o.obj)
    finally:
        env.close()


# --- the spec through wrappers --------------------------------------------------------------------
def _wrapped_envs():
    from gymnasium.wrappers import FlattenObservation, RecordEpisodeStatistics, TimeLimit

    base = lambda: gym.make("eqrobot/Push-v0")  # noqa: E731
    return {
        "gymnasium.make chain": base(),
        "FlattenObservation": FlattenObservation(base()),
        "TimeLimit": TimeLimit(base(), 10),
        "RecordEpisodeStatistics(Flatten)": RecordEpisodeStatistics(FlattenObservation(base())),
    }


def test_geometry_spec_survives_wrappers():
    from eqrobot.envs.core import make_geometry_spec

    expected = make_geometry_spec("Push")
    envs = _wrapped_envs()
    try:
        for name, env in envs.items():
            assert env.get_wrapper_attr("geometry_spec") == expected, name
        # and the flat layout FlattenObservation produces, transformed as the spec says
        flat_env = envs["FlattenObservation"]
        flat_spec = expected.flat_observation()
        obs, _ = flat_env.reset(seed=1)
        assert obs.shape == (flat_spec.dim,)
        R, t = random_rotation(np.random.default_rng(4)), np.array([0.2, -0.3, 0.5])
        moved, _ = flat_env.reset(seed=1, options={"world_rotation": R, "world_translation": t})
        np.testing.assert_allclose(flat_spec.transform(obs, R, t), moved, atol=1e-5)
    finally:
        for env in envs.values():
            env.close()


def test_geometry_spec_through_sb3_vec_envs():
    from gymnasium.wrappers import FlattenObservation
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from eqrobot.envs.core import make_geometry_spec

    venv = DummyVecEnv(
        [
            lambda: Monitor(gym.make("eqrobot/Reach-v0")),
            lambda: FlattenObservation(gym.make("eqrobot/Reach-v0")),
        ]
    )
    try:
        assert venv.get_attr("geometry_spec") == [make_geometry_spec("Reach")] * 2
    finally:
        venv.close()


def test_goal_marker_turns_with_the_goal_frame():
    env = gym.make("eqrobot/Rotate-v0").unwrapped
    try:
        obs, _ = env.reset(seed=4, options={"task_rotation": 0.5})
        ((field, body),) = env._markers
        pos, quat = env.sim.client.getBasePositionAndOrientation(body)
        spec = env.geometry_spec.desired_goal
        np.testing.assert_allclose(pos, obs["desired_goal"][spec[field].slice], atol=1e-6)
        frame = np.reshape(env.sim.client.getMatrixFromQuaternion(quat), (3, 3)).T.reshape(9)
        np.testing.assert_allclose(frame, obs["desired_goal"][spec["object_orientation"].slice], atol=1e-6)
    finally:
        env.close()


def test_equivariant_normalizer_finds_the_spec_behind_a_space_rebuilding_wrapper():
    from gymnasium.wrappers import FilterObservation
    from stable_baselines3.common.vec_env import DummyVecEnv

    from eqrobot.envs.normalization import EquivariantVecNormalize

    keys = ["achieved_goal", "desired_goal", "observation"]
    venv = DummyVecEnv([lambda: FilterObservation(gym.make("eqrobot/Push-v0"), keys)])
    try:
        assert getattr(venv.observation_space, "geometry_spec", None) is None  # the space lost it
        norm = EquivariantVecNormalize(venv)
        assert norm.geometry_spec == venv.get_attr("geometry_spec")[0]
    finally:
        venv.close()
