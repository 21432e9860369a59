"""Pinned trajectories: a short seeded rollout of every env id hashes to a fixed value.

The hashes were recorded before the observation table, the spec roles and the scipy rotation
maths were introduced (refactors that must not move a single bit of any trajectory). Each case
covers reset (object sampling, goal, markers), stepping (IK, physics, the observation readers) and
the reward path, canonical and under a random task rotation plus a random world SE(3) transform.

Bits depend on the platform's PyBullet build and libm, so the pins are keyed by platform; on a
platform with no pins the test skips (record them with ``python tests/envs/test_env_trajectory_pinned.py``).
"""

from __future__ import annotations

import hashlib
import platform

import gymnasium as gym
import numpy as np
import pybullet
import pytest

from eqrobot.envs import ENV_IDS
from eqrobot.envs.registration import register_envs

N_STEPS = 12
SEEDS = {"canonical": 11, "rotated_world": 3}
VARIANTS = {
    "canonical": {},
    "rotated_world": {"task_rotation_range": 2.0, "world_transform": "random"},
}


def trajectory_digest(env_id: str, variant: str) -> str:
    """sha256 of every observation array, reward and success flag of a seeded rollout."""
    register_envs()
    env = gym.make(env_id, **VARIANTS[variant])
    try:
        h = hashlib.sha256()
        obs, info = env.reset(seed=SEEDS[variant])
        rng = np.random.default_rng(5)
        for step in range(N_STEPS + 1):
            for key in ("observation", "achieved_goal", "desired_goal"):
                h.update(np.ascontiguousarray(obs[key]).tobytes())
            h.update(np.asarray(info["world_rotation"], dtype=np.float64).tobytes())
            h.update(np.float64(info["task_rotation"]).tobytes())
            if step == N_STEPS:
                break
            action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
            obs, reward, terminated, truncated, info = env.step(action)
            h.update(np.float64(reward).tobytes())
            h.update(bytes([bool(info["is_success"]), bool(terminated), bool(truncated)]))
        return h.hexdigest()[:24]
    finally:
        env.close()


def platform_key() -> str:
    return f"{platform.system()}-{platform.machine()}-pybullet{pybullet.getAPIVersion()}"


PINNED: dict[str, dict[tuple[str, str], str]] = {
    "Linux-x86_64-pybullet202010061": {
        ("eqrobot/Reach-v0", "canonical"): "0c4fd4daf115293c100a19bf",
        ("eqrobot/Reach-v0", "rotated_world"): "60ae31499332e007cb306158",
        ("eqrobot/Push-v0", "canonical"): "a7fd255f4e6c8e8672964bed",
        ("eqrobot/Push-v0", "rotated_world"): "403bbf6ca78014b57f9c033d",
        ("eqrobot/PickAndPlace-v0", "canonical"): "92aff3b278c4d430971c10f2",
        ("eqrobot/PickAndPlace-v0", "rotated_world"): "be2f65c67c6419562a7acab0",
        ("eqrobot/Stack-v0", "canonical"): "a2bbcbb6fd2b1abfae3595f3",
        ("eqrobot/Stack-v0", "rotated_world"): "19a4348faf40c7771a9bf424",
        ("eqrobot/Rotate-v0", "canonical"): "9dc586f3cc5cabf691e126fa",
        ("eqrobot/Rotate-v0", "rotated_world"): "e78c511026df210b3cfd633c",
        ("eqrobot/ReachDense-v0", "canonical"): "a233b712154932a7aa124a52",
        ("eqrobot/ReachDense-v0", "rotated_world"): "67cb545f92725be1f9f6c3d6",
        ("eqrobot/PushDense-v0", "canonical"): "64c9910b70dcfacffd8a896c",
        ("eqrobot/PushDense-v0", "rotated_world"): "5e6232b2d20a61b89b0fe3ef",
        ("eqrobot/PickAndPlaceDense-v0", "canonical"): "b701bb0d1698dccd359392e0",
        ("eqrobot/PickAndPlaceDense-v0", "rotated_world"): "bba33beaf357201c5f26ee9e",
        ("eqrobot/StackDense-v0", "canonical"): "5ec431044d7cbf6bbdb6d539",
        ("eqrobot/StackDense-v0", "rotated_world"): "a72c402e84a1af6274a1ccd6",
        ("eqrobot/RotateDense-v0", "canonical"): "662b3fd5402cb74320e6f515",
        ("eqrobot/RotateDense-v0", "rotated_world"): "97bcb2b601ecc44b643b1c52",
        # Slide: recorded when the task was added
        ("eqrobot/Slide-v0", "canonical"): "def4a9672320946ea54c0197",
        ("eqrobot/Slide-v0", "rotated_world"): "45389b0d6b45b4a1547bcdec",
        ("eqrobot/SlideDense-v0", "canonical"): "a68d426ca03f83b4de11d807",
        ("eqrobot/SlideDense-v0", "rotated_world"): "49af92d4541c8ac07051aaaa",
    },
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_trajectory_is_bit_identical_to_the_pin(env_id, variant):
    pins = PINNED.get(platform_key())
    if pins is None:
        pytest.skip(f"no pinned trajectories for platform {platform_key()}")
    if (env_id, variant) not in pins:
        pytest.skip(f"no pin recorded for {env_id} ({variant}): record it by running this file")
    assert trajectory_digest(env_id, variant) == pins[(env_id, variant)], (
        f"{env_id} ({variant}): the seeded trajectory changed; a refactor moved bits of the env"
    )


if __name__ == "__main__":  # print the pins for this platform
    print(f"    {platform_key()!r}: {{")
    for env_id in ENV_IDS:
        for variant in VARIANTS:
            print(f"        ({env_id!r}, {variant!r}): {trajectory_digest(env_id, variant)!r},")
    print("    },")
