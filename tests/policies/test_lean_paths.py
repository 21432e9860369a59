"""The lean acting and update paths give SB3's results bit for bit: ``predict`` on Dict observations
(lean_acting, for eqrobot's and stock policies), the cached parameter look-up, and the SAC update's
one feature extraction per batch and inference-mode target pass (sac_update)."""

import copy

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO, TD3, HerReplayBuffer

import eqrobot  # noqa: F401
from eqrobot.policies import EquivariantSAC
from eqrobot.policies.lean_acting import LeanPredict, dict_obs_to_tensor, first_parameter


def _predict_both(policy, obs, deterministic):
    """(lean, SB3) predictions of ``obs`` from the same random state."""
    out = []
    for fast in (True, False):
        policy.fast_predict = fast
        torch.manual_seed(7)
        out.append(policy.predict(obs, deterministic=deterministic)[0])
    policy.fast_predict = True
    return out


@pytest.mark.parametrize("algo", [EquivariantSAC, TD3, PPO])
def test_lean_predict_gives_sb3s_actions(algo, toy_env):
    model = algo("EquivariantPolicy", toy_env, seed=0, policy_kwargs={"net_arch": [16, 16]})
    obs, _ = toy_env.reset(seed=3)
    batch = {k: np.stack([v, 0.5 * v, -v]) for k, v in obs.items()}
    as_float64 = {k: v.astype(np.float64) for k, v in obs.items()}
    for o in (obs, batch, as_float64):
        for deterministic in (True, False):
            lean, sb3 = _predict_both(model.policy, o, deterministic)
            assert lean.shape == sb3.shape and lean.dtype == sb3.dtype
            assert np.array_equal(lean, sb3), (algo.__name__, deterministic)
    if algo is not TD3:  # a stochastic policy: its sampled actions came from the noise
        lean, sb3 = _predict_both(model.policy, obs, False)
        assert not np.array_equal(lean, _predict_both(model.policy, obs, True)[0]), "sampling drew nothing"


def test_stock_policy_acts_through_the_lean_predict_with_sb3s_actions(toy_env):
    model = EquivariantSAC("MultiInputPolicy", toy_env, seed=0, policy_kwargs={"net_arch": [16, 16]})
    assert isinstance(model.policy.predict, LeanPredict)
    obs, _ = toy_env.reset(seed=3)
    batch = {k: np.stack([v, 0.5 * v]) for k, v in obs.items()}
    for o in (obs, batch):
        for deterministic in (True, False):
            lean, sb3 = _predict_both(model.policy, o, deterministic)
            assert lean.shape == sb3.shape and np.array_equal(lean, sb3)
    lean, _ = _predict_both(model.policy, obs, False)
    assert not np.array_equal(lean, _predict_both(model.policy, obs, True)[0]), "sampling drew nothing"


def test_lean_predict_leaves_other_inputs_to_sb3(toy_env):
    model = EquivariantSAC("EquivariantPolicy", toy_env, seed=0, policy_kwargs={"net_arch": [16, 16]})
    obs, _ = toy_env.reset(seed=3)
    policy = model.policy
    assert dict_obs_to_tensor(policy, obs) is not None
    wrong_shape = {**obs, "observation": np.zeros((2, 3, obs["observation"].shape[0]), np.float32)}
    as_lists = {k: v.tolist() for k, v in obs.items()}
    missing_key = {k: v for k, v in obs.items() if k != "desired_goal"}
    for other in (wrong_shape, as_lists, missing_key, obs["observation"]):
        assert dict_obs_to_tensor(policy, other) is None
    with pytest.raises(ValueError, match="Unexpected observation shape"):  # SB3's own message
        policy.predict(wrong_shape)
    lean, sb3 = _predict_both(policy, as_lists, True)  # lists: SB3's path, which converts them
    assert np.array_equal(lean, policy.predict(obs, deterministic=True)[0])


def test_cached_first_parameter_follows_dtype_and_replacement(toy_env):
    model = EquivariantSAC("EquivariantPolicy", toy_env, seed=0, policy_kwargs={"net_arch": [16, 16]})
    policy = model.policy
    for module in (policy, policy.actor, policy.critic):
        assert first_parameter(module) is next(module.parameters())
        assert module.device == next(module.parameters()).device
    policy.double()
    assert first_parameter(policy.actor).dtype == torch.float64
    owner, name = policy.actor.__dict__["_first_parameter_at"]
    owner._parameters[name] = torch.nn.Parameter(owner._parameters[name].detach().float())
    assert first_parameter(policy.actor) is next(policy.actor.parameters())
    obs, _ = toy_env.reset(seed=3)
    policy.float()
    assert policy.predict(obs)[0].dtype == np.float32
    clone = copy.deepcopy(policy)  # the cached place follows the copy, not the original
    assert first_parameter(clone.actor) is next(clone.actor.parameters())
    assert first_parameter(clone.actor) is not first_parameter(policy.actor)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shared_features_and_inference_mode_target_update_is_bit_identical(dtype, toy_env):
    def fresh():
        kwargs = dict(learning_starts=100, batch_size=64, replay_buffer_class=HerReplayBuffer)
        policy_kwargs = {"net_arch": [16, 16]}
        model = EquivariantSAC("EquivariantPolicy", toy_env, seed=0, policy_kwargs=policy_kwargs, **kwargs)
        model.learn(100)  # fills the buffer, no update yet
        model.policy.to(dtype)
        return model

    shared, separate = fresh(), fresh()
    separate.share_obs_features = False
    separate.target_inference_mode = False  # SB3's no_grad target pass
    assert shared._can_share_features()
    before = [p.detach().clone() for p in shared.policy.parameters()]
    for model in (shared, separate):
        torch.manual_seed(1)
        np.random.seed(1)  # HER's goal sampling
        model.train(gradient_steps=4, batch_size=64)
    for a, b in zip(shared.policy.state_dict().values(), separate.policy.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    if shared.log_ent_coef is not None:
        assert torch.equal(shared.log_ent_coef, separate.log_ent_coef)
    moved = [(p - p0).abs().max() for p, p0 in zip(shared.policy.parameters(), before, strict=True)]
    assert max(moved) > 1e-4, "4 updates moved nothing: the comparison would be vacuous"


def test_stock_policy_update_does_not_share_features(toy_env):
    model = EquivariantSAC("MultiInputPolicy", toy_env, seed=0, policy_kwargs={"net_arch": [16, 16]})
    assert not model._can_share_features()


@pytest.mark.parametrize("n", [256, 7])
def test_ent_coef_grad_of_a_float64_policy_is_autograds(n):
    """SAC keeps ``log_ent_coef`` float32 whatever the policy's dtype; a float64 policy's target makes
    the loss float64, and autograd casts the gradient back to float32."""
    from eqrobot.policies.fast_optim import ent_coef_grad

    log_ent_coef = torch.tensor([-0.3], requires_grad=True)
    target = torch.randn(n, 1, dtype=torch.float64)
    (expected,) = torch.autograd.grad(-(log_ent_coef * target).mean(), log_ent_coef)
    got = ent_coef_grad(log_ent_coef.detach(), target)
    assert got.dtype == torch.float32 and torch.equal(got, expected)
