"""Equivariance of every block, encoder, head and net, in float64 and float32, SE(3) and SO(2)."""

import pytest
import torch

from eqrobot.geometry import ArraySpec
from eqrobot.nn import (
    EquivariantNet,
    GatedVectorLayer,
    InvariantFeatures,
    InvariantHead,
    MLPNet,
    SpecEncoder,
    VectorScalarHead,
    count_parameters,
    mlp_matching,
    pack,
    pair_spec,
    unpack,
)
from eqrobot.testing import assert_equivariant

OBS = ArraySpec([
    ("ee_position", "point"), ("ee_velocity", "vector"), ("gripper_width", "scalar"),
    ("gravity_direction", "vector"), ("base_position", "point"), ("object_position", "point"),
    ("object_orientation", "frame"), ("object_linear_velocity", "vector"),
    ("object_angular_velocity", "pseudovector"),
])
GOAL = ArraySpec([("goal_position", "point")])
IN = ArraySpec.concat({"observation": OBS, "desired_goal": GOAL})
ACTOR_OUT = ArraySpec([("ee_displacement", "vector"), ("gripper", "scalar"), ("log_std", "scalar", 2)])
RICH_OUT = ArraySpec([("s", "scalar", 2), ("next_object_position", "point"), ("w", "pseudovector"),
                      ("frame", "frame"), ("v", "vector")])
Q_IN = ArraySpec.concat({"observation": OBS, "desired_goal": GOAL, "action": ArraySpec([("d", "vector"),
                                                                                          ("g", "scalar")])})
Q_OUT = ArraySpec([("q", "scalar")])

CASES = [("se3", torch.float64), ("se3", torch.float32), ("so2", torch.float64), ("so2", torch.float32)]


def _check(fn, spec_in, spec_out, group, dtype, **kw):
    err = assert_equivariant(fn, spec_in, spec_out, group=group, dtype=dtype, n_samples=4, batch=8, **kw)
    assert err < (1e-9 if dtype == torch.float64 else 1e-2)


@pytest.mark.parametrize("group,dtype", CASES)
def test_encoder(group, dtype):
    enc = SpecEncoder(IN)
    assert enc.anchor == "observation/base_position"
    assert enc.n_vectors == 10 and enc.n_scalars == 1
    out = pair_spec(enc.n_scalars, enc.n_vectors)
    assert enc.irreps_out.dim == out.dim

    def fn(x):
        V, S = enc(x)
        return pack(V, S)

    _check(fn, IN, out, group, dtype)


@pytest.mark.parametrize("group,dtype", CASES)
def test_invariant_features(group, dtype):
    inv = InvariantFeatures(6, k=4)
    spec_in = pair_spec(0, 6)
    spec_out = pair_spec(inv.n_out, inv.n_aug)

    def fn(x):
        V, _ = unpack(x, 0, 6)
        i, A = inv.to(x.dtype)(V)
        return pack(A, i)

    _check(fn, spec_in, spec_out, group, dtype)


def test_invariant_features_see_chirality():
    # triple products: a scene and its mirror image must give different invariants
    torch.manual_seed(0)
    inv = InvariantFeatures(3, k=4).double()
    V = torch.randn(5, 3, 3, dtype=torch.float64)
    i1, _ = inv(V)
    i2, _ = inv(-V)  # parity: -I is a reflection; dot products agree, triple products flip
    assert (i1 - i2).abs().max() > 1e-3


@pytest.mark.parametrize("group,dtype", CASES)
def test_gated_layer_and_heads(group, dtype):
    torch.manual_seed(0)
    layer = GatedVectorLayer(5, 3, 7, hidden=16, k=4, depth=2)
    vs_head = VectorScalarHead(7, 16, 2, 3)
    inv_head = InvariantHead(7, 16, 2, k=4)
    spec_in = pair_spec(3, 5)

    def f_layer(x):
        V, S = unpack(x, 3, 5)
        V2, S2 = layer(V, S)
        return pack(V2, S2)

    def f_heads(x):
        V, S = unpack(x, 3, 5)
        V2, S2 = layer(V, S)
        v, s = vs_head(V2, S2)
        return pack(v, s), inv_head(V2, S2)

    layer.to(dtype), vs_head.to(dtype), inv_head.to(dtype)
    _check(f_layer, spec_in, pair_spec(16, 7), group, dtype)
    _check(f_heads, spec_in, (pair_spec(3, 2), pair_spec(2, 0)), group, dtype)
    assert layer.irreps_out.dim == 16 + 21 and vs_head.irreps_out.dim == 3 + 6


