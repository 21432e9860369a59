"""The PyBullet layer on its own: primitives, frames, stepping, no torch."""

import subprocess
import sys

import numpy as np
import pytest

from eqrobot.geometry.so3 import quat_xyzw_to_matrix, random_rotation
from eqrobot.sim import Simulator
from eqrobot.sim.transforms import check_rotation, matrix_to_quat, quat_to_frame_columns


@pytest.mark.parametrize(
    "shape, size, half_height",
    [("box", (0.04, 0.06, 0.02), 0.01), ("cylinder", (0.03, 0.08), 0.04), ("sphere", (0.025,), 0.025)],
)
def test_primitives_rest_on_the_table_in_a_transformed_frame(shape, size, half_height):
    sim = Simulator()
    try:
        R = random_rotation(np.random.default_rng(0))
        t = np.array([0.5, -0.3, 1.0])
        sim.set_frame(R, t, R)
        sim.create_table()
        body = sim.create_primitive(
            "obj", shape, size, 0.3, (0.5, 0.1, half_height + 0.001), lateral_friction=0.8
        )
        for _ in range(25):
            sim.step()
        pos = np.array(sim.client.getBasePositionAndOrientation(body)[0])
        local = R.T @ (pos - t)  # back in the task frame
        assert local[2] == pytest.approx(half_height, abs=3e-3)
        assert np.linalg.norm(local[:2] - [0.5, 0.1]) < 0.01
        g = np.array(sim.client.getPhysicsEngineParameters()["gravityAccelerationZ"])
        assert np.isfinite(g)
    finally:
        sim.close()


def test_quaternion_helpers_round_trip():
    rng = np.random.default_rng(1)
    for _ in range(20):
        R = random_rotation(rng)
        q = matrix_to_quat(R)
        np.testing.assert_allclose(quat_xyzw_to_matrix(q), R, atol=1e-12)
        np.testing.assert_allclose(np.reshape(quat_to_frame_columns(q), (3, 3)).T, R, atol=1e-12)
        check_rotation(R)


def test_sim_never_imports_torch():
    code = (
        "import sys, eqrobot.sim, eqrobot.envs, gymnasium; "
        "gymnasium.make('eqrobot:eqrobot/Push-v0').reset(); "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
