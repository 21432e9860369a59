"""Equivariant action distributions: exact densities, rotation invariance, stable squash."""

import numpy as np
import pytest
import torch

from eqrobot.geometry.so3 import random_rotation
from eqrobot.geometry.spec import ArraySpec
from eqrobot.policies.distributions import (
    IsotropicGaussianDistribution,
    RadialSquashedGaussianDistribution,
    limit_action,
    std_layout,
)

SPEC = ArraySpec([("ee_displacement", "vector"), ("gripper", "scalar", 2), ("twist", "pseudovector")])


def rot(seed):
    return torch.as_tensor(random_rotation(np.random.default_rng(seed)), dtype=torch.float64)


def test_std_layout():
    names, index = std_layout(SPEC)
    assert names == ["ee_displacement", "gripper[0]", "gripper[1]", "twist"]
    assert index.tolist() == [0, 0, 0, 1, 2, 3, 3, 3]
    with pytest.raises(ValueError, match="point"):
        std_layout(ArraySpec([("target", "point")]))
    with pytest.raises(ValueError, match="empty"):
        std_layout(ArraySpec([]))


@pytest.mark.parametrize("cls", [IsotropicGaussianDistribution, RadialSquashedGaussianDistribution])
def test_log_prob_rotation_invariant(cls):
    torch.manual_seed(0)
    d = cls(SPEC)
    mean, log_std = (
        torch.randn(64, SPEC.dim, dtype=torch.float64),
        0.3 * torch.randn(64, 4, dtype=torch.float64),
    )
    actions, lp = d.log_prob_from_params(mean, log_std)
    R = rot(1)
    mean_r, actions_r = SPEC.transform(mean, R), SPEC.transform(actions, R)
    lp_r = d.proba_distribution(mean_r, log_std).log_prob(actions_r)
    torch.testing.assert_close(lp_r, lp, rtol=1e-9, atol=1e-9)
    # the same noise, rotated, gives the rotated action (the reparametrised sampler is equivariant)
    eps = torch.randn(64, SPEC.dim, dtype=torch.float64)
    std = d.expand_log_std(log_std).exp()
    squash = d.squash if cls is RadialSquashedGaussianDistribution else (lambda u: u)
    a = squash(mean + std * eps)
    a_r = squash(mean_r + std * SPEC.transform(eps, R))
    torch.testing.assert_close(a_r, SPEC.transform(a, R), rtol=1e-9, atol=1e-12)


def test_squashed_log_prob_matches_jacobian_and_inverse():
    torch.set_default_dtype(torch.float64)
    try:
        d = RadialSquashedGaussianDistribution(SPEC)
        for u in [
            torch.randn(SPEC.dim) * 0.8,
            torch.tensor([1e-6, -2e-6, 0.0, 0.1, -0.2, 1e-7, 0.0, 0.0]),
            torch.tensor([2.5, 0.1, -1.0, 0.3, 1.7, -0.4, 2.0, 0.5]),
        ]:
            J = torch.autograd.functional.jacobian(d.squash, u)
            assert abs(torch.logdet(J).item() - d.log_det_jacobian(u).item()) < 1e-9
            torch.testing.assert_close(d.unsquash(d.squash(u)), u, rtol=1e-7, atol=1e-9)
        # the density integrates to one: Monte Carlo E_q[p/q] with q = the Gaussian proposal is 1
        # (equivalently: log p(a) from the inverse equals log p from the sampled pre-image)
        mean, log_std = torch.randn(1000, SPEC.dim) * 0.5, torch.full((4,), -0.5)
        a, lp = d.log_prob_from_params(mean, log_std)
        torch.testing.assert_close(d.log_prob(a), lp, rtol=1e-6, atol=1e-6)
        assert d.entropy() is None
    finally:
        torch.set_default_dtype(torch.float32)


def test_squash_stable_float32():
    d = RadialSquashedGaussianDistribution(SPEC)
    u = torch.tensor(
        [[0.0, 0.0, 0.0, 0.0, 30.0, 1e-8, 0.0, 0.0], [40.0, -40.0, 10.0, -25.0, 0.1, 0, 0, 1e-3]],
        requires_grad=True,
    )
    a = d.squash(u)
    ldj = d.log_det_jacobian(u)
    (a.sum() + ldj.sum()).backward()
    assert torch.isfinite(a).all() and torch.isfinite(ldj).all() and torch.isfinite(u.grad).all()
    assert (torch.linalg.vector_norm(a[:, :3], dim=-1) <= 1).all()
    # log_prob of boundary actions stays finite (the inverse clips the norm radially)
    d.proba_distribution(torch.zeros(2, SPEC.dim), torch.zeros(4))
    assert torch.isfinite(d.log_prob(a.detach())).all()


def test_isotropic_entropy_and_mode():
    d = IsotropicGaussianDistribution(SPEC)
    mean, log_std = torch.randn(3, SPEC.dim), torch.tensor([0.1, -0.2, 0.3, 0.0])
    d.proba_distribution(mean, log_std)
    full = torch.tensor([0.1] * 3 + [-0.2, 0.3] + [0.0] * 3)
    expected = (0.5 + 0.5 * np.log(2 * np.pi) + full).sum()
    torch.testing.assert_close(d.entropy(), expected.expand(3))
    torch.testing.assert_close(d.mode(), mean)


def test_limit_action_radial():
    a = np.array([[3.0, 4.0, 0.0, 2.0, -5.0, 0.3, 0.1, 0.2]])
    out = limit_action(a, SPEC)
    np.testing.assert_allclose(out[0, :3], [0.6, 0.8, 0.0])
    np.testing.assert_allclose(out[0, 3:5], [1.0, -1.0])
    np.testing.assert_allclose(out[0, 5:], a[0, 5:])
    torch.testing.assert_close(limit_action(torch.as_tensor(a), SPEC), torch.as_tensor(out))
