"""e3nn's own checker, ``e3nn.util.test.assert_equivariant``, on every eqrobot module that declares irreps.

Float64, random rotations (and inversions, and translations of the points) drawn by e3nn itself. The
declarations are the thing under test: the last tests show the checker rejecting the labels these
modules carried before (1o vectors on SO(3)-only blocks; a pseudovector encoded as 1o).
"""

import pytest
import torch
from e3nn.util.test import assert_equivariant

from eqrobot.envs.core import make_geometry_spec
from eqrobot.geometry.spec import ArraySpec
from eqrobot.nn import (
    EquivariantNet,
    GatedVectorLayer,
    InvariantFeatures,
    InvariantHead,
    InvariantMLP,
    MLPNet,
    SpecEncoder,
    VectorScalarHead,
    pair_irreps,
)
from eqrobot.nn.e3nn_view import as_e3nn_module

PUSH = make_geometry_spec("Push")
OBS_GOAL = ArraySpec.concat({"observation": PUSH.observation, "desired_goal": PUSH.desired_goal})
CRITIC_IN = ArraySpec.concat({"obs": OBS_GOAL, "action": PUSH.action})
Q = ArraySpec([("q", "scalar", 1)])
# no pseudovector, no frame: with n_cross=0 such a net is O(3)-equivariant, parities included
POLAR = ArraySpec(
    [
        ("gravity", "vector"),
        ("base", "point"),
        ("ee", "point"),
        ("ee_velocity", "vector"),
        ("width", "scalar", 1),
    ]
)
POLAR_OUT = ArraySpec([("next_ee", "point"), ("displacement", "vector"), ("width", "scalar", 1)])

BLOCKS = {
    "features_gram": lambda: InvariantFeatures(6),
    "features_projected": lambda: InvariantFeatures(20, k=4),
    "features_no_cross": lambda: InvariantFeatures(5, n_cross=0),
    "gated": lambda: GatedVectorLayer(5, 3, 4, hidden=16),
    "gated_no_cross": lambda: GatedVectorLayer(5, 3, 4, hidden=16, n_cross=0),
    "invariant_mlp": lambda: InvariantMLP(5, 3, hidden=16, compress_invariants=True),
    "invariant_mlp_no_cross": lambda: InvariantMLP(5, 3, hidden=16, n_cross=0),
    "vector_scalar_head": lambda: VectorScalarHead(5, 3, 2, 2),
    "invariant_head": lambda: InvariantHead(5, 3, 2),
    "invariant_head_no_cross": lambda: InvariantHead(5, 3, 2, n_cross=0),
    "invariant_head_scalars_only": lambda: InvariantHead(0, 3, 2),
}
SPEC_MODULES = {
    "encoder": lambda: SpecEncoder(OBS_GOAL),
    "encoder_no_pairs": lambda: SpecEncoder(CRITIC_IN, point_pairs=False),
    "actor": lambda: EquivariantNet(OBS_GOAL, PUSH.action, hidden=16),
    "critic": lambda: EquivariantNet(CRITIC_IN, Q, hidden=16, compress_invariants=True),
    "vector_layers": lambda: EquivariantNet(
        OBS_GOAL, PUSH.action, hidden=16, vector_layers=1, vector_channels=4
    ),
    "dynamics_like": lambda: EquivariantNet(PUSH.observation, PUSH.observation, hidden=16),
    "polar_o3": lambda: EquivariantNet(POLAR, POLAR_OUT, hidden=16, n_cross=0),
    "polar_cross": lambda: EquivariantNet(POLAR, POLAR_OUT, hidden=16),
}


@pytest.fixture(autouse=True)
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # e3nn draws inputs and picks its tolerance (1e-9) from it
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(old)


@pytest.mark.parametrize("name", list(BLOCKS))
def test_blocks_pass_e3nn_checker(name):
    block = BLOCKS[name]().double()
    assert_equivariant(as_e3nn_module(block), ntrials=3)


@pytest.mark.parametrize("name", list(SPEC_MODULES))
def test_spec_modules_pass_e3nn_checker_with_translations(name):
    module = SPEC_MODULES[name]().double()
    view = as_e3nn_module(module)
    assert "cartesian_points" in view.irreps_in
    errors = assert_equivariant(view, ntrials=3, do_parity=view.parity_equivariant)
    assert (0, True) in errors  # translations were tested
    if not isinstance(module, SpecEncoder):
        assert_equivariant(module, ntrials=3)  # the raw flat forward, with its declared labels


def test_which_nets_promise_parity():
    assert SPEC_MODULES["polar_o3"]().parity_equivariant
    for name in ("actor", "critic", "vector_layers", "dynamics_like", "polar_cross"):
        net = SPEC_MODULES[name]()
        assert not net.parity_equivariant and all(ir.p == 1 for _, ir in net.irreps_in), name


def test_mlp_declares_plain_scalars_and_passes():
    mlp = MLPNet(OBS_GOAL, PUSH.action, hidden=8).double()
    assert str(mlp.irreps_in) == f"{OBS_GOAL.dim}x0e"
    assert_equivariant(as_e3nn_module(mlp))


def test_checker_rejects_the_old_labels():
    """SO(3)-only blocks labelled with physics parities fail e3nn's inversion test."""
    block = InvariantMLP(5, 3, hidden=16).double()  # triple products reach the MLP
    view = as_e3nn_module(block)
    with pytest.raises(AssertionError, match="parity_k=1"):
        assert_equivariant(view, irreps_in=pair_irreps(3, 5), irreps_out=pair_irreps(16, block.n_vectors_out))
    encoder = SpecEncoder(OBS_GOAL).double()  # angular velocity is a pseudovector: its channel is 1e
    old_out = pair_irreps(encoder.n_scalars, encoder.n_vectors)
    view = as_e3nn_module(encoder)
    with pytest.raises(AssertionError, match="parity_k=1"):
        assert_equivariant(view, irreps_in=view.irreps_in, irreps_out=old_out)
    # and e3nn's points always reflect, so an SO(3)-only net's view fails the parity test
    view = as_e3nn_module(SPEC_MODULES["actor"]().double())
    with pytest.raises(AssertionError, match="parity_k=1"):
        assert_equivariant(view, do_parity=True)
