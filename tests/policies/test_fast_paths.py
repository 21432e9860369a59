"""The training speed-ups of the policies keep SB3's behaviour: grouped twin critics, the cheap
set_training_mode, fused Adam from the presets."""

import numpy as np
import pytest
import torch
from stable_baselines3 import SAC

import eqrobot  # noqa: F401
from eqrobot.policies import EquivariantSAC, EquivariantTD3
from eqrobot.rl.presets import get_preset


@pytest.mark.parametrize("algo", [EquivariantSAC, EquivariantTD3])
def test_twin_critics_are_grouped_and_match_one_by_one(algo, toy_env):
    model = algo("EquivariantPolicy", toy_env, seed=0, policy_kwargs={"net_arch": [32, 32]})
    model.policy.double()
    for critic in (model.critic, model.critic_target):
        assert critic.grouped, "toy obs holds a frame: its critics have nothing learned before the MLP"
    obs, _ = toy_env.reset(seed=1)
    obs_t, _ = model.policy.obs_to_tensor({k: np.stack([v, v * 0.5]) for k, v in obs.items()})
    actions = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    grouped = model.critic(obs_t, actions)
    model.critic.grouped = False
    separate = model.critic(obs_t, actions)
    assert len(grouped) == len(separate) == 2
    for a, b in zip(grouped, separate, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    (ga,) = torch.autograd.grad(sum(q.sum() for q in grouped), actions)
    (gb,) = torch.autograd.grad(sum(q.sum() for q in separate), actions)
    torch.testing.assert_close(ga, gb, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(model.critic.q1_forward(obs_t, actions), separate[0])


def test_set_training_mode_sets_every_module(toy_env):
    model = SAC("EquivariantPolicy", toy_env, seed=0, policy_kwargs={"net_arch": [32, 32]})
    for mode in (False, True, False):
        model.policy.set_training_mode(mode)
        assert all(m.training is mode for m in model.policy.modules())
    model.policy.train()  # plain torch still works alongside
    assert all(m.training for m in model.policy.modules())


@pytest.mark.parametrize("policy", ["equivariant", "mlp"])
def test_presets_use_fused_adam(policy, toy_env):
    kwargs = get_preset("eqrobot/Push-v0", "sac", policy).policy_kwargs
    assert kwargs["optimizer_kwargs"] == {"fused": True}
    model = SAC("EquivariantPolicy", toy_env, seed=0, policy_kwargs={"optimizer_kwargs": {"fused": True}})
    assert model.actor.optimizer.defaults["fused"] and model.critic.optimizer.defaults["fused"]
    model.learn(150)  # learning_starts 100: 50 updates with the fused kernel
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())


def test_squash_slices_match_the_general_gathers():
    from eqrobot.geometry.spec import ArraySpec
    from eqrobot.policies.distributions import RadialSquashedGaussianDistribution

    spec = ArraySpec([("d", "vector"), ("w", "pseudovector"), ("grip", "scalar", 2)])
    fast, general = RadialSquashedGaussianDistribution(spec), RadialSquashedGaussianDistribution(spec)
    general._n_vec_prefix = None
    assert fast._n_vec_prefix == 2
    u = torch.randn(6, spec.dim, dtype=torch.float64) * 2
    assert torch.equal(fast.squash(u), general.squash(u))
    assert torch.equal(fast.log_det_jacobian(u), general.log_det_jacobian(u))
    scalar_first = ArraySpec([("grip", "scalar", 1), ("d", "vector")])
    assert RadialSquashedGaussianDistribution(scalar_first)._n_vec_prefix is None


@pytest.mark.parametrize("policy", ["EquivariantPolicy", "MultiInputPolicy"])
def test_fewer_ops_sac_update_matches_sb3_train(policy, toy_env):
    from stable_baselines3 import HerReplayBuffer

    def fresh():
        kwargs = dict(learning_starts=100, batch_size=64, replay_buffer_class=HerReplayBuffer)
        model = EquivariantSAC(policy, toy_env, seed=0, policy_kwargs={"net_arch": [16, 16]}, **kwargs)
        model.learn(100)  # fills the buffer, no update yet
        return model

    a, b = fresh(), fresh()
    before = [p.detach().clone() for p in a.policy.parameters()]
    b.fewer_ops_update = False  # SB3's own SAC.train
    for model in (a, b):
        torch.manual_seed(1)
        np.random.seed(1)  # HER's goal sampling
        model.train(gradient_steps=5, batch_size=64)
    assert a._n_updates == b._n_updates == 5
    for pa, pb in zip(a.policy.state_dict().values(), b.policy.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.log_ent_coef, b.log_ent_coef)
    moved = [(pa - p0).abs().max() for pa, p0 in zip(a.policy.parameters(), before, strict=True)]
    assert max(moved) > 1e-4, "5 updates moved nothing: the comparison would be vacuous"


def test_stock_mlp_policy_gets_the_cheap_training_mode_with_the_same_flags():
    import gymnasium as gym
    from stable_baselines3 import HerReplayBuffer

    from eqrobot.policies.offpolicy import CachedTrainingMode
    from eqrobot.policies.sac import EquivariantSAC

    env = gym.make("eqrobot/Reach-v0")
    model = EquivariantSAC("MultiInputPolicy", env, replay_buffer_class=HerReplayBuffer, learning_starts=10)
    assert isinstance(model.policy.set_training_mode, CachedTrainingMode)
    for mode in (True, False, True):
        model.policy.set_training_mode(mode)
        assert all(m.training is mode for m in model.policy.modules())
    env.close()
