"""The radially squashed Gaussian's sample and log-density as one autograd node.

SAC's actor calls ``log_prob_from_params`` of
:class:`~eqrobot.policies.distributions.RadialSquashedGaussianDistribution` once per update on
``2B`` rows: about 100 small elementwise ops forward, which autograd records as about 70 backward
nodes. At batch 256 each costs its dispatch overhead, not its arithmetic (docs/results.md section 7).
:class:`RadialSquashedSample` runs the very same forward ops (so samples, actions and log-densities
are bit-identical to the plain path) without recording them, and differentiates by hand in about
30 ops. Tested against autograd of the plain path in tests/policies/test_squashed_sample.py.

The derivatives, per vector block ``v`` (``r = |v|``, ``t(r) = tanh(r) / r``, ``a = t v``) and
scalar entry ``s`` (``a = tanh s``), with ``u = loc + eps * scale`` the Gaussian sample and
``lp = sum log N(u; loc, scale) - log|det J(u)|``:

* ``d a / d v = t I + t'(r) v v^T / r``, ``t'(r) = (1 - tanh^2 r - t) / r``;
* ``d lp / d r = 2 tanh r - 2 f'(r)`` with ``f = log t``, ``f' = 2 / sinh(2 r) - 1 / r`` (written
  through ``exp(-2 r)`` as autograd evaluates the stable form), the Taylor branches below their
  thresholds exactly as in the forward;
* ``d lp / d s = 2 tanh s``; ``d a / d s = 1 - tanh^2 s``;
* the Gaussian term depends on ``loc`` and ``scale`` only through ``log scale`` once ``u - loc =
  eps * scale`` is substituted: ``d lp / d loc = d lp / d u``, ``d lp / d scale = eps d lp / d u -
  1 / scale``.
"""

from __future__ import annotations

import math

import torch

__all__ = ["RadialSquashedSample"]

_LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))


class RadialSquashedSample(torch.autograd.Function):
    """``(loc, scale, n_vectors) -> (actions, log_prob, gaussian_actions)`` for an action laid out as
    ``n_vectors`` 3-vector blocks followed by scalar entries (``gaussian_actions`` is not
    differentiable). Draws the noise as ``torch.distributions.Normal.rsample`` does (same stream)."""

    @staticmethod
    def forward(ctx, loc, scale, n_vectors):
        from eqrobot.policies import distributions as d  # the plain path's helpers: the same ops

        n = n_vectors
        eps = torch.empty(loc.shape, dtype=loc.dtype, device=loc.device).normal_()
        u = loc + eps * scale
        has_scalars = u.shape[-1] > 3 * n
        # RadialSquashedGaussianDistribution.squash, vectors-first layout
        parts = []
        v = r = tc = None
        if n:
            v = u[..., : 3 * n].unflatten(-1, (n, 3))
            r = d._norm(v)
            tc = d._tanhc(r)
            parts.append((v * tc[..., None]).flatten(-2))
        if has_scalars:
            s = u[..., 3 * n :]
            parts.append(torch.tanh(s))
        actions = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        # Normal.log_prob(u).sum(-1) - log_det_jacobian(u)
        var = scale**2
        log_scale = scale.log()
        gauss = (-((u - loc) ** 2) / (2 * var) - log_scale - _LOG_SQRT_2PI).sum(-1)
        total = torch.zeros(u.shape[:-1], dtype=u.dtype, device=u.device)
        if n:
            total = total + (d._log_one_minus_tanh_sq(r) + 2.0 * d._log_tanhc(r)).sum(-1)
        if has_scalars:
            total = total + d._log_one_minus_tanh_sq(s.abs()).sum(-1)
        log_prob = gauss - total
        ctx.n = n
        ctx.save_for_backward(eps, scale, actions, v, r, tc)
        ctx.mark_non_differentiable(u)
        return actions, log_prob, u

    @staticmethod
    def backward(ctx, g_actions, g_log_prob, _g_u):
        eps, scale, actions, v, r, tc = ctx.saved_tensors
        n = ctx.n
        glp = g_log_prob[..., None]
        parts = []
        if n:
            ga = g_actions[..., : 3 * n].unflatten(-1, (n, 3))
            T = torch.tanh(r)
            small = r < 1e-3  # the forward's Taylor branches
            r1 = torch.where(small, 1.0, r)
            dtc = torch.where(small, r * (-2.0 / 3.0), (1.0 - T * T - tc) / r1)
            small2 = r < 1e-2
            r2 = torch.where(small2, 1.0, r)
            e = torch.exp(-2.0 * r2)
            df = torch.where(
                small2,
                r * (-2.0 / 3.0) + (28.0 / 90.0) * r * r * r,
                2.0 * e / -torch.expm1(-2.0 * r2) + 2.0 * e / (1.0 + e) - 1.0 / r2,
            )
            dr = (v * ga).sum(-1) * dtc + glp * (2.0 * (T - df))
            dr = torch.where(r > 1e-12, dr / r, 0.0)  # |v| is clamped at 1e-12: no gradient below
            parts.append((tc[..., None] * ga + v * dr[..., None]).flatten(-2))
        if actions.shape[-1] > 3 * n:
            a = actions[..., 3 * n :]
            parts.append(g_actions[..., 3 * n :] * (1.0 - a * a) + glp * (2.0 * a))
        gu = torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0]
        return gu, gu * eps - glp / scale, None
