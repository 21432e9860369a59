"""Replay augmentation: the transformed batch is what the env gives for the moved scene."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.buffers import DictReplayBuffer, ReplayBuffer
from stable_baselines3.common.type_aliases import DictReplayBufferSamples
from stable_baselines3.common.vec_env import DummyVecEnv

import eqrobot  # noqa: F401
from eqrobot.geometry.so3 import random_rotation, rotation_about_axis
from eqrobot.geometry.spec import ArraySpec, GeometrySpec
from eqrobot.policies.distributions import limit_action
from eqrobot.rl.augmentation import (
    AugmentedDictReplayBuffer,
    AugmentedFastHerReplayBuffer,
    AugmentedHerReplayBuffer,
    SpecAugmentation,
    augmented_buffer_class,
)
from eqrobot.rl.her import FastHerReplayBuffer

STEPS = 12
ROBOT_FIELDS = ("gravity_direction", "base_position", "ee_position", "ee_velocity", "gripper_width")


def rollout(task, actions, options=None, seed=3):
    """Observations (float64 dicts) and rewards of one episode with the given actions."""
    env = gym.make(f"eqrobot/{task}-v0")
    obs, _ = env.reset(seed=seed, options=options)
    observations, rewards = [obs], []
    for a in actions:
        obs, reward, *_ = env.step(a)
        observations.append(obs)
        rewards.append(reward)
    env.close()
    return [{k: v.astype(np.float64) for k, v in o.items()} for o in observations], np.array(rewards)


def actions_away_from_the_table(seed):
    """Random actions that lift the hand: no contact with the cube (which rests on the table)."""
    a = np.random.default_rng(seed).uniform(-1, 1, (STEPS, 4))
    a[:, 2] = np.abs(a[:, 2]) + 0.2
    return a


def so2_element(observation, angle):
    """The task rotation by ``angle`` as a rigid motion: about up (-gravity) through the base."""
    up, base = -observation[0:3], observation[3:6]
    R = rotation_about_axis(up, angle)
    return R, base - R @ base


def compare(task, spec, base_obs, moved_obs, actions, R, t, exact_fields):
    """Augmented transitions vs the env's moved episode, step by step (float64)."""
    aug = SpecAugmentation(spec, "se3")
    n = len(actions)
    stack = lambda obs, sl: {k: np.stack([o[k] for o in obs[sl]]) for k in obs[0]}  # noqa: E731
    Rb, tb = np.broadcast_to(R, (n, 3, 3)), np.broadcast_to(t, (n, 3))
    g_obs, g_actions, g_next = aug.transform(
        stack(base_obs, slice(0, n)), actions, stack(base_obs, slice(1, n + 1)), Rb, tb
    )
    env_obs, env_next = stack(moved_obs, slice(0, n)), stack(moved_obs, slice(1, n + 1))
    # rotated, and (some of these have norm > 1) limited radially as the env does
    np.testing.assert_allclose(
        g_actions, limit_action(spec.transform_action(actions, R), spec.action), atol=1e-12
    )

    def tolerance(name):
        # a cube resting on the table settles differently in the two scenes (contact solver): its pose
        # agrees to ~3e-3 (position 5e-5), its velocities only to ~6e-2; anything contact-free to float32.
        # A wrong transform moves the cube by ~0.1-1 m, far outside the cube's tolerance.
        return 1e-5 if name in exact_fields else (1e-2 if "velocity" not in name else None)

    for mine, theirs in ((g_obs, env_obs), (g_next, env_next)):
        np.testing.assert_allclose(mine["desired_goal"], theirs["desired_goal"], atol=1e-5)
        for key in ("observation", "achieved_goal"):
            for f in spec.parts()[key]:
                if tolerance(f.name) is not None:
                    np.testing.assert_allclose(
                        mine[key][:, f.slice], theirs[key][:, f.slice], atol=tolerance(f.name), err_msg=f.name
                    )
    # at reset nothing has moved yet: every field agrees to float32 rounding
    np.testing.assert_allclose(g_obs["observation"][0], env_obs["observation"][0], atol=1e-5)


@pytest.mark.parametrize("task", ["Reach", "Push"])
def test_so2_batch_is_the_rotated_task(task):
    spec = gym.make(f"eqrobot/{task}-v0").unwrapped.geometry_spec
    actions = actions_away_from_the_table(1)
    angle = 1.1
    base_obs, base_rewards = rollout(task, actions)
    R, t = so2_element(base_obs[0]["observation"], angle)
    moved_obs, moved_rewards = rollout(task, spec.transform_action(actions, R), {"task_rotation": angle})
    np.testing.assert_array_equal(moved_rewards, base_rewards)  # rewards are invariant
    exact = ROBOT_FIELDS if task == "Push" else [f.name for f in spec.observation]
    compare(task, spec, base_obs, moved_obs, actions, R, t, exact)


