"""The hand-written fast pieces of eqrobot.nn.blocks agree with the plain torch formulas."""

import pytest
import torch

from eqrobot.nn.blocks import InvariantFeatures
from eqrobot.nn.fast_ops import TriuGram, fast_asinh


def test_fast_asinh_matches_torch_asinh():
    x = torch.cat(
        [
            torch.randn(20_000, dtype=torch.float64) * 10,
            torch.logspace(-30, 30, 500, dtype=torch.float64),
            -torch.logspace(-30, 30, 500, dtype=torch.float64),
            torch.tensor([0.0, -0.0, 1e300, -1e300], dtype=torch.float64),
        ]
    )
    ref = torch.asinh(x)
    rel64 = ((fast_asinh(x) - ref).abs() / ref.abs().clamp_min(1e-300)).max()
    assert rel64 < 1e-15
    x32 = x.float()
    ref32 = torch.asinh(x32.double())  # float32 range: +-1e300 became +-inf
    got32 = fast_asinh(x32).double()
    finite = torch.isfinite(x32)
    assert torch.isfinite(got32[finite]).all()
    assert ((got32 - ref32)[finite].abs() / ref32[finite].abs().clamp_min(1e-38)).max() < 3e-7
    assert torch.equal(torch.signbit(fast_asinh(torch.tensor([-0.0, 0.0]))), torch.tensor([True, False]))
    for big in (3e38, -3e38):  # |x| + x^2/(1 + root) would overflow float32 here
        assert fast_asinh(torch.tensor([big])).item() == pytest.approx(
            torch.asinh(torch.tensor([big])).item()
        )


def test_fast_asinh_gradient():
    x = (torch.randn(50, dtype=torch.float64) * 5).requires_grad_()
    assert torch.autograd.gradcheck(fast_asinh, (x,))
    y = torch.randn(7, 9, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(fast_asinh(y).sum(), y)
    torch.testing.assert_close(g, 1 / torch.sqrt(1 + y.detach() ** 2), rtol=1e-15, atol=0)


@pytest.mark.parametrize("C", [1, 3, 14])
def test_triu_gram_forward_and_backward(C):
    inv = InvariantFeatures(C, n_cross=0, mode="gram").double()
    Vt = torch.randn(5, 3, C, dtype=torch.float64, requires_grad=True)
    iu = torch.triu_indices(C, C)
    x, y, z = Vt.detach().unbind(1)
    # the same three products summed in the same order: bit-identical to the plain formula
    plain = x[:, iu[0]] * x[:, iu[1]] + y[:, iu[0]] * y[:, iu[1]] + z[:, iu[0]] * z[:, iu[1]]
    dots = TriuGram.apply(Vt, inv.pairs, inv.sym_index, inv.sym_weight)
    assert torch.equal(dots.detach(), plain)
    for dtype in (torch.float32, torch.float64):
        inv_d = inv.to(dtype)
        V32 = Vt.detach().to(dtype)
        ref = (V32.transpose(1, 2) @ V32)[:, iu[0], iu[1]]
        torch.testing.assert_close(TriuGram.apply(V32, inv_d.pairs, inv_d.sym_index, inv_d.sym_weight), ref)
    inv = inv.double()

    def f(V):
        return TriuGram.apply(V, inv.pairs, inv.sym_index, inv.sym_weight)

    assert torch.autograd.gradcheck(f, (Vt,))
    assert torch.autograd.gradgradcheck(f, (Vt,))