@pytest.mark.parametrize("group,dtype", CASES)
@pytest.mark.parametrize("out", ["actor", "rich", "critic"])
def test_equivariant_net(group, dtype, out):
    torch.manual_seed(0)
    spec_in, spec_out = {"actor": (IN, ACTOR_OUT), "rich": (IN, RICH_OUT), "critic": (Q_IN, Q_OUT)}[out]
    net = EquivariantNet(spec_in, spec_out, hidden=32, layers=2, vector_channels=8)
    assert net.irreps_in.dim == spec_in.dim and net.irreps_out.dim == spec_out.dim
    _check(net, spec_in, spec_out, group, dtype)


def test_point_output_is_anchor_plus_vector_and_single_sample():
    net = EquivariantNet(IN, ArraySpec([("p", "point")]), hidden=8, layers=1, vector_channels=4).double()
    x = torch.randn(3, IN.dim, dtype=torch.float64)
    shifted = x.clone()
    for f in IN.of_kind("point"):
        shifted[:, f.slice] += torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    assert torch.allclose(net(shifted), net(x) + torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64))
    assert net(x[0]).shape == (3,)
    assert torch.allclose(net(x[0]), net(x)[0])
    x3 = torch.randn(2, 5, IN.dim, dtype=torch.float64)
    assert net(x3).shape == (2, 5, 3)
    assert torch.allclose(net(x3)[1], net(x3[1]))


def test_gradients_flow_everywhere():
    net = EquivariantNet(IN, RICH_OUT, hidden=16, layers=2, vector_channels=4)
    net(torch.randn(4, IN.dim)).square().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_explicit_anchor_and_errors():
    assert EquivariantNet(IN, ACTOR_OUT, anchor="observation/ee_position").anchor == "observation/ee_position"
    assert EquivariantNet(IN, ACTOR_OUT, anchor="ee_position").anchor == "observation/ee_position"
    with pytest.raises(ValueError, match="unknown anchor field 'nope'"):
        EquivariantNet(IN, ACTOR_OUT, anchor="nope")
    with pytest.raises(ValueError, match="must be a point field"):
        EquivariantNet(IN, ACTOR_OUT, anchor="observation/ee_velocity")
    with pytest.raises(ValueError, match="anchor"):
        EquivariantNet(ArraySpec([("v", "vector")]), ArraySpec([("p", "point")]))
    with pytest.raises(ValueError, match="empty"):
        EquivariantNet(ArraySpec([]), ACTOR_OUT)
    with pytest.raises(ValueError, match="empty"):
        EquivariantNet(IN, ArraySpec([]))
    with pytest.raises(ValueError, match="hidden"):
        EquivariantNet(IN, ACTOR_OUT, hidden=0)
    with pytest.raises(ValueError, match="activation"):
        EquivariantNet(IN, ACTOR_OUT, activation="swishy")
    with pytest.raises(ValueError, match="no vectors"):
        EquivariantNet(ArraySpec([("base_position", "point"), ("s", "scalar", 2)]), Q_OUT)
    with pytest.raises(ValueError, match="point fields but anchor='none'"):
        EquivariantNet(IN, ACTOR_OUT, anchor="none")
    with pytest.raises(ValueError, match="features"):
        EquivariantNet(IN, ACTOR_OUT)(torch.randn(2, IN.dim + 1))


def test_mlp_net_and_matching():
    eq = EquivariantNet(IN, ACTOR_OUT)
    mlp = mlp_matching(IN, ACTOR_OUT, eq)
    n_eq, n_mlp = count_parameters(eq), count_parameters(mlp)
    assert abs(n_mlp - n_eq) <= 0.05 * n_eq
    assert mlp(torch.randn(5, IN.dim)).shape == (5, ACTOR_OUT.dim)
    assert mlp.irreps_in.dim == IN.dim and mlp.irreps_in.lmax == 0  # an MLP promises no symmetry
    for layers in (1, 3):
        m = mlp_matching(IN, ACTOR_OUT, 20000, layers=layers)
        assert abs(count_parameters(m) - 20000) <= 1000 and m.n_layers == layers
    with pytest.raises(ValueError, match="no MLP"):
        mlp_matching(IN, ACTOR_OUT, 10)
    assert isinstance(MLPNet(IN, ACTOR_OUT, hidden=8), torch.nn.Module)