@pytest.mark.parametrize("task", ["Reach", "Push"])
def test_se3_batch_is_the_transformed_world(task):
    spec = gym.make(f"eqrobot/{task}-v0").unwrapped.geometry_spec
    actions = actions_away_from_the_table(2)
    rng = np.random.default_rng(7)
    R, t = random_rotation(rng), rng.uniform(-1, 1, 3)
    base_obs, base_rewards = rollout(task, actions)
    moved_obs, moved_rewards = rollout(
        task, spec.transform_action(actions, R), {"world_rotation": R, "world_translation": t}
    )
    np.testing.assert_array_equal(moved_rewards, base_rewards)
    exact = ROBOT_FIELDS if task == "Push" else [f.name for f in spec.observation]
    compare(task, spec, base_obs, moved_obs, actions, R, t, exact)


def test_so2_rotates_about_gravity_through_the_base_in_a_moved_world():
    """In a transformed world "about gravity through the base" is not the z axis through the origin:
    task rotation + world transform == world transform, then the so2 element read from the obs."""
    spec = gym.make("eqrobot/Reach-v0").unwrapped.geometry_spec
    rng = np.random.default_rng(3)
    world = {"world_rotation": random_rotation(rng), "world_translation": rng.uniform(-1, 1, 3)}
    # lift along the moved world's up (world z would drive the hand into the table: contact)
    actions = spec.transform_action(actions_away_from_the_table(3), world["world_rotation"])
    angle = -2.0
    base_obs, _ = rollout("Reach", actions, world)
    R, t = so2_element(base_obs[0]["observation"], angle)
    assert np.abs(R - rotation_about_axis(np.array([0.0, 0.0, 1.0]), angle)).max() > 0.1
    moved_obs, _ = rollout("Reach", spec.transform_action(actions, R), {**world, "task_rotation": angle})
    compare("Reach", spec, base_obs, moved_obs, actions, R, t, [f.name for f in spec.observation])


def test_drawn_so2_elements_fix_up_and_base():
    spec = gym.make("eqrobot/Push-v0").unwrapped.geometry_spec
    rng = np.random.default_rng(0)
    n = 64
    obs = rng.standard_normal((n, spec.observation.dim))
    aug = SpecAugmentation(spec, "so2", rotation_range=0.5, seed=1)
    R, t = aug.elements(obs)
    up, base = -obs[:, 0:3], obs[:, 3:6]
    np.testing.assert_allclose(np.einsum("bij,bj->bi", R, up), up, atol=1e-12)  # the axis is gravity's
    np.testing.assert_allclose(np.einsum("bij,bj->bi", R, base) + t, base, atol=1e-12)  # through the base
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-12)
    angles = np.arccos(np.clip((np.trace(R, axis1=1, axis2=2) - 1) / 2, -1, 1))
    assert angles.max() <= 0.5 + 1e-9 and angles.max() > 0.3  # the range is used, and respected
    R2, t2 = SpecAugmentation(spec, "se3", translation_range=0.25, seed=1).elements(obs)
    assert np.abs(t2).max() <= 0.25 and np.abs(t2).max() > 0.1
    assert np.abs(np.einsum("bij,bj->bi", R2, up) - up).max() > 0.5  # se3 moves gravity too


