"""Rotation GIFs show the rotation: the camera stays in the world under task rotations, frames are
labelled with the angle."""

import gymnasium as gym
import numpy as np

import eqrobot  # noqa: F401
from eqrobot.rollout.recording import label_frame
from eqrobot.rotation.videos import save_videos


def _first_frame(env, **options):
    env.reset(seed=5, options=options)
    return env.render().astype(float)


def test_camera_stays_put_under_task_rotation_and_follows_world_transforms():
    env = gym.make("eqrobot/Push-v0", render_mode="rgb_array", render_width=160, render_height=120)
    try:
        canonical = _first_frame(env, task_rotation=0.0)
        turned = _first_frame(env, task_rotation=np.pi / 2)
        R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        moved = _first_frame(env, world_rotation=R, world_translation=np.array([0.3, -0.2, 0.1]))
    finally:
        env.close()
    assert np.abs(canonical - turned).mean() > 3.0  # the viewer sees the arm and the cube turn
    assert np.abs(canonical - moved).mean() < 0.5  # a moved world renders the same picture


def test_gifs_are_labelled_with_their_angle(tmp_path):
    import imageio.v3 as iio

    paths = save_videos("oracle", "eqrobot/Reach-v0", [0.0, 90.0], tmp_path, frame_skip=25)
    assert [p.name.split("_rot")[1].split("_")[0] for p in paths] == ["+0", "+90"]
    first = [iio.imread(p, index=0)[..., :3].astype(float) for p in paths]
    corner = (slice(0, 14), slice(0, 200))
    assert np.abs(first[0][corner] - first[1][corner]).mean() > 1.0  # "+0" and "+90" labels differ
    blank = np.zeros((40, 300, 3), np.uint8)
    assert label_frame(blank, "task rotation +90 deg").max() > 200  # white (antialiased) text
