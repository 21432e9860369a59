"""Equivariant TQC: exactly equivariant actor, invariant quantile critics, training, save/load, aliases."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import TQC
from stable_baselines3 import HerReplayBuffer

import eqrobot  # noqa: F401  (registers "EquivariantPolicy" and the env ids)
from eqrobot.policies import (
    EquivariantSACActor,
    EquivariantTQC,
    EquivariantTQCPolicy,
    InvariantQuantileCritic,
)
from eqrobot.testing import random_group_element

N_QUANTILES = 7


def random_obs(spec, n, rng):
    return {
        key: torch.as_tensor(rng.standard_normal((n, part.dim)) * 0.3)
        for key, part in spec.parts().items()
        if key != "action"
    }


@pytest.fixture(scope="module")
def double_policy():
    """A float64 TQC policy (3 critics x 7 quantiles) on the toy env, weights moved off their init."""
    from conftest import ToyReachEnv

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model = TQC(
            "EquivariantPolicy",
            ToyReachEnv(),
            seed=0,
            policy_kwargs={"net_arch": [32, 32], "n_quantiles": N_QUANTILES, "n_critics": 3},
        )
    finally:
        torch.set_default_dtype(previous)
    policy = model.policy
    with torch.no_grad():  # a trained-looking critic: the init's zero last layers would hide errors
        for p in policy.parameters():
            p.add_(0.1 * torch.randn_like(p))
    policy.set_training_mode(False)
    return policy


@pytest.mark.parametrize("group,seed", [("so3", 1), ("se3", 2), ("se3", 3), ("so2", 4)])
def test_actor_equivariant_and_quantiles_invariant(double_policy, toy_spec, group, seed):
    policy = double_policy
    rng = np.random.default_rng(seed)
    obs = random_obs(toy_spec, 32, rng)
    R, t = random_group_element(group, rng)
    R, t = torch.as_tensor(R), torch.as_tensor(t)
    g_obs = toy_spec.transform_obs(obs, R, t)
    act = toy_spec.action

    assert isinstance(policy.actor, EquivariantSACActor)
    mean, log_std, _ = policy.actor.get_action_dist_params(obs)
    g_mean, g_log_std, _ = policy.actor.get_action_dist_params(g_obs)
    assert mean.dtype == torch.float64 and mean[:, :3].abs().max() > 1e-2  # not trivially zero
    torch.testing.assert_close(g_mean, act.transform(mean, R), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(g_log_std, log_std, rtol=1e-9, atol=1e-9)
    deterministic = policy.actor(obs, deterministic=True)
    torch.testing.assert_close(
        policy.actor(g_obs, deterministic=True), act.transform(deterministic, R), rtol=1e-9, atol=1e-9
    )
    assert (torch.linalg.vector_norm(deterministic[:, :3], dim=-1) <= 1 + 1e-12).all()

    torch.manual_seed(seed)
    actions, _ = policy.actor.action_log_prob(obs)
    g_actions = act.transform(actions, R)
    torch.testing.assert_close(
        policy.actor.log_prob(g_obs, g_actions), policy.actor.log_prob(obs, actions), rtol=1e-7, atol=1e-7
    )

    for critic in (policy.critic, policy.critic_target):
        assert isinstance(critic, InvariantQuantileCritic)
        quantiles = critic(obs, actions)
        assert quantiles.shape == (32, 3, N_QUANTILES)
        assert critic.quantiles_total == 3 * N_QUANTILES
        assert quantiles.std() > 1e-3  # the quantile outputs differ: a real test of invariance
        torch.testing.assert_close(critic(g_obs, g_actions), quantiles, rtol=1e-9, atol=1e-9)
    # it is the *pair* that is invariant: the rotated action in the unrotated state scores differently
    assert not torch.allclose(policy.critic(obs, g_actions), policy.critic(obs, actions), atol=1e-6)


def test_alias_and_class(toy_env):
    model = TQC("EquivariantPolicy", toy_env, seed=0, policy_kwargs={"net_arch": [16, 16]})
    assert isinstance(model.policy, EquivariantTQCPolicy)
    assert isinstance(EquivariantTQC("EquivariantPolicy", toy_env).policy, EquivariantTQCPolicy)
    with pytest.raises(NotImplementedError, match="quantile"):
        model.critic.q1_forward(*_zero_batch(toy_env))


def test_isotropic_exploration(toy_env):
    """Warm-up actions in the unit ball, noise limited radially (IsotropicExplorationMixin)."""
    from stable_baselines3.common.noise import NormalActionNoise

    model = EquivariantTQC("EquivariantPolicy", toy_env, seed=0, learning_starts=10)
    model._last_obs = {k: v[None] for k, v in toy_env.reset(seed=0)[0].items()}
    warmup = np.concatenate([model._sample_action(10, None, 1)[0] for _ in range(200)])
    assert np.linalg.norm(warmup[:, :3], axis=1).max() <= 1 + 1e-6
    assert np.abs(warmup[:, :3]).max(axis=0).min() > 0.8  # the whole ball, not a shrunken cube
    model.num_timesteps = 20
    noisy, _ = model._sample_action(10, NormalActionNoise(np.zeros(4), np.full(4, 5.0)), 1)
    assert np.linalg.norm(noisy[0, :3]) <= 1 + 1e-6 and abs(noisy[0, 3]) <= 1


def _zero_batch(env):
    obs = {k: torch.zeros(1, s.shape[0]) for k, s in env.observation_space.spaces.items()}
    return obs, torch.zeros(1, env.action_space.shape[0])


@pytest.mark.parametrize("first", ["eqrobot", "sb3_contrib"])
def test_alias_in_a_fresh_interpreter(first):
    """The alias appears whichever of eqrobot and sb3-contrib is imported first."""
    imports = ["import eqrobot", "from sb3_contrib import TQC"]
    if first == "sb3_contrib":
        imports.reverse()
    code = "; ".join(
        imports
        + [
            "from eqrobot.policies.tqc import EquivariantTQCPolicy",
            "assert TQC.policy_aliases['EquivariantPolicy'] is EquivariantTQCPolicy",
            "from stable_baselines3 import SAC",
            "assert 'EquivariantPolicy' in SAC.policy_aliases",
        ]
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("policy", ["EquivariantPolicy", "MultiInputPolicy"])
def test_tqc_her_trains_on_reach_and_round_trips(policy, tmp_path):
    env = gym.make("eqrobot/Reach-v0")
    model = EquivariantTQC(
        policy,
        env,
        seed=0,
        learning_starts=100,
        batch_size=64,
        buffer_size=2000,
        replay_buffer_class=HerReplayBuffer,
        replay_buffer_kwargs={"n_sampled_goal": 4},
        policy_kwargs={"net_arch": [32, 32], "n_quantiles": 5},
    )
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(300)
    assert model.num_timesteps == 300 and model._n_updates > 0
    assert any((p - b).abs().max() > 0 for p, b in zip(model.policy.parameters(), before, strict=True))
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())

    path = tmp_path / "tqc.zip"
    model.save(path)
    obs, _ = env.reset(seed=5)
    expected, _ = model.predict(obs, deterministic=True)
    loaded = TQC.load(path, env=env)  # plain sb3-contrib class
    assert type(loaded.policy) is type(model.policy)
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], expected, rtol=1e-6, atol=1e-7)
    if policy == "EquivariantPolicy":
        assert loaded.policy.geometry_spec == model.policy.geometry_spec
        assert loaded.critic.n_quantiles == 5
    env.close()


@pytest.mark.parametrize("policy", ["equivariant", "mlp"])
def test_eqrobot_train_algo_tqc(policy, tmp_path):
    from eqrobot.cli import main
    from eqrobot.rollout.checkpoints import load_model

    argv = ["train", "--algo", "tqc", "--policy", policy, "--steps", "150", "--eval-freq", "0"]
    argv += ["--out", str(tmp_path), "--run-name", "run", "--no-progress", "--hp", "learning_starts=60"]
    assert main(argv) == 0
    model = load_model(tmp_path / "run", env_id="eqrobot/Reach-v0")
    assert isinstance(model, EquivariantTQC) and model.num_timesteps == 150
    assert isinstance(model.policy, EquivariantTQCPolicy) == (policy == "equivariant")
    assert model.top_quantiles_to_drop_per_net == 2


@pytest.mark.slow
def test_equivariant_tqc_her_solves_reach(tmp_path):
    """TQC with the Reach preset (SAC's settings) reaches >= 90% success (measured: 100% from 1,000 steps)."""
    from eqrobot.rl.config import TrainConfig
    from eqrobot.rl.train import train
    from eqrobot.rollout.evaluation import evaluate

    config = TrainConfig(algo="tqc", out=str(tmp_path), run_name="reach", progress_bar=False)
    res = evaluate(train(config), "eqrobot/Reach-v0", episodes=50, seed=123)
    assert res["success_rate"] >= 0.9, res
