"""eqrobot.policies.fast_optim: adam_step is optimizer.step() of a fused or default CPU Adam, bit
for bit, and hands every case it does not cover to optimizer.step(); ent_coef_grad is autograd's
gradient of SAC's entropy-coefficient loss, bit for bit."""

import pytest
import torch

from eqrobot.policies.fast_optim import adam_step, ent_coef_grad, zero_grad

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
    ("kwargs", "direct"),
    [
        ({}, True),
        ({"weight_decay": 0.01}, True),
        ({"maximize": True}, True),
        ({"betas": (0.8, 0.9), "eps": 1e-6}, True),
        ({"fused": None}, True),  # SB3's entropy-coefficient Adam: torch's single-tensor path
        ({"fused": None, "betas": (0.5, 0.7)}, True),
        ({"fused": None, "weight_decay": 0.01}, False),  # not covered: optimizer.step()
        ({"fused": None, "foreach": True}, False),
    ],
)
def test_bit_identical_to_step(kwargs, direct, monkeypatch):
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
        if i == 1 and direct:  # from the second step on, the arithmetic is run directly
            monkeypatch.setattr(torch.optim.Adam, "step", None)
        adam_step(b[1])
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
    adam_step(b[1])
    _assert_same(a, b)
    grads[2] = None
    _set_grads(a[0], grads)
    _set_grads(b[0], grads)
    a[1].step()
    adam_step(b[1])
    _assert_same(a, b)
    handle = b[1].register_step_post_hook(lambda *args: calls.append(1))
    adam_step(b[1])
    assert calls == [1]
    handle.remove()
    for fused in (False, None):
        params = [torch.nn.Parameter(torch.ones(3))]
        opt = torch.optim.Adam(params, lr=0.1, fused=fused)
        params[0].grad = torch.ones(3)
        opt.register_step_post_hook(lambda *args: calls.append(2))
        adam_step(opt)
        assert calls[-1] == 2 and not torch.equal(params[0].detach(), torch.ones(3))


def test_zero_grad_sets_every_gradient_to_none():
    params = [torch.nn.Parameter(torch.ones(2)) for _ in range(3)]
    opt = torch.optim.Adam([{"params": params[:2]}, {"params": params[2:]}])
    for p in params:
        p.grad = torch.ones(2)
    zero_grad(opt)
    assert all(p.grad is None for p in params)


def test_saved_model_leaves_the_update_cache_out(tmp_path, toy_env):
    from stable_baselines3 import HerReplayBuffer

    from eqrobot.policies.sac import EquivariantSAC

    model = EquivariantSAC(
        "EquivariantPolicy", toy_env, learning_starts=60, batch_size=16, replay_buffer_class=HerReplayBuffer,
        policy_kwargs={"net_arch": [8, 8]}, seed=0,
    )  # fmt: skip
    model.learn(64)
    assert "_fewer_ops_params" in model.__dict__  # the update ran and cached its lists
    model.save(tmp_path / "m.zip")
    loaded = EquivariantSAC.load(tmp_path / "m.zip", env=toy_env)
    assert "_fewer_ops_params" not in loaded.__dict__
    loaded.replay_buffer = model.replay_buffer  # (SB3 saves no buffer)
    loaded.set_logger(model.logger)
    loaded.train(gradient_steps=1, batch_size=16)  # and trains with its own parameters
    assert loaded.__dict__["_fewer_ops_params"][2][0] is next(loaded.critic.parameters())


@pytest.mark.parametrize("n", [256, 100, 7])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ent_coef_grad_is_autograds(n, dtype):
    g = torch.Generator().manual_seed(n)
    for _ in range(20):
        log_ent_coef = (torch.randn(1, generator=g, dtype=dtype) * 3).requires_grad_()
        target = (torch.randn(n, 1, generator=g, dtype=dtype) * 5 - 4).detach()
        (-(log_ent_coef * target).mean()).backward()
        got = ent_coef_grad(log_ent_coef, target)
        assert got.shape == log_ent_coef.shape and torch.equal(got, log_ent_coef.grad)
