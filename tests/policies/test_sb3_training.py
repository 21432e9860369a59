"""A few hundred SB3 training steps per algorithm, and save/load round trips with plain SB3."""

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, SAC, TD3, HerReplayBuffer

import eqrobot  # noqa: F401
from eqrobot.policies import (
    EquivariantActorCriticPolicy,
    EquivariantSAC,
    EquivariantSACPolicy,
    EquivariantTD3,
    EquivariantTD3Policy,
)

SMALL = {"net_arch": [32, 32]}  # SB3 mutates policy_kwargs: always pass a copy
OFF = dict(learning_starts=100, batch_size=64, buffer_size=2000)
CASES = {
    "sac_her": (
        SAC,
        EquivariantSACPolicy,
        dict(OFF, replay_buffer_class=HerReplayBuffer, replay_buffer_kwargs={"n_sampled_goal": 4}),
    ),
    "sac": (EquivariantSAC, EquivariantSACPolicy, OFF),
    "td3": (EquivariantTD3, EquivariantTD3Policy, dict(OFF, train_freq=2, gradient_steps=1)),
    "ppo": (PPO, EquivariantActorCriticPolicy, dict(n_steps=100, batch_size=50, n_epochs=2)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_train_save_load(name, toy_env, tmp_path):
    algo, policy_cls, kwargs = CASES[name]
    model = algo("EquivariantPolicy", toy_env, seed=0, policy_kwargs=dict(SMALL), **kwargs)
    assert isinstance(model.policy, policy_cls)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(300)
    assert model.num_timesteps == 300
    assert any((p - b).abs().max() > 0 for p, b in zip(model.policy.parameters(), before, strict=True)), (
        "no parameter moved"
    )
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())

    path = tmp_path / f"{name}.zip"
    model.save(path)
    obs, _ = toy_env.reset(seed=3)
    expected, _ = model.predict(obs, deterministic=True)
    base = {"sac_her": SAC, "sac": SAC, "td3": TD3, "ppo": PPO}[name]
    loaded = base.load(path, env=toy_env if name == "sac_her" else None)  # plain SB3 class
    assert isinstance(loaded.policy, policy_cls)
    np.testing.assert_allclose(loaded.predict(obs, deterministic=True)[0], expected, rtol=1e-6, atol=1e-7)
    assert loaded.policy.geometry_spec == model.policy.geometry_spec


def test_alias_also_on_subclasses(toy_env):
    assert isinstance(EquivariantTD3("EquivariantPolicy", toy_env).policy, EquivariantTD3Policy)
    assert isinstance(PPO("EquivariantPolicy", toy_env, n_steps=64).policy, EquivariantActorCriticPolicy)
