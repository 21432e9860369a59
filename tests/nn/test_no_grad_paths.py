"""The invariant pieces give the same bits with and without autograd nodes (eqrobot.nn.fast_ops):
the no-gradient paths (acting, target critics, parameter-free inputs) skip the autograd.Functions
and write the Gram invariants feature-major, and must not change a single output bit."""

import pytest
import torch

from eqrobot.geometry import ArraySpec
from eqrobot.nn import EquivariantNet
from eqrobot.nn.blocks import InvariantFeatures
from eqrobot.nn.fast_ops import _Asinh, fast_asinh, scalars_and_gram, triu_gram

BATCHES = [1, 3, 17, 256, 513]  # odd sizes put different elements in the vector kernels' tails


def _reference(Vt, S):
    """The plain formula: [S, x_i x_j + y_i y_j + z_i z_j], then asinh through the autograd node."""
    C = Vt.shape[2]
    iu = torch.triu_indices(C, C)
    x, y, z = Vt.detach().unbind(1)
    dots = x[:, iu[0]] * x[:, iu[1]] + y[:, iu[0]] * y[:, iu[1]] + z[:, iu[0]] * z[:, iu[1]]
    feats = torch.cat([S.detach(), dots], dim=1)
    return feats, _Asinh.apply(feats)


@pytest.mark.parametrize("B", BATCHES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scalars_and_gram_bit_identical_on_every_path(B, dtype):
    C, N = 14, 2
    inv = InvariantFeatures(C, n_cross=0, mode="gram").to(dtype)
    g = torch.Generator().manual_seed(B)
    Vt = torch.randn(B, 3, C, generator=g, dtype=dtype) * 3
    S = torch.randn(B, N, generator=g, dtype=dtype) * 40
    feats_ref, asinh_ref = _reference(Vt, S)
    args = (inv.pairs, inv.sym_index, inv.sym_weight)
    for v_grad, s_grad in [(False, False), (True, False), (False, True), (True, True)]:
        v, s = Vt.clone().requires_grad_(v_grad), S.clone().requires_grad_(s_grad)
        feats = scalars_and_gram(v, s, *args)
        assert feats.shape == (B, N + C * (C + 1) // 2)
        assert torch.equal(feats.detach(), feats_ref)
        assert torch.equal(fast_asinh(feats).detach(), asinh_ref)
        assert (feats.grad_fn is not None) == (v_grad or s_grad)
    with torch.no_grad():
        assert torch.equal(scalars_and_gram(Vt.requires_grad_(), S, *args), feats_ref)
        assert torch.equal(triu_gram(Vt, *args), feats_ref[:, N:])
    assert torch.equal(scalars_and_gram(Vt.detach(), None, *args), feats_ref[:, N:])


def test_no_autograd_node_without_gradients():
    x = torch.randn(4, 9)
    assert fast_asinh(x).grad_fn is None
    assert type(fast_asinh(x.requires_grad_()).grad_fn).__name__ == "_AsinhBackward"
    with torch.no_grad():
        assert fast_asinh(x).grad_fn is None


def test_asinh_huge_values_still_exact():
    x = torch.tensor([3e38, -2e35, 1.0, float("nan"), 5e29])
    got = fast_asinh(x)
    want = torch.asinh(x.double()).float()
    torch.testing.assert_close(got[[0, 1, 2, 4]], want[[0, 1, 2, 4]])
    assert torch.isnan(got[3])
    assert fast_asinh(torch.empty(0, 3)).shape == (0, 3)


@pytest.mark.parametrize("B", BATCHES)
def test_net_output_bits_do_not_depend_on_grad_mode(B):
    spec = ArraySpec(
        [("base", "point"), ("ee", "point"), ("obj", "point"), ("R", "frame"), ("w", "scalar", 2)]
    )
    out = ArraySpec([("d", "vector"), ("g", "scalar", 3)])
    torch.manual_seed(0)
    net = EquivariantNet(spec, out, hidden=32, compress_invariants=True)
    x = torch.randn(B, spec.dim) * 2
    with_grad = net(x)
    assert with_grad.grad_fn is not None
    with torch.no_grad():
        without = net(x)
    assert torch.equal(with_grad.detach(), without)
    assert torch.equal(net(x.requires_grad_()).detach(), without)


@pytest.mark.parametrize("vector_layers", [0, 1])
def test_rows_needing_grad(vector_layers):
    spec = ArraySpec([("base", "point"), ("ee", "point"), ("v", "vector"), ("w", "scalar", 2)])
    out = ArraySpec([("d", "vector"), ("g", "scalar", 3)])
    torch.manual_seed(1)
    net = EquivariantNet(spec, out, hidden=16, vector_layers=vector_layers, compress_invariants=True).double()
    params = list(net.parameters())
    x = torch.randn(10, spec.dim, dtype=torch.float64)
    w = torch.randn(10, out.dim, dtype=torch.float64)
    plain = net(x)
    with net.rows_needing_grad(4):
        split = net(x)
        with torch.no_grad():
            assert torch.equal(net(x), plain.detach())  # no gradients: the ordinary pass
    assert net._grad_rows is None
    torch.testing.assert_close(split, plain, rtol=1e-13, atol=1e-13)
    want = torch.autograd.grad((plain[:4] * w[:4]).sum(), params)
    got = torch.autograd.grad((split * w).sum(), params)  # the last 6 rows contribute nothing
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="n must be"):
        with net.rows_needing_grad(0):
            pass