def test_call_on_torch_samples_moves_vectors_keeps_scalars_and_rewards():
    spec = gym.make("eqrobot/Push-v0").unwrapped.geometry_spec
    rng = np.random.default_rng(0)
    n = 16
    make = lambda: {  # noqa: E731
        k: torch.as_tensor(rng.standard_normal((n, part.dim)), dtype=torch.float32)
        for k, part in spec.parts().items()
        if k != "action"
    }
    actions = torch.as_tensor(rng.uniform(-1, 1, (n, 4)), dtype=torch.float32)
    actions[:, :3] *= 0.5  # inside the unit ball: rotating is all that happens to them
    samples = DictReplayBufferSamples(make(), actions, make(), torch.zeros(n, 1), torch.randn(n, 1))
    out = SpecAugmentation(spec, "so2", seed=5)(samples)
    R, t = SpecAugmentation(spec, "so2", seed=5).elements(samples.observations["observation"])
    g_obs = spec.transform_obs(samples.observations, R, t)
    for key in g_obs:
        torch.testing.assert_close(out.observations[key], g_obs[key])
    torch.testing.assert_close(
        out.next_observations["observation"],
        spec.observation.transform(samples.next_observations["observation"], R, t),
    )
    rotated = torch.einsum("bij,bj->bi", torch.as_tensor(R, dtype=torch.float32), actions[:, :3])
    torch.testing.assert_close(out.actions[:, :3], rotated)
    assert (out.actions[:, :3] - actions[:, :3]).abs().max() > 0.05
    assert torch.equal(out.actions[:, 3], actions[:, 3])  # the gripper scalar is untouched
    assert out.rewards is samples.rewards and out.dones is samples.dones
    grip = spec.observation["gripper_width"].slice
    assert torch.equal(out.observations["observation"][:, grip], samples.observations["observation"][:, grip])

    # a cube corner of an MLP's action box rotates out of the box: stored as the env executes it
    corner = samples._replace(actions=torch.tensor([[1.0, 1.0, 1.0, 1.0]]).repeat(n, 1))
    limited = SpecAugmentation(spec, "se3", seed=2)(corner).actions
    torch.testing.assert_close(torch.linalg.vector_norm(limited[:, :3], dim=1), torch.ones(n))


def test_her_buffer_augments_after_relabelling():
    """HER relabels, then the batch moves: each reward still belongs to its (moved) goals."""
    env = gym.make("eqrobot/Reach-v0")
    vec = DummyVecEnv([lambda: env])
    buffer = AugmentedHerReplayBuffer(
        500, env.observation_space, env.action_space, env=vec, augment="se3", n_sampled_goal=4
    )
    obs = vec.reset()
    rng = np.random.default_rng(0)
    for _ in range(120):
        action = rng.uniform(-1, 1, (1, 4)).astype(np.float32)
        next_obs, reward, done, info = vec.step(action)
        buffer.add(obs, next_obs, action, reward, done, info)
        obs = next_obs
    batch = buffer.sample(256)
    unwrapped = env.unwrapped
    recomputed = unwrapped.compute_reward(
        batch.next_observations["achieved_goal"].numpy(), batch.observations["desired_goal"].numpy()
    )
    np.testing.assert_array_equal(recomputed, batch.rewards.numpy().ravel())
    assert (batch.rewards == 0).any() and (batch.rewards == -1).any()  # relabelled successes are there
    up = -batch.observations["observation"][:, 0:3]
    assert (up[:, 2] < 0.99).float().mean() > 0.9  # gravity was moved: se3 applied to the batch
    env.close()


def test_fast_her_buffer_augments_the_same_batches_as_sb3s():
    """The augmented FastHerReplayBuffer (what `--augment` trains with) samples, relabels and moves
    exactly what the augmented SB3 HerReplayBuffer does under the same seeds."""
    env = gym.make("eqrobot/Push-v0")
    vec = DummyVecEnv([lambda: env])
    kw = dict(env=vec, augment="so2", n_sampled_goal=4, augment_kwargs={"seed": 3})
    sb3 = AugmentedHerReplayBuffer(300, env.observation_space, env.action_space, **kw)
    fast = AugmentedFastHerReplayBuffer(300, env.observation_space, env.action_space, **kw)
    vec.seed(0)
    obs = vec.reset()
    rng = np.random.default_rng(0)
    for step in range(260):
        action = rng.uniform(-1, 1, (1, *env.action_space.shape)).astype(np.float32)
        next_obs, reward, done, info = vec.step(action)
        for buffer in (sb3, fast):
            buffer.add(obs, next_obs, action, reward, done, info)
        obs = next_obs
        if step in (60, 259):
            batches = []
            for buffer in (sb3, fast):
                np.random.seed(step)
                batches.append(buffer.sample(64))
            want, got = batches
            for name in ("actions", "rewards", "dones"):
                torch.testing.assert_close(getattr(got, name), getattr(want, name), rtol=0, atol=0)
            for key in want.observations:
                torch.testing.assert_close(got.observations[key], want.observations[key], rtol=0, atol=0)
                torch.testing.assert_close(
                    got.next_observations[key], want.next_observations[key], rtol=0, atol=0
                )
    np.random.seed(259)
    plain = FastHerReplayBuffer.sample(fast, 64)  # the same draws, not moved
    torch.testing.assert_close(plain.rewards, got.rewards, rtol=0, atol=0)
    assert not torch.allclose(plain.observations["desired_goal"], got.observations["desired_goal"])
    env.close()


