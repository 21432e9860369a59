"""The one-node squashed sample (eqrobot.policies.squashed_sample) against the plain autograd path:
bit-identical forward, gradients equal in float64."""

import pytest
import torch

from eqrobot.geometry.spec import ArraySpec
from eqrobot.policies.distributions import RadialSquashedGaussianDistribution

SPECS = {
    "vector+scalar": ArraySpec([("ee_displacement", "vector"), ("gripper", "scalar")]),
    "two vectors+scalars": ArraySpec([("a", "vector"), ("b", "pseudovector"), ("g", "scalar", 2)]),
    "vector only": ArraySpec([("a", "vector")]),
    "scalars only": ArraySpec([("g", "scalar", 3)]),
    "frame": ArraySpec([("R", "frame"), ("g", "scalar")]),
}


def _params(dist, dtype, seed, rows=300):
    g = torch.Generator().manual_seed(seed)
    mean = torch.randn(rows, dist.action_dim, generator=g, dtype=dtype) * 2
    # every branch of the squash: tiny vectors (Taylor below r = 1e-3 and 1e-2), saturated ones
    mean[:40] *= 1e-4
    mean[40:80] *= 4e-3
    mean[80:100] *= 10
    log_std = torch.randn(rows, dist.n_std, generator=g, dtype=dtype) * 0.5 - 1
    log_std[:80] = -12.0  # keeps those samples tiny too
    return mean, log_std


def _plain(dist, mean, log_std):
    actions = dist.actions_from_params(mean, log_std)
    return actions, dist.log_prob(actions, dist.gaussian_actions), dist.gaussian_actions


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_bit_identical(name, dtype):
    dist = RadialSquashedGaussianDistribution(SPECS[name])
    assert dist._n_vec_prefix is not None
    mean, log_std = _params(dist, dtype, 0)
    mean.requires_grad_()
    torch.manual_seed(1)
    ref = _plain(dist, mean, log_std)
    next_ref = torch.randn(())
    torch.manual_seed(1)
    actions, log_prob = dist.log_prob_from_params(mean, log_std)
    assert "RadialSquashedSample" in type(log_prob.grad_fn).__name__  # the fused path ran
    for got, want in zip((actions, log_prob, dist.gaussian_actions), ref, strict=True):
        assert torch.equal(got.detach(), want.detach())
    assert torch.equal(torch.randn(()), next_ref)  # the same random stream, consumed alike


@pytest.mark.parametrize("name", SPECS)
def test_gradients_match_autograd(name):
    dist = RadialSquashedGaussianDistribution(SPECS[name])
    mean, log_std = _params(dist, torch.float64, 2)
    g = torch.Generator().manual_seed(3)
    w_actions = torch.randn(mean.shape, generator=g, dtype=torch.float64)
    w_lp = torch.randn(mean.shape[0], generator=g, dtype=torch.float64)

    def grads(fn):
        m, s = mean.clone().requires_grad_(), log_std.clone().requires_grad_()
        torch.manual_seed(4)
        actions, log_prob = fn(m, s)[:2]
        ((actions * w_actions).sum() + (log_prob * w_lp).sum()).backward()
        return m.grad, s.grad

    fused = grads(dist.log_prob_from_params)
    u = dist.gaussian_actions
    plain = grads(lambda m, s: _plain(dist, m, s))
    # The plain path differentiates the Gaussian term -(u - loc)^2 / (2 scale^2) along two routes
    # whose contributions (each |w_lp (u - loc)| / scale^2) cancel; the fused one drops them
    # analytically. With scale ~ 1e-5 (the rows driven into the squash's Taylor branches) that
    # cancellation costs autograd ~1e-16 of 1e5: allow exactly that rounding there, rtol 1e-10 else.
    route = (w_lp[:, None] * (u - mean)).abs() / torch.exp(log_std).index_select(1, dist._index) ** 2
    slack = 1e-14 * route
    for got, want in zip(fused, plain, strict=True):
        if got.shape == slack.shape:
            tol = 1e-10 * want.abs() + 1e-12 + slack
        else:  # log_std: its components' slack summed
            tol = 1e-10 * want.abs() + 1e-12 + torch.zeros_like(want).index_add_(1, dist._index, slack)
        assert ((got - want).abs() <= tol).all(), ((got - want).abs() / tol).max()
        regular = log_std.min(1).values > -3  # scale > 0.05: no cancellation to speak of
        torch.testing.assert_close(got[regular], want[regular], rtol=1e-10, atol=1e-12)


def test_gradcheck():
    dist = RadialSquashedGaussianDistribution(SPECS["two vectors+scalars"])
    mean, log_std = _params(dist, torch.float64, 5, rows=12)
    mean[:4] *= 1e3  # away from the Taylor thresholds, where finite differences straddle branches
    log_std[:4] = -1.0

    def f(m, s):
        torch.manual_seed(6)
        return dist.log_prob_from_params(m, s)

    assert torch.autograd.gradcheck(f, (mean.requires_grad_(), log_std.requires_grad_()))


def test_no_grad_takes_the_plain_path():
    dist = RadialSquashedGaussianDistribution(SPECS["vector+scalar"])
    mean, log_std = _params(dist, torch.float32, 7)
    actions, log_prob = dist.log_prob_from_params(mean, log_std)  # nothing requires grad
    assert log_prob.grad_fn is None
    torch.manual_seed(8)
    a1, lp1 = dist.log_prob_from_params(mean.requires_grad_(), log_std)
    torch.manual_seed(8)
    with torch.no_grad():
        a2, lp2 = dist.log_prob_from_params(mean, log_std)
    assert torch.equal(a1.detach(), a2) and torch.equal(lp1.detach(), lp2)
