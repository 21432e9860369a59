import numpy as np
import pytest
import torch

from eqrobot.dynamics.models import make_model
from eqrobot.dynamics.mpc import GoalCost, MPPIPlanner, observation_frame
from eqrobot.dynamics.toy import ToyPushModel, toy_reset
from eqrobot.dynamics.training import fit, rollout_errors, rollout_loss
from eqrobot.geometry.so3 import random_rotation

SMALL = dict(hidden=32, vector_channels=8)


def _val_loss(model, data, h=3):
    from eqrobot.dynamics.training import _Windows

    w = _Windows(data, h, torch.float32)
    with torch.no_grad():
        return rollout_loss(model, *w.batch(torch.arange(len(w)), h)).item()


def test_fit_reduces_the_rollout_loss(push_data):
    train, val = push_data.split(0.8, seed=0)
    torch.manual_seed(0)
    model = make_model(push_data.spec, data=train, **SMALL)
    before = _val_loss(model, val)
    res = fit(model, train, val_data=val, horizon=3, steps=120, batch_size=128, lr=3e-3, eval_every=40)
    after = _val_loss(model, val)
    assert after < 0.7 * before, (before, after, res.history)
    assert res.steps == 120 and res.horizon == 3 and res.history[-1]["horizon"] == 3
    errs = rollout_errors(model, val, horizons=(1, 3))
    assert errs[1]["ee_pos_mm"] < errs[1]["ee_pos_mm_static"]


def _planner(model, spec, seed=3, **kw):
    kw = {"horizon": 6, "n_samples": 64, "iterations": 2, "dtype": torch.float64, "seed": seed} | kw
    return MPPIPlanner(model, spec, **kw)


def _one(obs):
    return {k: v[0] for k, v in obs.items()}


@pytest.mark.parametrize("which", ["toy", "learned"])
def test_mpc_action_is_equivariant(which, push_spec, push_data):
    if which == "toy":
        model = ToyPushModel(push_spec)
    else:
        torch.manual_seed(0)
        model = make_model(push_spec, data=push_data, **SMALL).double()
    rng = np.random.default_rng(0)
    obs = _one(toy_reset(push_spec, rng))
    R, t = random_rotation(rng), rng.normal(size=3) * 10
    moved = push_spec.transform_obs(obs, R, t)
    p1, p2 = _planner(model, push_spec), _planner(model, push_spec)
    for _ in range(3):  # includes warm-started steps
        a1, _ = p1.predict(obs)
        a2, _ = p2.predict(moved)
        np.testing.assert_allclose(push_spec.transform_action(a1.astype(np.float64), R), a2, atol=2e-6)
        assert np.linalg.norm(a1[:3]) <= 1 + 1e-6
        x = model.step(
            torch.as_tensor(obs["observation"])[None], torch.as_tensor(a1, dtype=torch.float64)[None]
        )
        obs = dict(obs, observation=x[0].detach().numpy())
        moved = push_spec.transform_obs(obs, R, t)


def test_observation_frame_is_equivariant(push_spec, rng):
    obs = _one(toy_reset(push_spec, rng))
    F = observation_frame(push_spec, obs["observation"], obs["desired_goal"])
    np.testing.assert_allclose(F.T @ F, np.eye(3), atol=1e-12)
    assert np.linalg.det(F) > 0
    R = random_rotation(rng)
    moved = push_spec.transform_obs(obs, R, rng.normal(size=3))
    np.testing.assert_allclose(
        observation_frame(push_spec, moved["observation"], moved["desired_goal"]), R @ F, atol=1e-10
    )


def test_mpc_pushes_the_toy_object_to_its_goal(push_spec):
    model = ToyPushModel(push_spec)
    cost = GoalCost(push_spec)
    rng = np.random.default_rng(1)
    final = []
    for ep in range(3):
        obs = _one(toy_reset(push_spec, rng))
        planner = _planner(model, push_spec, seed=ep, horizon=8, n_samples=128)
        start = cost(torch.as_tensor(obs["observation"]), torch.as_tensor(obs["desired_goal"])).item()
        for _ in range(30):
            a, _ = planner.predict(obs)
            x = model.step(
                torch.as_tensor(obs["observation"])[None], torch.as_tensor(a, dtype=torch.float64)[None]
            )
            obs = dict(obs, observation=x[0].numpy())
        sl = push_spec.observation["object_position"].slice
        final.append(np.linalg.norm(obs["observation"][sl] - obs["desired_goal"]))
        assert start > 0.05
    assert max(final) < 0.02, final
    assert planner.last_plan_time > 0