def test_buffer_classes_and_errors():
    assert augmented_buffer_class(HerReplayBuffer) is AugmentedHerReplayBuffer
    assert augmented_buffer_class(FastHerReplayBuffer) is AugmentedFastHerReplayBuffer
    assert augmented_buffer_class(DictReplayBuffer) is AugmentedDictReplayBuffer
    assert issubclass(augmented_buffer_class(ReplayBuffer), ReplayBuffer)
    with pytest.raises(TypeError, match="ReplayAugmentationMixin"):
        augmented_buffer_class(type("MyBuffer", (DictReplayBuffer,), {}))
    env = gym.make("eqrobot/Reach-v0")
    with pytest.raises(ValueError, match="so2, se3"):
        SpecAugmentation(env.unwrapped.geometry_spec, "so3")
    robot_only = ArraySpec([("ee_position", "point"), ("ee_velocity", "vector")])
    action = env.unwrapped.geometry_spec.action
    with pytest.raises(ValueError, match="static vector"):
        SpecAugmentation(GeometrySpec(robot_only, robot_only, robot_only, action), "so2")
    SpecAugmentation(GeometrySpec(robot_only, robot_only, robot_only, action), "se3")  # needs no base
    bare = gym.spaces.Dict(dict(env.observation_space.spaces))  # a copy without the spec
    with pytest.raises(ValueError, match="geometry spec"):
        AugmentedDictReplayBuffer(10, bare, env.action_space)
    buffer = AugmentedDictReplayBuffer(10, env.observation_space, env.action_space, augment="so2")
    with pytest.raises(ValueError, match="VecNormalize"):
        buffer.sample(2, env=object())


def test_flat_replay_buffer():
    """A flat Box observation laid out by the observation spec works too (spec passed explicitly)."""
    env = gym.make("eqrobot/Reach-v0")
    spec = env.unwrapped.geometry_spec
    space = env.observation_space["observation"]
    buffer = augmented_buffer_class(ReplayBuffer)(
        10, space, env.action_space, augment="se3", geometry_spec=spec, augment_kwargs={"seed": 0}
    )
    obs, _ = env.reset(seed=0)
    action = np.array([[0.5, 0.0, 0.0, 0.3]], dtype=np.float32)
    next_obs, *_ = env.step(action[0])
    buffer.add(
        obs["observation"][None], next_obs["observation"][None], action, np.zeros(1), np.zeros(1), [{}]
    )
    batch = buffer.sample(4)
    R, t = SpecAugmentation(spec, "se3", seed=0).elements(np.zeros((4, spec.observation.dim)))
    expected = spec.observation.transform(np.repeat(obs["observation"][None], 4, 0).astype(np.float64), R, t)
    np.testing.assert_allclose(batch.observations.numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(
        batch.actions.numpy(), spec.transform_action(np.repeat(action, 4, 0), R), atol=1e-6
    )


def test_train_with_augment(tmp_path):
    from eqrobot.rl.checkpoint import load_replay_buffer
    from eqrobot.rl.config import TrainConfig
    from eqrobot.rl.train import resolve_config, train
    from eqrobot.rollout.checkpoints import checkpoint_folder, load_model

    with pytest.raises(ValueError, match="off-policy"):
        resolve_config(TrainConfig(algo="ppo", augment="so2"))
    with pytest.raises(ValueError, match="unknown augment"):
        resolve_config(TrainConfig(augment="so3"))
    run = train(
        TrainConfig(
            policy="mlp",
            augment="so2",
            steps=150,
            eval_freq=0,
            out=str(tmp_path),
            run_name="run",
            progress_bar=False,
            hyperparams={"learning_starts": 60, "batch_size": 32},
        )
    )
    model = load_model(run, env=DummyVecEnv([lambda: gym.make("eqrobot/Reach-v0")]))
    assert model.replay_buffer_class is AugmentedFastHerReplayBuffer
    assert model.replay_buffer_kwargs["augment"] == "so2"
    assert load_replay_buffer(model, checkpoint_folder(run))  # the checkpointed buffer, for resume
    buffer = model.replay_buffer
    assert isinstance(buffer, AugmentedFastHerReplayBuffer) and buffer.augmentation.group == "so2"
    # the element stream is part of the buffer's state: same state + same indices -> same batch
    state = buffer.augmentation.rng.bit_generator.state
    batches = []
    for _ in range(2):
        buffer.augmentation.rng.bit_generator.state = state
        np.random.seed(0)  # SB3 draws the indices from numpy's global generator
        batches.append(buffer.sample(8).observations["desired_goal"])
    torch.testing.assert_close(batches[0], batches[1])
