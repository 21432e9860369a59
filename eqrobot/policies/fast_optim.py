"""Optimizer steps of the SAC update without torch's per-call Python, bit-identical.

``torch.optim.Adam.step`` spends most of its time at batch 256 outside the arithmetic: hook
dispatch, a profiler range, per-parameter state checks, grouping tensors by device. SAC makes three
Adam steps per update (actor, critics, the entropy coefficient). :func:`adam_step` runs the very
same arithmetic on the optimizer's own state — the fused kernel for a fused Adam, torch's
single-tensor sequence for a default CPU Adam (SB3's entropy-coefficient optimizer) — and hands every
case it does not cover to ``optimizer.step()``. :func:`zero_grad` and :func:`ent_coef_grad` do the
same for gradient resets and for the entropy-coefficient loss's backward pass. Each is tested bit
for bit against torch in tests/policies/test_fused_adam_step.py, so a torch release that changes
its Adam shows up there.
"""

from __future__ import annotations

import torch
import torch.optim.optimizer as _optim

__all__ = ["adam_step", "ent_coef_grad", "zero_grad"]


def _plain_adam_group(optimizer: torch.optim.Optimizer) -> dict | None:
    """The single parameter group of an Adam this module can step, else None."""
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return None
    group = optimizer.param_groups[0]
    if (
        group["amsgrad"]
        or group["capturable"]
        or group["differentiable"]
        or group.get("decoupled_weight_decay", False)
        or isinstance(group["lr"], torch.Tensor)
        or any(isinstance(b, torch.Tensor) for b in group["betas"])
        or "step" in optimizer.__dict__  # patched (LR schedulers count the calls)
        or optimizer._optimizer_step_pre_hooks
        or optimizer._optimizer_step_post_hooks
        or _optim._global_optimizer_pre_hooks
        or _optim._global_optimizer_post_hooks
        or getattr(optimizer, "grad_scale", None) is not None
        or getattr(optimizer, "found_inf", None) is not None
    ):
        return None
    return group


def adam_step(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.step()``, bit-identical, for a ``torch.optim.Adam`` with one parameter group.

    A fused Adam calls ``torch._fused_adam_`` on its state directly (2x cheaper for the critics'
    12 tensors); a default CPU Adam (neither fused nor foreach, no weight decay, not maximising)
    runs torch's single-tensor sequence per parameter. Anything else — another optimizer or
    configuration, hooks, the first step (no state yet), a parameter without gradient, mixed
    devices or dtypes, complex or sparse tensors — takes ``optimizer.step()``."""
    group = _plain_adam_group(optimizer)
    if group is None:
        return optimizer.step()
    params = group["params"]
    first = params[0]
    grads, states = [], []
    for p in params:
        g, st = p.grad, optimizer.state.get(p)
        if (
            g is None
            or not st
            or g.is_sparse
            or p.is_complex()
            or p.dtype != first.dtype
            or p.device != first.device
        ):
            return optimizer.step()
        grads.append(g)
        states.append(st)
    if group["fused"]:
        return _fused_step(group, params, grads, states)
    if group["foreach"] or group["weight_decay"] != 0 or group["maximize"] or first.device.type != "cpu":
        return optimizer.step()
    return _single_tensor_step(group, params, grads, states)


def _fused_step(group, params, grads, states) -> None:
    """``torch.optim.adam._fused_adam`` for one device and dtype."""
    steps = [st["step"] for st in states]
    beta1, beta2 = group["betas"]
    with torch.no_grad():
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            params,
            grads,
            [st["exp_avg"] for st in states],
            [st["exp_avg_sq"] for st in states],
            [],
            steps,
            amsgrad=False,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            maximize=group["maximize"],
            grad_scale=None,
            found_inf=None,
        )


def _single_tensor_step(group, params, grads, states) -> None:
    """``torch.optim.adam._single_tensor_adam`` without weight decay, amsgrad, maximize, capturable."""
    lr, eps = group["lr"], group["eps"]
    beta1, beta2 = group["betas"]
    with torch.no_grad():
        for param, grad, st in zip(params, grads, states, strict=True):
            step_t, exp_avg, exp_avg_sq = st["step"], st["exp_avg"], st["exp_avg_sq"]
            step_t += 1
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = step_t.item()
            bias_correction1 = 1 - beta1**step
            bias_correction2 = 1 - beta2**step
            step_size = lr / bias_correction1
            bias_correction2_sqrt = bias_correction2**0.5
            denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)


def zero_grad(optimizer: torch.optim.Optimizer) -> None:
    """``optimizer.zero_grad()`` (``set_to_none=True``, as SB3 calls it) as a plain loop: 10x cheaper
    than the method's profiling and bookkeeping around the same ``p.grad = None``. An optimizer
    class with its own ``zero_grad`` keeps it."""
    if type(optimizer).zero_grad is not torch.optim.Optimizer.zero_grad:
        return optimizer.zero_grad()
    for group in optimizer.param_groups:
        for p in group["params"]:
            p.grad = None


def ent_coef_grad(log_ent_coef: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The gradient autograd gives ``log_ent_coef`` (shape ``(1,)``) for SAC's entropy-coefficient
    loss ``-(log_ent_coef * target).mean()`` (``target`` = ``(log_prob + target_entropy).detach()``),
    with autograd's own ops: the seed ``-1``, divided by the element count (``MeanBackward``),
    times ``target`` (``MulBackward``), summed to the parameter's shape. One small graph's
    backward pass costs more than these four ops."""
    # a float64 policy's target with the float32 parameter: autograd works in the promoted dtype
    # and casts the gradient to the parameter's at the end
    dtype = torch.result_type(log_ent_coef, target)
    seed = torch.ones((), dtype=dtype, device=log_ent_coef.device).neg()
    per_row = seed.expand(target.shape) / target.numel()
    return (per_row * target).sum_to_size(log_ent_coef.shape).to(log_ent_coef.dtype)
