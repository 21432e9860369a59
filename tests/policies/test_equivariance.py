"""Every equivariant policy: pi(g.a | g.s) = pi(a | s), actions rotate with the state, critics invariant."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import PPO, SAC, TD3

import eqrobot  # noqa: F401  (registers "EquivariantPolicy")
from eqrobot.geometry.so3 import random_rotation
from eqrobot.policies import EquivariantSAC, EquivariantTD3, SpecError

SE3_CASES = [(seed, scale) for seed, scale in [(1, 0.0), (2, 10.0), (3, 10.0)]]


def random_obs(spec, n, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return {
        "observation": torch.randn(n, spec.observation.dim, generator=g, dtype=dtype) * 0.3,
        "achieved_goal": torch.randn(n, spec.achieved_goal.dim, generator=g, dtype=dtype) * 0.3,
        "desired_goal": torch.randn(n, spec.desired_goal.dim, generator=g, dtype=dtype) * 0.3,
    }


def group_element(seed, scale, dtype=torch.float64):
    rng = np.random.default_rng(seed)
    R = torch.as_tensor(random_rotation(rng), dtype=dtype)
    t = torch.as_tensor(rng.normal(size=3) * scale, dtype=dtype)
    return R, t


def close(a, b, tol=1e-9):
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.fixture(scope="module")
def models(request):
    from conftest import ToyReachEnv

    env = ToyReachEnv()
    built = {
        "sac": SAC("EquivariantPolicy", env, seed=0),
        "td3": TD3("EquivariantPolicy", env, seed=0),
        "ppo": PPO("EquivariantPolicy", env, seed=0, n_steps=64, batch_size=32),
        "ppo_squash": PPO("EquivariantPolicy", env, seed=0, n_steps=64, policy_kwargs={"squash": True}),
    }
    return env, built


def double_policy(model):
    """A float64 copy of the model's policy (rebuilt under float64 default dtype, same weights)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        policy = type(model.policy)(**model.policy._get_constructor_parameters())
    finally:
        torch.set_default_dtype(previous)
    policy.load_state_dict(model.policy.state_dict())
    policy.set_training_mode(False)
    return policy


@pytest.mark.parametrize("seed,scale", SE3_CASES)
def test_sac_actor_and_critics(models, toy_spec, seed, scale):
    env, built = models
    policy = double_policy(built["sac"])
    obs = random_obs(toy_spec, 32, seed)
    R, t = group_element(seed, scale)
    g_obs = toy_spec.transform_obs(obs, R, t)
    act = toy_spec.action

    mean, log_std, _ = policy.actor.get_action_dist_params(obs)
    g_mean, g_log_std, _ = policy.actor.get_action_dist_params(g_obs)
    close(g_mean, act.transform(mean, R))
    close(g_log_std, log_std)
    close(policy.actor(g_obs, deterministic=True), act.transform(policy.actor(obs, deterministic=True), R))

    torch.manual_seed(seed)
    actions, log_prob = policy.actor.action_log_prob(obs)
    g_actions = act.transform(actions, R)
    inverted = policy.actor.log_prob(obs, actions)  # through the inverse squash
    close(policy.actor.log_prob(g_obs, g_actions), inverted, 1e-7)
    # the inverse agrees with the sampled pre-image wherever the squash is not saturated
    pre = policy.actor.action_dist.gaussian_actions
    ok = torch.linalg.vector_norm(pre[:, :3], dim=-1).lt(5) & pre[:, 3].abs().lt(5)
    assert ok.sum() > 5
    close(inverted[ok], log_prob[ok], 1e-6)

    # the same noise (rotated with the state) gives the rotated sample
    dist = policy.actor.action_dist
    eps = torch.randn(32, act.dim, dtype=torch.float64)
    std = dist.expand_log_std(log_std).exp()
    a = dist.squash(mean + std * eps)
    g_a = dist.squash(g_mean + std * act.transform(eps, R))
    close(g_a, act.transform(a, R))

    for critic in (policy.critic, policy.critic_target):
        for q, g_q in zip(critic(obs, actions), critic(g_obs, g_actions), strict=True):
            close(g_q, q)
    close(policy.critic.q1_forward(g_obs, g_actions), policy.critic.q1_forward(obs, actions))


@pytest.mark.parametrize("seed,scale", SE3_CASES)
def test_td3_actor_and_critics(models, toy_spec, seed, scale):
    _, built = models
    policy = double_policy(built["td3"])
    obs = random_obs(toy_spec, 32, seed)
    R, t = group_element(seed, scale)
    g_obs = toy_spec.transform_obs(obs, R, t)
    act = toy_spec.action
    for actor in (policy.actor, policy.actor_target):
        a = actor(obs)
        close(actor(g_obs), act.transform(a, R))
        assert (torch.linalg.vector_norm(a[:, :3], dim=-1) < 1).all()
    a = act.transform(torch.randn(32, act.dim, dtype=torch.float64), torch.eye(3, dtype=torch.float64))
    for q, g_q in zip(policy.critic(obs, a), policy.critic(g_obs, act.transform(a, R)), strict=True):
        close(g_q, q)


