"""Equivariant policies refuse SB3's per-component VecNormalize and train behind EquivariantVecNormalize."""

import pytest
import torch
from sb3_contrib import TQC
from stable_baselines3 import PPO, SAC, TD3, HerReplayBuffer
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import eqrobot  # noqa: F401  (registers the "EquivariantPolicy" alias)
from eqrobot.envs.normalization import EquivariantVecNormalize
from eqrobot.policies.normalization import VecNormalizeError

SMALL = {"net_arch": [32, 32]}


@pytest.mark.parametrize("algo", [SAC, TD3, PPO, TQC])
def test_vecnormalize_is_refused_with_the_fix_named(algo, toy_env):
    env = VecNormalize(DummyVecEnv([lambda: toy_env]))
    with pytest.raises(VecNormalizeError, match="EquivariantVecNormalize.*normalize: False"):
        algo("EquivariantPolicy", env, policy_kwargs=dict(SMALL))


def test_vecnormalize_without_observation_normalisation_is_fine(toy_env):
    env = VecNormalize(DummyVecEnv([lambda: toy_env]), norm_obs=False)
    SAC("EquivariantPolicy", env, policy_kwargs=dict(SMALL))


def test_sac_her_trains_behind_equivariant_normaliser_and_load_refuses_vecnormalize(toy_env, tmp_path):
    env = EquivariantVecNormalize(DummyVecEnv([lambda: toy_env]), gamma=0.95)
    model = SAC(
        "EquivariantPolicy",
        env,
        seed=0,
        learning_starts=100,
        batch_size=64,
        buffer_size=2000,
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4},
        policy_kwargs=dict(SMALL),
    )
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(300)
    assert model.get_vec_normalize_env() is env and env.obs_rms.groups["points"].count > 300
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())
    assert any((p - b).abs().max() > 0 for p, b in zip(model.policy.parameters(), before, strict=True))
    model.save(tmp_path / "model.zip")
    with pytest.raises(VecNormalizeError):
        SAC.load(tmp_path / "model.zip", env=VecNormalize(DummyVecEnv([type(toy_env)])))


def test_normalised_observations_keep_the_policy_equivariant(toy_env, toy_spec):
    """The point of the wrapper: policy(normalise(g . obs)) == R policy(normalise(obs)), float64."""
    import numpy as np
    from scipy.spatial.transform import Rotation

    env = EquivariantVecNormalize(DummyVecEnv([lambda: toy_env]))
    rng = np.random.default_rng(0)
    env.reset()
    for _ in range(30):  # statistics far from the identity
        env.step(rng.uniform(-1, 1, (1, toy_spec.action.dim)).astype(np.float32))
    env.training = False
    actor = SAC("EquivariantPolicy", env, policy_kwargs=dict(SMALL)).policy.actor.double()
    parts = toy_spec.parts()
    obs = {
        k: rng.normal(size=(8, parts[k].dim)) + 0.3 for k in ("observation", "achieved_goal", "desired_goal")
    }

    def act(o):
        normalised = env.normalize_obs(o)
        with torch.no_grad():
            return actor({k: torch.as_tensor(v) for k, v in normalised.items()}, deterministic=True).numpy()

    for seed in range(3):
        R = Rotation.random(random_state=seed).as_matrix()
        t = rng.uniform(-1, 1, 3)
        moved = {k: parts[k].transform(v, R, t) for k, v in obs.items()}
        np.testing.assert_allclose(act(moved), toy_spec.transform_action(act(obs), R), atol=1e-10)
