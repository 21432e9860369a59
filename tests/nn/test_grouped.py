"""grouped_forward: several same-structure nets on one input give each net's own output and grads."""

import pytest
import torch

from eqrobot.geometry import ArraySpec
from eqrobot.nn import EquivariantNet, MLPNet
from eqrobot.nn.grouped import can_group, grouped_forward

IN = ArraySpec(
    [
        ("base_position", "point"),
        ("ee_position", "point"),
        ("ee_velocity", "vector"),
        ("object_orientation", "frame"),
        ("gripper_width", "scalar", 1),
        ("action", "vector"),
    ]
)
Q = ArraySpec([("q", "scalar", 1)])
QUANTILES = ArraySpec([("q", "scalar", 5)])


def _check_same(nets, x):
    x = x.clone().requires_grad_()
    params = [p for n in nets for p in n.parameters()]
    grouped = grouped_forward(nets, x)
    separate = tuple(n(x) for n in nets)
    w = [torch.randn_like(o) for o in separate]
    g1 = torch.autograd.grad(sum((o * wi).sum() for o, wi in zip(grouped, w, strict=True)), [x] + params)
    g2 = torch.autograd.grad(sum((o * wi).sum() for o, wi in zip(separate, w, strict=True)), [x] + params)
    for a, b in zip(grouped, separate, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("out", [Q, QUANTILES])
@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("n", [2, 3])
def test_grouped_equivariant_nets_match_separate(out, compress, n):
    torch.manual_seed(0)
    nets = [
        EquivariantNet(IN, out, hidden=16, layers=2, compress_invariants=compress).double() for _ in range(n)
    ]
    assert can_group(nets)
    _check_same(nets, torch.randn(7, IN.dim, dtype=torch.float64) * 3)


def test_grouped_mlp_nets_match_separate():
    torch.manual_seed(0)
    nets = [MLPNet(IN, Q, hidden=16, layers=3).double() for _ in range(2)]
    assert can_group(nets)
    _check_same(nets, torch.randn(5, IN.dim, dtype=torch.float64))


def test_can_group_refuses_what_it_cannot_share():
    no_frame = ArraySpec([("base_position", "point"), ("ee_position", "point"), ("v", "vector")])
    # learned cross-product combinations (no frame input) sit before the MLP: not shared
    assert not can_group([EquivariantNet(no_frame, Q), EquivariantNet(no_frame, Q)])
    assert not can_group([EquivariantNet(IN, Q)])
    assert not can_group([EquivariantNet(IN, Q, hidden=16), EquivariantNet(IN, Q, hidden=32)])
    assert not can_group([EquivariantNet(IN, Q), EquivariantNet(IN, Q, compress_invariants=True)])
    assert not can_group([EquivariantNet(IN, Q), MLPNet(IN, Q)])
    vec_out = ArraySpec([("d", "vector")])
    assert not can_group([EquivariantNet(IN, vec_out), EquivariantNet(IN, vec_out)])
    with pytest.raises(ValueError, match="batch, features"):
        grouped_forward([MLPNet(IN, Q), MLPNet(IN, Q)], torch.zeros(2, 3, IN.dim))