@pytest.mark.parametrize("key", ["ppo", "ppo_squash"])
@pytest.mark.parametrize("seed,scale", SE3_CASES)
def test_ppo_policy(models, toy_spec, key, seed, scale):
    _, built = models
    policy = double_policy(built[key])
    obs = random_obs(toy_spec, 32, seed)
    R, t = group_element(seed, scale)
    g_obs = toy_spec.transform_obs(obs, R, t)
    act = toy_spec.action
    torch.manual_seed(seed)
    actions, values, log_prob = policy(obs)
    g_actions = act.transform(actions, R)
    g_values, g_log_prob, g_entropy = policy.evaluate_actions(g_obs, g_actions)
    values2, log_prob2, entropy = policy.evaluate_actions(obs, actions)
    close(g_values, values)
    close(g_log_prob, log_prob2, 1e-7)
    if key == "ppo_squash":  # the inverse squash agrees with the pre-image where not saturated
        pre = policy.action_dist.gaussian_actions
        ok = torch.linalg.vector_norm(pre[:, :3], dim=-1).lt(5) & pre[:, 3].abs().lt(5)
        close(log_prob2[ok], log_prob[ok], 1e-6)
    else:
        close(log_prob2, log_prob)
    if entropy is not None:
        close(g_entropy, entropy)
    close(
        policy._predict(g_obs, deterministic=True), act.transform(policy._predict(obs, deterministic=True), R)
    )


def test_predict_float32_single_and_batched(models, toy_spec):
    env, built = models
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    batch = {
        k: np.stack([v + rng.normal(size=v.shape).astype(np.float32) * 0.1 for _ in range(5)])
        for k, v in obs.items()
    }
    R = random_rotation(rng).astype(np.float32)
    t = (rng.normal(size=3) * 10).astype(np.float32)
    g_batch = {k: v.astype(np.float32) for k, v in toy_spec.transform_obs(batch, R, t).items()}
    for key, model in built.items():
        a, _ = model.predict(batch, deterministic=True)
        assert a.shape == (5, 4)
        single, _ = model.predict({k: v[0] for k, v in batch.items()}, deterministic=True)
        assert single.shape == (4,)
        np.testing.assert_allclose(single, a[0], rtol=1e-5, atol=1e-6)
        g_a, _ = model.predict(g_batch, deterministic=True)
        np.testing.assert_allclose(g_a, toy_spec.action.transform(a, R), rtol=1e-4, atol=2e-5, err_msg=key)
        sampled, _ = model.predict(batch, deterministic=False)
        if key != "ppo":
            assert (np.linalg.norm(sampled[:, :3], axis=1) <= 1 + 1e-6).all()


def test_isotropic_exploration_algorithms(toy_env):
    for cls in (EquivariantSAC, EquivariantTD3):
        model = cls("EquivariantPolicy", toy_env, seed=0, learning_starts=10)
        model._last_obs = {k: v[None] for k, v in toy_env.reset(seed=0)[0].items()}
        action, buffer_action = model._sample_action(10, None, 1)
        assert np.linalg.norm(action[0, :3]) <= 1
        model.num_timesteps = 20
        from stable_baselines3.common.noise import NormalActionNoise

        action, _ = model._sample_action(10, NormalActionNoise(np.zeros(4), np.ones(4) * 2.0), 1)
        assert np.linalg.norm(action[0, :3]) <= 1 + 1e-6 and abs(action[0, 3]) <= 1


def test_bad_spaces_fail_clearly(toy_env, toy_spec):
    env = type(toy_env)()
    env.observation_space = spaces.Dict(dict(env.observation_space.spaces))  # a copy without the spec
    with pytest.raises(SpecError, match="geometry spec"):
        SAC("EquivariantPolicy", env)
    model = SAC("EquivariantPolicy", env, policy_kwargs={"geometry_spec": toy_spec})
    assert model.policy.geometry_spec == toy_spec
    with pytest.raises(SpecError, match="desired_goal"):
        SAC(
            "EquivariantPolicy",
            env,
            policy_kwargs={"geometry_spec": toy_spec, "obs_keys": ("observation", "goal")},
        )
    bad = type(toy_spec)(
        toy_spec.achieved_goal, toy_spec.achieved_goal, toy_spec.desired_goal, toy_spec.action
    )
    with pytest.raises(SpecError, match="observation"):
        PPO("EquivariantPolicy", env, policy_kwargs={"geometry_spec": bad})
    with pytest.raises(ValueError, match="unknown net"):
        TD3("EquivariantPolicy", toy_env, policy_kwargs={"net": "transformer"})


def test_field_scales_keep_equivariance(toy_env, toy_spec):
    scales = {"point": 5.0, "ee_velocity": 2.0, "scalar": 10.0}
    model = SAC("EquivariantPolicy", toy_env, policy_kwargs={"features_extractor_kwargs": {"scales": scales}})
    policy = double_policy(model)
    obs = random_obs(toy_spec, 16, 7)
    R, t = group_element(7, 10.0)
    g_obs = toy_spec.transform_obs(obs, R, t)
    a = policy.actor(obs, deterministic=True)
    close(policy.actor(g_obs, deterministic=True), toy_spec.action.transform(a, R))
    for q, g_q in zip(
        policy.critic(obs, a), policy.critic(g_obs, toy_spec.action.transform(a, R)), strict=True
    ):
        close(g_q, q)
    feats = policy.actor.features_extractor
    assert feats.factors[feats.in_spec["observation/ee_velocity"].slice].tolist() == [2.0] * 3
    assert feats.factors[feats.in_spec["desired_goal/object_position"].slice].tolist() == [5.0] * 3
    with pytest.raises(ValueError, match="same scale"):
        SAC(
            "EquivariantPolicy",
            toy_env,
            policy_kwargs={"features_extractor_kwargs": {"scales": {"ee_position": 2.0}}},
        )