def test_cross_products_auto_and_chirality_without_frame():
    assert EquivariantNet(IN, ACTOR_OUT).n_cross == 0  # the object frame fixes the handedness
    no_frame = ArraySpec([("base_position", "point"), ("a", "vector"), ("b", "vector")])
    net = EquivariantNet(no_frame, ArraySpec([("v", "vector")]), hidden=16)
    assert net.n_cross > 0
    assert_equivariant(net, no_frame, ArraySpec([("v", "vector")]), n_samples=3)
    # with cross products, a x b is in the span of the head's vectors: fit it exactly-ish
    torch.manual_seed(0)
    x = torch.randn(512, no_frame.dim)
    target = torch.linalg.cross(x[:, 3:6], x[:, 6:9], dim=-1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):
        loss = (net(x) - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * target.square().mean().item()
    with pytest.raises(ValueError, match="n_cross"):
        EquivariantNet(IN, ACTOR_OUT, n_cross=-1)


def test_encoder_channels_and_point_pairs():
    enc = SpecEncoder(IN, point_pairs=True)
    names = enc.channel_names
    assert "observation/ee_position-observation/object_position" in names
    assert "observation/object_position-desired_goal/goal_position" in names
    assert enc.n_vectors == 10 + 3
    x = torch.randn(4, IN.dim, dtype=torch.float64)
    V, S = enc.double()(x)
    s = IN.split(x)
    i = names.index("observation/ee_position-observation/object_position")
    assert torch.equal(V[:, i], s["observation/ee_position"] - s["observation/object_position"])
    j = names.index("observation/object_position")
    assert torch.equal(V[:, j], s["observation/object_position"] - s["observation/base_position"])
    assert torch.equal(S, s["observation/gripper_width"])
    assert SpecEncoder(IN).n_vectors == 10  # pairs are opt-in for the bare encoder


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_net_variants_equivariant(dtype):
    torch.manual_seed(0)
    variants = [
        dict(vector_layers=2, vector_channels=6),  # gated vector layers before the trunk
        dict(k=2, n_cross=1),  # 14 vectors > 2k - 1: projected dot products instead of the Gram matrix
        dict(point_pairs=False, n_cross=3, activation="tanh"),
        dict(compress_invariants=True),  # asinh on the invariants: elementwise, so still exact
    ]
    for kw in variants:
        net = EquivariantNet(IN, RICH_OUT, hidden=16, **kw)
        _check(net, IN, RICH_OUT, "se3", dtype)
    assert net.trunk.invariants.mode == "gram"
    assert EquivariantNet(IN, RICH_OUT, k=2).trunk.invariants.mode == "projected"


def test_compressed_invariants_stay_bounded_for_large_inputs():
    """asinh keeps a huge input (a fast-spinning object) from reaching the MLP as a huge feature."""
    torch.manual_seed(0)
    x = torch.randn(4, IN.dim, dtype=torch.float64)
    big = x.clone()
    big[:, IN["observation/ee_velocity"].slice] *= 1e3  # quadratic invariants grow by 1e6
    plain = EquivariantNet(IN, RICH_OUT, hidden=16).double()
    packed = EquivariantNet(IN, RICH_OUT, hidden=16, compress_invariants=True).double()
    packed.load_state_dict(plain.state_dict())  # same weights: only the feature map differs
    feats = {}
    for name, net in (("plain", plain), ("packed", packed)):
        first = net.trunk.mlp[0]
        hook = first.register_forward_hook(lambda m, i, o, name=name: feats.__setitem__(name, i[0]))
        net(big)
        hook.remove()
    assert feats["plain"].abs().max() > 1e5
    assert feats["packed"].abs().max() < 20  # asinh(1e6) ~ 14.5
    torch.testing.assert_close(packed(x * 1e-4), plain(x * 1e-4), rtol=1e-3, atol=1e-6)


def test_state_dict_deepcopy_and_float64():
    import copy
    import io

    net = EquivariantNet(IN, ACTOR_OUT, hidden=16)
    x = torch.randn(3, IN.dim)
    twin = EquivariantNet(IN, ACTOR_OUT, hidden=16)
    twin.load_state_dict(net.state_dict())
    assert torch.equal(twin(x), net(x))
    assert torch.equal(copy.deepcopy(net)(x), net(x))
    buf = io.BytesIO()
    torch.save(net, buf)
    buf.seek(0)
    assert torch.equal(torch.load(buf, weights_only=False)(x), net(x))
    assert net.double()(x.double()).dtype == torch.float64
