"""fused_adam_step (eqrobot.policies.sac_update) is optimizer.step() of a fused Adam, bit for bit,
and hands every case it does not cover to optimizer.step()."""

import pytest
import torch

from eqrobot.policies.sac_update import fused_adam_step

SHAPES = [(64, 107), (64,), (64, 64), (64,), (1, 64), (1,)]


def _twins(**kwargs):
    torch.manual_seed(0)
    p1 = [torch.nn.Parameter(torch.randn(s)) for s in SHAPES]
    p2 = [torch.nn.Parameter(p.detach().clone()) for p in p1]
    kwargs = {"lr": 1e-3, "fused": True, **kwargs}
    return (p1, torch.optim.Adam(p1, **kwargs)), (p2, torch.optim.Adam(p2, **kwargs))


def _set_grads(params, grads):
    for p, g in zip(params, grads, strict=True):
        p.grad = None if g is None else g.clone()


def _assert_same(a, b):
    (p1, o1), (p2, o2) = a, b
    for x, y in zip(p1, p2, strict=True):
        assert torch.equal(x, y)
        s1, s2 = o1.state[x], o2.state[y]
        assert s1.keys() == s2.keys()
        for k in s1:
            assert torch.equal(s1[k], s2[k]), k


@pytest.mark.parametrize(
    "kwargs", [{}, {"weight_decay": 0.01}, {"maximize": True}, {"betas": (0.8, 0.9), "eps": 1e-6}]
)
def test_bit_identical_to_step(kwargs, monkeypatch):
    a, b = _twins(**kwargs)
    g = torch.Generator().manual_seed(1)
    adam_step = torch.optim.Adam.step
    for i in range(30):
        grads = [torch.randn(s, generator=g) for s in SHAPES]
        _set_grads(a[0], grads)
        _set_grads(b[0], grads)
        if i == 10:  # SB3's learning-rate schedule writes the group's lr
            for o in (a[1], b[1]):
                o.param_groups[0]["lr"] = 3e-4
        adam_step(a[1])
        if i == 1:  # from the second step on, the kernel is called directly
            monkeypatch.setattr(torch.optim.Adam, "step", None)
        fused_adam_step(b[1])
        _assert_same(a, b)
    monkeypatch.undo()
    b[1].load_state_dict(a[1].state_dict())  # still an ordinary optimizer
    _assert_same(a, b)


def test_falls_back_to_step():
    calls = []
    # a missing gradient (that parameter is skipped, as step() does); a step hook; non-fused Adam
    a, b = _twins()
    grads = [torch.ones(s) for s in SHAPES]
    for opt in (a, b):  # first step: the state is made by step() itself
        _set_grads(opt[0], grads)
    a[1].step()
    fused_adam_step(b[1])
    _assert_same(a, b)
    grads[2] = None
    _set_grads(a[0], grads)
    _set_grads(b[0], grads)
    a[1].step()
    fused_adam_step(b[1])
    _assert_same(a, b)
    handle = b[1].register_step_post_hook(lambda *args: calls.append(1))
    fused_adam_step(b[1])
    assert calls == [1]
    handle.remove()
    for fused in (False, None):
        params = [torch.nn.Parameter(torch.ones(3))]
        opt = torch.optim.Adam(params, lr=0.1, fused=fused)
        params[0].grad = torch.ones(3)
        opt.register_step_post_hook(lambda *args: calls.append(2))
        fused_adam_step(opt)
        assert calls[-1] == 2 and not torch.equal(params[0].detach(), torch.ones(3))
